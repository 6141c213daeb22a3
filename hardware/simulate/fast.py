"""Fast path of :func:`hardware.simulate.engine.simulate`: the same integers, in torch floats.

Every value the simulator handles is an integer; this path keeps them in float32 (exact below
2²⁴) or float64 (exact below 2⁵³) torch tensors instead of int64 numpy arrays, so the spikes
feed the next GEMM without a conversion and each LIF step is a few in-place passes. Exactness is
*proved per tensor, never assumed* (DESIGN §4 "Exact float GEMM"): each tensor carries an upper
bound on its absolute values (spikes 1; a synapse ``max|x|·max_o Σ|w_o|``; attention
``d·N·max|x|²``; a sum the sum of bounds; the LIF states the worst case over T steps), and the
dtype is float32 only when every intermediate of the op stays below 2²⁴, else float64; when not
even float64 is provably exact, :class:`FastPathUnavailable` is raised and the caller falls back
to the int64 reference. No autocast, bf16 or TF32 (checked).

The fixed-point rules are those of :mod:`hardware.ir.fixed` (its constants; one torch mirror per
rule below, each named after the ``fixed`` function it equals, and tested against the test's own
int64 reading in ``tests/hardware/simulate/test_simulator_fastpath.py``):

- ``trunc0(x·keep/4096)`` = ``trunc(x · (keep/4096))``: ``keep/4096`` is dyadic, so the product
  is exact when ``|x|·keep < 2^p`` (p = 24 or 53) — in float32 only for ``keep`` 0 or a power of
  two (then it is a pure exponent shift);
- ``a << 6`` = ``a · 64``; ``acc >> e`` = ``floor(acc · 2^−e)``; the u correction, the int32
  wrap, v saturation, conv wrap, bias ``mant << exp`` and the strict ``v > vth << 6`` as
  comparisons.

Layouts as the reference (:mod:`hardware.simulate.reference`): time folded into the batch
(``[T·B, *shape]``) for synapse, attention and pooling ops; only the LIF recurrence loops over T,
on flat vectors in the memory order its input arrived in (a conv's channels-last output stays
channels-last through the LIF and into the next conv: no copies).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from hardware.ir import fixed
from hardware.ir.layers import (
    AttentionLayer,
    ConvLayer,
    CurrentInputLayer,
    DenseLayer,
    HostInputLayer,
    LIFLayer,
    MaxPoolLayer,
    ReadoutLayer,
    SpikeInputLayer,
    TokenLinearLayer,
)
from hardware.ir.network import LoihiNetwork
from hardware.ir.readout import readout_layer_features
from hardware.lower.graph_run import attention_current
from hardware.simulate.host_input import current_raster, spike_raster
from hardware.simulate.result import (
    F32_EXACT,
    F64_EXACT,
    SimResult,
    as_tensor,
    exact_float_dtype,
)
from hardware.simulate.walk import LIFRun, Step, Walk, step_host_input, walk
from spikeclip.errors import SpikeCLIPError

_HALF = float(fixed.STATE_HALF_RANGE)  # 2²³
_INT32_HALF = float(1 << (fixed.LAVA_STATE_INT_BITS - 1))  # 2³¹
_ACT = float(1 << fixed.ACT_SHIFT)  # 64


class FastPathUnavailable(SpikeCLIPError, ValueError):
    """A tensor of this network cannot be proved exact in float64 (names the layer): use the
    int64 reference path (``simulate(..., reference=True)``)."""


@dataclass(frozen=True)
class Exact:
    """A tensor of integers ``x`` (float32/float64) and a proven bound ``max|x| ≤ bound``."""

    x: torch.Tensor
    bound: float


def exact_dtype(bound: float, layer: str) -> torch.dtype:
    """float32 when every integer up to ``bound`` is exact in it, else float64 (< 2⁵³)."""
    dt = exact_float_dtype(bound)
    if dt is None:
        raise FastPathUnavailable(f"layer {layer!r}: |values| up to {bound:.3g} ≥ 2⁵³")
    return dt


def _check_no_reduced_precision() -> None:
    """Refuse reduced-precision float32 matmuls (TF32/bf16) and CPU autocast: not exact."""
    if torch.get_float32_matmul_precision() != "highest" or torch.is_autocast_enabled("cpu"):
        raise FastPathUnavailable("autocast or reduced float32 matmul precision is enabled")


# ---------------------------------------------------------------------------------------------
# Torch mirrors of the hardware.ir.fixed rules (exact under the stated bounds).
# ---------------------------------------------------------------------------------------------


def _dyadic(keep: int) -> tuple[int, int]:
    """``keep/4096`` as ``k / 2^m`` with k odd (or 0): the decay's integer factor and shift."""
    if keep == 0:
        return 0, 0
    m = fixed.DECAY_BITS
    while keep % 2 == 0 and m:
        keep, m = keep // 2, m - 1
    return keep, m


