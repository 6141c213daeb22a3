"""Map the paper SpikeCLIP image tower and Intel's PilotNet SNN onto Loihi; regenerate
``examples/mapping-paper/``.

The paper model is built here (``SpikeCLIPConfig.paper()``, random weights, BatchNorm statistics
drawn so that every LIF layer fires; no checkpoint is written), quantized on a few random
calibration images exactly as ``spikeclip-export`` does, delay-aligned, and mapped:

- ``mapping-loihi2.{md,json}`` + ``mapping-loihi2_cores.png``: cores and chips as a range, the
  lower bounds and the ratio to them, what runs where, where chip and Lava graph differ;
- ``mapping-loihi1.{md,json}`` (or the typed reason it does not fit);
- ``systems.md``: which Loihi systems hold it;
- ``pilotnet-mapping.{md,json}`` + ``pilotnet-mapping_vs_intel.png``: Intel's PilotNet SNN
  (``tests/fixtures/lava-dl``) through ``load_netx`` and the mapper, per layer next to Intel's
  compiler;
- ``pilotnet-energy.md``: its dynamic energy per inference (loihi2-proxy preset, simulated
  activity on synthetic frames) next to the 1.094 mJ Intel measured.

Prints one summary line per step and its wall time.

The same model as a checkpoint, for the export itself (write it outside the repository):

    python benchmarks/report_paper_mapping.py --save-checkpoint /tmp/paper.pt
    spikeclip-export /tmp/paper.pt --target loihi --run-lava 0

Usage: python benchmarks/report_paper_mapping.py [--out DIR] [--calib N] [--spike-rate R]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from bench_simulator import paper_encoder  # this folder (sys.path[0] when run as a script)

from export.nir import to_nir
from hardware.energy.inference import InferenceEnergy, netx_inference_energy
from hardware.energy.presets import PRESETS
from hardware.ir.network import LoihiNetwork
from hardware.ir.timing import align_delays
from hardware.lower.from_netx import load_netx
from hardware.mapping.design_rules import DesignRuleError
from hardware.mapping.intel_tables import load_compiler_table
from hardware.mapping.mapper import map_network
from hardware.mapping.plots import write_plots
from hardware.mapping.profiles import load_target
from hardware.mapping.records import Mapping
from hardware.mapping.report import write_report
from hardware.quantize.image import quantize
from spikeclip import SpikeCLIP, save
from spikeclip.atomic_io import write_text_atomic
from spikeclip.config import SpikeCLIPConfig

REPO = Path(__file__).resolve().parents[1]
PILOTNET = REPO / "tests" / "fixtures" / "lava-dl" / "pilotnet_snn" / "network.net"
SYSTEMS = ("loihi2-chip", "loihi2-kapoho-point", "loihi2-hala-point", "loihi1-chip",
           "loihi1-nahuku")  # fmt: skip
NOTE = (
    "paper configuration (9,513,396 image-encoder parameters), random weights with BatchNorm "
    "statistics drawn so that every LIF fires, quantized on {n} random calibration images"
)


def paper_network(n_calib: int, seed: int = 0) -> LoihiNetwork:
    """The paper image tower with random weights (`bench_simulator.paper_encoder`: BatchNorm
    statistics drawn so that every LIF fires), quantized and delay-aligned."""
    enc = paper_encoder(seed)
    calib = torch.randn(n_calib, 3, 32, 32, generator=torch.Generator().manual_seed(seed + 1))
    net, _ = quantize(to_nir(enc), calib)
    return align_delays(net)


def save_paper_checkpoint(path: Path, seed: int = 0) -> Path:
    """A paper-configuration SpikeCLIP checkpoint (the image tower of `paper_network`, a random
    text tower, dataset 'digits') for ``spikeclip-export PATH --target loihi``; for /tmp, never
    to commit."""
    model = SpikeCLIP(SpikeCLIPConfig.paper())
    model.image_encoder.load_state_dict(paper_encoder(seed).state_dict())
    return save(path, model.eval(), metadata={"dataset": "digits", "note": NOTE.format(n=0)})


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


def pilotnet_energy(net: LoihiNetwork, mapping: Mapping) -> list[tuple[str, InferenceEnergy]]:
    """The loihi2-proxy preset's energy per inference (mean hops of the pessimistic mapping)
    on each choice of input frames."""
    rng = np.random.default_rng(0)
    inputs = {
        "synthetic road frames (4)": road_frames(4),
        "uniform noise frames (4)": rng.uniform(0, 1, (4, 3, 66, 200)),
        "mid-grey frames (2)": np.full((2, 3, 66, 200), 0.5),
    }
    preset = PRESETS["loihi2-proxy"]
    return [
        (label, netx_inference_energy(net, images, preset, mapping=mapping))
        for label, images in inputs.items()
    ]


def pilotnet_report(out: Path) -> None:
    """``pilotnet-mapping.{md,json}`` (the mapping report with Intel's table side by side),
    ``pilotnet-mapping_{cores,vs_intel}.png`` and ``pilotnet-energy.md``."""
    net = load_netx(PILOTNET)
    target = load_target("loihi2")
    mapping = map_network(net, target)
    table = load_compiler_table()
    title = "Intel's PilotNet SNN → loihi2"
    write_report(mapping, target, out, stem="pilotnet-mapping", title=title, table=table)
    write_plots(mapping, out, stem="pilotnet-mapping", title="PilotNet SNN on Loihi 2",
                table=table)  # fmt: skip
    measured = table.measured
    lines = [
        "# Intel's PilotNet SNN: predicted dynamic energy per inference next to Intel's",
        "",
        f"Network: {table.network}; mapping next to Intel's compiler: `pilotnet-mapping.md`.",
        "",
        f"Intel measured {measured['energy_dynamic_mj']} mJ dynamic ({measured['energy_total_mj']}"
        f" mJ total) per inference of {measured['steps_per_inference']} steps, "
        f"{measured['inferences_per_s']} inferences/s ({measured['source']}).",
        "",
        "| inputs | input-layer spikes / neuron / step | synaptic events | neuron updates | "
        "spikes | mean hops | synaptic share | conv1 share of events | predicted (loihi2-proxy) "
        "| predicted / measured |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    e_syn = PRESETS["loihi2-proxy"].e_syn
    for label, e in pilotnet_energy(net, mapping):
        ratio = e.total_mj / measured["energy_dynamic_mj"]
        lines.append(
            f"| {label} | {e.input_rate:.3f} | {e.synaptic_events:,.0f} | "
            f"{e.neuron_updates:,.0f} | {e.spikes:,.0f} | {e.mean_hops:.2f} | "
            f"{100 * e.synaptic_events * e_syn / e.total_pj:.0f} % | "
            f"{100 * e.events_by_layer['conv1.syn'] / e.synaptic_events:.0f} % | "
            f"{e.total_mj:.3f} mJ | {ratio:.2f} |"
        )
        print(f"pilotnet energy, {label}: {e.total_mj:.3f} mJ ({ratio:.2f} × Intel's)")
    write_text_atomic(out / "pilotnet-energy.md", "\n".join(lines + [""]) + ENERGY_NOTE)
    print(f"pilotnet: {mapping.cores_range()} cores (Intel: {table.total_cores})")


ENERGY_NOTE = """
How it is predicted (`hardware.energy.inference.netx_inference_energy`): the bit-accurate
simulator runs the imported network for the 16 steps of one inference with each frame encoded
as lava-dl's dataset does and held as graded input currents (Intel's benchmark writes one frame
as the input layer's bias: the same drive); exact counts of synaptic events, neuron updates and
spikes are priced with `loihi2-proxy` = Davies et al. 2018 Table 2 (Loihi 1, 14 nm,
pre-silicon, 0.75 V): 23.6 pJ per synaptic event, 81/52 pJ per active/idle neuron update,
1.7 pJ per spike plus 3.5 pJ per mesh hop (the pessimistic mapping's mean hops).

Why the ratio is near, but not, 1:

- **Inputs.** Synaptic events are most of the energy (the share column), and the largest part
  of them is the input layer's spikes fanning out to conv1's 24 channels (the conv1 column). The
  input layer fires at a high rate for any frame (lava-dl's encoding maps a pixel in [0, 1] to
  −4 … 76 wu, 36 at mid-grey, held every step), so the prediction moves only ±10 % between
  road-like, noise and grey frames; Intel's frame (one real road image) is not public.
- **Prices.** The per-op energies are Loihi 1's pre-silicon minima. Loihi 2 (Intel 4) publishes
  none; a newer process lowers the energy per op, while Loihi 2's shared convolutional weights
  and graded-spike options change what one event costs — no public number says by how much
  (the scale of this error is unknown, not bounded here).
- **What the measurement holds and the model does not count:** the per-step barrier, the
  embedded x86 cores that drive the input and read the output, idle power of the 74 cores'
  unused compartments, and the host I/O of the benchmark (static power, 0.232 W, is excluded
  from Intel's 1.094 mJ as it is from the prediction).

The first two push in opposite directions and the third adds to the measurement, so agreement
within tens of percent says the proxy's scale is plausible, not that the model is calibrated:
no Loihi 2 per-op constant was fitted to this number.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "examples" / "mapping-paper")
    parser.add_argument("--calib", type=int, default=8)
    parser.add_argument("--spike-rate", type=float, default=0.1)
    parser.add_argument(
        "--save-checkpoint",
        type=Path,
        metavar="PATH",
        help="only write the paper checkpoint to PATH (for spikeclip-export)",
    )
    args = parser.parse_args(argv)
    if args.save_checkpoint is not None:
        print(f"wrote {save_paper_checkpoint(args.save_checkpoint)}")
        return 0
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
