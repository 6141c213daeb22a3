"""Simulator speed (issue #10): the bit-accurate simulator vs Lava, vs the float model, vs BLAS.

Prints, from one run in one process (ratios are measured within the run, repeats interleaved,
so a loaded machine slows both sides alike), and writes as JSON (``--out``):

(a) samples/s of ``hardware.simulate.engine`` (batched) vs Lava 0.10 ``fixed_pt`` (one sample after
    another, streamed one every T steps through ``LIFReset``) on the same small quantized
    network — a spike input → Dense → LIF chain built from stock Lava processes
    (RingBuffer, Dense, LIFReset, RingBuffer sink). Lava's rate is the *marginal* one
    (two run lengths, difference of wall times / difference of samples), so its start-up and
    compile are not charged per sample; its spikes are checked equal to the simulator's.
(b) images/s of the simulator vs the float torch model (``ImageEncoder``, float32, no grad)
    on the ``paper`` config (random weights, BN statistics drawn so every layer fires,
    quantized with a small calibration batch), batch 32, T = 4;
(c) the machine's float32 GEMM rate (``torch.mm`` on a block-sized product, repeated for as
    many FLOPs as the simulator does, right after each simulator call) and the fraction of it
    the simulator reaches (its GEMM/conv/attention FLOPs over its wall time), per repeat;
    ``--profile`` adds a torch.profiler breakdown by op (where the rest goes);
(d) peak memory: resident-set growth while each measured call runs (sampled every 2 ms).

Run: ``.venv/bin/python benchmarks/bench_simulator.py [--threads N] [--repeats R]``.
Targets (issue #10; not tests): ≥ 1000× Lava per sample, ≥ 0.8× the float model, ≥ 50% of
the GEMM rate.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import inspect
import json
import math
import os
import platform
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from hardware.ir.layers import (
    AttentionLayer,
    ConvLayer,
    DenseLayer,
    LIFLayer,
    SpikeInputLayer,
    TokenLinearLayer,
)
from hardware.ir.network import Edge, LoihiNetwork
from hardware.simulate.engine import simulate

DEFAULT_OUT = Path(__file__).parent / "results" / "bench_simulator.json"


# ---------------------------------------------------------------------------------------------
# Measuring.
# ---------------------------------------------------------------------------------------------


class PeakRSS:
    """Context manager: peak resident-set growth (bytes) over the body, sampled every 2 ms."""

    def __init__(self) -> None:
        self._page = os.sysconf("SC_PAGE_SIZE")
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self._page

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            self._stop.wait(0.002)

    def __enter__(self) -> PeakRSS:
        self.base = self.peak = self._rss()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.base) / 2**20


def _release_freed_memory() -> None:
    """Return freed heap pages to the OS (glibc ``malloc_trim``) so RSS growth is per call."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # not glibc: growth may then undercount memory reused from earlier calls
        pass


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """``(wall seconds, peak RSS growth MiB)`` of one call."""
    gc.collect()
    _release_freed_memory()
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
    return dt, mem.growth_mib


def _reference_kw() -> dict:
    """``reference=True`` where ``simulate`` has it (the int64 path checks Lava's spikes)."""
    return {"reference": True} if "reference" in inspect.signature(simulate).parameters else {}


def simulate_variants() -> dict[str, Callable]:
    """The simulator paths to time: the default one, and the int64 reference if selectable."""
    out = {"simulator": lambda net, x: simulate(net, x)}
    if "reference" in inspect.signature(simulate).parameters:
        out["simulator_reference"] = lambda net, x: simulate(net, x, reference=True)
    return out


# ---------------------------------------------------------------------------------------------
# (a) Small network: simulator vs Lava.
# ---------------------------------------------------------------------------------------------


def small_network(sizes=(64, 128, 128, 10), T: int = 4, seed: int = 0) -> LoihiNetwork:
    """Spike input → (Dense → LIF)×3 with random 8-bit mixed-sign weights (even, on Lava's grid)
    and biases/thresholds that make every layer fire (~30–50 % of neuron-steps)."""
    rng = np.random.default_rng(seed)
    layers: list = [SpikeInputLayer(name="in", shape=(sizes[0],))]
    edges: list[Edge] = []
    prev = "in"
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        w = rng.integers(-60, 60, size=(n_out, n_in)) * 2
        layers.append(DenseLayer(name=f"d{i}", weights=w))
        layers.append(LIFLayer(name=f"lif{i}", shape=(n_out,), du=4095, dv=2048, vth=200,
                               bias_mant=100, bias_exp=6))
        edges += [Edge(src=prev, dst=f"d{i}"), Edge(src=f"d{i}", dst=f"lif{i}")]
        prev = f"lif{i}"
    return LoihiNetwork(layers=tuple(layers), edges=tuple(edges), T=T)


