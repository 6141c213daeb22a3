"""Map the paper SpikeCLIP image tower and Intel's PilotNet SNN onto Loihi; regenerate
``examples/mapping-paper/``.

The paper model is built here (``SpikeCLIPConfig.paper()``, random weights, BatchNorm statistics
drawn so that every LIF layer fires; no checkpoint is written), quantized on a few random
calibration images exactly as ``spikeclip-export`` does, delay-aligned, and mapped:

- ``mapping-loihi2.{md,json}`` + ``mapping-loihi2_cores.png``: cores and chips as a range, the
  lower bounds and the ratio to them, what runs where, where chip and Lava graph differ;
- ``mapping-loihi1.{md,json}`` (or the typed reason it does not fit);
- ``systems.md``: which Loihi systems hold it;
- ``pilotnet.md`` + ``pilotnet_vs_intel.png``: Intel's PilotNet SNN (``tests/fixtures/lava-dl``)
  through ``load_netx`` and the mapper, per layer next to Intel's compiler, and its dynamic
  energy per inference (loihi2-proxy preset, simulated activity on synthetic frames) next to
  the 1.094 mJ Intel measured.

Prints one summary line per step and its wall time.

Usage: python benchmarks/report_paper_mapping.py [--out DIR] [--calib N] [--spike-rate R]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from export.nir import to_nir
from hardware.energy.deployment import deployment_energy, population_spikes
from hardware.energy.network_counts import count_network
from hardware.energy.presets import PRESETS, snn_energy_pj
from hardware.ir.network import LoihiNetwork
from hardware.ir.timing import align_delays
from hardware.lower.from_netx import encode_frames, load_netx, netx_metadata, static_currents
from hardware.mapping.design_rules import DesignRuleError
from hardware.mapping.intel_tables import CompilerTable, load_compiler_table, side_by_side
from hardware.mapping.mapper import map_network
from hardware.mapping.plots import write_plots
from hardware.mapping.profiles import load_target
from hardware.mapping.records import Mapping
from hardware.mapping.report import write_report
from hardware.quantize.image import quantize
from hardware.simulate.engine import simulate
from spikeclip.atomic_io import write_text_atomic
from spikeclip.config import SpikeCLIPConfig
from spikeclip.image_encoder import ImageEncoder

REPO = Path(__file__).resolve().parents[1]
PILOTNET = REPO / "tests" / "fixtures" / "lava-dl" / "pilotnet_snn" / "network.net"
SYSTEMS = ("loihi2-chip", "loihi2-kapoho-point", "loihi2-hala-point", "loihi1-chip",
           "loihi1-nahuku")  # fmt: skip
NOTE = (
    "paper configuration (9,513,396 image-encoder parameters), random weights with BatchNorm "
    "statistics drawn so that every LIF fires, quantized on {n} random calibration images"
)


def paper_network(n_calib: int, seed: int = 0) -> LoihiNetwork:
    """The paper image tower with random weights, quantized and delay-aligned."""
    torch.manual_seed(seed)
    enc = ImageEncoder(SpikeCLIPConfig.paper())
    with torch.no_grad():
        for m in enc.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(1.5, 3.0)
                m.bias.normal_(0.3, 0.5)
    enc.eval()
    calib = torch.randn(n_calib, 3, 32, 32, generator=torch.Generator().manual_seed(seed + 1))
    net, _ = quantize(to_nir(enc), calib)
    return align_delays(net)


def map_generations(net: LoihiNetwork, out: Path, note: str, spike_rate: float) -> None:
    """``mapping-<gen>.md/.json`` (and the cores plot) for Loihi 2 and Loihi 1."""
    for gen in ("loihi2", "loihi1"):
        target = load_target(gen)
        title = f"SpikeCLIP image tower (paper config) → {gen}"
        try:
            m = map_network(net, target, spike_rate=spike_rate)
        except DesignRuleError as err:
            text = (
                f"# {title}\n\n> **{note}**\n\nDoes not map: `{err.rule}`: layer `{err.layer}` "
                f"needs {err.resource} = {err.demand:,} > limit {err.limit:,}.\n"
            )
            write_text_atomic(out / f"mapping-{gen}.md", text)
            print(f"{gen}: does not map: {err}")
            continue
        write_report(m, target, out, stem=f"mapping-{gen}", title=title, note=note)
        if gen == "loihi2":
            write_plots(m, out, stem=f"mapping-{gen}", title="paper SpikeCLIP on Loihi 2")
        lower = {b: s.lower.cores for b, s in m.scenarios.items() if s.lower is not None}
        print(f"{gen}: cores {m.cores_range()}, chips {m.chips_range()}, lower bounds {lower}")


def systems_table(net: LoihiNetwork, out: Path, note: str) -> None:
    """``systems.md``: which Loihi systems hold the network."""
    rows = [
        "# Which Loihi systems hold the paper image tower",
        "",
        f"> **{note}**",
        "",
        "| system | chips | result |",
        "|---|---|---|",
    ]
    for name in SYSTEMS:
        target = load_target(name)
        try:
            lo, hi = map_network(net, target).chips_range()
            result = f"fits ({lo} chips optimistic, {hi} pessimistic)"
            if hi is None:
                result = f"fits optimistic ({lo} chips); pessimistic does not"
        except DesignRuleError as err:
            result = (
                f"does not fit: `{err.rule}` ({err.layer}: {err.resource} "
                f"{err.demand:,} > {err.limit:,})"
            )
        rows.append(f"| {name} | {target.chips} | {result} |")
    write_text_atomic(out / "systems.md", "\n".join(rows) + "\n")
    print("\n".join(rows[6:]))


def road_frames(n: int, seed: int = 24) -> np.ndarray:
    """``n`` synthetic road images in [0, 1], ``[n, 3, 66, 200]``: sky gradient, grey road
    bending by a per-frame curvature, white lane marks, a little noise."""
    rng = np.random.default_rng(seed)
    h, w = 66, 200
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    frames = []
    for k in range(n):
        depth = np.clip((y - 20) / (h - 20), 0, 1)
        centre = w / 2 + (k - (n - 1) / 2) * 27 * (1 - depth) ** 2
        half = 8 + 80 * depth
        road = (y >= 20) & (np.abs(x - centre) < half)
        lane = road & (np.abs(np.abs(x - centre) - 0.6 * half) < 1 + depth)
        img = np.where(y < 20, 0.55 + 0.4 * (1 - y / 20), 0.3 + 0.15 * np.sin(x / 9 + k))
        img = np.where(lane, 0.95, np.where(road, 0.45, img))
        frames.append(np.clip(img[None].repeat(3, 0) + rng.normal(0, 0.03, (3, h, w)), 0, 1))
    return np.stack(frames)


def pilotnet_energy(net: LoihiNetwork, mapping: Mapping) -> list[tuple[str, float, float]]:
    """(inputs, mean input-layer rate, predicted dynamic energy per inference in mJ) of the
    loihi2-proxy preset with the mapping's mean hops, per choice of input frames."""
    meta = netx_metadata(net)
    rng = np.random.default_rng(0)
    inputs = {
        "synthetic road frames (4)": road_frames(4),
        "uniform noise frames (4)": rng.uniform(0, 1, (4, 3, 66, 200)),
        "mid-grey frames (2)": np.full((2, 3, 66, 200), 0.5),
    }
    preset = PRESETS["loihi2-proxy"]
    out = []
    for label, images in inputs.items():
        sim = simulate(net, static_currents(encode_frames(images, meta.transform), net.T))
        counts = count_network(net, sim.spike_counts, samples=len(images))
        spikes = population_spikes(counts)
        hops = deployment_energy(mapping, "pessimistic", spikes, preset).mean_hops
        priced = replace(preset, hops=hops)
        pj = sum(snn_energy_pj(c, priced) for c in counts) / len(images)
        rate = next(c.fr_out for c in counts if c.name == "input0")
        out.append((label, rate, pj / 1e9))
    return out


