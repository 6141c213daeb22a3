"""Lava speed (issue #12): seconds per sample in Lava next to the simulator; paper build time.

For each model — ``tiny`` (random weights, BN statistics drawn so every layer fires) and the
default model ``examples/spikeclip-digits.pt`` (skipped, with a message, when absent) — in one
process, and writes JSON (``--out``):

- **image tower**: quantized with a small calibration batch; the bit-accurate simulator's
  seconds per sample (one batch, median of ``--repeats``) and Lava's (``export.lava.to_lava``
  → ``run_lava`` on CPU ``fixed_pt``, samples streamed one every T steps). Lava's rate is the
  *marginal* one — two run lengths after a warm-up run (the fastest of ``--lava-repeats``
  runs each), difference of wall times over the difference of samples — so its start-up and
  compile are reported apart (``lava_fixed_s``).
  Spikes are compared with the simulator (mismatching neuron-steps, max |Δ feature|).
- **text tower**: ``export.lava.netx`` (netx constraints, bias_exp = 6): the simulator's
  seconds per prompt and lava-dl netx's (HDF5 → ``netx.hdf5.Network``, marginal, as above),
  LIF1/LIF2 spikes compared. Prompts are token ids drawn uniformly from the vocabulary.
- **paper config** (random weights): the time to plan (``to_lava``) and to build (instantiate
  every Lava process for one sample, ``LavaGraph.build``) the image tower's process graph, in a
  child process with an address-space limit (``--paper-limit-gb``): conv4 feeds the residual
  stream through one ``DelaySparse`` replica per delayed consumer (8), each holding the conv's
  full sparse matrix (~69 M entries; Lava copies the weights and needs int64 delays, ~16 B an
  entry per replica), so a build over the limit is reported, not crashed. Measured on the
  2-core machine: 23 s and 9.9 GB peak RSS (before the matrix was built once and shared: over
  an 18 GiB limit after 94 s). Also the paper
  text tower's netx file: write and netx load times and its size.

Run: ``.venv/bin/python benchmarks/bench_lava.py [--repeats R] [--lava-samples N1 N2]``.
Timings on a shared 2-core machine are noisy; the load average is recorded.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from export.lava import netx as nx  # noqa: E402
from hardware.simulate.engine import simulate  # noqa: E402

DEFAULT_OUT = Path(__file__).parent / "results" / "bench_lava.json"
DEFAULT_MODEL = ROOT / "examples" / "spikeclip-digits.pt"


# ---------------------------------------------------------------------------------------------
# Models.
# ---------------------------------------------------------------------------------------------


def firing_bn(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Draw BN statistics/affines of a random-weight model so that every LIF fires."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) * 1.5 + 1.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.5 + 0.3)
    return model.eval()


def tiny_model():
    from spikeclip.config import SpikeCLIPConfig
    from spikeclip.model import SpikeCLIP

    torch.manual_seed(0)
    model = firing_bn(SpikeCLIP(SpikeCLIPConfig.tiny()), seed=1)
    with torch.no_grad():  # random fc1 barely drives LIF2; scale it so LIF2 fires (~15%)
        model.text_encoder.fc1.weight.mul_(8)
    return model


def images_for(model, n: int, seed: int, digits: bool) -> torch.Tensor:
    """``n`` float64 images: sklearn digits for the digits model, else N(0, 1)."""
    size = model.config.img_size
    if digits:
        from spikeclip.training.data import digits_images

        x, _ = digits_images(size)
        idx = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
        return x[idx].double()
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, model.config.in_channels, size, size, generator=g, dtype=torch.float64)


def prompt_ids(model, n: int, seed: int) -> np.ndarray:
    cfg = model.config
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, cfg.vocab_size, (n, cfg.text_len), generator=g).numpy()


# ---------------------------------------------------------------------------------------------
# Measuring.
# ---------------------------------------------------------------------------------------------


def cosine_vs_float(features: np.ndarray, module: torch.nn.Module, x) -> dict:
    """Cosine similarity per sample between simulated features and the float model's."""
    with torch.no_grad():
        ref = module(torch.as_tensor(x)).double().numpy()
    a, b = np.asarray(features, np.float64), ref
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return {"min": float(cos.min()), "mean": float(cos.mean())}


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def marginal(wall: dict[int, float]) -> tuple[float, float]:
    """(seconds per sample, fixed seconds) from walls of two run lengths ``{n: seconds}``."""
    (n1, w1), (n2, w2) = sorted(wall.items())
    per = (w2 - w1) / (n2 - n1)
    return per, w1 - n1 * per