def run_small_in_lava(net: LoihiNetwork, raster: np.ndarray) -> tuple[float, dict]:
    """Stream ``raster`` ``[T, n, N0]`` through stock Lava processes (fixed_pt); returns
    (wall seconds for build + run + read, {lif: bool spikes [T, n, N]} in logical time)."""
    from export.lava import compat as lava_compat

    lava_compat.install()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIFReset

    from hardware.ir.timing import Timing

    T, n = net.T, raster.shape[1]
    timing = Timing.of(net)
    steps = n * T + timing.max_depth
    t0 = time.perf_counter()
    # data[:, k·T + t] = raster[t, k]: sample k's step t is sent at Lava step k·T + t + 1.
    flat = np.swapaxes(raster, 0, 1).reshape(n * T, -1)
    src = Source(data=np.moveaxis(flat, 0, -1).astype(np.int32))
    port, sinks = src.s_out, {}
    for e in (e for e in net.edges if net.layer(e.dst).KIND == "dense"):
        dense = net.layer(e.dst)
        lif_name = net.out_edges(dense.name)[0].dst
        lif = net.layer(lif_name)
        proc_d = Dense(weights=np.asarray(dense.weights, np.int32), weight_exp=dense.weight_exp)
        proc_l = LIFReset(shape=lif.shape, du=lif.du, dv=lif.dv, vth=lif.vth,
                          bias_mant=lif.bias_mant, bias_exp=lif.bias_exp, reset_interval=T,
                          reset_offset=timing.reset_offset(lif_name))
        sink = Sink(shape=lif.shape, buffer=steps)
        port.connect(proc_d.s_in)
        proc_d.a_out.connect(proc_l.a_in)
        proc_l.s_out.connect(sink.a_in)
        sinks[lif_name] = sink
        port = proc_l.s_out
    try:
        src.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        data = {k: np.asarray(s.data.get()) for k, s in sinks.items()}
    finally:
        src.stop()
    wall = time.perf_counter() - t0
    spikes = {k: np.moveaxis(d[:, timing.logical_indices(k, n)], 0, -1) > 0
              for k, d in data.items()}
    return wall, spikes


def bench_small(repeats: int, n_lava: tuple[int, int], batch: int) -> dict:
    net = small_network()
    rng = np.random.default_rng(1)
    n_short, n_long = n_lava
    lava_walls: list[list[float]] = []
    mismatches = 0
    for _ in range(repeats):
        walls = []
        for n in (n_short, n_long):
            raster = (rng.random((net.T, n, 64)) < 0.3).astype(np.int8)
            wall, spikes = run_small_in_lava(net, raster)
            ref = simulate(net, raster, keep_states=True, **_reference_kw())
            mismatches += sum(int(np.count_nonzero(spikes[k] != ref.spikes[k])) for k in spikes)
            walls.append(wall)
        lava_walls.append(walls)
    # Marginal rate from the least-disturbed (fastest) wall of each run length: start-up and
    # compile cancel; a load spike in one repeat cannot make the difference negative.
    best_short, best_long = (min(w[i] for w in lava_walls) for i in (0, 1))
    lava_rate = (n_long - n_short) / max(best_long - best_short, 1e-3)
    raster = (rng.random((net.T, batch, 64)) < 0.3).astype(np.int8)
    sims: dict[str, list[float]] = {}
    for name, fn in simulate_variants().items():
        fn(net, raster)  # warm-up
        sims[name] = [batch / timed(lambda f=fn: f(net, raster))[0] for _ in range(repeats)]
    out = {
        "network": "spike input 64 → Dense/LIF 128 → Dense/LIF 128 → Dense/LIF 10, T = 4",
        "lava_samples": list(n_lava),
        "lava_walls_s": lava_walls,
        "lava_samples_per_s": lava_rate,
        "lava_samples_per_s_including_startup": n_long / best_long,
        "lava_spike_mismatches_vs_simulator": mismatches,
        "simulator_batch": batch,
    }
    for name, rates in sims.items():
        out[f"{name}_samples_per_s"] = statistics.median(rates)
        out[f"{name}_vs_lava"] = statistics.median(rates) / lava_rate
    return out


