"""Calibration streamed in batches: the same plan, integers and record for any batch size; the
per-sample memory estimate by hand; a stage that cannot fit one batch stops with exit 9; peak
memory flat in the number of calibration samples (slow, subprocess).

References: the unbatched float run (`run_graph` on all samples at once) and the unbatched
simulation (`simulate` on all samples) for the statistics; hand arithmetic for the estimate.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from _paths import REPO
from _quant_helpers import active_tiny_encoder, tiny_images

from hardware.lower.float_graph import FLIF, FHostInput, FloatGraph, FSynapse
from hardware.lower.from_torch import graph_from_image_encoder
from hardware.lower.graph_run import run_graph
from hardware.quantize.calibrate import float_stats, plan_batches, sample_bytes, sim_stats
from hardware.quantize.image import plan_quantization, quantize_graph
from hardware.quantize.text import quantize_text
from hardware.simulate.engine import simulate
from spikeclip.config import SpikeCLIPConfig
from spikeclip.errors import EXIT_MEMORY, InsufficientMemoryError
from spikeclip.memory import AvailableMemory
from spikeclip.text_encoder import TextEncoder

N = 15  # calibration samples: batch sizes 1, 7 (7 + 7 + 1) and 15 (all at once)


@pytest.fixture(scope="module")
def tiny():
    graph = graph_from_image_encoder(active_tiny_encoder())
    return graph, tiny_images(N, seed=3)


def test_streamed_statistics_equal_the_unbatched_run(tiny):
    graph, calib = tiny
    with torch.no_grad():
        whole = run_graph(graph, calib, compare=">=")
    for size in (1, 7):
        stats = float_stats(graph, calib, size)
        assert dict(stats.max_abs_current) == whole.max_abs_current
        assert dict(stats.max_abs_h) == whole.max_abs_h
    net, _ = quantize_graph(graph, calib)
    sim = simulate(net, calib)
    streamed = sim_stats(net, calib, 7)
    for field in ("max_abs_a", "max_abs_u", "max_abs_v", "overflow_u", "saturations_v", "ties"):
        assert dict(getattr(streamed, field)) == dict(getattr(sim, field)), field
    assert sum(sim.ties.values()) + sum(sim.max_abs_v.values()) > 0  # not vacuous


def test_batch_size_does_not_change_plan_integers_or_record(tiny):
    graph, calib = tiny
    plans = [plan_quantization(graph, calib, batch_size=b)[0] for b in (1, 7, N)]
    assert all(p == plans[0] for p in plans)
    results = [quantize_graph(graph, calib, batch_size=b) for b in (1, 7, N)]
    net0, rec0 = results[0]
    for net, rec in results[1:]:
        assert net == net0
        assert rec.to_dict() == rec0.to_dict()
    assert rec0.calibration_samples == N


def test_text_batch_size_does_not_change_the_result():
    torch.manual_seed(0)
    enc = TextEncoder(SpikeCLIPConfig.tiny()).eval()
    with torch.no_grad():
        enc.fc1.weight.normal_(0.05, 0.35)
        enc.fc1.bias.normal_(0.3, 0.3)
    ids = torch.randint(0, 50, (N, 6), generator=torch.Generator().manual_seed(1))
    results = [quantize_text(enc, ids, batch_size=b) for b in (1, 7, N)]
    for net, rec in results[1:]:
        assert net == results[0][0] and rec.to_dict() == results[0][1].to_dict()


def _hand_graph() -> FloatGraph:
    """image (1, 4, 4) → host (2, 4, 4) → lif0 → conv 3×3 (2 → 3) → lif1 (3, 4, 4), T = 4."""
    f64 = torch.float64
    nodes = (
        FHostInput(name="host", weight=torch.ones(2, 1, 1, 1, dtype=f64),
                   bias=torch.zeros(2, dtype=f64), in_shape=(1, 4, 4), out_shape=(2, 4, 4)),
        FLIF(name="lif0", shape=(2, 4, 4), theta=1.0, tau=2.0,
             bias=torch.zeros(2, 4, 4, dtype=f64)),
        FSynapse(name="conv", kind="conv", weight=torch.ones(3, 2, 3, 3, dtype=f64),
                 in_shape=(2, 4, 4), out_shape=(3, 4, 4), padding=(1, 1)),
        FLIF(name="lif1", shape=(3, 4, 4), theta=1.0, tau=2.0,
             bias=torch.zeros(3, 4, 4, dtype=f64)),
    )
    edges = (("host", "lif0"), ("lif0", "conv"), ("conv", "lif1"))
    return FloatGraph(nodes=nodes, edges=edges, T=4, tau=2.0, input_shape=(1, 4, 4))


def test_sample_bytes_and_batches_by_hand():
    # Outputs: host 32 (once) + lif0 4·32 + conv 4·48 + lif1 4·48 = 544 values; the conv's
    # unfold 4·(2·3·3)·16 = 1152 > 4 · largest LIF (4·48 = 192) = 768; ×1.5 safety × 8 bytes:
    # 1.5 · 8 · (544 + 1152) = 20,352 bytes per sample.
    graph = _hand_graph()
    assert sample_bytes(graph) == 20_352
    plenty = AvailableMemory(system=1 << 40)
    b = plan_batches(graph, 10, budget=100_000, available=plenty)  # ⌊100000 / 20352⌋ = 4
    assert (b.batch_size, b.batches, b.batch_bytes) == (4, 3, 81_408)
    assert plan_batches(graph, 10, batch_size=7, available=plenty).batches == 2
    assert plan_batches(graph, 3, budget=100_000, available=plenty).batch_size == 3  # ≤ samples
    # Default budget: min(1 GiB, half of what is available) → ⌊10⁶ / 20352⌋ = 49.
    assert plan_batches(graph, 100, available=AvailableMemory(system=2_000_000)).batch_size == 49


def test_one_sample_that_does_not_fit_is_exit_9():
    with pytest.raises(InsufficientMemoryError, match=r"needs about 19.9 KiB") as err:
        plan_batches(_hand_graph(), 10, available=AvailableMemory(system=20_351))
    assert err.value.exit_code == EXIT_MEMORY == 9


_CHILD = textwrap.dedent("""
    import json, sys
    import torch
    sys.path.insert(0, "tests")
    from _quant_helpers import active_tiny_encoder
    import hardware.quantize.calibrate as calibrate
    from hardware.lower.from_torch import graph_from_image_encoder
    from hardware.quantize.image import quantize_graph

    calibrate.DEFAULT_BUDGET = 16 << 20  # a budget of 16 MiB: 9 samples of 1.7 MiB per batch
    n = int(sys.argv[1])
    graph = graph_from_image_encoder(active_tiny_encoder())
    images = torch.randn(n, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    batch = calibrate.plan_batches(graph, n).batch_size
    quantize_graph(graph, images)
    # VmHWM: this process's own high-water mark (ru_maxrss keeps the forking parent's across
    # exec, so under a big pytest process it reads the parent's peak)
    status = open("/proc/self/status").read().split("VmHWM:")[1]
    peak = int(status.split()[0]) * 1024
    print(json.dumps({"peak": peak, "batch": batch, "per_sample": calibrate.sample_bytes(graph)}))
""")


def _peak(n: int) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(n)], cwd=REPO, check=True,
                         capture_output=True, text=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # about 30 s: 320 calibration images through the float run and the simulator
def test_peak_memory_does_not_grow_with_the_calibration_count():
    small, large = _peak(64), _peak(256)
    assert small["batch"] == large["batch"] < 64  # both stream
    # Unbatched, 192 more images would add ≈ 192 × 1.2 MiB ≈ 230 MiB (the old code: +27 %).
    assert large["per_sample"] * 192 > 0.2 * small["peak"]
    assert abs(large["peak"] - small["peak"]) <= 0.10 * small["peak"], (small, large)
