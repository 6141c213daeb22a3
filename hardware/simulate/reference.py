"""The int64 reference path of the simulator (``simulate(..., reference=True)``): one function per
rule on integer numpy arrays, built from :mod:`hardware.ir.fixed`, and its table :data:`STEP`.

Semantics: DESIGN §4 (Lava 0.10 ``PyLifModelBitAcc``/``PyDenseModelBitAcc``/``PyConvModelFixed``;
not verified against Loihi silicon). Logical time: each sample runs T steps from zero state and
every layer updates within one logical step, so edge ``delay`` s (which only align Lava's
pipeline) and ``LIFReset`` settings play no role here. Layouts are torch's: time folded into the
batch (``[N, *shape]``, N = T·B) for the synapse, attention and max-pool ops; only the LIF
recurrence loops over T (:func:`lif`, ``[T, B, *shape]``).

Spikes × integer weights (and the attention and max-pool ops) run in torch float32/float64,
exact because every partial sum is bounded by ``max|x| · Σ|w|`` over one output, below 2²⁴
(float32) or 2⁵³ (float64) (:func:`hardware.simulate.result.exact_float_dtype`; a GEMM past
2⁵³ runs in int64); no TF32/autocast. Results are int64.
"""

from __future__ import annotations

from collections.abc import Callable

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
from hardware.ir.readout import readout_layer_features
from hardware.lower.graph_run import attention_current
from hardware.simulate.host_input import current_raster, spike_raster
from hardware.simulate.result import SimulationError, as_tensor, exact_float_dtype
from hardware.simulate.walk import LIFRun, Step, Walk, step_host_input

_INT32_HALF = 1 << (fixed.LAVA_STATE_INT_BITS - 1)


def _absmax(x: np.ndarray) -> int:
    return int(np.abs(x).max(initial=0))


def _row_abs_sum(weights: np.ndarray, axes: tuple[int, ...]) -> int:
    """Largest Σ|w| over one output (summing ``axes``)."""
    return int(np.abs(weights).sum(axis=axes, dtype=np.int64).max(initial=0))


def _exact(what: str, bound: int) -> torch.dtype:
    dt = exact_float_dtype(bound)
    if dt is None:
        raise SimulationError(f"{what}: |values| up to {bound} ≥ 2⁵³, cannot be exact")
    return dt


# ---------------------------------------------------------------------------------------------
# Synapses (PyDenseModelBitAcc, PyConvModelFixed, the token-shared linear).
# ---------------------------------------------------------------------------------------------


def _product(x: np.ndarray, w: np.ndarray, product: Callable, axes: tuple[int, ...]) -> np.ndarray:
    """``product(x, w)`` (a bilinear map) of integer arrays, exactly, as int64: in the float
    type that holds ``max|x| · max_o Σ|w_o|`` (bounds every partial sum), else int64."""
    dt = exact_float_dtype(_absmax(x) * _row_abs_sum(w, axes)) or torch.int64
    return product(as_tensor(x, dt), as_tensor(w, dt)).to(torch.int64).numpy()


def dense(s: np.ndarray, weights: np.ndarray, weight_exp: int) -> np.ndarray:
    """Dense input (wu): ``a = (s @ Wᵀ) << weight_exp``, the sum floored once (negative exp).

    ``s`` ``[N, N_in]`` spikes (or integers), ``weights`` ``(N_out, N_in)`` on Lava's grid.
    Returns int64 ``[N, N_out]``.
    """
    acc = _product(s, weights, lambda x, w: x @ w.T, (1,))
    return fixed.shift_weight_exp_floor(acc, weight_exp)


def token_linear(s: np.ndarray, weights: np.ndarray, weight_exp: int) -> np.ndarray:
    """Token-shared linear: ``a[:, :, n] = (W @ s[:, :, n]) << weight_exp`` (floor), int64.

    ``s`` ``[N, C_in, tokens]``, ``weights`` ``(C_out, C_in)``; returns ``[N, C_out, tokens]``.
    """
    acc = _product(s, weights, lambda x, w: torch.matmul(w, x), (1,))
    return fixed.shift_weight_exp_floor(acc, weight_exp)


def conv(s: np.ndarray, layer: ConvLayer) -> tuple[np.ndarray, int]:
    """Lava Conv in torch orientation: ``wrap_s24(conv2d(s, W_eff))`` (wu), and how many
    outputs the 24-bit wrap changed. ``s`` ``[N, C_in, H, W]``; returns int64 ``[N, *out]``."""
    w = layer.effective_weights
    bound = _absmax(s) * _row_abs_sum(w, (1, 2, 3))
    dt = _exact(f"layer {layer.name!r}", bound)
    acc = F.conv2d(as_tensor(s, dt), as_tensor(w, dt),
                   stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                   groups=layer.groups).to(torch.int64).numpy()
    if bound < 1 << (fixed.CONV_OUT_BITS - 1):
        return acc, 0  # |conv output| < 2²³: the 24-bit wrap is the identity
    out = fixed.wrap_s24(acc)
    return out, int(np.count_nonzero(out != acc))