def _side_by_side_lines(table: CompilerTable, mapping: Mapping) -> list[str]:
    pess = side_by_side(table, mapping.scenarios["pessimistic"])
    opt = {r.label: r.ours for r in side_by_side(table, mapping.scenarios["optimistic"])}
    lines = [
        "| layer | group | Intel's compiler | this mapper (pessimistic = 2022 compiler) | error "
        "| this mapper (optimistic) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in pess:
        err = "—" if r.error is None else f"{100 * r.error:+.0f} %"
        lines.append(f"| {r.label} | {r.group} | {r.intel} | {r.ours} | {err} | {opt[r.label]} |")
    total = mapping.scenarios["pessimistic"].cores
    lines.append(
        f"| **total** | | **{table.total_cores}** | **{total}** | "
        f"{100 * (total - table.total_cores) / table.total_cores:+.0f} % | "
        f"{mapping.scenarios['optimistic'].cores} |"
    )
    return lines


def pilotnet_report(out: Path) -> None:
    """``pilotnet.md`` and ``pilotnet_vs_intel.png``."""
    net = load_netx(PILOTNET)
    mapping = map_network(net, load_target("loihi2"))
    table = load_compiler_table()
    write_plots(mapping, out, stem="pilotnet", title="PilotNet SNN on Loihi 2", table=table)
    measured = table.measured
    lines = [
        "# Intel's PilotNet SNN through this mapper, next to Intel's compiler",
        "",
        f"Network: {table.network}. Intel's table: {table.source}.",
        "",
        *_side_by_side_lines(table, mapping),
        "",
        "## Dynamic energy per inference",
        "",
        f"Intel measured {measured['energy_dynamic_mj']} mJ dynamic ({measured['energy_total_mj']}"
        f" mJ total) per inference of {measured['steps_per_inference']} steps, "
        f"{measured['inferences_per_s']} inferences/s ({measured['source']}).",
        "",
        "| inputs | input-layer spikes per neuron per step | predicted (loihi2-proxy) | "
        "predicted / measured |",
        "|---|---:|---:|---:|",
    ]
    for label, rate, mj in pilotnet_energy(net, mapping):
        ratio = mj / measured["energy_dynamic_mj"]
        lines.append(f"| {label} | {rate:.3f} | {mj:.3f} mJ | {ratio:.2f} |")
        print(f"pilotnet energy, {label}: {mj:.3f} mJ ({ratio:.2f} × Intel's)")
    write_text_atomic(out / "pilotnet.md", "\n".join(lines + [""]) + ENERGY_NOTE)
    print(f"pilotnet: {mapping.cores_range()} cores (Intel: {table.total_cores})")


ENERGY_NOTE = """
The prediction counts what the simulator's spikes make every core do over the 16 steps of one
inference (Intel's benchmark repeats one frame written as the input layer's bias; here each
frame is held for 16 steps as graded input currents, the same drive), priced with
`loihi2-proxy`: Davies et al. 2018 Table 2 (Loihi 1, pre-silicon, 0.75 V) — 23.6 pJ per synaptic
event, 81/52 pJ per active/idle neuron update, 1.7 pJ per spike plus 3.5 pJ per mesh hop (the
mapping's mean hops). Why the ratio is not 1:

- the input layer fires at a high rate for these frames (every neuron driven every step), and
  its spikes fan out to conv1 (24 channels × 3×3 taps, stride 2): synaptic events dominate, so
  the prediction follows the input statistics; Intel's frame (a real road image) is not public;
- per-op prices are Loihi 1's (14 nm, pre-silicon minima): Loihi 2 (Intel 4) publishes none,
  and a shared convolutional kernel may amortize weight reads that a per-event price charges
  in full — both push the true per-op cost below the proxy;
- the measurement includes what the model does not count: the embedded x86 cores running the
  host interface, the mesh barrier every step, idle power of cores that hold no neuron, and any
  compartments the compiler allocates beyond the neurons (power-of-two tiles); the model counts
  no static power either (Intel: 0.232 W static, excluded from the 1.094 mJ).

A ratio near 1 therefore says the proxy's scale is plausible, not that the model is calibrated.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "examples" / "mapping-paper")
    parser.add_argument("--calib", type=int, default=8)
    parser.add_argument("--spike-rate", type=float, default=0.1)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    net = paper_network(args.calib)
    t1 = time.perf_counter()
    print(f"paper network: {len(net.layers)} layers, depth {net.max_depth} ({t1 - t0:.0f} s)")
    note = NOTE.format(n=args.calib)
    map_generations(net, args.out, note, args.spike_rate)
    systems_table(net, args.out, note)
    pilotnet_report(args.out)
    print(f"total {time.perf_counter() - t0:.0f} s; wrote {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
