"""`hardware.simulate.engine` on both paths: hand-derived integer states and counters, the
synapse and extension ops against float64 torch, Lava's int32 arithmetic, the rule tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _design_int64 import run_network
from _sim_paths import PATHS, simulate_path
from _small_nets import residual_net

from hardware.ir.layers import (
    LAYER_TYPES,
    AttentionLayer,
    ConvLayer,
    CurrentInputLayer,
    DenseLayer,
    Layer,
    LIFLayer,
    MaxPoolLayer,
    ReadoutLayer,
    SpikeInputLayer,
    TokenLinearLayer,
)
from hardware.ir.network import Edge, LoihiNetwork
from hardware.simulate import fast, reference
from hardware.simulate.engine import SimulationError, simulate
from hardware.simulate.result import MissingRuleError, exact_float_dtype


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
    res = simulate(residual_net(), raster, keep_states=True)
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
    res = simulate(residual_net(), raster)
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


def _exposing_lif(name: str, shape: tuple[int, ...]) -> LIFLayer:
    """A LIF whose u is ``a << 6`` (du = 4095, no correction below 2¹⁷ wu): it exposes ``a``."""
    return LIFLayer(name=name, shape=shape, du=4095, dv=2048, vth=131071)


def _chain(T: int, *layers: Layer) -> LoihiNetwork:
    edges = tuple(Edge(src=a.name, dst=b.name) for a, b in zip(layers, layers[1:]))
    return LoihiNetwork(layers=layers, edges=edges, T=T)


@pytest.mark.parametrize("path", PATHS)
def test_conv_and_token_linear_against_float64_torch(path):
    rng = np.random.default_rng(0)
    T, B = 3, 2
    w = _grid(rng, (5, 4, 3, 3))
    conv = ConvLayer(name="c", weights=w, in_shape=(4, 6, 6), padding=(1, 1))
    net = _chain(T, SpikeInputLayer(name="in", shape=(4, 6, 6)), conv,
                 _exposing_lif("lif", (5, 6, 6)))
    s = rng.integers(0, 2, size=(T, B, 4, 6, 6)).astype(np.int8)
    want = F.conv2d(torch.from_numpy(s.reshape(T * B, 4, 6, 6)).double(),
                    torch.from_numpy(w).double(), padding=1).numpy()
    res = simulate_path(net, s, path)
    assert res.conv_wraps == {"c": 0} and (want < 0).any()
    assert np.array_equal(res.u["lif"].reshape(T * B, 5, 6, 6), want * 64)
    wt = _grid(rng, (7, 4))
    net = _chain(T, SpikeInputLayer(name="in", shape=(4, 9)),
                 TokenLinearLayer(name="t", weights=wt, tokens=9, weight_exp=-1),
                 _exposing_lif("lif", (7, 9)))
    s = rng.integers(0, 2, size=(T, B, 4, 9)).astype(np.int8)
    want = np.floor(np.einsum("oc,xcn->xon", wt, s.reshape(T * B, 4, 9)) / 2)  # floor of the sum
    res = simulate_path(net, s, path)
    assert np.array_equal(res.u["lif"].reshape(T * B, 7, 9), want * 64)


@pytest.mark.parametrize("path", PATHS)
def test_attention_against_float64_torch(path):
    rng = np.random.default_rng(1)
    T, B, C, N = 2, 3, 8, 9
    net = _chain(T, SpikeInputLayer(name="in", shape=(3 * C, N)),
                 AttentionLayer(name="att", channels=C, tokens=N, heads=2),
                 LIFLayer(name="lif", shape=(C, N), du=4095, dv=2048, vth=0))
    raster = rng.integers(0, 2, size=(T, B, 3 * C, N))
    x = torch.from_numpy(raster.reshape(T * B, 3 * C, N)).double()
    q, k, v = (x[:, i * C : (i + 1) * C].reshape(T * B, 2, C // 2, N) for i in range(3))
    p = torch.einsum("xhin,xhij->xhjn", q, torch.einsum("xhin,xhjn->xhij", k, v))  # Q·(KᵀV)
    res = simulate_path(net, raster, path)
    # vth = 0 and no bias: u = P << 6 (P ≥ 0, v carries on).
    assert np.array_equal(res.u["lif"].reshape(T * B, C, N), p.reshape(T * B, C, N) * 64)


@pytest.mark.parametrize("path", PATHS)
def test_conv_then_maxpool_against_float64_torch(path):
    rng = np.random.default_rng(2)
    T, B = 2, 3
    w = _grid(rng, (4, 3, 3, 3))
    net = _chain(T, SpikeInputLayer(name="in", shape=(3, 7, 7)),
                 ConvLayer(name="c", weights=w, in_shape=(3, 7, 7), padding=(1, 1)),
                 MaxPoolLayer(name="p", in_shape=(4, 7, 7)), _exposing_lif("lif", (4, 4, 4)))
    raster = rng.integers(0, 2, size=(T, B, 3, 7, 7))
    a = F.conv2d(torch.from_numpy(raster.reshape(T * B, 3, 7, 7)).double(),
                 torch.from_numpy(w).double(), padding=1)
    want = F.max_pool2d(a, 3, 2, 1).numpy()
    res = simulate_path(net, raster, path)
    assert np.array_equal(res.u["lif"].reshape(T * B, 4, 4, 4), want * 64)
    assert (want < 0).any()  # negative windows exercise the −∞ padding


@pytest.mark.parametrize("path", PATHS)
def test_maxpool_past_float32_is_exact(path):
    """Dense rows of n·255 + e (weights 255 on n inputs, e on one more), all inputs spiking:
    currents 16,777,471 (n = 65,794, e = 1), 16,777,215 (n = 65,793), 16,777,981
    (n = 65,796, e = 1) and 17 — odd ones beyond 2²⁴ that float32 cannot hold. The readout's
    stream (scale 1, bias 0) shows each step's window maximum: 16,777,981 exactly."""
    n_in = 65_800
    w = np.zeros((4, n_in), np.int64)
    for o, (n, extra) in enumerate(((65_794, 1), (65_793, 0), (65_796, 1), (0, 17))):
        w[o, :n], w[o, n_in - 1 - o] = 255, extra
    net = _chain(2, SpikeInputLayer(name="in", shape=(n_in,)),
                 DenseLayer(name="d", weights=w, out_shape=(1, 2, 2)),
                 MaxPoolLayer(name="p", in_shape=(1, 2, 2), kernel=(2, 2), stride=(2, 2),
                              padding=(0, 0)),
                 ReadoutLayer(name="r", in_shape=(1,), time_weights=[1.0, 1.0],
                              head_weight=[[1.0]], head_bias=[0.0], input_scale=1.0,
                              input_bias=[0.0], token_axis=None))
    res = simulate_path(net, np.ones((2, 1, n_in), np.int8), path)
    assert res.stream["r"].ravel().tolist() == [16_777_981.0] * 2