# ---------------------------------------------------------------------------------------------
# (b)–(d) Paper config: simulator vs float model vs GEMM rate.
# ---------------------------------------------------------------------------------------------


def paper_encoder(seed: int = 0):
    """`paper` ImageEncoder (eval) with BN statistics/affines drawn so every LIF fires."""
    from spikeclip.config import SpikeCLIPConfig
    from spikeclip.image_encoder import ImageEncoder

    torch.manual_seed(seed)
    enc = ImageEncoder(SpikeCLIPConfig.paper())
    with torch.no_grad():
        for m in enc.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(1.5, 3.0)
                m.bias.normal_(0.3, 0.5)
    return enc.eval()


def network_flops(net: LoihiNetwork, batch: int) -> float:
    """Multiply-adds ×2 of every synapse/attention op for ``batch`` samples × T steps."""
    per_step = 0
    for ly in net.layers:
        if isinstance(ly, ConvLayer):
            w = np.asarray(ly.weights)
            per_step += 2 * math.prod(ly.out_shape) * math.prod(w.shape[1:])
        elif isinstance(ly, TokenLinearLayer):
            w = np.asarray(ly.weights)
            per_step += 2 * w.shape[0] * w.shape[1] * ly.tokens
        elif isinstance(ly, DenseLayer):
            per_step += 2 * np.asarray(ly.weights).size
        elif isinstance(ly, AttentionLayer):
            d = ly.channels // ly.heads
            per_step += 2 * 2 * ly.channels * d * ly.tokens  # KᵀV and Q·M
    return float(per_step) * net.T * batch


def gemm_rate(m: int, k: int, n: int, repeats: int = 5) -> float:
    """Best float32 ``torch.mm`` rate (FLOP/s) of an ``[m, k] @ [k, n]`` product."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    torch.mm(a, b)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * m * k * n / best


def gemm_rate_matched(m: int, k: int, n: int, flops: float) -> float:
    """float32 ``torch.mm`` rate (FLOP/s) over as many ``[m, k] @ [k, n]`` products as it takes
    to do ``flops``: as long as the simulator call it is compared with, so a loaded machine
    slows both alike (a best-of-few short GEMM would catch quiet moments only)."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    reps = max(1, math.ceil(flops / (2.0 * m * k * n)))
    torch.mm(a, b)
    t0 = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    return 2.0 * m * k * n * reps / (time.perf_counter() - t0)


def bench_paper(repeats: int, batch: int, calib: int) -> dict:
    from hardware.lower.from_torch import graph_from_image_encoder
    from hardware.quantize.image import quantize_graph

    enc = paper_encoder()
    size = enc.config.img_size if hasattr(enc, "config") else 32
    g = torch.Generator().manual_seed(2)
    t0 = time.perf_counter()
    net, _ = quantize_graph(graph_from_image_encoder(enc),
                            torch.randn(calib, 3, size, size, generator=g, dtype=torch.float64))
    quantize_s = time.perf_counter() - t0
    x = torch.randn(batch, 3, size, size, generator=g)
    x64 = x.double()
    flops = network_flops(net, batch)
    variants = simulate_variants()

    def float_model():
        with torch.no_grad():
            enc(x)

    float_model()  # warm-up
    runs: dict[str, list[tuple[float, float]]] = {"float_model": []}
    runs.update({k: [] for k in variants})
    gemm, gemm_peak = [], []
    shape = (net.T * batch * 64, 384, 1536)  # a block's fc1 on all T·B·tokens
    for _ in range(repeats):  # interleaved, so load changes hit every side alike
        runs["float_model"].append(timed(float_model))
        for name, fn in variants.items():
            runs[name].append(timed(lambda f=fn: f(net, x64)))
        gemm.append(gemm_rate_matched(*shape, flops))
        gemm_peak.append(gemm_rate(*shape))
    out: dict = {"batch": batch, "T": net.T, "calibration_images": calib,
                 "quantize_s": quantize_s, "simulator_gflop": flops / 1e9,
                 "gemm_gflops_per_repeat": [g / 1e9 for g in gemm],
                 "gemm_gflops": statistics.median(gemm) / 1e9,
                 "gemm_gflops_best_of_5_short": max(gemm_peak) / 1e9,
                 "gemm_shape": list(shape)}
    for name, rs in runs.items():
        med = statistics.median(r[0] for r in rs)
        out[f"{name}_s"] = [r[0] for r in rs]
        out[f"{name}_images_per_s"] = batch / med
        out[f"{name}_peak_rss_growth_mib"] = max(r[1] for r in rs)
    for name in variants:
        sims = [r[0] for r in runs[name]]
        out[f"{name}_vs_float"] = statistics.median(
            f[0] / s for f, s in zip(runs["float_model"], sims, strict=True))
        out[f"{name}_gflops"] = flops / statistics.median(sims) / 1e9
        # per repeat: the simulator's rate over the GEMM rate measured right after it
        out[f"{name}_fraction_of_gemm"] = statistics.median(
            flops / t / g for t, g in zip(sims, gemm, strict=True))
    return out


