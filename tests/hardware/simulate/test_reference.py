"""The int64 reference rules (`hardware.simulate.reference`) and the shipped simulator on both
paths: Lava 0.10's own LIF golden sequences, and each synapse and extension rule against an
independent reference (hand-derived integers, Python integers, float64 torch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _sim_paths import PATHS, simulate_paths

from hardware.ir import fixed
from hardware.ir.layers import (
    AttentionLayer,
    ConvLayer,
    CurrentInputLayer,
    LIFLayer,
    MaxPoolLayer,
)
from hardware.ir.network import Edge, LoihiNetwork
from hardware.simulate import reference


def _lif_states(a: list[int], *, du: int, dv: int, vth: int, bias: tuple[int, int] = (0, 0),
                reset_sub: int | None = None) -> dict[str, dict[str, list]]:
    """One neuron fed the graded currents ``a[t]`` (wu), zero start, with ``bias = (mant,
    exp)``; per simulator path its u, v (after the reset) and spikes."""
    net = LoihiNetwork(
        layers=(CurrentInputLayer(name="in", shape=(1,)),
                LIFLayer(name="n", shape=(1,), du=du, dv=dv, vth=vth, bias_mant=bias[0],
                         bias_exp=bias[1], reset_sub=reset_sub)),
        edges=(Edge(src="in", dst="n"),), T=len(a))
    runs = simulate_paths(net, np.asarray(a, np.int64).reshape(-1, 1, 1))
    return {p: {"u": r.u["n"][:, 0, 0].tolist(), "v": r.v["n"][:, 0, 0].tolist(),
                "s": r.spikes["n"][:, 0, 0].astype(int).tolist()} for p, r in runs.items()}


# ---------------------------------------------------------------------------------------------
# Golden vectors: the sequences of Lava 0.10's tests/lava/proc/lif/test_models.py.
# ---------------------------------------------------------------------------------------------


def test_golden_dv_impulse_and_its_negative_mirror() -> None:
    """a = 128 at step 0 only, du = 0, dv = 2048, vth = 256 (never reached).

    u0 = 128 << 6 = 8192; u keeps decaying by 1/4096 (du + ds_offset = 1):
    u1 = trunc0(8192·4095/4096) = 8190, u2 = trunc0(8190·4095/4096) = 8188 (8188.0004).
    v0 = 8192; v1 = trunc0(8192/2) + 8190 = 12286; v2 = trunc0(12286/2) + 8188 = 14331;
    v3 = 7165 + 8186 = 15351; … the published sequence. The mirror is exactly negated because
    both decays truncate toward zero.
    """
    expected = [8192, 12286, 14331, 15351, 15859, 16111, 16235, 16295]
    pos = _lif_states([128] + [0] * 7, du=0, dv=2048, vth=256)
    neg = _lif_states([-128] + [0] * 7, du=0, dv=2048, vth=256)
    for path in PATHS:
        assert pos[path]["v"] == expected and pos[path]["u"][:3] == [8192, 8190, 8188]
        assert neg[path]["v"] == [-x for x in expected]
        assert pos[path]["s"] == neg[path]["s"] == [0] * 8


def test_golden_du_impulse_halves_u() -> None:
    """du = 2047 (+1 → 2048 = one half), dv = 0: u = 2¹³, 2¹², …, 2⁶ and its negative mirror."""
    pos = _lif_states([128] + [0] * 7, du=2047, dv=0, vth=256)
    neg = _lif_states([-128] + [0] * 7, du=2047, dv=0, vth=256)
    for path in PATHS:
        assert pos[path]["u"] == [1 << (13 - j) for j in range(8)]
        assert neg[path]["u"] == [-(1 << (13 - j)) for j in range(8)]


def test_golden_bias_scaling_and_bias_driven_spikes() -> None:
    """bias 4095·2⁵ = 131040 lands in v after one step (Lava used vth = 2¹⁷, beyond 17 bits:
    here the 17-bit maximum, still above it).

    No decay, bias 2 << 6 = 128, vth 8 (512): v = 128, 256, 384, 512 (= threshold, no spike:
    strict >), 640 > 512 spikes at step 4 → 0, then again at step 9.
    """
    big = _lif_states([0], du=0, dv=0, vth=fixed.VTH_MAX, bias=(4095, 5))
    out = _lif_states([0] * 10, du=0, dv=0, vth=8, bias=(2, 6))
    for path in PATHS:
        assert big[path]["v"] == [131040]
        assert out[path]["v"][:5] == [128, 256, 384, 512, 0]
        assert [t for t, s in enumerate(out[path]["s"]) if s] == [4, 9]


def test_reset_by_subtraction_keeps_the_excess() -> None:
    """IF (dv = 0), vth 8 (v > 512 spikes), reset_sub = 512, a = 3, 3, 3, 0, 3 wu (64·a = 192):
    v = 192, 384, 576 > 512 → spike, 576 − 512 = 64; 64; 256; the reset-to-0 neuron instead
    keeps 0, 0, 192. Leaky (dv = 2048, v halves), a = 6, 6, 6, 0, 0 (384): v = 384,
    192 + 384 = 576 → spike → 64, 32 + 384 = 416, 208, 104."""
    sub = _lif_states([3, 3, 3, 0, 3], du=4095, dv=0, vth=8, reset_sub=512)
    zero = _lif_states([3, 3, 3, 0, 3], du=4095, dv=0, vth=8)
    leaky = _lif_states([6, 6, 6, 0, 0], du=4095, dv=2048, vth=8, reset_sub=512)
    for path in PATHS:
        assert sub[path]["v"] == [192, 384, 64, 64, 256] and sub[path]["s"] == [0, 0, 1, 0, 0]
        assert zero[path]["v"] == [192, 384, 0, 0, 192]
        assert leaky[path]["v"] == [384, 64, 416, 208, 104]
        assert leaky[path]["s"] == [0, 1, 0, 0, 0]


def test_cuba_current_with_subtraction() -> None:
    """du = 2047 (u halves), dv = 0, vth 4 (256), reset_sub 300, a = 8 then 0 (u = 512, 256,
    128, 64): v = 512 > 256 → 212; 212 + 256 = 468 → 168; 296 → −4; 60."""
    run = _lif_states([8, 0, 0, 0], du=2047, dv=0, vth=4, reset_sub=300)
    for path in PATHS:
        assert run[path]["u"] == [512, 256, 128, 64]
        assert run[path]["v"] == [212, 168, -4, 60] and run[path]["s"] == [1, 1, 1, 0]


def test_recurrent_spikes_arrive_one_step_later() -> None:
    """Two IF neurons (dv = 0, vth 4: v > 256), n0 driven by a = 5 (320) at step 0 only;
    W_rec = [[0, 0], [6, 0]] (n0 → n1, 6 wu = 384 v-units), weight_exp 0. n0 spikes at step 0,
    n1 receives it at step 1 (v1 = 384 > 256, spikes), nothing at step 0; a second sample
    (batch column) without input stays silent."""
    net = LoihiNetwork(
        layers=(CurrentInputLayer(name="in", shape=(2,)),
                LIFLayer(name="n", shape=(2,), du=4095, dv=0, vth=4,
                         rec_weights=np.array([[0, 0], [6, 0]]))),
        edges=(Edge(src="in", dst="n"),), T=4)
    a = np.zeros((4, 2, 2), np.int64)
    a[0, 0, 0] = 5
    run = reference.lif(a, np.zeros(2, np.int64), du=4095, dv=0, vth=4, keep=True,
                        rec=(net.layer("n").rec_weights, 0))
    assert run.spikes[:, 0].tolist() == [[1, 0], [0, 1], [0, 0], [0, 0]]
    assert run.v[:, 0].tolist() == [[0, 0], [0, 0], [0, 0], [0, 0]]
    assert not run.spikes[:, 1].any()
    for path, r in simulate_paths(net, a).items():
        assert r.spikes["n"].astype(int).tolist() == run.spikes.tolist(), path


def test_lif_batch_matches_per_sample_runs() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(-3000, 3000, size=(6, 3, 5))  # [T, B, N]
    bias = fixed.bias_s13e3(rng.integers(-4096, 4096, 5), rng.integers(0, 8, 5))
    batch = reference.lif(a, bias, du=300, dv=1000, vth=200, keep=True)
    for b in range(3):
        single = reference.lif(a[:, b : b + 1], bias, du=300, dv=1000, vth=200, keep=True)
        for k in ("v", "u"):
            assert np.array_equal(getattr(single, k)[:, 0], getattr(batch, k)[:, b])
        assert np.array_equal(single.spikes[:, 0], batch.spikes[:, b])
    assert batch.spikes.any() and (batch.v < 0).any()


# ---------------------------------------------------------------------------------------------
# Synapses.
# ---------------------------------------------------------------------------------------------


def test_dense_hand_example_sum_then_floor() -> None:
    """Raw [[3, −3, 1]] mixed 8-bit → grid [[2, −4, 0]]; all three spike: 2 − 4 + 0 = −2;
    weight_exp −1: −2 >> 1 = −1. Only the first: 2 >> 1 = 1. weight_exp 3: −2·8 = −16."""
    w = fixed.weight_on_grid_8(np.array([[3, -3, 1]]), "mixed", 8)
    assert w.tolist() == [[2, -4, 0]]
    s = np.array([[1, 1, 1], [1, 0, 0]])
    assert reference.dense(s, w, -1).tolist() == [[-1], [1]]
    assert reference.dense(s, w, 3).tolist() == [[-16], [16]]


def test_dense_matches_python_integers_including_the_int64_path() -> None:
    rng = np.random.default_rng(1)
    w = rng.integers(-256, 256, size=(7, 11))
    for s in (
        rng.integers(0, 2, size=(4, 11)),  # spikes: float32 GEMM
        rng.integers(-(1 << 45), 1 << 45, size=(4, 11)),  # bound > 2⁵³: int64
    ):
        for e in (-5, 0, 4):
            ref = [
                [sum(int(s[b, i]) * int(w[o, i]) for i in range(11)) for o in range(7)]
                for b in range(4)
            ]
            ref = [[x << e if e > 0 else x >> -e for x in row] for row in ref]
            assert reference.dense(s, w, e).tolist() == ref


def test_dense_past_float32_is_exact() -> None:
    """65,536 weights of 256 and one of 1, all inputs spiking: 2²⁴ + 1 = 16,777,217, which
    float32 would round to 2²⁴ (the bound Σ|w| picks float64)."""
    w = np.array([[256] * 65536 + [1]])
    assert reference.dense(np.ones((2, 65537), np.int8), w, 0).tolist() == [[16_777_217]] * 2


def test_token_linear_equals_dense_on_kron_weights() -> None:
    rng = np.random.default_rng(2)
    w = rng.integers(-256, 256, size=(5, 3))
    s = rng.integers(0, 2, size=(2, 3, 4))  # [N, C_in, tokens]
    out = reference.token_linear(s, w, -2)
    as_dense = reference.dense(s.reshape(2, -1), np.kron(w, np.eye(4, dtype=np.int64)), -2)
    assert np.array_equal(out.reshape(2, -1), as_dense)
    # token 0 of sample 0 by hand
    assert out[0, :, 0].tolist() == [int(x) >> 2 for x in w @ s[0, :, 0]]


@pytest.mark.parametrize("groups", [1, 2])
def test_conv_matches_torch_float64(groups: int) -> None:
    rng = np.random.default_rng(3 + groups)
    s = rng.integers(0, 2, size=(3, 4, 7, 6))
    w = 2 * rng.integers(-128, 128, size=(6, 4 // groups, 3, 2))
    kw = {"stride": (2, 1), "padding": (1, 0), "dilation": (1, 2), "groups": groups}
    layer = ConvLayer(name="c", weights=w, in_shape=(4, 7, 6), **kw)
    ref = torch.nn.functional.conv2d(
        torch.from_numpy(s).double(), torch.from_numpy(w).double(), **kw
    ).numpy()
    out, wraps = reference.conv(s, layer)
    assert np.array_equal(out, ref) and wraps == 0


def test_conv_wraps_at_24_bits() -> None:
    """Kernel (1, 2, 16, 16) of 254 << 7 = 32,512 over an all-ones input: 512 · 32,512 =
    16,646,144 ≥ 2²³ wraps to 16,646,144 − 2²⁴ = −131,072 (one wrap per sample)."""
    layer = ConvLayer(name="c", weights=np.full((1, 2, 16, 16), 254), in_shape=(2, 16, 16),
                      weight_exp=7)
    out, wraps = reference.conv(np.ones((3, 2, 16, 16), np.int8), layer)
    assert out.ravel().tolist() == [-131_072] * 3 and wraps == 3


# ---------------------------------------------------------------------------------------------
# Extension ops.
# ---------------------------------------------------------------------------------------------


def test_attention_matches_float64_torch_per_head() -> None:
    rng = np.random.default_rng(6)
    c, n, heads = 8, 5, 2
    s = rng.integers(0, 2, size=(3, 3 * c, n))
    layer = AttentionLayer(name="att", channels=c, tokens=n, heads=heads, p_shift=1)
    out = reference.attention(s, layer)
    t = torch.from_numpy(s).double()
    q, k, v = (
        t[:, i * c : (i + 1) * c].reshape(3, heads, c // heads, n).transpose(-1, -2)
        for i in range(3)
    )  # [B, h, N, d]
    ref = (q @ (k.transpose(-1, -2) @ v)) * 2  # P = Q·(KᵀV), << 1
    assert np.array_equal(out, ref.transpose(-1, -2).reshape(3, c, n).numpy())


def test_maxpool_pads_with_minus_infinity_like_torch() -> None:
    rng = np.random.default_rng(7)
    a = -rng.integers(1, 1000, size=(2, 3, 5, 6))  # all negative: zero padding would win
    ref = torch.nn.functional.max_pool2d(torch.from_numpy(a).double(), 3, 2, 1).numpy()
    out = reference.maxpool(a, MaxPoolLayer(name="p", in_shape=(3, 5, 6)))
    assert np.array_equal(out, ref) and out.max() < 0


def test_maxpool_past_float32_is_exact() -> None:
    """Currents 2²⁴ + 1 and 2²⁴ + 3 (float32 would round both to even neighbours): the max of
    each 2×2 window is exact (float64)."""
    a = np.array([[[[2**24 + 1, 2**24 - 1], [5, 2**24 + 3]]]])
    layer = MaxPoolLayer(name="p", in_shape=(1, 2, 2), kernel=(2, 2), stride=(2, 2),
                         padding=(0, 0))
    assert reference.maxpool(a, layer).ravel().tolist() == [2**24 + 3]