# ---------------------------------------------------------------------------------------------
# Extension ops (embedded / host).
# ---------------------------------------------------------------------------------------------


def attention(s: np.ndarray, layer: AttentionLayer) -> np.ndarray:
    """Spike attention ``P = Q·(KᵀV) << p_shift`` per head (wu), int64 ``[N, C, tokens]``.

    ``s`` ``[N, 3C, tokens]`` (q | k | v on channels); the formula is
    :func:`hardware.lower.graph_run.attention_current`, exact in the float type that holds
    ``d·tokens·max|s|²``.
    """
    d = layer.channels // layer.heads
    dt = _exact(f"layer {layer.name!r}", d * layer.tokens * _absmax(s) ** 2)
    p = attention_current(as_tensor(s, dt), layer.channels, layer.heads)
    return p.to(torch.int64).numpy() << layer.p_shift


def maxpool(a: np.ndarray, layer: MaxPoolLayer) -> np.ndarray:
    """Max over windows of integer currents ``[N, C, H, W]`` (−∞ padding, as torch), int64."""
    dt = _exact(f"layer {layer.name!r}", _absmax(a))
    out = F.max_pool2d(as_tensor(a, dt), layer.kernel, layer.stride, layer.padding)
    return out.to(torch.int64).numpy()


# ---------------------------------------------------------------------------------------------
# LIF (PyLifModelBitAcc).
# ---------------------------------------------------------------------------------------------


def _into_int32(x: np.ndarray) -> tuple[np.ndarray, int, int, int]:
    """Lava's int32 wrap of a new u or v (``fixed.wrap_s32``) where needed (checked on the
    min/max); returns the value, how many entries it changed, and the exact min and max."""
    lo, hi = int(x.min(initial=0)), int(x.max(initial=0))
    if -_INT32_HALF <= lo and hi < _INT32_HALF:
        return x, 0, lo, hi
    w = fixed.wrap_s32(x)
    return w, int(np.count_nonzero(w != x)), lo, hi


def lif(a: np.ndarray, bias: np.ndarray, *, du: int, dv: int, vth: int,
        keep: bool = False, reset_sub: int | None = None,
        rec: tuple[np.ndarray, int] | None = None) -> LIFRun:
    """The LIF recurrence over T from zero state, all neurons and samples at once.

    ``a`` int ``[T, B, *shape]`` (wu), ``bias`` int64 v-units broadcastable to ``[B, *shape]``.
    Per step: ``u = wrap_u_once_s24(wrap_s32(trunc0(u·(4096 − du − 1)/4096) + (a << 6)))``,
    ``v = saturate_v_s24(wrap_s32(trunc0(v·(4096 − dv)/4096) + u + bias))``, spike where
    ``v > vth << 6``, v ← 0 there (``v ← v − reset_sub`` with ``reset_sub`` v-units set:
    reset by subtraction, ``v > 0`` so no wrap). ``rec = (W_rec, weight_exp)``: step t's input
    also holds ``dense(s[t−1], W_rec, weight_exp)`` (``s[−1] = 0``; ``LIFLayer.rec_weights``).
    Returns spikes int8 ``[T, B, *shape]`` and the
    counters (:class:`hardware.simulate.walk.LIFRun`). Calls that are provably the identity are
    skipped (checked on the step's min/max, which the range statistics need anyway).
    """
    u = np.zeros(a.shape[1:], np.int64)
    v = np.zeros(a.shape[1:], np.int64)
    thr = fixed.threshold_v(vth)
    spikes = np.zeros(a.shape, np.int8)
    run = LIFRun(spikes=spikes, overflow=0, saturated=0, ties=0, int32_wraps=0, max_u=0, max_v=0)
    vs, us = [], []
    for t in range(a.shape[0]):
        a_t = a[t] if rec is None or t == 0 else a[t] + dense(
            spikes[t - 1].reshape(a.shape[1], -1), *rec).reshape(a.shape[1:])
        u_in = fixed.act_shift_u(a_t)
        u_raw = u_in if du == fixed.DECAY_MAX else fixed.decay_u_trunc0(u, du) + u_in
        u_raw, n_wrap, lo, hi = _into_int32(u_raw)
        run.max_u, run.int32_wraps = max(run.max_u, hi, -lo), run.int32_wraps + n_wrap
        if n_wrap:
            lo, hi = int(u_raw.min()), int(u_raw.max())
        u = u_raw
        if hi > fixed.STATE_HALF_RANGE or lo <= -fixed.STATE_HALF_RANGE:
            u = fixed.wrap_u_once_s24(u_raw)
            run.overflow += int(np.count_nonzero(u != u_raw))
        v_raw, n_wrap, lo, hi = _into_int32(fixed.decay_v_trunc0(v, dv) + u + bias)
        run.max_v, run.int32_wraps = max(run.max_v, hi, -lo), run.int32_wraps + n_wrap
        v = fixed.saturate_v_s24(v_raw)
        run.saturated += int(np.count_nonzero(v != v_raw))
        run.ties += int(np.count_nonzero(v == thr))
        s = fixed.spike_gt(v, vth)
        v[s] = 0 if reset_sub is None else v[s] - reset_sub
        spikes[t] = s
        if keep:
            vs.append(v)
            us.append(u)
    if keep:
        run.v, run.u = np.stack(vs), np.stack(us)
    return run


