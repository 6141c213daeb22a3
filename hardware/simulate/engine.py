"""Bit-accurate, batched, logical-time simulation of a `LoihiNetwork`.

Semantics: DESIGN §4 (Lava 0.10 ``PyLifModelBitAcc``/``PyDenseModelBitAcc``/``PyConvModelFixed``;
not verified against Loihi silicon). Every fixed-point rule is a call into :mod:`hardware.ir.fixed`
(u decay and its single ±2²⁴ correction, v decay and saturation, bias ``mant << exp``, the strict
threshold, the conv 24-bit wrap, the weight-exponent floor shift). Logical time: each sample runs
T steps from zero state and every layer updates within one step, so edge ``delay`` s (which only
align Lava's pipeline) and ``LIFReset`` settings play no role here.

Speed: each synapse / attention / max-pool op runs once on all ``T·B`` samples (time folded into
the batch); only the LIF recurrence loops over T. Spikes × integer weights use float32 GEMM/conv
in torch, exact because every partial sum is bounded by Σ|w| over one output < 2²⁴ (checked per
layer; float64 otherwise, exact below 2⁵³); results are converted to int64. No TF32/autocast.
"""

from __future__ import annotations

from collections.abc import Mapping

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
from hardware.simulate.fast import FastPathUnavailable, simulate_fast
from hardware.simulate.host_input import current_raster, host_injected_bias, spike_raster
from hardware.simulate.result import F32_EXACT, F64_EXACT, SimResult, SimulationError


def _row_abs_sum(weights: np.ndarray, axes: tuple[int, ...]) -> int:
    """Largest Σ|w| over one output (summing ``axes``): bounds every partial sum of 0/1 inputs."""
    return int(np.abs(weights.astype(np.int64)).sum(axis=axes).max(initial=0))


def _gemm_dtype(layer_name: str, weights: np.ndarray, axes: tuple[int, ...]) -> torch.dtype:
    """float32 when Σ|w| over one output (summing ``axes``) < 2²⁴, else float64 (< 2⁵³)."""
    row = _row_abs_sum(weights, axes)
    if row < F32_EXACT:
        return torch.float32
    if row < F64_EXACT:
        return torch.float64
    raise SimulationError(f"layer {layer_name!r}: Σ|w| per output {row} ≥ 2⁵³, cannot be exact")


def _to_int(x: torch.Tensor) -> np.ndarray:
    """Exact integer-valued float tensor → int64 numpy (no rounding needed: exact GEMMs)."""
    return x.to(torch.int64).numpy()


def _synapse(layer, s: np.ndarray, T: int, B: int) -> tuple[np.ndarray, int]:
    """Current (wu) ``[T, B, *out_shape]`` of a Conv/TokenLinear/Dense layer, and wrap count."""
    flat = torch.from_numpy(s.reshape(T * B, *layer.in_shape))
    # writable copy for torch; a conv convolves with its exact weights · 2**weight_exp
    w = np.array(layer.effective_weights if isinstance(layer, ConvLayer) else layer.weights)
    if isinstance(layer, ConvLayer):
        dt = _gemm_dtype(layer.name, w, (1, 2, 3))
        acc = F.conv2d(flat.to(dt), torch.from_numpy(w).to(dt), stride=layer.stride,
                       padding=layer.padding, dilation=layer.dilation, groups=layer.groups)
        raw = _to_int(acc)
        if _row_abs_sum(w, (1, 2, 3)) < 1 << (fixed.CONV_OUT_BITS - 1):
            out, wraps = raw, 0  # |conv output| ≤ Σ|w| < 2²³: the 24-bit wrap is the identity
        else:
            out = fixed.wrap_s24(raw)
            wraps = int(np.count_nonzero(out != raw))
    else:
        dt = _gemm_dtype(layer.name, w, (1,))
        wt = torch.from_numpy(w).to(dt)
        if isinstance(layer, TokenLinearLayer):
            acc = torch.einsum("oc,bcn->bon", wt, flat.to(dt))
        else:
            acc = flat.reshape(T * B, -1).to(dt) @ wt.T
        out = _to_int(acc)
        if layer.weight_exp:
            out = fixed.shift_weight_exp_floor(out, layer.weight_exp)
        wraps = 0
    return out.reshape(T, B, *layer.out_shape), wraps


