"""`hardware.simulate.engine`: hand-derived integer states, counters, exact GEMMs vs int64
kernels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hardware.ir.layers import (
    AttentionLayer,
    ConvLayer,
    DenseLayer,
    LIFLayer,
    MaxPoolLayer,
    SpikeInputLayer,
    TokenLinearLayer,
)
from hardware.ir.network import Edge, LoihiNetwork
from hardware.simulate import reference as kernels
from hardware.simulate.engine import SimulationError, _gemm_dtype, _synapse, simulate


def _residual_net() -> LoihiNetwork:
    """in(2) → d1 → lif1 → d2 → lif2, plus the skip in → skip → lif2 (residual fan-in)."""
    layers = (
        SpikeInputLayer(name="in", shape=(2,)),
        DenseLayer(name="d1", weights=[[4, -2]], weight_exp=1),
        LIFLayer(name="lif1", shape=(1,), du=4095, dv=2048, vth=5, bias_mant=3, bias_exp=3),
        DenseLayer(name="d2", weights=[[10]]),
        DenseLayer(name="skip", weights=[[3, 5]], weight_exp=-1),
        LIFLayer(name="lif2", shape=(1,), du=4095, dv=2048, vth=4),
    )
    edges = (
        Edge(src="in", dst="d1"),
        Edge(src="d1", dst="lif1"),
        Edge(src="lif1", dst="d2"),
        Edge(src="d2", dst="lif2"),
        Edge(src="in", dst="skip"),
        Edge(src="skip", dst="lif2"),
    )
    return LoihiNetwork(layers=layers, edges=edges, T=3)


def test_three_layer_residual_states_by_hand():
    # Input spikes x[t] = [1,1], [1,0], [0,1].
    # d1: a1 = (4·x0 − 2·x1) << 1 → t0 (4−2)·2 = 4, t1 4·2 = 8, t2 −2·2 = −4.
    # lif1 (du 4095: u = a << 6; dv 2048: v halves, trunc0; β = 3 << 3 = 24; thr 5 << 6 = 320):
    #   t0 u = 256, v = 0 + 256 + 24 = 280 (≤ 320, no spike)
    #   t1 u = 512, v = 140 + 512 + 24 = 676 > 320 → spike, v ← 0
    #   t2 u = −256, v = 0 − 256 + 24 = −232 (no spike)
    # d2: 10·s1 → 0, 10, 0.   skip (excitatory, exp −1, floor of the sum): (3x0 + 5x1) >> 1
    #   → t0 8 >> 1 = 4, t1 3 >> 1 = 1, t2 5 >> 1 = 2.
    # lif2 (β = 0, thr 4 << 6 = 256), a = d2 + skip = 4, 11, 2:
    #   t0 u = 256, v = 256 == thr → tie, no spike (strict >)
    #   t1 u = 704, v = 128 + 704 = 832 > 256 → spike, v ← 0
    #   t2 u = 128, v = 0 + 128 = 128 (no spike)
    raster = np.array([[[1, 1]], [[1, 0]], [[0, 1]]])
    res = simulate(_residual_net(), raster, keep_states=True)
    assert res.u["lif1"][:, 0, 0].tolist() == [256, 512, -256]
    assert res.v["lif1"][:, 0, 0].tolist() == [280, 0, -232]
    assert res.spikes["lif1"][:, 0, 0].tolist() == [False, True, False]
    assert res.u["lif2"][:, 0, 0].tolist() == [256, 704, 128]
    assert res.v["lif2"][:, 0, 0].tolist() == [256, 0, 128]
    assert res.spikes["lif2"][:, 0, 0].tolist() == [False, True, False]
    assert res.ties == {"lif1": 0, "lif2": 1}
    assert res.spike_counts["lif2"].tolist() == [[0], [1], [0]]
    assert res.max_abs_a == {"lif1": 8, "lif2": 11}


def test_counts_sum_over_batch_and_keep_time_axis():
    # Sample 0 as above; sample 1 all-zero input: lif1 sees only its bias (24 < 320, silent).
    raster = np.array([[[1, 1], [0, 0]], [[1, 0], [0, 0]], [[0, 1], [0, 0]]])
    res = simulate(_residual_net(), raster)
    assert res.batch_size == 2
    assert res.spike_counts["lif1"].shape == (3, 1)
    assert res.spike_counts["lif1"][:, 0].tolist() == [0, 1, 0]
    assert res.totals()["spikes"] == 2


def test_overflow_and_saturation_counters():
    # 516 inputs → one LIF; weights 514×255, 1, 255 (excitatory, step 1); β = 4095 << 7.
    # t0 (all but the last input): a = 514·255 + 1 = 131,071 → u = 8,388,544 (fits);
    #    v = 8,388,544 + 524,160 = 8,912,704 → saturates to 8,388,607 > thr 8,388,544 → spike.
    # t1 (all inputs): a = 131,326 → u = 8,404,864 > 2²³ → one correction: −8,372,352;
    #    v = 0 − 8,372,352 + 524,160 = −7,848,192 (no spike).
    w = np.array([[255] * 514 + [1, 255]])
    net = LoihiNetwork(
        layers=(
            SpikeInputLayer(name="in", shape=(516,)),
            DenseLayer(name="d", weights=w),
            LIFLayer(
                name="n", shape=(1,), du=4095, dv=2048, vth=131071, bias_mant=4095, bias_exp=7
            ),
        ),
        edges=(Edge(src="in", dst="d"), Edge(src="d", dst="n")),
        T=2,
    )
    raster = np.ones((2, 1, 516), np.int8)
    raster[0, 0, -1] = 0
    res = simulate(net, raster, keep_states=True)
    assert res.u["n"][:, 0, 0].tolist() == [8_388_544, -8_372_352]
    assert res.v["n"][:, 0, 0].tolist() == [0, -7_848_192]
    assert res.spikes["n"][:, 0, 0].tolist() == [True, False]
    assert res.overflow_u["n"] == 1 and res.saturations_v["n"] == 1
    assert res.max_abs_u["n"] == 8_404_864 and res.max_abs_v["n"] == 8_912_704


def _grid(rng, shape, mode="mixed"):
    w = rng.integers(-128, 128, size=shape) * 2
    return w if mode == "mixed" else np.abs(w)


def test_synapses_match_int64_kernels():
    rng = np.random.default_rng(0)
    T, B = 3, 2
    conv = ConvLayer(
        name="c",
        weights=_grid(rng, (5, 4, 3, 3)),
        in_shape=(4, 6, 6),
        padding=(1, 1),
        stride=(1, 1),
    )
    s = rng.integers(0, 2, size=(T, B, 4, 6, 6)).astype(np.int8)
    got, wraps = _synapse(conv, s, T, B)
    want = kernels.conv_step(s.reshape(T * B, 4, 6, 6), conv.weights, padding=1)
    assert wraps == 0 and np.array_equal(got.reshape(T * B, 5, 6, 6), want)
    tl = TokenLinearLayer(name="t", weights=_grid(rng, (7, 4)), tokens=9, weight_exp=-1)
    s = rng.integers(0, 2, size=(T, B, 4, 9)).astype(np.int8)
    got, _ = _synapse(tl, s, T, B)
    want = kernels.token_linear_step(s.reshape(T * B, 4, 9), tl.weights, -1)
    assert np.array_equal(got.reshape(T * B, 7, 9), want)


def test_attention_and_maxpool_match_int64_kernels():
    rng = np.random.default_rng(1)
    T, B, C, N = 2, 3, 8, 9
    net = LoihiNetwork(
        layers=(
            SpikeInputLayer(name="in", shape=(3 * C, N)),
            AttentionLayer(name="att", channels=C, tokens=N, heads=2),
            LIFLayer(name="lif", shape=(C, N), du=4095, dv=2048, vth=0),
        ),
        edges=(Edge(src="in", dst="att"), Edge(src="att", dst="lif")),
        T=T,
    )
    raster = rng.integers(0, 2, size=(T, B, 3 * C, N))
    res = simulate(net, raster, keep_states=True)
    p = kernels.attention_step(raster.reshape(T * B, 3 * C, N), channels=C, heads=2)
    # vth = 0 and no bias: u = P << 6 and spikes exactly where P > 0 (P ≥ 0, v carries on).
    assert np.array_equal(res.u["lif"].reshape(T * B, C, N), p << 6)


def test_conv_then_maxpool_matches_int64_kernels():
    # conv → max-pool → LIF with vth at its maximum and no bias: u = a << 6 exposes a.
    rng = np.random.default_rng(2)
    T, B = 2, 3
    w = _grid(rng, (4, 3, 3, 3))
    net = LoihiNetwork(
        layers=(
            SpikeInputLayer(name="in", shape=(3, 7, 7)),
            ConvLayer(name="c", weights=w, in_shape=(3, 7, 7), padding=(1, 1)),
            MaxPoolLayer(name="p", in_shape=(4, 7, 7)),
            LIFLayer(name="lif", shape=(4, 4, 4), du=4095, dv=2048, vth=131071),
        ),
        edges=(Edge(src="in", dst="c"), Edge(src="c", dst="p"), Edge(src="p", dst="lif")),
        T=T,
    )
    raster = rng.integers(0, 2, size=(T, B, 3, 7, 7))
    res = simulate(net, raster, keep_states=True)
    a = kernels.conv_step(raster.reshape(T * B, 3, 7, 7), w, padding=1)
    want = kernels.maxpool_step(a, kernel=3, stride=2, padding=1)
    assert np.array_equal(res.u["lif"].reshape(T * B, 4, 4, 4) >> 6, want)
    assert (want < 0).any()  # negative windows exercise the −∞ padding


def test_gemm_dtype_bound():
    assert _gemm_dtype("x", np.full((2, 100), 254), (1,)) == torch.float32
    # Σ|w| per output = 65,536·256 = 2²⁴: float32 no longer exact → float64.
    assert _gemm_dtype("x", np.full((1, 65536), -256), (1,)) == torch.float64


def test_input_shape_errors_name_the_layer():
    with pytest.raises(SimulationError, match="'in'"):
        simulate(_residual_net(), np.zeros((2, 1, 2)))