# ---------------------------------------------------------------------------------------------
# The reference path's rules, one per layer kind.
# ---------------------------------------------------------------------------------------------


def _source(w: Walk, layer, shape: tuple[int, ...]) -> np.ndarray:
    """The only source's output, reshaped to ``[T·B, *shape]``."""
    (src,) = w.sources(layer.name)
    return w.out[src].reshape(w.T * w.B, *shape)


def _step_spike_input(w: Walk, layer: SpikeInputLayer) -> None:
    w.out[layer.name] = spike_raster(layer, w.given[layer.name], w.T)
    w.B = w.out[layer.name].shape[1]


def _step_current_input(w: Walk, layer: CurrentInputLayer) -> None:
    w.out[layer.name] = current_raster(layer, w.given[layer.name], w.T)
    w.B = w.out[layer.name].shape[1]


def _step_dense(w: Walk, layer: DenseLayer) -> None:
    a = dense(_source(w, layer, (-1,)), layer.weights, layer.weight_exp)
    w.out[layer.name] = a.reshape(w.T, w.B, *layer.out_shape)
    w.record["conv_wraps"][layer.name] = 0


def _step_token_linear(w: Walk, layer: TokenLinearLayer) -> None:
    a = token_linear(_source(w, layer, layer.in_shape), layer.weights, layer.weight_exp)
    w.out[layer.name] = a.reshape(w.T, w.B, *layer.out_shape)
    w.record["conv_wraps"][layer.name] = 0


def _step_conv(w: Walk, layer: ConvLayer) -> None:
    a, wraps = conv(_source(w, layer, layer.in_shape), layer)
    w.out[layer.name] = a.reshape(w.T, w.B, *layer.out_shape)
    w.record["conv_wraps"][layer.name] = wraps


def _step_attention(w: Walk, layer: AttentionLayer) -> None:
    a = attention(_source(w, layer, layer.in_shape), layer)
    w.out[layer.name] = a.reshape(w.T, w.B, *layer.out_shape)


def _step_maxpool(w: Walk, layer: MaxPoolLayer) -> None:
    a = maxpool(_source(w, layer, layer.in_shape), layer)
    w.out[layer.name] = a.reshape(w.T, w.B, *layer.out_shape)


def _summed(w: Walk, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """Sum of the currents into ``name`` (host biases aside), int64 ``[T, B, *shape]``."""
    parts = [w.out[s].reshape(w.T, w.B, *shape) for s in w.sources(name)]
    return sum(parts[1:], parts[0].astype(np.int64)) if parts else np.zeros(
        (w.T, w.B, *shape), np.int64)


def _step_lif(w: Walk, layer: LIFLayer) -> None:
    a = _summed(w, layer.name, layer.shape)
    rec = None if layer.rec_weights is None else (layer.rec_weights, layer.rec_weight_exp)
    run = lif(a, w.lif_bias(layer), du=layer.du, dv=layer.dv, vth=layer.vth, keep=w.keep,
              reset_sub=layer.reset_sub, rec=rec)
    w.out[layer.name] = run.spikes
    w.record_lif(layer.name, run, _absmax(a), run.spikes.sum(axis=1, dtype=np.int64),
                 run.spikes.astype(bool) if w.keep else None)


def _step_readout(w: Walk, layer: ReadoutLayer) -> None:
    a = _summed(w, layer.name, layer.in_shape)
    w.record["max_abs_a"][layer.name] = _absmax(a)
    stream, w.record["features"][layer.name] = readout_layer_features(a, layer)
    if w.keep:
        w.record["stream"][layer.name] = stream


#: The reference path's rule per layer kind (``hardware.ir.layers.LAYER_TYPES``).
STEP: dict[str, Step] = {
    SpikeInputLayer.KIND: _step_spike_input,
    CurrentInputLayer.KIND: _step_current_input,
    HostInputLayer.KIND: step_host_input,
    DenseLayer.KIND: _step_dense,
    TokenLinearLayer.KIND: _step_token_linear,
    ConvLayer.KIND: _step_conv,
    AttentionLayer.KIND: _step_attention,
    MaxPoolLayer.KIND: _step_maxpool,
    LIFLayer.KIND: _step_lif,
    ReadoutLayer.KIND: _step_readout,
}