def _inputs_for(network: LoihiNetwork, inputs) -> dict[str, np.ndarray | torch.Tensor]:
    sources = [
        ly
        for ly in network.layers
        if isinstance(ly, HostInputLayer | SpikeInputLayer | CurrentInputLayer)
    ]
    if isinstance(inputs, Mapping):
        missing = [ly.name for ly in sources if ly.name not in inputs]
        if missing:
            raise SimulationError(f"simulate: no input given for layer(s) {missing}")
        return dict(inputs)
    if len(sources) != 1:
        raise SimulationError(
            f"simulate: network has {len(sources)} input layers; pass a {{name: array}} mapping"
        )
    return {sources[0].name: inputs}


def simulate(
    network: LoihiNetwork, inputs, *, keep_states: bool = False, reference: bool = False
) -> SimResult:
    """Run ``network`` for ``network.T`` logical steps on a batch.

    ``inputs``: for a ``HostInputLayer`` the float images ``[B, C, H, W]`` (torch or numpy; an
    ``embedding`` one: integer token ids ``[B, L]``, :mod:`hardware.simulate.host_input`), for
    a ``SpikeInputLayer`` a 0/1 raster ``[T, B, *shape]``, for a ``CurrentInputLayer`` integer
    currents ``[T, B, *shape]`` (wu, :func:`current_raster`); one array when the network has one
    input layer, else a ``{layer name: array}`` mapping. Returns a :class:`SimResult`.
    Raises :class:`SimulationError` naming the layer on a shape mismatch.

    By default the bit-identical fast path :func:`hardware.simulate.fast.simulate_fast` runs
    (torch float32/float64 with per-tensor exactness bounds); where it cannot prove a tensor
    exact it falls back to this int64 path, which ``reference=True`` selects directly.
    """
    T = network.T
    given = _inputs_for(network, inputs)
    if not reference:

        try:
            return simulate_fast(network, given, keep_states=keep_states)
        except FastPathUnavailable:
            pass
    B = None
    out: dict[str, np.ndarray] = {}
    host_bias: dict[str, np.ndarray] = {}
    counts, feats, ovf, sat, ties, wraps, hclip = {}, {}, {}, {}, {}, {}, {}
    max_a, max_u, max_v = {}, {}, {}
    spikes_k, v_k, u_k, stream_k = {}, {}, {}, {}
    for name in network.topological_order():
        layer = network.layer(name)
        srcs = [e.src for e in network.in_edges(name)]
        if isinstance(layer, HostInputLayer):  # conv2d images or embedding ids
            host_bias[name], n_clip, B = host_injected_bias(layer, given[name])
            hclip[name] = n_clip * T
        elif isinstance(layer, SpikeInputLayer):
            out[name] = spike_raster(layer, given[name], T)
            B = out[name].shape[1]
        elif isinstance(layer, CurrentInputLayer):
            out[name] = current_raster(layer, given[name], T)
            B = out[name].shape[1]
        elif isinstance(layer, ConvLayer | TokenLinearLayer | DenseLayer):
            out[name], wraps[name] = _synapse(layer, out[srcs[0]], T, B)
        elif isinstance(layer, AttentionLayer):
            s = torch.from_numpy(out[srcs[0]].reshape(T, B, 3 * layer.channels, layer.tokens))
            p = attention_current(s.to(torch.float32), layer.channels, layer.heads)
            out[name] = _to_int(p) << layer.p_shift
        elif isinstance(layer, MaxPoolLayer):
            a = torch.from_numpy(out[srcs[0]].reshape(T * B, *layer.in_shape))
            if np.abs(out[srcs[0]]).max(initial=0) >= F32_EXACT:
                raise SimulationError(f"layer {name!r}: |current| ≥ 2²⁴, max-pool not exact")
            pooled = F.max_pool2d(a.to(torch.float32), layer.kernel, layer.stride, layer.padding)
            out[name] = _to_int(pooled).reshape(T, B, *layer.out_shape)
        elif isinstance(layer, LIFLayer):
            cur = [out[s].reshape(T, B, *layer.shape) for s in srcs if s not in host_bias]
            a = sum(cur) if cur else np.zeros((T, B, *layer.shape), np.int64)
            bias = fixed.bias_s13e3(layer.bias_mant, layer.bias_exp)
            for s in srcs:
                if s in host_bias:
                    bias = bias + host_bias[s].reshape(B, *layer.shape)
            res = _run_lif(layer, a, bias, keep_states)
            out[name] = res["spikes"]
            counts[name] = res["spikes"].sum(axis=1, dtype=np.int64)
            ovf[name], sat[name], ties[name] = res["overflow"], res["saturated"], res["ties"]
            max_a[name] = int(np.abs(a).max(initial=0))
            max_u[name], max_v[name] = res["max_u"], res["max_v"]
            if keep_states:
                spikes_k[name] = res["spikes"].astype(bool)
                v_k[name], u_k[name] = res["v"], res["u"]
        elif isinstance(layer, ReadoutLayer):
            a = sum(out[s].reshape(T, B, *layer.in_shape) for s in srcs)
            max_a[name] = int(np.abs(a).max(initial=0))
            stream, feats[name] = readout_layer_features(a, layer)
            if keep_states:
                stream_k[name] = stream
        else:
            raise SimulationError(f"layer {name!r}: no simulator rule for {layer.KIND!r}")
    return SimResult(
        T=T, batch_size=int(B or 0), spike_counts=counts, features=feats, overflow_u=ovf,
        saturations_v=sat, ties=ties, conv_wraps=wraps, host_clipped=hclip, max_abs_a=max_a,
        max_abs_u=max_u, max_abs_v=max_v, spikes=spikes_k, v=v_k, u=u_k, stream=stream_k,
    )