def bench_image(model, digits: bool, args) -> dict:
    from export.lava import compare_to_sim, run_lava, to_lava
    from hardware.lower.from_torch import graph_from_image_encoder
    from hardware.quantize.image import quantize_graph

    calib = images_for(model, args.calibration, seed=10, digits=digits)
    t0 = time.perf_counter()
    net, _ = quantize_graph(graph_from_image_encoder(model.image_encoder), calib)
    out: dict = {"quantize_s": time.perf_counter() - t0, "T": net.T}
    n1, n2 = args.lava_samples
    x = images_for(model, max(n2, args.sim_batch), seed=11, digits=digits).numpy()
    sim_s = median_time(lambda: simulate(net, x[: args.sim_batch]), args.repeats)
    out["sim_batch"] = args.sim_batch
    out["sim_s_per_sample"] = sim_s / args.sim_batch
    t0 = time.perf_counter()
    graph = to_lava(net)
    out["lava_plan_s"] = time.perf_counter() - t0
    out["lava_processes"] = sum(len(n.processes) for n in graph.nodes.values())
    run_lava(graph, x[:1])  # warm-up: imports of every process model
    walls, last = {}, None
    for n in (n1, n2):
        for _ in range(args.lava_repeats):
            last = run_lava(graph, x[:n])
            walls[n] = min(walls.get(n, math.inf), last.wall_s)
    out["lava_wall_s"] = {str(k): v for k, v in walls.items()}
    out["lava_s_per_sample"], out["lava_fixed_s"] = marginal(walls)
    out["lava_s_per_step"] = out["lava_s_per_sample"] / net.T
    cmp = compare_to_sim(last, simulate(net, x[:n2], keep_states=True), net)
    out["spike_mismatches"] = int(sum(cmp.spike_mismatches.values()))
    out["neuron_steps_compared"] = int(sum(np.asarray(s).size for s in last.spikes.values()))
    out["feature_max_abs_diff"] = max(cmp.feature_max_abs_diff.values(), default=0.0)
    out["lava_over_sim"] = out["lava_s_per_sample"] / out["sim_s_per_sample"]
    feats = simulate(net, x[: args.sim_batch]).feature
    out["feature_cosine_vs_float"] = cosine_vs_float(
        feats, model.image_encoder, torch.as_tensor(x[: args.sim_batch]).float()
    )
    return out


def bench_text(model, args, tmp: Path) -> dict:
    net, rec = nx.quantize_text_tower(model.text_encoder)
    out: dict = {"T": net.T, "scales": dict(rec.scales), "pct_zeroed": dict(rec.pct_zeroed)}
    n1, n2 = args.text_samples
    ids = prompt_ids(model, max(n2, args.sim_batch), seed=12)
    sim_s = median_time(lambda: nx.simulate_text(net, ids[: args.sim_batch]), args.repeats)
    out["sim_s_per_prompt"] = sim_s / args.sim_batch
    feats = nx.simulate_text(net, ids[: args.sim_batch]).feature
    out["feature_cosine_vs_float"] = cosine_vs_float(
        feats, model.text_encoder, torch.as_tensor(ids[: args.sim_batch])
    )
    t0 = time.perf_counter()
    path = nx.write_netx(net, tmp / "text.net")
    out["netx_write_s"] = time.perf_counter() - t0
    mant = nx.drive_mantissas(net, ids)
    nx.run_netx(path, mant[:1], net.T)  # warm-up: netx/slayer imports
    walls, last = {}, None
    for n in (n1, n2):
        for _ in range(args.lava_repeats):
            last = nx.run_netx(path, mant[:n], net.T)
            walls[n] = min(walls.get(n, math.inf), last.build_s + last.run_s)
    out["netx_wall_s"] = {str(k): v for k, v in walls.items()}
    out["netx_s_per_prompt"], out["netx_fixed_s"] = marginal(walls)
    sim = nx.simulate_text(net, ids[:n2])
    out["spike_mismatches"] = {
        k: int(np.count_nonzero(v != np.asarray(sim.spikes[k]))) for k, v in last.spikes.items()
    }
    out["spike_rate"] = {k: float(v.mean()) for k, v in last.spikes.items()}
    out["netx_over_sim"] = out["netx_s_per_prompt"] / out["sim_s_per_prompt"]
    # The same network through export.lava (BiasInjection → LIFReset → Dense → … → HostReadout).
    from export.lava import compare_to_sim, run_lava, to_lava

    graph = to_lava(net)
    run_lava(graph, ids[:1])
    walls = {
        n: min(run_lava(graph, ids[:n]).wall_s for _ in range(args.lava_repeats)) for n in (n1, n2)
    }
    out["lava_wall_s"] = {str(k): v for k, v in walls.items()}
    out["lava_s_per_prompt"], out["lava_fixed_s"] = marginal(walls)
    cmp = compare_to_sim(run_lava(graph, ids[:n1]), nx.simulate_text(net, ids[:n1]), None)
    out["lava_spike_mismatches"] = int(sum(cmp.spike_mismatches.values()))
    return out