def decay_trunc0_(x: torch.Tensor, keep: int) -> torch.Tensor:
    """``fixed.decay_trunc0`` in place: ``trunc(x · keep/4096)`` as ``(x·k) / 2^m`` (k the odd
    part of ``keep``) truncated by torch's ``div(rounding_mode="trunc")``. Exact while
    ``|x|·k < 2^p`` (p = 24 for float32, 53 for float64): ``x·k`` is then an exact integer and
    the division by a power of two only moves the exponent. ``x`` is overwritten and returned.
    """
    k, m = _dyadic(int(keep))
    if k == 0:
        return x.zero_()
    if k != 1:
        x.mul_(float(k))
    return x.div_(float(1 << m), rounding_mode="trunc") if m else x


def wrap_u_once_s24(u: torch.Tensor) -> torch.Tensor:
    """``fixed.wrap_u_once_s24``: one conditional ``∓2²⁴`` above 2²³ / at or below −2²³."""
    return torch.where(u > _HALF, u - 2 * _HALF, torch.where(u <= -_HALF, u + 2 * _HALF, u))


def wrap_s24(x: torch.Tensor) -> torch.Tensor:
    """``fixed.wrap_s24``: ``((x + 2²³) mod 2²⁴) − 2²³``. float64: a modulo (exact integers
    below 2⁵³); float32 (|x| < 2²⁴ by contract): one conditional ``∓2²⁴``, exact there."""
    h = float(1 << (fixed.CONV_OUT_BITS - 1))
    if x.dtype == torch.float32:
        return torch.where(x >= h, x - 2 * h, torch.where(x < -h, x + 2 * h, x))
    return torch.remainder(x + h, 2 * h) - h


def wrap_s32(x: torch.Tensor) -> torch.Tensor:
    """``fixed.wrap_s32``: ``((x + 2³¹) mod 2³²) − 2³¹`` (float64, exact integers)."""
    return torch.remainder(x + _INT32_HALF, 2 * _INT32_HALF) - _INT32_HALF


def shift_weight_exp_floor_(acc: torch.Tensor, weight_exp: int) -> torch.Tensor:
    """``fixed.shift_weight_exp_floor`` in place: ``acc · 2^e`` (e ≥ 0) or ``floor(acc · 2^e)``
    (exact: a power-of-two scale of exact integers, the floor of an exact dyadic value)."""
    e = int(weight_exp)
    if e:
        acc.mul_(float(2.0**e))
        if e < 0:
            acc.floor_()
    return acc


def _absmax(x: torch.Tensor) -> float:
    if x.numel() == 0:
        return 0.0
    lo, hi = torch.aminmax(x)
    return max(-float(lo), float(hi))


# ---------------------------------------------------------------------------------------------
# Ops on Exact tensors (time folded into the batch).
# ---------------------------------------------------------------------------------------------


def _row_bound(w: np.ndarray, axes: tuple[int, ...]) -> float:
    """Largest Σ|w| over one output (summing ``axes``) of integer weights."""
    return float(np.abs(w).sum(axis=axes, dtype=np.int64).max(initial=0))