def test_exact_float_dtype_bounds():
    assert exact_float_dtype(2**24 - 1) is torch.float32
    assert exact_float_dtype(2**24) is torch.float64  # 2²⁴ + 1 is the first float32 gap
    assert exact_float_dtype(2**53 - 1) is torch.float64 and exact_float_dtype(2**53) is None


# ---------------------------------------------------------------------------------------------
# Lava's int32 arithmetic (PyLifModelBitAcc holds a << 6, u and v in int32).
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
def test_u_past_int32_wraps_as_lava(path):
    """u with memory (du = 0: keep 4095/4096) fed the largest graded input a = 2²³ − 1 each
    step: u grows by about 64·a − 2²⁴ ≈ 2²⁹ per step after the single correction.
    Step 0: u_raw = 64·a = 536,870,848 → corrected 520,093,632. Step 3: u_raw =
    trunc0(1,559,899,999·4095/4096) + 536,870,848 = 2,096,390,012 (still inside int32) →
    2,079,612,796. Step 4: 2,615,975,926 in int64, but Lava's int32 sum wraps it to
    2,615,975,926 − 2³² = −1,678,991,370, then corrected to −1,662,214,154; v, which adds
    that u, saturates at −(2²³ − 1)."""
    net = _chain(6, CurrentInputLayer(name="in", shape=(1,)),
                 LIFLayer(name="n", shape=(1,), du=0, dv=0, vth=1000))
    a = np.full((6, 1, 1), (1 << 23) - 1, np.int64)
    res = simulate_path(net, a, path)
    want = run_network(net, {"in": a})  # the test's own int64 reading of Lava's int32 sums
    assert res.u["n"][:, 0, 0].tolist() == want.states["n"]["u"][:, 0, 0].tolist()
    assert res.u["n"][0, 0, 0] == 520_093_632 and res.u["n"][4, 0, 0] == -1_662_214_154
    assert res.v["n"][4, 0, 0] == -((1 << 23) - 1)
    assert res.int32_wraps == {"n": want.regimes["n"].int32_wrapped} and res.int32_wraps["n"] > 0
    assert res.totals()["int32_wraps"] == res.int32_wraps["n"]
    assert res.max_abs_u["n"] > 1 << 31  # the exact sum, before Lava's wrap


# ---------------------------------------------------------------------------------------------
# The rule tables.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, eq=False)
class _XyzLayer(Layer):
    """A layer kind no simulator path knows."""

    shape: tuple[int, ...] = (2,)
    KIND: ClassVar[str] = "xyz"
    OUTPUT: ClassVar[str] = "spikes"

    @property
    def in_shape(self) -> tuple[int, ...]:
        return ()

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.shape

    @property
    def latency(self) -> int:
        return 0


def test_every_layer_kind_has_one_rule_per_path():
    assert set(reference.STEP) == set(LAYER_TYPES) == set(fast.STEP)


@pytest.mark.parametrize("ref, backend", [(False, "fast"), (True, "reference")])
def test_a_kind_without_a_rule_is_a_typed_error_naming_kind_and_path(ref, backend):
    net = LoihiNetwork(layers=(_XyzLayer(name="odd"),), edges=(), T=2)
    with pytest.raises(MissingRuleError) as err:
        simulate(net, {}, reference=ref)
    assert str(err.value) == f"simulate ({backend}): no rule for layer kind 'xyz' (layer 'odd')"
    assert (err.value.kind, err.value.layer, err.value.backend) == ("xyz", "odd", backend)
    assert err.value.exit_code == 4  # unsupported


def test_input_shape_errors_name_the_layer():
    with pytest.raises(SimulationError, match="'in'"):
        simulate(residual_net(), np.zeros((2, 1, 2)))