def profile_paper(batch: int, calib: int, top: int = 15) -> dict:
    """torch.profiler self-CPU time by op for one simulator call and one float-model call
    (paper config), and the share of the simulator's time in GEMM/conv ops."""
    from torch.profiler import ProfilerActivity, profile

    from hardware.lower.from_torch import graph_from_image_encoder
    from hardware.quantize.image import quantize_graph

    enc = paper_encoder()
    g = torch.Generator().manual_seed(2)
    net, _ = quantize_graph(graph_from_image_encoder(enc),
                            torch.randn(calib, 3, 32, 32, generator=g, dtype=torch.float64))
    x = torch.randn(batch, 3, 32, 32, generator=g)
    out: dict = {}
    gemm_ops = ("aten::mm", "aten::bmm", "aten::addmm", "aten::mkldnn_convolution",
                "aten::_convolution", "aten::convolution", "aten::conv2d", "aten::matmul")
    for name, fn in (("simulator", lambda: simulate(net, x.double())),
                     ("float_model", lambda: enc(x))):
        with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof:
            fn()
        events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total = sum(e.self_cpu_time_total for e in events)
        gemm = sum(e.self_cpu_time_total for e in events if e.key in gemm_ops)
        out[name] = {
            "self_cpu_s": total / 1e6,
            "gemm_conv_share": gemm / total if total else 0.0,
            "top_ops": [[e.key, e.count, round(e.self_cpu_time_total / 1e6, 3)]
                        for e in events[:top]],
        }
        print(f"profile {name}: {total / 1e6:.2f} s self CPU, GEMM/conv {gemm / total:.0%}")
        for key, count, sec in out[name]["top_ops"]:
            print(f"  {key:<36} {count:>5} {sec:8.3f} s")
    return out


# ---------------------------------------------------------------------------------------------


def default_threads() -> int:
    """All cores on an idle machine; 1 on an oversubscribed one (intra-op threads then wait
    for each other's time slices: ~8 ms per elementwise op measured at load 8 on 2 cores)."""
    cores = os.cpu_count() or 1
    return 1 if os.getloadavg()[0] >= cores else cores


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=default_threads(),
                   help="torch intra-op threads for every measured side (default: all cores, "
                   "or 1 when the load average already exceeds the core count)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch", type=int, default=32, help="paper-config batch (b)")
    p.add_argument("--calibration", type=int, default=4, help="calibration images for (b)")
    p.add_argument("--small-batch", type=int, default=4096, help="simulator batch in (a)")
    p.add_argument("--lava-samples", type=int, nargs=2, default=(4, 68),
                   help="the two Lava run lengths (samples) whose difference gives its rate")
    p.add_argument("--skip", choices=("small", "paper"), action="append", default=[])
    p.add_argument("--profile", action="store_true",
                   help="also profile one simulator and one float-model call (torch.profiler)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    result: dict = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                    "load_average_start": os.getloadavg()},
        "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if "small" not in args.skip:
        result["small_vs_lava"] = bench_small(args.repeats, tuple(args.lava_samples),
                                              args.small_batch)
        print("(a)", json.dumps(result["small_vs_lava"], indent=1))
    if "paper" not in args.skip:
        result["paper"] = bench_paper(args.repeats, args.batch, args.calibration)
        print("(b-d)", json.dumps(result["paper"], indent=1))
    if args.profile:
        result["profile"] = profile_paper(args.batch, args.calibration)
    result["machine"]["load_average_end"] = os.getloadavg()
    result["peak_rss_process_mib"] = _maxrss_mib()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=args.out.parent, suffix=".json.tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(result, f, indent=1)
    os.chmod(tmp, 0o644)
    os.replace(tmp, args.out)
    print(f"load average {result['machine']['load_average_start']} → "
          f"{result['machine']['load_average_end']}; wrote {args.out}")
    return result


def _maxrss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