def conv(layer: ConvLayer, s: Exact, N: int) -> tuple[Exact, int]:
    """Lava Conv ``wrap_s24(conv2d(s, W_eff))`` on ``[N, *in_shape]``, and its wrap count.

    float32 when the bound ``max|s|·Σ|w|`` is below 2²⁴ (the wrap is then exact in float32
    too), channels-last (oneDNN's direct conv; the output stays channels-last).
    """
    w = layer.effective_weights
    bound = s.bound * _row_bound(w, (1, 2, 3))
    dt = exact_dtype(bound, layer.name)
    nhwc = torch.channels_last
    acc = F.conv2d(s.x.reshape(N, *layer.in_shape).to(dt).contiguous(memory_format=nhwc),
                   as_tensor(w, dt).contiguous(memory_format=nhwc), stride=layer.stride,
                   padding=layer.padding, dilation=layer.dilation, groups=layer.groups)
    if bound < _HALF:  # |acc| < 2²³: the 24-bit wrap is the identity
        return Exact(acc, bound), 0
    out = wrap_s24(acc)
    return Exact(out, min(bound, _HALF)), int(torch.count_nonzero(out != acc))


def linear(layer: DenseLayer | TokenLinearLayer, s: Exact, N: int) -> Exact:
    """Dense ``(s @ Wᵀ) << e`` on ``[N, N_in]`` or token-shared ``W @ s`` on ``[N, C, tokens]``.

    Bound: ``max|s| · max_o Σ_i |w_oi|`` bounds every partial sum in any summation order; the
    dtype holds it and the shifted result, so the sum and then ``2^e`` (one in-place multiply,
    and a floor for e < 0: ``fixed.shift_weight_exp_floor`` on the sum) are exact.
    """
    bound = s.bound * _row_bound(layer.weights, (1,))
    e = int(layer.weight_exp)
    out_bound = bound * 2.0**e if e >= 0 else bound * 2.0**e + 1.0
    dt = exact_dtype(max(bound, out_bound), layer.name)
    wt, x = as_tensor(layer.weights, dt), s.x.to(dt)
    if isinstance(layer, TokenLinearLayer):
        acc = torch.matmul(wt, x.reshape(N, -1, layer.tokens))  # [N, C_out, tokens]
    else:
        acc = x.reshape(N, -1) @ wt.T
    return Exact(shift_weight_exp_floor_(acc, e).reshape(N, *layer.out_shape), out_bound)


def attention(layer: AttentionLayer, s: Exact, N: int) -> Exact:
    """``P = Q·(KᵀV) << p_shift`` per head (d×d per head, never N×N), ``[N, C, tokens]``."""
    d = layer.channels // layer.heads
    bound = float(d) * layer.tokens * s.bound * s.bound * 2.0**layer.p_shift
    x = s.x.to(exact_dtype(bound, layer.name)).reshape(N, 3 * layer.channels, layer.tokens)
    p = attention_current(x, layer.channels, layer.heads)
    if layer.p_shift:
        p = p * float(2**layer.p_shift)
    return Exact(p, bound)


def maxpool(layer: MaxPoolLayer, a: Exact, N: int) -> Exact:
    """Max over windows (−∞ padding, as torch); exact in the dtype that holds ``a``."""
    x = a.x if a.bound < F32_EXACT else a.x.to(exact_dtype(a.bound, layer.name))
    out = F.max_pool2d(x.reshape(N, *layer.in_shape), layer.kernel, layer.stride, layer.padding)
    return Exact(out, a.bound)


def _sum(parts: list[Exact], shape: tuple[int, ...], layer: str) -> Exact | None:
    """Sum of currents, each reshaped to ``shape``; dtype from the summed bound."""
    if not parts:
        return None
    bound = float(sum(p.bound for p in parts))
    dt = exact_dtype(bound, layer)
    total = parts[0].x.reshape(shape).to(dt)
    for p in parts[1:]:
        total = total + p.x.reshape(shape).to(dt)
    return Exact(total, bound)


