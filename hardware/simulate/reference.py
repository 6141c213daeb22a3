"""Batched integer step kernels built from :mod:`hardware.ir.fixed` (numpy, int64 results).

One call computes one *logical* step for a batch ``B`` of samples; pipelining (Lava's one-step
synaptic latency, delays) is the caller's business. Layouts are torch's: LIF state ``[B, *shape]``,
dense spikes ``[B, N_in]``, conv spikes ``[B, C, H, W]`` (NCHW) with kernels
``(C_out, C_in/groups, kH, kW)``, token tensors ``[B, C, N]``. Conversion to Lava's ``(W, H, C)``
orientation lives only here (:func:`conv_weight_to_lava`, :func:`chw_to_lava`, :func:`yx_to_lava`).

Sums of spikes × integer weights are computed in float64 BLAS, which is exact because every
partial sum stays far below 2⁵³ (8-bit weights, fan-in < 2³⁰; :func:`_exact_int_product` checks
the bound and falls back to int64). Results are int64.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from hardware.ir import fixed

_F64_EXACT = float(1 << 53)


# ---------------------------------------------------------------------------------------------
# LIF (PyLifModelBitAcc, PyLifResetModelBitAcc).
# ---------------------------------------------------------------------------------------------


class LIFState(NamedTuple):
    """LIF state, int64 arrays ``[B, *shape]``: current ``u`` and voltage ``v`` (v-units)."""

    u: np.ndarray
    v: np.ndarray

    @classmethod
    def zeros(cls, batch: int, shape: tuple[int, ...]) -> LIFState:
        """All-zero state (Lava's initial ``u = v = 0``)."""
        return cls(np.zeros((batch, *shape), np.int64), np.zeros((batch, *shape), np.int64))


def lif_current(u: np.ndarray, a: np.ndarray, du: int) -> np.ndarray:
    """``u ← wrap_u_once_s24(trunc0(u·(4096 − (du+1))/4096) + (a << 6))``; a in wu."""
    return fixed.wrap_u_once_s24(fixed.decay_u_trunc0(u, du) + fixed.act_shift_u(a))


def lif_voltage(v: np.ndarray, u_new: np.ndarray, bias: np.ndarray, dv: int) -> np.ndarray:
    """``v ← saturate_v_s24(trunc0(v·(4096 − dv)/4096) + u_new + bias)`` before the spike test.

    ``bias`` is the effective bias in v-units (``fixed.bias_s13e3(bias_mant, bias_exp)``),
    broadcast against ``v``.
    """
    return fixed.saturate_v_s24(fixed.decay_v_trunc0(v, dv) + u_new + bias)


def lif_fire(v: np.ndarray, vth: int) -> tuple[np.ndarray, np.ndarray]:
    """Spike where ``v > vth << 6`` (strict) and reset those voltages to 0: ``(v, spikes)``."""
    spikes = fixed.spike_gt(v, vth)
    return np.where(spikes, 0, v), spikes


def lif_step(
    state: LIFState, a: np.ndarray, *, du: int, dv: int, vth: int, bias: np.ndarray
) -> tuple[LIFState, np.ndarray]:
    """One LIF step (Lava ``PyLifModelBitAcc.run_spk``): current, voltage, fire, reset v.

    ``a``: summed synaptic input in wu, ``[B, *shape]`` (|a| < 2²⁵ so that Lava's int32
    ``a << 6`` cannot overflow). ``u`` is not reset by a spike. Returns the new state and the
    bool spikes ``[B, *shape]``. Lava's ``v`` Var (and its Monitor) shows the *reset* v.
    """
    u = lif_current(state.u, a, du)
    v, spikes = lif_fire(lif_voltage(state.v, u, bias, dv), vth)
    return LIFState(u, v), spikes


def lif_reset_step(
    state: LIFState,
    a: np.ndarray,
    *,
    time_step: int,
    reset_interval: int,
    reset_offset: int,
    du: int,
    dv: int,
    vth: int,
    bias: np.ndarray,
) -> tuple[LIFState, np.ndarray]:
    """One ``LIFReset`` step at Lava ``time_step`` (from 1): zero u, v when
    ``fixed.lif_reset_due``, then :func:`lif_step` (the input ``a`` of that step is kept).
    """
    if fixed.lif_reset_due(time_step, reset_interval, reset_offset):
        state = LIFState(np.zeros_like(state.u), np.zeros_like(state.v))
    return lif_step(state, a, du=du, dv=dv, vth=vth, bias=bias)


# ---------------------------------------------------------------------------------------------
# Synapses.
# ---------------------------------------------------------------------------------------------


def _exact_int_product(
    x: np.ndarray,
    w: np.ndarray,
    product: Callable[[np.ndarray, np.ndarray], np.ndarray],
    x_absmax: float | None = None,
) -> np.ndarray:
    """``product(x, w)`` (a bilinear map: matmul/einsum) on integers, as int64.

    Runs in float64 BLAS when provably exact — ``max|x| · Σ|w| < 2⁵³`` bounds every partial sum
    in any summation order — else in int64. ``x_absmax`` may be passed when ``x`` is a strided
    view that should not be materialized twice.
    """
    if x_absmax is None:
        x_absmax = float(np.abs(x).max(initial=0))
    bound = float(x_absmax) * float(np.abs(w).sum(dtype=np.float64))
    if bound < _F64_EXACT:
        return product(x.astype(np.float64), w.astype(np.float64)).astype(np.int64)
    return product(x.astype(np.int64), w.astype(np.int64))


def dense_weights(
    weights: np.ndarray, sign_mode: fixed.SignMode, num_weight_bits: int
) -> np.ndarray:
    """Weights as Lava's Dense uses them (clip to 8 bits, truncate): ``fixed.weight_on_grid_8``."""
    return fixed.weight_on_grid_8(weights, sign_mode, num_weight_bits)


def dense_step(s: np.ndarray, weights: np.ndarray, weight_exp: int) -> np.ndarray:
    """Dense synaptic input (``PyDenseModelBitAcc``): ``a = (s @ Wᵀ) << weight_exp`` (floor).

    ``s``: ``[B, N_in]`` spikes (bool or 0/1; graded integers also work, as Lava's
    ``num_message_bits > 0``); ``weights``: int ``(N_out, N_in)`` already on the grid
    (:func:`dense_weights`). Returns int64 ``[B, N_out]`` in wu. Lava delivers it one step later.
    """
    acc = _exact_int_product(np.asarray(s), np.asarray(weights), lambda x, w: x @ w.T)
    return fixed.shift_weight_exp_floor(acc, weight_exp)


def token_linear_step(s: np.ndarray, weights: np.ndarray, weight_exp: int) -> np.ndarray:
    """Token-shared linear: ``a[b, :, n] = (W @ s[b, :, n]) << weight_exp`` per token (floor).

    ``s`` ``[B, C_in, N]``, ``weights`` int ``(C_out, C_in)`` on the grid; returns int64
    ``[B, C_out, N]`` (wu). Equals :func:`dense_step` with ``kron(W, I_N)``.
    """
    acc = _exact_int_product(np.asarray(s), np.asarray(weights), lambda x, w: w @ x)
    return fixed.shift_weight_exp_floor(acc, weight_exp)


def _pair(x: int | tuple[int, int]) -> tuple[int, int]:
    return (int(x), int(x)) if np.ndim(x) == 0 else (int(x[0]), int(x[1]))  # type: ignore[index]


def conv_accumulate(
    s: np.ndarray,
    weights: np.ndarray,
    *,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> np.ndarray:
    """Exact integer ``torch.nn.functional.conv2d`` (cross-correlation, zero padding), NCHW.

    ``s`` ``[B, C_in, H, W]`` (spikes or integers), ``weights`` ``(C_out, C_in/groups, kH, kW)``;
    ``stride``/``padding``/``dilation`` as ``(y, x)`` or an int. Returns int64
    ``[B, C_out, H', W']`` with torch's output size. No wrap.
    """
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    s = np.asarray(s)
    w = np.asarray(weights)
    b, c_in, _, _ = s.shape
    c_out, c_grp, kh, kw = w.shape
    xp = np.pad(s, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    win = np.lib.stride_tricks.sliding_window_view(xp, span, axis=(2, 3))
    win = win[:, :, ::sh, ::sw, ::dh, ::dw]  # [B, C_in, H', W', kH, kW]
    ho, wo = win.shape[2:4]
    # im2col per group: [G, B·H'·W', C_grp·kH·kW] @ [G, C_grp·kH·kW, C_out/G] (batched BLAS).
    cols = win.reshape(b, groups, c_grp, ho, wo, kh, kw).transpose(1, 0, 3, 4, 2, 5, 6)
    cols = cols.reshape(groups, b * ho * wo, c_grp * kh * kw)
    wg = w.reshape(groups, c_out // groups, c_grp * kh * kw).transpose(0, 2, 1)
    out = _exact_int_product(cols, wg, np.matmul, float(np.abs(s).max(initial=0)))
    return (
        out.reshape(groups, b, ho, wo, c_out // groups)
        .transpose(1, 0, 4, 2, 3)
        .reshape(b, c_out, ho, wo)
    )


def conv_step(
    s: np.ndarray,
    weights: np.ndarray,
    *,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> np.ndarray:
    """Lava ``PyConvModelFixed`` output in torch orientation: ``wrap_s24(conv2d(s, W))`` (wu).

    Lava's Conv applies neither the 8-bit clip, truncation nor ``weight_exp`` to ``weights``:
    pass them as Lava would hold them (on the grid, see ``hardware.ir.layers.ConvLayer``).
    """
    acc = conv_accumulate(
        s, weights, stride=stride, padding=padding, dilation=dilation, groups=groups
    )
    return fixed.wrap_s24(acc)


# ---------------------------------------------------------------------------------------------
# Extension ops (embedded / host).
# ---------------------------------------------------------------------------------------------


def attention_step(s_qkv: np.ndarray, *, channels: int, heads: int, p_shift: int = 0) -> np.ndarray:
    """Spike attention without softmax: per head ``P = Q·(KᵀV)``, output ``P << p_shift`` (wu).

    ``s_qkv`` ``[B, 3C, N]`` with q, k, v stacked on channels; head h takes channels
    ``[h·d, (h+1)·d)``, ``d = C/heads``. ``M[i, j] = Σ_n k[i, n]·v[j, n]``, ``P[j, n] =
    Σ_i q[i, n]·M[i, j]``. Returns int64 ``[B, C, N]``.
    """
    s = np.asarray(s_qkv, dtype=np.int64)
    b, _, n = s.shape
    d = channels // heads
    q, k, v = (s[:, i * channels : (i + 1) * channels].reshape(b, heads, d, n) for i in range(3))
    m = np.einsum("bhin,bhjn->bhij", k, v)
    p = np.einsum("bhin,bhij->bhjn", q, m)
    return p.reshape(b, channels, n) << int(p_shift)


def maxpool_step(
    a: np.ndarray,
    *,
    kernel: int | tuple[int, int],
    stride: int | tuple[int, int],
    padding: int | tuple[int, int],
) -> np.ndarray:
    """Max over windows of integer currents ``[B, C, H, W]``; padded positions count as −∞.

    As ``torch.nn.functional.max_pool2d`` (padding ≤ kernel/2, so every window holds a real
    element). Returns int64 ``[B, C, H', W']``.
    """
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel), _pair(stride), _pair(padding)
    neg_inf = np.iinfo(np.int64).min
    xp = np.pad(
        np.asarray(a, dtype=np.int64), ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=neg_inf
    )
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))
    return win[:, :, ::sh, ::sw].max(axis=(-2, -1))


# ---------------------------------------------------------------------------------------------
# Torch (NCHW) ↔ Lava (WHC) orientation: the only place it is written down.
# ---------------------------------------------------------------------------------------------


def conv_weight_to_lava(weights: np.ndarray) -> np.ndarray:
    """torch kernel ``(C_out, C_in/g, kH, kW)`` → Lava Conv ``weight`` ``(C_out, kW, kH, C_in/g)``.

    Lava convolves (scipy ``convolve2d`` flips the kernel) on ``(W, H, C)`` tensors, torch
    cross-correlates on ``(C, H, W)``: flip both spatial axes, then reorder.
    """
    return np.ascontiguousarray(np.asarray(weights)[:, :, ::-1, ::-1].transpose(0, 3, 2, 1))


def chw_to_lava(x: np.ndarray) -> np.ndarray:
    """Reverse the last three axes: ``[..., C, H, W]`` → ``[..., W, H, C]`` (shape or data)."""
    x = np.asarray(x)
    return np.ascontiguousarray(np.moveaxis(x, (-3, -2, -1), (-1, -2, -3)))


def lava_to_chw(x: np.ndarray) -> np.ndarray:
    """Inverse of :func:`chw_to_lava`: ``[..., W, H, C]`` → ``[..., C, H, W]``."""
    return chw_to_lava(x)


def yx_to_lava(pair: int | tuple[int, int]) -> tuple[int, int]:
    """torch ``(y, x)`` stride/padding/dilation/kernel pair → Lava's ``(x, y)``."""
    y, x = _pair(pair)
    return (x, y)
