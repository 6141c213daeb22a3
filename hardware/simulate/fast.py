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
rule below, each named after the ``fixed`` function it equals, and tested against it on random
and edge values in ``tests/hardware/simulate/test_simulator_fastpath.py``):

- ``trunc0(x·keep/4096)`` = ``trunc(x · (keep/4096))``: ``keep/4096`` is dyadic, so the product
  is exact when ``|x|·keep < 2^p`` (p = 24 or 53) — in float32 only for ``keep`` 0 or a power of
  two (then it is a pure exponent shift);
- ``a << 6`` = ``a · 64``; ``acc >> e`` = ``floor(acc · 2^−e)``; the u correction, v
  saturation, conv wrap, bias ``mant << exp`` and the strict ``v > vth << 6`` as comparisons.

Layouts as :mod:`hardware.simulate.engine`: time folded into the batch (``[T·B, *shape]``) for
synapse, attention and pooling ops; only the LIF recurrence loops over T (no loops over neurons,
tokens or heads). Attention is ``P = Q·(KᵀV)`` per head
(:func:`hardware.lower.graph_run.attention_current`).
"""

from __future__ import annotations

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
from hardware.simulate.host_input import current_raster, host_injected_bias, spike_raster
from hardware.simulate.result import F32_EXACT, F64_EXACT, SimResult, SimulationError
from spikeclip.errors import SpikeCLIPError

#: float32 / float64 hold every integer of magnitude below these exactly.


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
    if bound < F32_EXACT:
        return torch.float32
    if bound < F64_EXACT:
        return torch.float64
    raise FastPathUnavailable(f"layer {layer!r}: |values| up to {bound:.3g} ≥ 2⁵³")


def _check_no_reduced_precision() -> None:
    """Refuse reduced-precision float32 matmuls (TF32/bf16) and CPU autocast: not exact."""
    if torch.get_float32_matmul_precision() != "highest" or torch.is_autocast_enabled("cpu"):
        raise FastPathUnavailable("autocast or reduced float32 matmul precision is enabled")


# ---------------------------------------------------------------------------------------------
# Torch mirrors of the hardware.ir.fixed rules (exact under the stated bounds).
# ---------------------------------------------------------------------------------------------


def decay_trunc0(x: torch.Tensor, keep: torch.Tensor | float) -> torch.Tensor:
    """``fixed.decay_trunc0``: ``trunc(x · keep/4096)``; exact while ``|x|·keep`` < 2^p."""
    return torch.trunc(x * (keep / fixed.DECAY_UNITY))


def decay_trunc0_(x: torch.Tensor, keep: torch.Tensor | float) -> torch.Tensor:
    """In-place :func:`decay_trunc0` (``x`` is overwritten and returned). A power-of-two
    ``keep`` is one exact ``trunc(x / (4096/keep))`` pass."""
    if isinstance(keep, float) and keep > 0 and (int(keep) & (int(keep) - 1)) == 0:
        if keep == fixed.DECAY_UNITY:
            return x
        return x.div_(fixed.DECAY_UNITY / keep, rounding_mode="trunc")
    return x.mul_(keep / fixed.DECAY_UNITY).trunc_()


def wrap_u_once_s24(u: torch.Tensor) -> torch.Tensor:
    """``fixed.wrap_u_once_s24``: one conditional ``∓2²⁴`` above 2²³ / at or below −2²³."""
    h = float(fixed.STATE_HALF_RANGE)
    return torch.where(u > h, u - 2 * h, torch.where(u <= -h, u + 2 * h, u))


def wrap_s24(x: torch.Tensor) -> torch.Tensor:
    """``fixed.wrap_s24``: ``((x + 2²³) mod 2²⁴) − 2²³`` (x float64, exact integers)."""
    h = float(1 << (fixed.CONV_OUT_BITS - 1))
    return torch.remainder(x + h, 2 * h) - h


def shift_weight_exp_floor(acc: torch.Tensor, weight_exp: int) -> torch.Tensor:
    """``fixed.shift_weight_exp_floor``: ``acc · 2^e`` (e ≥ 0) or ``floor(acc · 2^e)``."""
    e = int(weight_exp)
    if e == 0:
        return acc
    return acc * float(2**e) if e > 0 else torch.floor(acc * float(2.0**e))


def _keep_power_of_two(keep: np.ndarray) -> bool:
    """Every decay multiplier 0 or a power of two (then ``x·keep/4096`` is exact in float32)."""
    k = keep.astype(np.int64)
    return bool(np.all((k == 0) | ((k > 0) & ((k & (k - 1)) == 0))))


# ---------------------------------------------------------------------------------------------
# Ops on Exact tensors (time folded into the batch).
# ---------------------------------------------------------------------------------------------


def _weights(layer, axes: tuple[int, ...], bound_in: float) -> tuple[np.ndarray, float]:
    # a conv convolves with its exact weights · 2**weight_exp (ConvLayer.effective_weights)
    w = np.array(layer.effective_weights if isinstance(layer, ConvLayer) else layer.weights,
                 dtype=np.int64)
    row = float(np.abs(w).sum(axis=axes).max(initial=0))
    return w, bound_in * row


def synapse(layer, s: Exact, T: int, B: int, nhwc_out: bool = False) -> tuple[Exact, int]:
    """Current (wu) ``[T·B, *out_shape]`` of a Conv/TokenLinear/Dense layer, and wrap count.

    Bound: ``max|s| · max_o Σ_i |w_oi|`` bounds every partial sum in any summation order.
    ``nhwc_out``: leave a conv's output in channels-last memory (its consumers are all
    elementwise LIFs / max-pools on ``[C, H, W]``), else return it contiguous.
    """
    if isinstance(layer, ConvLayer):
        w, bound = _weights(layer, (1, 2, 3), s.bound)
        wrap = bound >= fixed.STATE_HALF_RANGE  # else |acc| < 2²³: the 24-bit wrap is identity
        dt = exact_dtype(bound, layer.name)
        dt = torch.float64 if wrap else dt
        # channels-last (NHWC memory): oneDNN's faster direct conv; the output stays NHWC and
        # the LIFs and max-pools after it run elementwise on that memory order (no copies).
        nhwc = torch.channels_last
        acc = F.conv2d(s.x.to(dt).reshape(T * B, *layer.in_shape).contiguous(memory_format=nhwc),
                       torch.from_numpy(w).to(dt).contiguous(memory_format=nhwc),
                       stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                       groups=layer.groups)
        if not nhwc_out:
            acc = acc.contiguous()
        if not wrap:
            return Exact(acc, bound), 0
        out = wrap_s24(acc)
        return Exact(out, min(bound, float(fixed.STATE_HALF_RANGE))), int(
            torch.count_nonzero(out != acc))
    w, bound = _weights(layer, (1,), s.bound)
    e = int(layer.weight_exp)
    out_bound = bound * 2.0**e if e >= 0 else bound * 2.0**e + 1.0
    dt = exact_dtype(max(bound, out_bound), layer.name)
    # 2^e folded into the (8-bit, so exactly scaled) weights: with e ≥ 0 every partial sum is
    # an integer ≤ out_bound, with e < 0 a multiple of 2^e of at most `bound` steps; both exact
    # in `dt`. For e < 0 one in-place floor completes fixed.shift_weight_exp_floor.
    wt = torch.from_numpy(w).to(dt) * float(2.0**e)
    x = s.x.to(dt)
    if isinstance(layer, TokenLinearLayer):
        acc = torch.matmul(wt, x.reshape(T * B, -1, layer.tokens))  # [T·B, C_out, N]
    else:
        acc = x.reshape(T * B, -1) @ wt.T
    out = acc.floor_() if e < 0 else acc
    return Exact(out.reshape(T * B, *layer.out_shape), out_bound), 0


def attention(layer: AttentionLayer, s: Exact, T: int, B: int) -> Exact:
    """``P = Q·(KᵀV) << p_shift`` per head (d×d per head, never N×N), ``[T·B, C, N]``."""
    d = layer.channels // layer.heads
    bound_p = float(d) * layer.tokens * s.bound * s.bound
    bound = bound_p * 2.0**layer.p_shift
    dt = exact_dtype(bound, layer.name)
    x = s.x.to(dt).reshape(T * B, 3 * layer.channels, layer.tokens)
    p = attention_current(x, layer.channels, layer.heads)
    if layer.p_shift:
        p = p * float(2**layer.p_shift)
    return Exact(p, bound)


def maxpool(layer: MaxPoolLayer, a: Exact, T: int, B: int) -> Exact:
    """Max over windows (−∞ padding, as torch); the reference refuses |a| ≥ 2²⁴, so do we."""
    if a.bound >= F32_EXACT and float(a.x.abs().max()) >= F32_EXACT:
        raise _maxpool_error(layer.name)
    out = F.max_pool2d(a.x.reshape(T * B, *layer.in_shape), layer.kernel, layer.stride,
                       layer.padding)
    return Exact(out, a.bound)


def _maxpool_error(name: str) -> Exception:

    return SimulationError(f"layer {name!r}: |current| ≥ 2²⁴, max-pool not exact")


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


def _absmax(x: torch.Tensor) -> float:
    if x.numel() == 0:
        return 0.0
    lo, hi = torch.aminmax(x)
    return max(-float(lo), float(hi))


@dataclass
class LIFRun:
    """What :func:`run_lif` returns: spikes (0./1. float32 ``[T, B, *shape]``), counters,
    and (with ``keep``) int64 numpy ``v``/``u`` ``[T, B, *shape]``."""

    spikes: torch.Tensor
    overflow: int
    saturated: int
    ties: int
    max_u: int
    max_v: int
    v: np.ndarray | None = None
    u: np.ndarray | None = None


def run_lif(layer: LIFLayer, a: Exact | None, max_a: int, bias: np.ndarray, T: int, B: int,
            keep: bool) -> LIFRun:
    """The LIF recurrence (``hardware.simulate.engine._run_lif``), all neurons and samples at once.

    ``a``: summed input (wu) ``[T, B, *shape]`` or None (no synaptic input), ``max_a`` its
    largest |value| (measured); ``bias`` int64 v-units broadcastable to ``[B, *shape]``.
    Bounds: ``|u_raw| ≤ U = 64·max_a`` when du forgets u (decay multiplier 0), else
    ``T·64·max_a``; ``|v_raw| ≤ (2²³ − 1) + U + max|bias|``. float32 when the decay
    multipliers are 0 or powers of two and ``U + max|bias| ≤ 2²³`` (every sum < 2²⁴), else
    float64 when ``(2²³ + U + max|bias|)·4096 < 2⁵³`` (the decay products).
    When u has no memory and ``U < 2²³`` (no u correction possible), ``u_t = 64·a_t`` and
    ``v_t = trunc0(v·keep_v/4096) + (64·a_t + bias)``: the input term is formed once for all T.
    """
    shape = (B, *layer.shape)
    keep_u = np.asarray(fixed.DECAY_UNITY - (np.asarray(layer.du) + fixed.DU_OFFSET), np.int64)
    keep_v = np.asarray(fixed.DECAY_UNITY - (np.asarray(layer.dv) + fixed.DV_OFFSET), np.int64)
    no_u_memory = not np.any(keep_u)
    act = float(1 << fixed.ACT_SHIFT)
    u_bound = act * max_a * (1 if no_u_memory else T)
    b_max = float(np.abs(bias).max(initial=0))
    half = float(fixed.STATE_HALF_RANGE)
    f32 = (_keep_power_of_two(keep_u) and _keep_power_of_two(keep_v)
           and u_bound + b_max <= half)
    if not f32 and (u_bound + b_max + half) * fixed.DECAY_UNITY >= F64_EXACT:
        raise FastPathUnavailable(f"layer {layer.name!r}: LIF state bound {u_bound:.3g} too large")
    dt = torch.float32 if f32 else torch.float64
    x = a.x.to(dt).reshape(T, *shape) if a is not None else None
    cu = torch.from_numpy(keep_u).to(dt) if keep_u.ndim else float(keep_u)
    cv = torch.from_numpy(keep_v).to(dt) if keep_v.ndim else float(keep_v)
    b = torch.from_numpy(np.asarray(bias, np.int64)).to(dt)
    thr = float(fixed.threshold_v(layer.vth))
    # New tensors follow the input's memory order (NHWC after a conv) so every step is dense.
    spikes = (torch.empty_like(x, dtype=torch.float32) if x is not None
              else torch.empty((T, *shape), dtype=torch.float32))  # 0./1. from comparisons
    flag = torch.empty_like(x[0]) if x is not None else torch.empty(shape, dtype=dt)
    count_dt = torch.float32 if flag.numel() < F32_EXACT else torch.float64  # exact 0/1 sums
    n_ovf = n_sat = n_tie = 0
    max_u = max_v = 0.0
    vs, us = [], []
    simple = no_u_memory and u_bound < half  # u_t = 64·a_t exactly, never corrected
    if simple:
        max_u = u_bound
        if x is not None:
            drive = torch.add(b, x, alpha=act, out=torch.empty_like(x))
        else:
            drive = b.expand(T, *shape)
    u = torch.zeros_like(flag) if not simple else None
    v = torch.zeros_like(flag) if not simple else None
    for t in range(T):
        if simple:
            if t == 0:
                v = drive[0].expand(shape).clone()
            else:
                v = decay_trunc0_(v, cv).add_(drive[t])
            if keep:
                u = x[t] * act if x is not None else torch.zeros(shape, dtype=dt)
        else:
            a_t = x[t] * act if x is not None else torch.zeros(shape, dtype=dt)
            u_raw = a_t if no_u_memory else decay_trunc0(u, cu).add_(a_t)
            mu = _absmax(u_raw)
            max_u = max(max_u, mu)
            if mu >= half:  # some u_raw > 2²³ or ≤ −2²³: Lava's single correction
                u = wrap_u_once_s24(u_raw)
                n_ovf += int(torch.count_nonzero(u != u_raw))
            else:
                u = u_raw
            v = decay_trunc0_(v, cv).add_(u).add_(b)
        mv = _absmax(v)
        max_v = max(max_v, mv)
        if mv > fixed.V_MAX:
            v_sat = v.clamp(fixed.V_MIN, fixed.V_MAX)
            n_sat += int(torch.count_nonzero(v_sat != v))
            v = v_sat
        n_tie += int(torch.eq(v, thr, out=flag).sum(dtype=count_dt))
        s = torch.gt(v, thr, out=spikes[t])
        v.addcmul_(v, s if dt == torch.float32 else s.to(dt), value=-1.0)  # v ← 0 where spiked
        if keep:
            vs.append(v.to(torch.int64).numpy())
            us.append(u.to(torch.int64).numpy())
    run = LIFRun(spikes=spikes, overflow=n_ovf, saturated=n_sat, ties=n_tie, max_u=int(max_u),
                 max_v=int(max_v))
    if keep:
        run.v, run.u = np.ascontiguousarray(np.stack(vs)), np.ascontiguousarray(np.stack(us))
    return run


# ---------------------------------------------------------------------------------------------
# The whole network.
# ---------------------------------------------------------------------------------------------


def simulate_fast(network: LoihiNetwork, given: Mapping[str, object], *,
                  keep_states: bool = False):
    """:func:`hardware.simulate.engine.simulate` on the fast path, bit-identical ``SimResult``.

    ``given``: ``{input layer name: array}`` (as ``simulate`` resolved it). Raises
    ``SimulationError`` like the reference, :class:`FastPathUnavailable` where exactness cannot
    be proved (the caller then runs the reference).
    """

    _check_no_reduced_precision()
    T = network.T
    B = None
    out: dict[str, Exact] = {}
    host_bias: dict[str, np.ndarray] = {}
    counts, feats, ovf, sat, ties, wraps, hclip = {}, {}, {}, {}, {}, {}, {}
    max_a, max_u, max_v = {}, {}, {}
    spikes_k, v_k, u_k, stream_k = {}, {}, {}, {}
    pending = {n: len(network.out_edges(n)) for n in network.topological_order()}
    for name in network.topological_order():
        layer = network.layer(name)
        srcs = [e.src for e in network.in_edges(name)]
        for src in srcs:
            pending[src] -= 1
        if isinstance(layer, HostInputLayer):  # conv2d images or embedding ids
            host_bias[name], n_clip, B = host_injected_bias(layer, given[name])
            hclip[name] = n_clip * T
        elif isinstance(layer, SpikeInputLayer):
            raster = spike_raster(layer, given[name], T)
            B = raster.shape[1]
            xs = torch.from_numpy(raster).to(torch.float32)
            out[name] = Exact(xs.reshape(T * B, *layer.shape), _absmax(xs))
        elif isinstance(layer, CurrentInputLayer):
            raster = current_raster(layer, given[name], T)  # int64, |x| < 2²³
            B = raster.shape[1]
            xs = torch.from_numpy(raster)
            bound = _absmax(xs)
            out[name] = Exact(xs.to(exact_dtype(bound, name)).reshape(T * B, *layer.shape), bound)
        elif isinstance(layer, ConvLayer | TokenLinearLayer | DenseLayer):
            nhwc = all(isinstance(network.layer(e.dst), MaxPoolLayer | LIFLayer)
                       and len(getattr(network.layer(e.dst), "shape", (0, 0, 0))) == 3
                       for e in network.out_edges(name))
            out[name], wraps[name] = synapse(layer, out[srcs[0]], T, B, nhwc_out=nhwc)
        elif isinstance(layer, AttentionLayer):
            out[name] = attention(layer, out[srcs[0]], T, B)
        elif isinstance(layer, MaxPoolLayer):
            out[name] = maxpool(layer, out[srcs[0]], T, B)
        elif isinstance(layer, LIFLayer):
            a = _sum([out[s] for s in srcs if s not in host_bias], (T, B, *layer.shape), name)
            bias = fixed.bias_s13e3(layer.bias_mant, layer.bias_exp)
            for s in srcs:
                if s in host_bias:
                    bias = bias + host_bias[s].reshape(B, *layer.shape)
            max_a[name] = int(_absmax(a.x)) if a is not None else 0
            res = run_lif(layer, a, max_a[name], bias, T, B, keep_states)
            spk = res.spikes
            out[name] = Exact(spk.reshape(T * B, *layer.shape), 1.0)
            sum_dt = torch.float32 if B < F32_EXACT else torch.float64  # exact counts ≤ B
            counts[name] = np.ascontiguousarray(
                spk.sum(dim=1, dtype=sum_dt).to(torch.int64).numpy())
            ovf[name], sat[name], ties[name] = res.overflow, res.saturated, res.ties
            max_u[name], max_v[name] = res.max_u, res.max_v
            if keep_states:
                spikes_k[name] = np.ascontiguousarray(res.spikes.to(torch.bool).numpy())
                v_k[name], u_k[name] = res.v, res.u
        elif isinstance(layer, ReadoutLayer):
            a = _sum([out[s] for s in srcs], (T, B, *layer.in_shape), name)
            a_np = np.ascontiguousarray(a.x.to(torch.float64).numpy())
            max_a[name] = int(_absmax(a.x))
            stream, feats[name] = readout_layer_features(a_np, layer)
            if keep_states:
                stream_k[name] = stream
        else:
            raise SimulationError(f"layer {name!r}: no simulator rule for {layer.KIND!r}")
        for src in srcs:  # free a tensor after its last consumer (peak memory)
            if pending[src] == 0:
                out.pop(src, None)
    return SimResult(
        T=T, batch_size=int(B or 0), spike_counts=counts, features=feats, overflow_u=ovf,
        saturations_v=sat, ties=ties, conv_wraps=wraps, host_clipped=hclip, max_abs_a=max_a,
        max_abs_u=max_u, max_abs_v=max_v, spikes=spikes_k, v=v_k, u=u_k, stream=stream_k,
    )

