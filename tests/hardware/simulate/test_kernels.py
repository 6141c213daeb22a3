"""`hardware.simulate.reference`: Lava 0.10's own LIF golden sequences, and each kernel against an
independent reference (hand-derived integers, float64 torch, Lava's scipy convolution)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hardware.ir import fixed
from hardware.simulate import reference as kernels


def _run_lif(a: list[int], *, du: int, dv: int, vth: int, bias: int = 0) -> dict[str, list]:
    """One neuron, zero start, input a[t] (wu) per step; returns u, v (after reset), spikes."""
    state = kernels.LIFState.zeros(1, (1,))
    out: dict[str, list] = {"u": [], "v": [], "s": []}
    for a_t in a:
        state, s = kernels.lif_step(
            state, np.array([[a_t]]), du=du, dv=dv, vth=vth, bias=np.array([bias])
        )
        out["u"].append(int(state.u[0, 0]))
        out["v"].append(int(state.v[0, 0]))
        out["s"].append(int(s[0, 0]))
    return out


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
    pos = _run_lif([128] + [0] * 7, du=0, dv=2048, vth=256)
    neg = _run_lif([-128] + [0] * 7, du=0, dv=2048, vth=256)
    assert pos["v"] == expected and pos["u"][:3] == [8192, 8190, 8188]
    assert neg["v"] == [-x for x in expected]
    assert pos["s"] == neg["s"] == [0] * 8


def test_golden_du_impulse_halves_u() -> None:
    """du = 2047 (+1 → 2048 = one half), dv = 0: u = 2¹³, 2¹², …, 2⁶ and its negative mirror."""
    pos = _run_lif([128] + [0] * 7, du=2047, dv=0, vth=256)
    neg = _run_lif([-128] + [0] * 7, du=2047, dv=0, vth=256)
    assert pos["u"] == [1 << (13 - j) for j in range(8)]
    assert neg["u"] == [-(1 << (13 - j)) for j in range(8)]


def test_golden_bias_scaling_and_bias_driven_spikes() -> None:
    """bias 4095·2⁵ = 131040 lands in v after one step (Lava used vth = 2¹⁷, beyond 17 bits).

    No decay, bias 2 << 6 = 128, vth 8 (512): v = 128, 256, 384, 512 (= threshold, no spike:
    strict >), 640 > 512 spikes at step 4 → 0, then again at step 9.
    """
    assert _run_lif([0], du=0, dv=0, vth=1 << 17, bias=4095 << 5)["v"] == [131040]
    out = _run_lif([0] * 10, du=0, dv=0, vth=8, bias=2 << 6)
    assert out["v"][:5] == [128, 256, 384, 512, 0]
    assert [t for t, s in enumerate(out["s"]) if s] == [4, 9]


def test_lif_reset_zeroes_state_before_the_update() -> None:
    """LIFReset(interval 3, offset 2): at Lava steps 2 and 5 u, v restart from 0 (input kept).

    du = dv = 0, a = 1 wu each step, no spikes (vth high): u = trunc0(u·4095/4096) + 64.
    step 1: u = 64, v = 64; step 2 (reset): u = 64, v = 64; step 3: u = 63 + 64 = 127,
    v = 64 + 127 = 191; step 4: u = 126 + 64 = 190, v = 381; step 5 (reset): 64, 64.
    """
    state = kernels.LIFState.zeros(2, (1,))
    us, vs = [], []
    for step in range(1, 6):
        state, _ = kernels.lif_reset_step(
            state,
            np.ones((2, 1), np.int64),
            time_step=step,
            reset_interval=3,
            reset_offset=2,
            du=0,
            dv=0,
            vth=10_000,
            bias=np.zeros(1, np.int64),
        )
        us.append(state.u[:, 0].tolist())
        vs.append(state.v[:, 0].tolist())
    assert [u[0] for u in us] == [64, 64, 127, 190, 64]
    assert [v[0] for v in vs] == [64, 64, 191, 381, 64]
    assert all(u[0] == u[1] for u in us)  # the batch is independent and identical here


def test_lif_batch_matches_per_sample_runs() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(-3000, 3000, size=(6, 3, 5))  # [T, B, N]
    bias = fixed.bias_s13e3(rng.integers(-4096, 4096, 5), rng.integers(0, 8, 5))
    state = kernels.LIFState.zeros(3, (5,))
    spikes = []
    for t in range(6):
        state, s = kernels.lif_step(state, a[t], du=300, dv=1000, vth=200, bias=bias)
        spikes.append(s)
    for b in range(3):
        single = kernels.LIFState.zeros(1, (5,))
        for t in range(6):
            single, s = kernels.lif_step(
                single, a[t, b : b + 1], du=300, dv=1000, vth=200, bias=bias
            )
            assert np.array_equal(s[0], spikes[t][b])
        assert np.array_equal(single.v[0], state.v[b]) and np.array_equal(single.u[0], state.u[b])


# ---------------------------------------------------------------------------------------------
# Synapses.
# ---------------------------------------------------------------------------------------------


def test_dense_hand_example_sum_then_floor() -> None:
    """Raw [[3, −3, 1]] mixed 8-bit → grid [[2, −4, 0]]; all three spike: 2 − 4 + 0 = −2;
    weight_exp −1: −2 >> 1 = −1. Only the first: 2 >> 1 = 1. weight_exp 3: −2·8 = −16."""
    w = kernels.dense_weights(np.array([[3, -3, 1]]), "mixed", 8)
    assert w.tolist() == [[2, -4, 0]]
    s = np.array([[1, 1, 1], [1, 0, 0]])
    assert kernels.dense_step(s, w, -1).tolist() == [[-1], [1]]
    assert kernels.dense_step(s, w, 3).tolist() == [[-16], [16]]


def test_dense_matches_python_integers_including_graded_overflow_path() -> None:
    rng = np.random.default_rng(1)
    w = rng.integers(-256, 256, size=(7, 11))
    for s in (
        rng.integers(0, 2, size=(4, 11)),  # spikes: float64 BLAS path
        rng.integers(-(1 << 45), 1 << 45, size=(4, 11)),
    ):  # bound > 2⁵³: int64 path
        for e in (-5, 0, 4):
            ref = [
                [sum(int(s[b, i]) * int(w[o, i]) for i in range(11)) for o in range(7)]
                for b in range(4)
            ]
            ref = [[x << e if e > 0 else x >> -e for x in row] for row in ref]
            assert kernels.dense_step(s, w, e).tolist() == ref


def test_token_linear_equals_dense_on_kron_weights() -> None:
    rng = np.random.default_rng(2)
    w = rng.integers(-256, 256, size=(5, 3))
    s = rng.integers(0, 2, size=(2, 3, 4))  # [B, C_in, N]
    out = kernels.token_linear_step(s, w, -2)
    as_dense = kernels.dense_step(s.reshape(2, -1), np.kron(w, np.eye(4, dtype=np.int64)), -2)
    assert np.array_equal(out.reshape(2, -1), as_dense)
    # token 0 of sample 0 by hand
    assert out[0, :, 0].tolist() == [int(x) >> 2 for x in w @ s[0, :, 0]]


@pytest.mark.parametrize("groups", [1, 2])
def test_conv_matches_torch_float64(groups: int) -> None:
    rng = np.random.default_rng(3 + groups)
    s = rng.integers(0, 2, size=(3, 4, 7, 6))
    w = rng.integers(-256, 256, size=(6, 4 // groups, 3, 2))
    kw = {"stride": (2, 1), "padding": (1, 0), "dilation": (1, 2), "groups": groups}
    ref = torch.nn.functional.conv2d(
        torch.from_numpy(s).double(), torch.from_numpy(w).double(), **kw
    ).numpy()
    assert np.array_equal(kernels.conv_accumulate(s, w, **kw), ref)


def test_conv_step_wraps_at_24_bits() -> None:
    # One input spike under a 1×1 kernel of 2²³ + 5: the sum 8388613 wraps to −8388603.
    s = np.ones((1, 1, 1, 1))
    w = np.full((1, 1, 1, 1), (1 << 23) + 5)
    assert kernels.conv_step(s, w).item() == (1 << 23) + 5 - (1 << 24)


def test_conv_orientation_matches_lavas_scipy_convolution() -> None:
    """Our NCHW conv, moved to Lava's WHC with the one set of helpers, equals Lava's own
    ``utils.conv`` (flipped-kernel scipy convolution on (W, H, C) tensors)."""
    from lava.proc.conv import utils as lava_conv

    rng = np.random.default_rng(5)
    x = rng.integers(0, 2, size=(4, 7, 5))  # (C, H, W)
    w = rng.integers(-256, 256, size=(6, 2, 3, 2))  # (C_out, C_in/g, kH, kW)
    stride, padding, dilation = (1, 2), (1, 0), (2, 1)
    ours = kernels.conv_accumulate(
        x[None], w, stride=stride, padding=padding, dilation=dilation, groups=2
    )[0]
    w_lava = kernels.conv_weight_to_lava(w)
    lava = lava_conv.conv_scipy(
        kernels.chw_to_lava(x),
        w_lava,
        w_lava.shape[1:3],
        kernels.yx_to_lava(stride),
        kernels.yx_to_lava(padding),
        kernels.yx_to_lava(dilation),
        2,
    )
    assert np.array_equal(kernels.lava_to_chw(np.rint(lava).astype(np.int64)), ours)


# ---------------------------------------------------------------------------------------------
# Extension ops.
# ---------------------------------------------------------------------------------------------


def test_attention_matches_float64_torch_per_head() -> None:
    rng = np.random.default_rng(6)
    c, n, heads = 8, 5, 2
    s = rng.integers(0, 2, size=(3, 3 * c, n))
    out = kernels.attention_step(s, channels=c, heads=heads, p_shift=1)
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
    out = kernels.maxpool_step(a, kernel=3, stride=2, padding=1)
    assert np.array_equal(out, ref) and out.max() < 0


def test_orientation_helpers() -> None:
    x = np.arange(24).reshape(2, 3, 4)  # (C, H, W)
    assert kernels.chw_to_lava(x).shape == (4, 3, 2)
    assert kernels.chw_to_lava(x)[3, 2, 1] == x[1, 2, 3]
    assert np.array_equal(kernels.lava_to_chw(kernels.chw_to_lava(x)), x)
    assert kernels.yx_to_lava((1, 2)) == (2, 1)
    w = np.arange(2 * 1 * 2 * 3).reshape(2, 1, 2, 3)  # (C_out, C_in, kH, kW)
    wl = kernels.conv_weight_to_lava(w)
    assert wl.shape == (2, 3, 2, 1)  # (C_out, kW, kH, C_in)
    assert wl[1, 0, 0, 0] == w[1, 0, 1, 2]  # both spatial axes flipped