# ---------------------------------------------------------------------------------------------
# LIF: flat vectors in memory order, a few in-place passes per step.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """A LIF population's neurons ``*shape`` as one axis K in a tensor's memory order: ``perm``
    orders the neuron dims from the largest stride down (a conv's channels-last output: H, W,
    C). States are ``[B, K]``, inputs and spikes ``[T, B, K]``: contiguous, so every pass is a
    dense vector op, and a view of the input when it already is in this order."""

    perm: tuple[int, ...]
    shape: tuple[int, ...]

    @classmethod
    def of(cls, x: torch.Tensor | None, shape: tuple[int, ...]) -> _Layout:
        """The order of ``x`` ``[T, B, *shape]`` (C order without ``x``)."""
        dims = range(len(shape))
        if x is None:
            return cls(tuple(dims), shape)
        return cls(tuple(sorted(dims, key=lambda d: -x.stride(2 + d))), shape)

    def rows(self, x: torch.Tensor) -> torch.Tensor:
        """``[*lead, *shape]`` → contiguous ``[*lead, K]``."""
        lead = x.dim() - len(self.shape)
        order = (*range(lead), *(lead + d for d in self.perm))
        return x.permute(order).contiguous().reshape(*x.shape[:lead], -1)

    def unrows(self, x: torch.Tensor) -> torch.Tensor:
        """``[*lead, K]`` → ``[*lead, *shape]`` (a view in this memory order)."""
        lead = x.dim() - 1
        y = x.reshape(*x.shape[:lead], *(self.shape[d] for d in self.perm))
        return y.permute(*range(lead), *(lead + int(d) for d in np.argsort(self.perm)))

    def numpy(self, x: torch.Tensor) -> np.ndarray:
        """``[*lead, K]`` → C-contiguous int64 numpy ``[*lead, *shape]``."""
        return np.ascontiguousarray(self.unrows(x.to(torch.int64)).numpy())


class _Fire:
    """The end of every LIF step on ``v`` ``[B, K]`` (exact integers in floats): range
    statistics, Lava's int32 wrap, saturation, ties, spikes (0./1. float32 into
    ``spikes[t]``), reset. Only float-to-float ops into reused buffers on the common path
    (torch's bool kernels are several times slower, and fresh memory costs page faults)."""

    def __init__(self, thr: float, dt: torch.dtype, T: int, B: int, K: int,
                 reset_sub: int | None = None) -> None:
        self.thr = thr
        self.reset_sub = reset_sub
        self.spikes = torch.empty((T, B, K), dtype=torch.float32)
        self.flag = torch.empty((B, K), dtype=dt)
        self.fired = self.flag if dt == torch.float32 else torch.empty_like(self.flag)
        self.count_dt = torch.float32 if self.flag.numel() < F32_EXACT else torch.float64
        self.run = LIFRun(spikes=None, overflow=0, saturated=0, ties=0, int32_wraps=0,
                          max_u=0, max_v=0)

    def wrap_int32(self, x: torch.Tensor, mx: float) -> torch.Tensor:
        """``x`` after Lava's int32 arithmetic (``mx`` = max|x|, measured)."""
        if mx < _INT32_HALF:
            return x
        w = wrap_s32(x)
        self.run.int32_wraps += int(torch.count_nonzero(w != x))
        return w

    def __call__(self, v: torch.Tensor, t: int) -> torch.Tensor:
        mv = _absmax(v)
        self.run.max_v = max(self.run.max_v, int(mv))
        v = self.wrap_int32(v, mv)
        if mv > fixed.V_MAX:
            self.run.saturated += int(torch.count_nonzero(v.abs() > fixed.V_MAX))
            v = v.clamp_(fixed.V_MIN, fixed.V_MAX)
        self.run.ties += int(torch.eq(v, self.thr, out=self.flag).sum(dtype=self.count_dt))
        if self.fired is self.flag:  # float32: the spikes are v's dtype
            s = torch.gt(v, self.thr, out=self.spikes[t])
        else:
            s = torch.gt(v, self.thr, out=self.fired)
            self.spikes[t].copy_(s)
        if self.reset_sub is not None:  # v ← v − reset_sub where it spiked (|v| < 2²⁴: exact)
            return v.add_(s, alpha=-float(self.reset_sub))
        return v.addcmul_(v, s, value=-1.0)  # v ← 0 where it spiked


@dataclass(frozen=True)
class _LIFPlan:
    """A LIF layer's float plan: the decays' ``keep`` multipliers, bounds ``U`` on |u| before
    the correction and ``V`` on |v| before saturation (over all T steps), and the dtype."""

    keep_u: int
    keep_v: int
    U: float
    V: float
    dt: torch.dtype

    @classmethod
    def of(cls, layer: LIFLayer, max_a: int, b_max: float, T: int) -> _LIFPlan:
        """Bounds by the recurrences ``U_t = U_{t−1}·keep_u/4096 + 64·max_a`` and
        ``V_t = min(V_{t−1}, 2²³−1)·keep_v/4096 + U_t + max|bias|`` (trunc0, the correction,
        Lava's int32 wrap and saturation never increase a magnitude), with a safety margin.

        float32 when no correction can happen (``U < 2²³``), ``V < 2²⁴`` and both decay products
        ``|x|·k`` (k the odd part of keep) stay below 2²⁴; else float64, exact while ``U`` and
        ``V`` stay below 2⁵² (the products: |u| ≤ 2³¹ after the int32 wrap, |v| < 2²³).
        """
        keep_u = fixed.DECAY_UNITY - (layer.du + fixed.DU_OFFSET)
        keep_v = fixed.DECAY_UNITY - (layer.dv + fixed.DV_OFFSET)
        U = V = U_max = 0.0
        for _ in range(T):
            U = U * keep_u / fixed.DECAY_UNITY + _ACT * max_a
            V = min(V, float(fixed.V_MAX)) * keep_v / fixed.DECAY_UNITY + U + b_max
            U_max = max(U_max, U)
        U, V = U_max * (1 + 1e-9) + 1, V * (1 + 1e-9) + 1  # the recurrences grow with t
        k_u, k_v = _dyadic(keep_u)[0], _dyadic(keep_v)[0]
        if U < _HALF and V < F32_EXACT and U * k_u < F32_EXACT and min(V, _HALF) * k_v < F32_EXACT:
            return cls(keep_u, keep_v, U, V, torch.float32)
        if max(U, V) >= F64_EXACT / 2:
            raise FastPathUnavailable(f"layer {layer.name!r}: LIF state bound {U:.3g} too large")
        return cls(keep_u, keep_v, U, V, torch.float64)


def run_lif(layer: LIFLayer, a: Exact | None, max_a: int, bias: np.ndarray, T: int, B: int,
            keep: bool) -> LIFRun:
    """The LIF recurrence (``hardware.simulate.reference.lif``), all neurons at once.

    ``a``: summed input (wu) ``[T, B, *shape]`` or None (no synaptic input), ``max_a`` its
    largest |value| (measured); ``bias`` int64 v-units ``[*shape]`` or ``[B, *shape]``.
    Dtype and bounds: :class:`_LIFPlan`. Returns spikes as float32 0./1. ``[T, B, *shape]``.
    """
    lay = _Layout.of(a.x if a is not None else None, layer.shape)
    rec = _Recurrence.of(layer, lay)
    if rec is not None:
        max_a += rec.bound
    plan = _LIFPlan.of(layer, max_a, float(np.abs(bias).max(initial=0)), T)
    x = lay.rows(a.x.reshape(T, B, *layer.shape)) if a is not None else None
    b = torch.from_numpy(np.asarray(bias, np.int64)).to(plan.dt)
    b = lay.rows(b if b.dim() > len(layer.shape) else b[None])  # [B or 1, K]
    fire = _Fire(float(fixed.threshold_v(layer.vth)), plan.dt, T, B, b.shape[1],
                 layer.reset_sub)
    states = torch.empty((2, T, B, b.shape[1]), dtype=plan.dt) if keep else None
    inp = _Input(x, b.dtype, rec, fire.spikes)
    if plan.keep_u == 0 and plan.U < _HALF and rec is None:  # (max_u: measured, not bound)
        _simple_steps(plan, inp, b, fire, states)
        fire.run.max_u = max_a << fixed.ACT_SHIFT
    else:
        _general_steps(plan, inp, b, fire, states)
    run = fire.run
    run.spikes = lay.unrows(fire.spikes)
    if keep:
        run.v, run.u = lay.numpy(states[0]), lay.numpy(states[1])
    return run


@dataclass(frozen=True)
class _Recurrence:
    """A recurrent LIF's feedback (``LIFLayer.rec_weights``) in the layout's neuron order:
    ``w`` float64 ``(K, K)`` (exact integers), ``exp`` the weight exponent, ``bound`` an upper
    bound on |its current| (wu): ``max_o Σ|w_o|·2^exp + 1`` (the floor of a negative exponent)."""

    w: torch.Tensor
    exp: int
    bound: int

    @classmethod
    def of(cls, layer: LIFLayer, lay: _Layout) -> _Recurrence | None:
        if layer.rec_weights is None:
            return None
        k = math.prod(layer.shape)
        idx = lay.rows(torch.arange(k).reshape(1, *layer.shape))[0]  # row → C-order neuron
        w = torch.from_numpy(np.asarray(layer.rec_weights, np.int64))[idx][:, idx]
        rows = int(w.abs().sum(1).max()) if k else 0
        exp = layer.rec_weight_exp
        return cls(w.to(torch.float64), exp, (rows << exp if exp >= 0 else rows >> -exp) + 1)

    def current(self, spikes: torch.Tensor) -> torch.Tensor:
        """``floor((s @ wᵀ) · 2^exp)`` for spikes ``[B, K]`` (float64, exact: |Σ| < 2⁵³)."""
        return shift_weight_exp_floor_(spikes.to(torch.float64) @ self.w.T, self.exp)


class _Input:
    """Step t's synaptic input ``64·a_t`` added into a state, from ``x`` ``[T, B, K]``: a
    float32 ``x`` under a float64 state is cast row by row into one reused buffer (a mixed
    dtype add is slow, a whole cast copy is memory). With a :class:`_Recurrence`, step t > 0
    adds its current from the spikes of step t − 1 (``spikes`` ``[T, B, K]``)."""

    def __init__(self, x: torch.Tensor | None, dt: torch.dtype, rec: _Recurrence | None = None,
                 spikes: torch.Tensor | None = None) -> None:
        self.x = x
        self.row = torch.empty(x.shape[1:], dtype=dt) if x is not None and x.dtype != dt else None
        self.rec, self.spikes = rec, spikes

    def add_to(self, state: torch.Tensor, t: int) -> torch.Tensor:
        if self.rec is not None and t:
            state.add_(self.rec.current(self.spikes[t - 1]).to(state.dtype), alpha=_ACT)
        if self.x is None:
            return state
        xt = self.x[t] if self.row is None else self.row.copy_(self.x[t])
        return state.add_(xt, alpha=_ACT)


def _simple_steps(plan: _LIFPlan, inp: _Input, b: torch.Tensor, fire: _Fire,
                  states: torch.Tensor | None) -> None:
    """du forgets u and no correction can happen: ``u_t = 64·a_t`` exactly, so
    ``v ← trunc0(v·keep_v/4096) + 64·a_t + bias`` and u is formed only when kept."""
    T, B, K = fire.spikes.shape
    v = torch.zeros((B, K), dtype=b.dtype)
    for t in range(T):
        if t:
            decay_trunc0_(v, plan.keep_v)
        v = fire(inp.add_to(v, t).add_(b), t)
        if states is not None:
            states[0, t] = v
            inp.add_to(states[1, t].zero_(), t)


def _general_steps(plan: _LIFPlan, inp: _Input, b: torch.Tensor, fire: _Fire,
                   states: torch.Tensor | None) -> None:
    """``u ← wrap_u_once_s24(wrap_s32(trunc0(u·keep_u/4096) + 64·a_t))``,
    ``v ← trunc0(v·keep_v/4096) + u + bias``, then :class:`_Fire`."""
    T, B, K = fire.spikes.shape
    u = torch.zeros((B, K), dtype=b.dtype)
    v = torch.zeros((B, K), dtype=b.dtype)
    for t in range(T):
        u = inp.add_to(decay_trunc0_(u, plan.keep_u), t)
        mu = _absmax(u)
        fire.run.max_u = max(fire.run.max_u, int(mu))
        u = fire.wrap_int32(u, mu)
        if mu >= _HALF:  # some u > 2²³ or ≤ −2²³ (before the int32 wrap): Lava's correction
            w = wrap_u_once_s24(u)
            fire.run.overflow += int(torch.count_nonzero(w != u))
            u = w
        v = fire(decay_trunc0_(v, plan.keep_v).add_(u).add_(b), t)
        if states is not None:
            states[0, t], states[1, t] = v, u


# ---------------------------------------------------------------------------------------------
# The fast path's rules, one per layer kind.
# ---------------------------------------------------------------------------------------------


def _source(w: Walk, layer) -> Exact:
    (src,) = w.sources(layer.name)
    return w.out[src]


def _step_spike_input(w: Walk, layer: SpikeInputLayer) -> None:
    raster = spike_raster(layer, w.given[layer.name], w.T)
    w.B = raster.shape[1]
    xs = torch.from_numpy(raster).to(torch.float32)
    w.out[layer.name] = Exact(xs.reshape(w.T * w.B, *layer.shape), _absmax(xs))


def _step_current_input(w: Walk, layer: CurrentInputLayer) -> None:
    xs = torch.from_numpy(current_raster(layer, w.given[layer.name], w.T))  # int64, |x| < 2²³
    w.B = xs.shape[1]
    bound = _absmax(xs)
    w.out[layer.name] = Exact(xs.to(exact_dtype(bound, layer.name)).reshape(
        w.T * w.B, *layer.shape), bound)


def _step_linear(w: Walk, layer: DenseLayer | TokenLinearLayer) -> None:
    w.out[layer.name] = linear(layer, _source(w, layer), w.T * w.B)
    w.record["conv_wraps"][layer.name] = 0


def _step_conv(w: Walk, layer: ConvLayer) -> None:
    w.out[layer.name], w.record["conv_wraps"][layer.name] = conv(layer, _source(w, layer),
                                                                 w.T * w.B)


def _step_attention(w: Walk, layer: AttentionLayer) -> None:
    w.out[layer.name] = attention(layer, _source(w, layer), w.T * w.B)


def _step_maxpool(w: Walk, layer: MaxPoolLayer) -> None:
    w.out[layer.name] = maxpool(layer, _source(w, layer), w.T * w.B)


def _step_lif(w: Walk, layer: LIFLayer) -> None:
    shape = (w.T, w.B, *layer.shape)
    a = _sum([w.out[s] for s in w.sources(layer.name)], shape, layer.name)
    max_a = int(_absmax(a.x)) if a is not None else 0
    run = run_lif(layer, a, max_a, w.lif_bias(layer), w.T, w.B, w.keep)
    spikes = run.spikes
    w.out[layer.name] = Exact(spikes.reshape(w.T * w.B, *layer.shape), 1.0)
    sum_dt = torch.float32 if w.B < F32_EXACT else torch.float64  # exact counts ≤ B
    counts = np.ascontiguousarray(spikes.sum(dim=1, dtype=sum_dt).to(torch.int64).numpy())
    kept = np.ascontiguousarray(spikes.to(torch.bool).numpy()) if w.keep else None
    w.record_lif(layer.name, run, max_a, counts, kept)


def _step_readout(w: Walk, layer: ReadoutLayer) -> None:
    a = _sum([w.out[s] for s in w.sources(layer.name)], (w.T, w.B, *layer.in_shape), layer.name)
    w.record["max_abs_a"][layer.name] = int(_absmax(a.x))
    a_np = np.ascontiguousarray(a.x.to(torch.float64).numpy())
    stream, w.record["features"][layer.name] = readout_layer_features(a_np, layer)
    if w.keep:
        w.record["stream"][layer.name] = stream


#: The fast path's rule per layer kind (``hardware.ir.layers.LAYER_TYPES``).
STEP: dict[str, Step] = {
    SpikeInputLayer.KIND: _step_spike_input,
    CurrentInputLayer.KIND: _step_current_input,
    HostInputLayer.KIND: step_host_input,
    DenseLayer.KIND: _step_linear,
    TokenLinearLayer.KIND: _step_linear,
    ConvLayer.KIND: _step_conv,
    AttentionLayer.KIND: _step_attention,
    MaxPoolLayer.KIND: _step_maxpool,
    LIFLayer.KIND: _step_lif,
    ReadoutLayer.KIND: _step_readout,
}


def simulate_fast(network: LoihiNetwork, given: Mapping[str, object], *,
                  keep_states: bool = False) -> SimResult:
    """:func:`hardware.simulate.engine.simulate` on the fast path, bit-identical ``SimResult``.

    ``given``: ``{input layer name: array}`` (as ``simulate`` resolved it). Raises
    ``SimulationError`` like the reference, :class:`FastPathUnavailable` where exactness cannot
    be proved (the caller then runs the reference).
    """
    _check_no_reduced_precision()
    return walk(network, given, STEP, "fast", keep_states)