def _run_lif(layer: LIFLayer, a: np.ndarray, bias: np.ndarray, keep: bool) -> dict:
    """The LIF recurrence over T (all neurons and samples at once) with its counters.

    Each rule is the :mod:`hardware.ir.fixed` function; calls that are provably the identity are
    skipped: the u decay when ``du = 4095`` (``trunc0(u·0/4096) = 0``), the u correction when
    every new u is inside ``(−2²³, 2²³]`` and the v saturation when every v is inside ±(2²³−1)
    (both checked on the step's min/max, which the range statistics need anyway).
    """
    T = a.shape[0]
    u = np.zeros(a.shape[1:], np.int64)
    v = np.zeros(a.shape[1:], np.int64)
    thr = fixed.threshold_v(layer.vth)
    u_forgets = layer.du == fixed.DECAY_MAX
    spikes = np.zeros(a.shape, np.int8)
    vs, us = [], []
    n_ovf = n_sat = n_tie = 0
    max_u = max_v = 0
    for t in range(T):
        u_in = fixed.act_shift_u(a[t])
        u_raw = u_in if u_forgets else fixed.decay_u_trunc0(u, layer.du) + u_in
        lo, hi = int(u_raw.min(initial=0)), int(u_raw.max(initial=0))
        max_u = max(max_u, hi, -lo)
        if hi > fixed.STATE_HALF_RANGE or lo <= -fixed.STATE_HALF_RANGE:
            u = fixed.wrap_u_once_s24(u_raw)
            n_ovf += int(np.count_nonzero(u != u_raw))
        else:
            u = u_raw
        v_raw = fixed.decay_v_trunc0(v, layer.dv) + u + bias
        lo, hi = int(v_raw.min(initial=0)), int(v_raw.max(initial=0))
        max_v = max(max_v, hi, -lo)
        if hi > fixed.V_MAX or lo < fixed.V_MIN:
            v = fixed.saturate_v_s24(v_raw)
            n_sat += int(np.count_nonzero(v != v_raw))
        else:
            v = v_raw
        n_tie += int(np.count_nonzero(v == thr))
        s = fixed.spike_gt(v, layer.vth)
        v[s] = 0
        spikes[t] = s
        if keep:
            vs.append(v)
            us.append(u)
    res = {"spikes": spikes, "overflow": n_ovf, "saturated": n_sat, "ties": n_tie,
           "max_u": max_u, "max_v": max_v}
    if keep:
        res["v"], res["u"] = np.stack(vs), np.stack(us)
    return res
