"""`hardware.fast_kernels`: the float fast path equals the int64 reference simulator bit for bit.

Independent references: the int64 numpy path (``simulate(..., reference=True)``, built on
:mod:`hardware.fixed`) and the `fixed` rules themselves. Every field of ``SimResult`` (spikes,
v, u, counts, counters, features, streams) must be identical, dtype and shape included, on
random networks that exercise every rule: weight exponents of both signs, non-power-of-two
decays (the float64 LIF path), u overflow, v saturation, ties, the 24-bit conv wrap, host
input, attention, max-pool and the readout.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hardware import fast_kernels as fk
from hardware import fixed
from hardware.layers import ConvLayer, DenseLayer, LIFLayer, SpikeInputLayer
from hardware.network import Edge, LoihiNetwork
from hardware.simulate import SimResult, simulate

FIELDS = ("spike_counts", "features", "overflow_u", "saturations_v", "ties", "conv_wraps",
          "host_clipped", "max_abs_a", "max_abs_u", "max_abs_v", "spikes", "v", "u", "stream")


def assert_same(ref: SimResult, fast: SimResult) -> None:
    assert (ref.T, ref.batch_size) == (fast.T, fast.batch_size)
    for name in FIELDS:
        a, b = getattr(ref, name), getattr(fast, name)
        assert list(a) == list(b), name
        for k in a:
            x, y = np.asarray(a[k]), np.asarray(b[k])
            assert (x.dtype, x.shape) == (y.dtype, y.shape), (name, k)
            assert y.flags.c_contiguous, (name, k)  # same memory order as the reference
            assert np.array_equal(x, y), (name, k, int(np.count_nonzero(x != y)))


def both(net: LoihiNetwork, x, keep: bool = True) -> tuple[SimResult, SimResult]:
    """Reference and fast results; the fast one straight from simulate_fast (no fallback)."""
    from hardware.simulate import _inputs_for

    ref = simulate(net, x, keep_states=keep, reference=True)
    fast = fk.simulate_fast(net, _inputs_for(net, x), keep_states=keep)
    assert_same(ref, fast)
    assert_same(ref, simulate(net, x, keep_states=keep))  # the default entry point
    return ref, fast


# ---------------------------------------------------------------------------------------------
# The torch mirrors of the fixed-point rules.
# ---------------------------------------------------------------------------------------------


def _edge_ints(rng: np.random.Generator, n: int) -> np.ndarray:
    h = fixed.STATE_HALF_RANGE
    edges = np.array([0, 1, -1, 2, -2, 4095, -4095, 4097, h - 1, h, h + 1, -h + 1, -h, -h - 1,
                      2 * h, -2 * h, 3 * h, -3 * h, 3 * h + 7, -3 * h - 7])
    return np.concatenate([edges, rng.integers(-3 * h, 3 * h, n)])


@pytest.mark.parametrize("keep", [0, 1, 7, 2048, 3000, 4095, 4096])
def test_decay_trunc0_equals_fixed(keep):
    x = _edge_ints(np.random.default_rng(keep), 5000)
    want = fixed.decay_trunc0(x, keep)
    t = torch.from_numpy(x).to(torch.float64)
    assert np.array_equal(fk.decay_trunc0(t, float(keep)).to(torch.int64).numpy(), want)
    assert np.array_equal(fk.decay_trunc0_(t.clone(), float(keep)).to(torch.int64).numpy(), want)
    if keep in (0, 1, 2048, 4096):  # power of two (or 0): exact in float32 below 2²⁴
        small = x[np.abs(x) < 1 << 24]
        t32 = torch.from_numpy(small).to(torch.float32)
        got = fk.decay_trunc0_(t32, float(keep)).to(torch.int64).numpy()
        assert np.array_equal(got, fixed.decay_trunc0(small, keep))


def test_decay_trunc0_rounds_toward_zero_by_hand():
    # keep 2048 halves: 7 → 3, −7 → −3 (toward zero, not floor −4); keep 3000: 5·3000/4096
    # = 3.66 → 3, −5 → −3.
    t = torch.tensor([7.0, -7.0])
    assert fk.decay_trunc0_(t.clone(), 2048.0).tolist() == [3.0, -3.0]
    assert fk.decay_trunc0(torch.tensor([5.0, -5.0]), 3000.0).tolist() == [3.0, -3.0]


def test_wraps_and_shift_equal_fixed():
    x = _edge_ints(np.random.default_rng(0), 5000)
    t = torch.from_numpy(x).to(torch.float64)
    assert np.array_equal(fk.wrap_u_once_s24(t).to(torch.int64).numpy(), fixed.wrap_u_once_s24(x))
    assert np.array_equal(fk.wrap_s24(t).to(torch.int64).numpy(), fixed.wrap_s24(x))
    for e in range(-7, 8):
        got = fk.shift_weight_exp_floor(t, e).to(torch.int64).numpy()
        assert np.array_equal(got, fixed.shift_weight_exp_floor(x, e)), e
    # by hand: −3 >> 1 = −2 (floor of the sum), 2²³ wraps to −2²³, 2²³ + 1 corrects to 1 − 2²³
    assert fk.shift_weight_exp_floor(torch.tensor([-3.0]), -1).tolist() == [-2.0]
    assert fk.wrap_s24(torch.tensor([2.0**23])).tolist() == [-(2.0**23)]
    assert fk.wrap_u_once_s24(torch.tensor([2.0**23, 2.0**23 + 1])).tolist() == [
        2.0**23, 1 - 2.0**23]


def test_exact_dtype_thresholds():
    assert fk.exact_dtype(2**24 - 1, "x") is torch.float32
    assert fk.exact_dtype(2**24, "x") is torch.float64
    with pytest.raises(fk.FastPathUnavailable, match="'x'"):
        fk.exact_dtype(2.0**53, "x")


# ---------------------------------------------------------------------------------------------
# Whole networks.
# ---------------------------------------------------------------------------------------------


def _random_net(seed: int, *, T: int = 4, hot: bool = False) -> LoihiNetwork:
    """in(24) → d1 → lif1 → d2 → lif2, plus in → skip → lif2 (residual fan-in); random weight
    exponents, decays (incl. non-powers of two), thresholds and per-neuron biases. ``hot``:
    large weights and exponents, low thresholds: forces u overflow and v saturation."""
    rng = np.random.default_rng(seed)

    def w(n_out, n_in):
        return rng.integers(-128, 128, size=(n_out, n_in)) * 2

    du = [int(rng.choice([4095, 0, 1000, 3071]))] + [4095]
    dv = [int(rng.choice([2048, 0, 300, 4095])), int(rng.choice([2048, 1024, 77]))]
    exp_hi = 7 if hot else 2
    layers = (
        SpikeInputLayer(name="in", shape=(24,)),
        DenseLayer(name="d1", weights=w(32, 24), weight_exp=int(rng.integers(-3, exp_hi + 1))),
        LIFLayer(name="lif1", shape=(32,), du=du[0], dv=dv[0],
                 vth=int(rng.integers(1, 50 if hot else 3000)),
                 bias_mant=rng.integers(-4096, 4096, 32), bias_exp=rng.integers(0, 8, 32)),
        DenseLayer(name="d2", weights=w(16, 32), weight_exp=int(rng.integers(-3, exp_hi + 1))),
        DenseLayer(name="skip", weights=w(16, 24), weight_exp=int(rng.integers(-3, 3))),
        LIFLayer(name="lif2", shape=(16,), du=du[1], dv=dv[1], vth=int(rng.integers(1, 3000)),
                 bias_mant=int(rng.integers(-4096, 4096)), bias_exp=int(rng.integers(0, 8))),
    )
    edges = (
        Edge(src="in", dst="d1"), Edge(src="d1", dst="lif1"), Edge(src="lif1", dst="d2"),
        Edge(src="d2", dst="lif2"), Edge(src="in", dst="skip"), Edge(src="skip", dst="lif2"),
    )
    return LoihiNetwork(layers=layers, edges=edges, T=T)


def test_random_dense_networks_equal_reference():
    hot_counters = {"overflow_u": 0, "saturations_v": 0}
    for seed in range(12):
        hot = seed % 2 == 1
        net = _random_net(seed, T=3 + seed % 4, hot=hot)
        rng = np.random.default_rng(100 + seed)
        raster = (rng.random((net.T, 9, 24)) < 0.4).astype(np.int8)
        ref, _ = both(net, raster)
        for k in hot_counters:
            hot_counters[k] += ref.totals()[k]
    # The rules with side effects were exercised (else the comparison proves less).
    assert hot_counters["overflow_u"] > 0 and hot_counters["saturations_v"] > 0


def test_conv_wrap_and_float64_lif_equal_reference():
    # Σ|w| = 1024·6·6·254 = 9,363,456 ≥ 2²³: all-ones input wraps to 9,363,456 − 2²⁴ =
    # −7,413,760 (one wrap per sample-step); the LIF then sees |a|·64 ≫ 2²³ (float64, u
    # correction).
    w = np.full((1, 1024, 6, 6), 254)
    layers = (
        SpikeInputLayer(name="in", shape=(1024, 6, 6)),
        ConvLayer(name="conv", weights=w, in_shape=(1024, 6, 6)),
        LIFLayer(name="lif", shape=(1, 1, 1), du=4095, dv=2048, vth=1000),
    )
    edges = (Edge(src="in", dst="conv"), Edge(src="conv", dst="lif"))
    net = LoihiNetwork(layers=layers, edges=edges, T=2)
    raster = np.ones((2, 3, 1024, 6, 6), np.int8)
    raster[:, 2] = 0  # sample 2 silent: no wrap
    ref, _ = both(net, raster)
    assert ref.conv_wraps == {"conv": 4}
    assert ref.max_abs_a == {"lif": 7_413_760}
    assert ref.overflow_u["lif"] == 4


def test_quantized_tiny_tower_equal_reference():
    from _quant_helpers import active_tiny_encoder, tiny_images

    from hardware.lower_torch import graph_from_image_encoder
    from hardware.quantize import quantize_graph

    net, _ = quantize_graph(graph_from_image_encoder(active_tiny_encoder()), tiny_images(4))
    kinds = {ly.KIND for ly in net.layers}
    assert {"conv", "attention", "maxpool", "token_linear", "readout", "host_input"} <= kinds
    ref, _ = both(net, tiny_images(6, seed=3))
    assert ref.totals()["spikes"] > 0 and ref.totals()["ties"] > 0


def test_reduced_precision_is_refused_and_simulate_falls_back():
    net = _random_net(0)
    raster = (np.random.default_rng(0).random((net.T, 2, 24)) < 0.5).astype(np.int8)
    ref = simulate(net, raster, keep_states=True, reference=True)
    old = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        with pytest.raises(fk.FastPathUnavailable, match="precision"):
            fk.simulate_fast(net, {"in": raster})
        assert_same(ref, simulate(net, raster, keep_states=True))
    finally:
        torch.set_float32_matmul_precision(old)


def test_quantized_tiny_text_tower_equal_reference():
    # Embedding host input (token ids) → LIF → Dense → LIF → Dense → readout.
    from hardware.quantize_text import quantize_text
    from spikeclip.config import SpikeCLIPConfig
    from spikeclip.text_encoder import TextEncoder

    cfg = SpikeCLIPConfig.tiny()
    torch.manual_seed(0)
    enc = TextEncoder(cfg).eval()
    with torch.no_grad():  # fc1 drawn so both LIF layers fire
        enc.fc1.weight.normal_(0.05, 0.35)
        enc.fc1.bias.normal_(0.3, 0.3)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, cfg.vocab_size, (12, cfg.text_len), generator=g)
    net, _ = quantize_text(enc, ids)
    assert "dense" in {ly.KIND for ly in net.layers}
    ref, _ = both(net, ids[:6].numpy())
    assert ref.totals()["spikes"] > 0
