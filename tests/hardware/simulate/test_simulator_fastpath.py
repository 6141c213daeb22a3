"""`hardware.simulate.engine` on both paths — the default fast path (``hardware.simulate.fast``,
asserted not to have fallen back) and ``reference=True`` (int64 numpy) — against independent
references, never against each other: the test's own int64 reading of DESIGN §4
(``_design_int64.py``) on random networks that exercise every rule (weight exponents of both
signs, non-power-of-two decays, u overflow, v saturation, ties, the 24-bit conv wrap, host
input, the readout), and hand-derived integers. (Attention, max-pool and the token-shared
layers: both paths against the project's processes in Lava in ``test_lava_differential.py``, and
against the fake-quant twin in ``test_twin.py``.)
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from _design_int64 import int32, run_network, scale_sum, trunc0_scale, u_correct, wrap24
from _sim_paths import PATHS, simulate_path, simulate_paths

from hardware.ir.layers import (
    ConvLayer,
    CurrentInputLayer,
    DenseLayer,
    LIFLayer,
    SpikeInputLayer,
)
from hardware.ir.network import Edge, LoihiNetwork
from hardware.simulate import fast as fk
from hardware.simulate.engine import SimResult, simulate

H = 1 << 23

# ---------------------------------------------------------------------------------------------
# The torch mirrors of the fixed-point rules, against the test's int64 reading.
# ---------------------------------------------------------------------------------------------


def _edge_ints(rng: np.random.Generator, n: int) -> np.ndarray:
    edges = np.array([0, 1, -1, 2, -2, 4095, -4095, 4097, H - 1, H, H + 1, -H + 1, -H, -H - 1,
                      2 * H, -2 * H, 3 * H, -3 * H, 3 * H + 7, -3 * H - 7])
    return np.concatenate([edges, rng.integers(-3 * H, 3 * H, n)])


def _odd(keep: int) -> int:
    while keep and keep % 2 == 0:
        keep //= 2
    return keep


@pytest.mark.parametrize("keep", [0, 1, 3, 7, 2048, 3000, 3072, 4095, 4096])
def test_decay_trunc0_equals_the_reading(keep):
    x = _edge_ints(np.random.default_rng(keep), 5000)
    want = trunc0_scale(x, keep)
    t = torch.from_numpy(x).to(torch.float64)
    assert np.array_equal(fk.decay_trunc0_(t, keep).to(torch.int64).numpy(), want)
    # float32: exact while |x|·k < 2²⁴, k the odd part of keep (edge values kept)
    k = max(_odd(keep), 1)
    limit = (1 << 24) // k
    small = np.concatenate([x[np.abs(x) * k < 1 << 24], [limit - 1, 1 - limit]])
    got = fk.decay_trunc0_(torch.from_numpy(small).to(torch.float32), keep)
    assert np.array_equal(got.to(torch.int64).numpy(), trunc0_scale(small, keep))


def test_decay_trunc0_rounds_toward_zero_by_hand():
    # keep 2048 halves: 7 → 3, −7 → −3 (toward zero, not floor −4); keep 3000: 5·3000/4096
    # = 3.66 → 3, −5 → −3.
    assert fk.decay_trunc0_(torch.tensor([7.0, -7.0]), 2048).tolist() == [3.0, -3.0]
    assert fk.decay_trunc0_(torch.tensor([5.0, -5.0]), 3000).tolist() == [3.0, -3.0]


def test_wraps_and_shift_equal_the_reading():
    x = _edge_ints(np.random.default_rng(0), 5000)
    t = torch.from_numpy(x).to(torch.float64)
    assert np.array_equal(fk.wrap_u_once_s24(t).to(torch.int64).numpy(), u_correct(x))
    assert np.array_equal(fk.wrap_s24(t).to(torch.int64).numpy(), wrap24(x))
    small = x[np.abs(x) < 1 << 24]  # float32's contract
    assert np.array_equal(fk.wrap_s24(torch.from_numpy(small).to(torch.float32)).to(
        torch.int64).numpy(), wrap24(small))
    big = np.concatenate([x * 300, [2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**33 + 5]])
    assert np.array_equal(fk.wrap_s32(torch.from_numpy(big).to(torch.float64)).to(
        torch.int64).numpy(), int32(big))
    for e in range(-8, 8):
        got = fk.shift_weight_exp_floor_(t.clone(), e).to(torch.int64).numpy()
        assert np.array_equal(got, scale_sum(x, e)), e
    # by hand: −3 >> 1 = −2 (floor of the sum), 2²³ wraps to −2²³, 2²³ + 1 corrects to 1 − 2²³
    assert fk.shift_weight_exp_floor_(torch.tensor([-3.0]), -1).tolist() == [-2.0]
    assert fk.wrap_s24(torch.tensor([2.0**23])).tolist() == [-(2.0**23)]
    assert fk.wrap_u_once_s24(torch.tensor([2.0**23, 2.0**23 + 1])).tolist() == [
        2.0**23, 1 - 2.0**23]


def test_exact_dtype_thresholds():
    assert fk.exact_dtype(2**24 - 1, "x") is torch.float32
    assert fk.exact_dtype(2**24, "x") is torch.float64
    with pytest.raises(fk.FastPathUnavailable, match="'x'"):
        fk.exact_dtype(2.0**53, "x")


# ---------------------------------------------------------------------------------------------
# Whole networks against the reading.
# ---------------------------------------------------------------------------------------------


def _random_net(seed: int, *, T: int = 4, hot: bool = False,
                foreign: bool = False) -> LoihiNetwork:
    """in(24) → d1 → lif1 → d2 → lif2, plus in → skip → lif2 (residual fan-in); random weight
    exponents, decays (incl. non-powers of two), thresholds and per-neuron biases. ``hot``:
    large weights and exponents, low thresholds: forces u overflow and v saturation.
    ``foreign``: lif1 also resets by subtraction and feeds its spikes back through a random
    recurrent matrix (``rec_weights``), lif2 resets by subtraction."""
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
    if foreign:
        vth1 = layers[2].vth
        lif1 = dataclasses.replace(
            layers[2], reset_sub=int(rng.integers(0, 2 * (vth1 << 6) + 1)),
            rec_weights=w(32, 32), rec_weight_exp=int(rng.integers(-3, exp_hi + 1)))
        lif2 = dataclasses.replace(layers[5], reset_sub=int(layers[5].vth << 6))
        layers = (*layers[:2], lif1, *layers[3:5], lif2)
    return LoihiNetwork(layers=layers, edges=edges, T=T)


def _assert_equals_reading(sim: SimResult, net: LoihiNetwork, inputs: dict) -> None:
    """Every LIF's u, v, spikes, spike counts and counters, host clips and features."""
    want = run_network(net, inputs)
    assert sorted(sim.u) == sorted(want.states)
    for name, st in want.states.items():
        assert np.array_equal(sim.u[name], st["u"]), name
        assert np.array_equal(sim.v[name], st["v"]), name
        assert np.array_equal(sim.spikes[name], st["s"].astype(bool)), name
        assert np.array_equal(sim.spike_counts[name], st["s"].sum(axis=1)), name
        reg = want.regimes[name]
        assert (sim.overflow_u[name], sim.saturations_v[name], sim.ties[name]) == (
            reg.u_corrected, reg.v_saturated, reg.ties), name
    assert dict(sim.host_clipped) == want.host_clipped
    for name, feat in want.features.items():
        np.testing.assert_allclose(sim.features[name], feat, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("path", PATHS)
def test_random_dense_networks_equal_the_reading(path):
    hot_counters = {"overflow_u": 0, "saturations_v": 0}
    for seed in range(12):
        hot = seed % 2 == 1
        net = _random_net(seed, T=3 + seed % 4, hot=hot)
        rng = np.random.default_rng(100 + seed)
        raster = (rng.random((net.T, 9, 24)) < 0.4).astype(np.int8)
        sim = simulate_path(net, {"in": raster}, path)
        _assert_equals_reading(sim, net, {"in": raster})
        for k in hot_counters:
            hot_counters[k] += sim.totals()[k]
    # The rules with side effects were exercised (else the comparison proves less).
    assert all(v > 0 for v in hot_counters.values()), hot_counters


@pytest.mark.parametrize("path", PATHS)
def test_random_recurrent_subtracting_networks_equal_the_reading(path):
    for seed in range(8):
        net = _random_net(seed, T=4 + seed % 4, hot=seed % 2 == 1, foreign=True)
        rng = np.random.default_rng(200 + seed)
        raster = (rng.random((net.T, 9, 24)) < 0.4).astype(np.int8)
        sim = simulate_path(net, {"in": raster}, path)
        _assert_equals_reading(sim, net, {"in": raster})
        assert sim.spike_counts["lif1"].sum() > 0


@pytest.mark.parametrize("path", PATHS)
def test_conv_wrap_and_float64_lif_by_hand(path):
    # Σ|w| = 1024·6·6·254 = 9,363,456 ≥ 2²³: all-ones input wraps to 9,363,456 − 2²⁴ =
    # −7,413,760 (one wrap per sample-step). du = 4095: u_raw = −7,413,760·64 = −474,480,640
    # ≤ −2²³ → one correction +2²⁴: u = −457,703,424 (still out of range: not modular).
    # dv = 2048: v0 = max(u, −(2²³ − 1)) = −8,388,607 (saturated); v1 = trunc0(v0/2) + u =
    # −4,194,303 − 457,703,424 → saturated again. Sample 2 is silent: u = v = 0.
    w = np.full((1, 1024, 6, 6), 254)
    layers = (
        SpikeInputLayer(name="in", shape=(1024, 6, 6)),
        ConvLayer(name="conv", weights=w, in_shape=(1024, 6, 6)),
        LIFLayer(name="lif", shape=(1, 1, 1), du=4095, dv=2048, vth=1000),
    )
    edges = (Edge(src="in", dst="conv"), Edge(src="conv", dst="lif"))
    net = LoihiNetwork(layers=layers, edges=edges, T=2)
    raster = np.ones((2, 3, 1024, 6, 6), np.int8)
    raster[:, 2] = 0
    sim = simulate_path(net, raster, path)
    u, v = -457_703_424, -(H - 1)
    assert sim.u["lif"][:, :, 0, 0, 0].tolist() == [[u, u, 0], [u, u, 0]]
    assert sim.v["lif"][:, :, 0, 0, 0].tolist() == [[v, v, 0], [v, v, 0]]
    assert not sim.spikes["lif"].any()
    assert sim.conv_wraps == {"conv": 4} and sim.overflow_u == {"lif": 4}
    assert sim.saturations_v == {"lif": 4} and sim.max_abs_a == {"lif": 7_413_760}


@pytest.mark.parametrize("path", PATHS)
def test_tiny_text_tower_equals_the_reading(path):
    # Embedding host input (token ids) → LIF → Dense → LIF → Dense → readout (no token mean):
    # the host encoding, its 13-bit clips and the readout decode against the reading's own.
    from hardware.quantize.text import quantize_text
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
    (host,) = [ly.name for ly in net.layers if ly.KIND == "host_input"]
    x = {host: ids[:6].numpy()}
    sim = simulate_path(net, x, path)
    assert "dense" in {ly.KIND for ly in net.layers} and sim.totals()["spikes"] > 0
    _assert_equals_reading(sim, net, x)


@pytest.mark.parametrize("a, dtype", [(21_000, torch.float32), (23_000, torch.float64)])
def test_float32_for_a_non_power_of_two_decay_when_the_bound_allows(a, dtype):
    """dv = 1024 (keep 3072 = 3·2¹⁰): trunc0(v·3072/4096) = trunc(3v / 2²) is exact in float32
    while |v|·3 < 2²⁴. A constant input a (vth at its maximum: no spikes) drives v toward
    4·64·a: over T = 12 steps the bound 64a·Σ0.75ᵗ is 5.2 M for a = 21,000 (·3 < 2²⁴: float32)
    and 5.7 M for a = 23,000 (float64). Both equal the reading; for a = 21,000, 3|v| reaches
    15.6 M, just inside float32's exact integers."""
    net = LoihiNetwork(
        layers=(CurrentInputLayer(name="in", shape=(3,)),
                LIFLayer(name="n", shape=(3,), du=4095, dv=1024, vth=131071)),
        edges=(Edge(src="in", dst="n"),), T=12)
    x = np.full((12, 2, 3), a, np.int64)
    x[:, 1] = -a  # the negative mirror: trunc0 rounds toward zero
    x[::2, :, 1] -= 7 * np.sign(x[::2, :, 1])  # uneven values: the decay rounds
    assert fk._LIFPlan.of(net.layer("n"), a, 0.0, net.T).dt is dtype
    sim = simulate_path(net, x, "default")
    _assert_equals_reading(sim, net, {"in": x})
    assert 3 * np.abs(sim.v["n"]).max() > (15_000_000 if a == 21_000 else 16_000_000)


def test_reduced_precision_is_refused_and_simulate_falls_back():
    net = _random_net(0)
    raster = (np.random.default_rng(0).random((net.T, 2, 24)) < 0.5).astype(np.int8)
    old = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        with pytest.raises(fk.FastPathUnavailable, match="precision"):
            fk.simulate_fast(net, {"in": raster})
        _assert_equals_reading(simulate(net, raster, keep_states=True), net, {"in": raster})
    finally:
        torch.set_float32_matmul_precision(old)


FIELDS = ("spike_counts", "features", "overflow_u", "saturations_v", "ties", "conv_wraps",
          "host_clipped", "max_abs_a", "max_abs_u", "max_abs_v", "spikes", "v", "u", "stream")


def test_both_paths_return_the_same_layout():
    """Keys, dtypes, shapes and memory order of every field (the values are checked above)."""
    net = _random_net(3, hot=True)
    raster = (np.random.default_rng(3).random((net.T, 5, 24)) < 0.4).astype(np.int8)
    runs = simulate_paths(net, raster)
    a, b = runs["default"], runs["reference"]
    assert (a.T, a.batch_size) == (b.T, b.batch_size) == (net.T, 5)
    for name in FIELDS:
        fa, fb = getattr(a, name), getattr(b, name)
        assert list(fa) == list(fb), name
        for k in fa:
            x, y = np.asarray(fa[k]), np.asarray(fb[k])
            assert (x.dtype, x.shape) == (y.dtype, y.shape), (name, k)
            assert x.flags.c_contiguous and y.flags.c_contiguous, (name, k)