# ---------------------------------------------------------------------------------------------
# Paper config: graph build time (guarded).
# ---------------------------------------------------------------------------------------------


def paper_build_child(net_path: str, limit_gib: float) -> dict:
    """In a fresh interpreter (``--build-child``): cap the address space ``limit_gib`` above
    what it uses after its imports, then plan and build the paper graph for one sample.
    Returns ``status`` ``ok`` with the times, or what stopped it and after how long."""
    import resource

    from export.lava import to_lava
    from hardware.ir.layers import HostInputLayer
    from hardware.ir.network import LoihiNetwork

    net = LoihiNetwork.load(net_path)
    (host,) = [ly for ly in net.layers if isinstance(ly, HostInputLayer)]
    x = np.zeros((1, *host.in_shape))
    limit = _vm_bytes() + int(limit_gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    t0 = time.perf_counter()
    graph = to_lava(net)
    plan_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    try:
        build = graph.build(x, record_spikes=False)
        return {"status": "ok", "plan_s": plan_s, "build_s": time.perf_counter() - t0,
                "processes": len(build.processes)}
    except MemoryError as err:
        return {"status": f"over the address-space limit ({limit_gib:g} GiB above start): "
                          f"{err}", "plan_s": plan_s, "build_failed_after_s":
                time.perf_counter() - t0}


def run_build_child(net_path: Path, limit_gib: float, timeout: float) -> dict:
    """Run :func:`paper_build_child` in a fresh interpreter (Lava sets the multiprocessing
    start method on import, so a multiprocessing child cannot import it); its JSON, or why
    there is none."""
    import subprocess

    cmd = [sys.executable, str(Path(__file__).resolve()), "--build-child", str(net_path),
           "--paper-limit-gb", str(limit_gib)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": f"no answer within {timeout:g} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode == 0 and lines:
        return json.loads(lines[-1])
    tail = (done.stderr.strip().splitlines() or ["(no stderr)"])[-1]
    return {"status": f"child exited with {done.returncode}: {tail}"}


def _vm_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def delayed_conv_nnz(net) -> dict:
    """Nonzeros of every DelaySparse replica the plan needs (a conv's sparse matrix each)."""
    from export.lava import to_lava
    from hardware.ir.layers import ConvLayer

    graph = to_lava(net)
    out = {}
    for name, node in graph.nodes.items():
        layer = graph.network.layer(name)
        replicas = sum(1 for p in node.processes.values() if p == "DelaySparse")
        if isinstance(layer, ConvLayer) and replicas:
            w = np.asarray(layer.weights)
            nnz = int(np.count_nonzero(w)) * math.prod(layer.out_shape[1:])  # upper bound
            out[name] = {"replicas": replicas, "nnz_per_replica_max": nnz,
                         "int32_gib_all_replicas_max": replicas * nnz * 8 / 2**30}
    return out


def bench_paper(args, tmp: Path) -> dict:
    from hardware.lower.from_torch import graph_from_image_encoder
    from hardware.quantize.image import quantize_graph
    from spikeclip.config import SpikeCLIPConfig
    from spikeclip.model import SpikeCLIP

    torch.manual_seed(0)
    model = firing_bn(SpikeCLIP(SpikeCLIPConfig.paper()), seed=1)
    out: dict = {}
    t0 = time.perf_counter()
    net, _ = quantize_graph(graph_from_image_encoder(model.image_encoder),
                            images_for(model, args.calibration, seed=10, digits=False))
    out["image_quantize_s"] = time.perf_counter() - t0
    out["image_delay_sparse"] = delayed_conv_nnz(net)
    path = tmp / "paper_net.npz"
    net.save(path)
    out["image_build"] = run_build_child(path, args.paper_limit_gb, args.paper_timeout)
    out["image_build"]["address_space_limit_gib"] = args.paper_limit_gb
    if not args.skip_paper_text:
        out["text"] = bench_paper_text(model, tmp)
    return out


def bench_paper_text(model, tmp: Path) -> dict:
    from lava.lib.dl.netx.hdf5 import Network

    t0 = time.perf_counter()
    net, rec = nx.quantize_text_tower(model.text_encoder)
    out: dict = {"quantize_s": time.perf_counter() - t0, "scales": dict(rec.scales)}
    t0 = time.perf_counter()
    path = nx.write_netx(net, tmp / "paper_text.net")
    out["netx_write_s"] = time.perf_counter() - t0
    out["netx_file_mib"] = path.stat().st_size / 2**20
    t0 = time.perf_counter()
    lava_net = Network(net_config=str(path), reset_interval=net.T)
    out["netx_load_s"] = time.perf_counter() - t0
    out["netx_layers"] = len(lava_net.layers)
    return out


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="the default model")
    p.add_argument("--repeats", type=int, default=3, help="simulator repeats (median)")
    p.add_argument("--sim-batch", type=int, default=32, help="simulator batch")
    p.add_argument("--calibration", type=int, default=8, help="calibration images")
    p.add_argument("--lava-samples", type=int, nargs=2, default=(2, 12),
                   help="the two Lava run lengths (samples) whose difference gives its rate")
    p.add_argument("--text-samples", type=int, nargs=2, default=(2, 82),
                   help="the two run lengths (prompts) for the text tower (cheap per step)")
    p.add_argument("--lava-repeats", type=int, default=2,
                   help="Lava runs per length (the fastest counts)")
    p.add_argument("--paper-limit-gb", type=float, default=12.0,
                   help="address-space allowance (GiB) of the paper build's child process")
    p.add_argument("--paper-timeout", type=float, default=900.0)
    p.add_argument("--skip", choices=("tiny", "default", "paper"), action="append", default=[])
    p.add_argument("--skip-paper-text", action="store_true", help="skip the 170 MB netx file")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--build-child", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.build_child:
        print(json.dumps(paper_build_child(str(args.build_child), args.paper_limit_gb)))
        return {}
    result: dict = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "load_average_start": os.getloadavg()},
        "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "lava_samples": list(args.lava_samples),
        "text_samples": list(args.text_samples),
        "note": "Lava s/sample is marginal (two run lengths); bit-accurate = Lava 0.10 CPU "
                "fixed_pt models, not verified on Loihi silicon.",
    }
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        models = []
        if "tiny" not in args.skip:
            models.append(("tiny", tiny_model(), False))
        if "default" not in args.skip:
            if args.model.is_file():
                from spikeclip.checkpoint import load

                models.append(("default", load(args.model).model.eval(), True))
            else:
                msg = f"{args.model} not found: default model skipped (make it with " \
                      "examples/train_digits.sh)"
                print(msg)
                result["default"] = {"skipped": msg}
        for name, model, digits in models:
            entry = {"config": name, "image": bench_image(model, digits, args),
                     "text": bench_text(model, args, tmp)}
            result[name] = entry
            print(name, json.dumps(entry, indent=1))
        if "paper" not in args.skip:
            result["paper"] = bench_paper(args, tmp)
            print("paper", json.dumps(result["paper"], indent=1))
    result["machine"]["load_average_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_out = tempfile.mkstemp(dir=args.out.parent, suffix=".json.tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(result, f, indent=1)
    os.replace(tmp_out, args.out)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
