"""An int64 reading of DESIGN §4 (Loihi fixed point = Lava 0.10's bit-accurate CPU models),
written for the tests only (not a test module).

It is deliberately *not* built from :mod:`hardware.ir.fixed`: every rule is re-read from the
design text with Python's own integer operators (``//`` floors, ``%`` is non-negative), so the
property tests (``test_fixed_properties.py``) and the differential test's regime counters
compare two independent readings of one specification. Per step, with ``a`` the synaptic input
in weight units (wu)::

    u ← trunc0(u·(4096 − (du+1))/4096) + a·64     then one ±2²⁴ correction (not modular)
    v ← clip(trunc0(v·(4096 − dv)/4096) + u + mant·2^exp, ±(2²³ − 1))
    s ← v > vth·64;  v ← 0 where s                (u is not reset)

where Lava forms both sums in int32 numpy arrays (``PyLifModelBitAcc``): each wraps modulo 2³²
into [−2³¹, 2³¹) before the correction / the clip.

Dense: weights clipped to 8 bits, low bits dropped (mixed sign: floored to a multiple of 2ᵏ,
inhibitory: magnitude truncated), the per-step *sum* scaled by 2^weight_exp with a floor.
Conv: no clip, truncation or exponent; the output wraps modulo 2²⁴ into [−2²³, 2²³).
All functions take and return int64 numpy arrays (broadcasting), and never mutate inputs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from hardware.ir.layers import (
    ConvLayer,
    CurrentInputLayer,
    DenseLayer,
    HostInputLayer,
    LIFLayer,
    ReadoutLayer,
    SpikeInputLayer,
)
from hardware.ir.network import LoihiNetwork

HALF = 2**23  # half the 24-bit state range
INT32 = 2**31  # half the int32 range Lava holds u and v in
V_LIMIT = HALF - 1  # v saturates at ±(2²³ − 1)
UNITY = 4096  # decay unity (12-bit decays)


def i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def trunc0_scale(x, keep) -> np.ndarray:
    """``x·keep/4096`` rounded toward zero (``keep`` 0 … 4096)."""
    prod = i64(x) * i64(keep)
    mag = np.abs(prod) // UNITY
    return np.where(prod < 0, -mag, mag)


def u_raw(u, a, du) -> np.ndarray:
    """The new current before the 24-bit correction."""
    return trunc0_scale(u, UNITY - (i64(du) + 1)) + i64(a) * 64


def u_correct(raw) -> np.ndarray:
    """One conditional ±2²⁴: above 2²³ subtract, at or below −2²³ add; else unchanged."""
    r = i64(raw)
    return np.where(r > HALF, r - 2 * HALF, np.where(r <= -HALF, r + 2 * HALF, r))


def int32(x) -> np.ndarray:
    """Lava's int32 sum: modulo 2³² into [−2³¹, 2³¹)."""
    return (i64(x) + INT32) % (2 * INT32) - INT32


def v_raw(v, u, bias, dv) -> np.ndarray:
    """The new voltage before saturation (``bias`` in v-units)."""
    return trunc0_scale(v, UNITY - i64(dv)) + i64(u) + i64(bias)


def v_saturate(raw) -> np.ndarray:
    return np.minimum(np.maximum(i64(raw), -V_LIMIT), V_LIMIT)


def bias_value(mant, exp) -> np.ndarray:
    """``mant·2^exp`` (exp 0 … 7)."""
    return i64(mant) * (2 ** i64(exp))


def threshold(vth) -> np.ndarray:
    return i64(vth) * 64


def weight_range(sign_mode: str) -> tuple[int, int]:
    return {"mixed": (-256, 255), "excitatory": (0, 255), "inhibitory": (-255, 0)}[sign_mode]


def weights_on_grid(w, sign_mode: str, num_weight_bits: int) -> np.ndarray:
    """Clip to 8 bits, then drop ``k = 8 − nwb + [mixed]`` low bits: floor for mixed and
    excitatory weights (mixed, 8 bits: floor to even), toward zero for inhibitory ones."""
    lo, hi = weight_range(sign_mode)
    c = np.minimum(np.maximum(i64(w), lo), hi)
    step = 2 ** (8 - int(num_weight_bits) + (sign_mode == "mixed"))
    if sign_mode == "inhibitory":
        return -((-c) // step) * step
    return (c // step) * step


def scale_sum(acc, weight_exp: int) -> np.ndarray:
    """The summed input times 2^weight_exp, floored once (on the sum)."""
    a = i64(acc)
    e = int(weight_exp)
    return a * 2**e if e >= 0 else a // 2**-e


def wrap24(x) -> np.ndarray:
    """Conv output: modulo 2²⁴ into [−2²³, 2²³)."""
    return (i64(x) + HALF) % (2 * HALF) - HALF


def matmul(x, w) -> np.ndarray:
    """``x @ w.T`` of integer arrays, exactly: in float64 BLAS when every partial sum is
    below 2⁵³ (``max|x|·max_o Σ|w_o| < 2⁵³``, always true here), else int64."""
    x, w = i64(x), i64(w)
    bound = float(np.abs(x).max(initial=0)) * float(np.abs(w).sum(axis=-1).max(initial=0))
    if bound < 2.0**53:
        return (x.astype(np.float64) @ w.T.astype(np.float64)).astype(np.int64)
    return x @ w.T


def dense(s, w, weight_exp: int) -> np.ndarray:
    """``s`` ``[..., N_in]`` spikes, ``w`` ``(N_out, N_in)`` on the grid → ``[..., N_out]``."""
    return scale_sum(matmul(s, w), weight_exp)


def conv(s, w, stride=(1, 1), padding=(0, 0), groups: int = 1) -> np.ndarray:
    """Integer cross-correlation (torch's conv2d, zero padding), ``s`` ``[B, C, H, W]``,
    ``w`` ``(C_out, C_in/groups, kH, kW)``; one int64 product per kernel offset. No wrap."""
    s, w = i64(s), i64(w)
    b, c_in, h, wd = s.shape
    c_out, cg, kh, kw = w.shape
    (sy, sx), (py, px) = stride, padding
    ho, wo = (h + 2 * py - kh) // sy + 1, (wd + 2 * px - kw) // sx + 1
    xp = np.zeros((b, c_in, h + 2 * py, wd + 2 * px), np.int64)
    xp[:, :, py : py + h, px : px + wd] = s
    og = c_out // groups
    out = np.zeros((b, c_out, ho, wo), np.int64)
    for g in range(groups):
        xs = xp[:, g * cg : (g + 1) * cg]
        for dy in range(kh):
            for dx in range(kw):
                patch = xs[:, :, dy : dy + sy * (ho - 1) + 1 : sy, dx : dx + sx * (wo - 1) + 1 : sx]
                out[:, g * og : (g + 1) * og] += np.einsum(
                    "bchw,oc->bohw", patch, w[g * og : (g + 1) * og, :, dy, dx]
                )
    return out


@dataclass
class Regimes:
    """Neuron-steps of one LIF population that passed through each rule (summed over calls)."""

    u_corrected: int = 0  # the ±2²⁴ correction changed u
    u_plus_half_kept: int = 0  # u_raw == +2²³ exactly (kept: not corrected)
    u_still_out: int = 0  # |u| > 2²³ even after the one correction (not modular)
    v_saturated: int = 0
    v_saturated_negative: int = 0
    ties: int = 0  # v == vth·64 after saturation (no spike under >)
    negative_v: int = 0
    trunc_differs_from_floor: int = 0  # a decay product whose trunc0 ≠ floor (negative, inexact)
    int32_wrapped: int = 0  # new u or v values changed by Lava's int32 arithmetic (each counts)

    def add(self, other: Regimes) -> None:
        for k in self.__dataclass_fields__:
            setattr(self, k, getattr(self, k) + getattr(other, k))


def lif_run(a, *, du: int, dv: int, vth: int, bias, reset_sub: int | None = None,
            rec=None) -> tuple[dict[str, np.ndarray], Regimes]:
    """Run a LIF population over ``a`` ``[T, B, *shape]`` (wu) from zero state.

    Returns ``({"u", "v", "s"} each [T, B, *shape], regimes)``; ``v`` after the spike reset
    (to 0, or ``v − reset_sub``). ``rec(s)``: the recurrent current (wu) of last step's spikes,
    added to step t > 0's input.
    """
    a = i64(a).copy()
    u = np.zeros(a.shape[1:], np.int64)
    v = np.zeros(a.shape[1:], np.int64)
    thr = threshold(vth)
    reg = Regimes()
    out = {"u": [], "v": [], "s": []}
    for t in range(a.shape[0]):
        if rec is not None and t:
            a[t] += rec(out["s"][-1])
        for x, keep in ((u, UNITY - (du + 1)), (v, UNITY - dv)):
            prod = x * keep
            reg.trunc_differs_from_floor += int(np.count_nonzero((prod < 0) & (prod % UNITY != 0)))
        exact = u_raw(u, a[t], du)
        raw = int32(exact)
        u = u_correct(raw)
        reg.u_corrected += int(np.count_nonzero(u != raw))
        reg.u_plus_half_kept += int(np.count_nonzero(raw == HALF))
        reg.u_still_out += int(np.count_nonzero((u > HALF) | (u <= -HALF)))
        v_exact = v_raw(v, u, bias, dv)
        vr = int32(v_exact)
        reg.int32_wrapped += int(np.count_nonzero(raw != exact) + np.count_nonzero(vr != v_exact))
        v = v_saturate(vr)
        reg.v_saturated += int(np.count_nonzero(v != vr))
        reg.v_saturated_negative += int(np.count_nonzero(vr < -V_LIMIT))
        reg.ties += int(np.count_nonzero(v == thr))
        reg.negative_v += int(np.count_nonzero(v < 0))
        s = v > thr
        v = np.where(s, 0 if reset_sub is None else v - reset_sub, v)
        out["u"].append(u)
        out["v"].append(v)
        out["s"].append(s)
    return {k: np.stack(x) for k, x in out.items()}, reg


def _recurrence(la: LIFLayer, B: int):
    """A LIF's recurrent Dense as ``s[t−1] → a`` (wu), by this module's grid and dense rules."""
    if la.rec_weights is None:
        return None
    w = weights_on_grid(i64(la.rec_weights), la.rec_sign_mode, la.rec_num_weight_bits)
    return lambda s: dense(i64(s).reshape(1, B, -1), w, la.rec_weight_exp).reshape(
        B, *la.shape)


def host_exponent(layer: HostInputLayer, x) -> np.ndarray:
    """Per-sample bias exponents ``[B, *out_shape]`` of a host input: ``bias_exp``, or with
    ``exp_per_value`` for each β the first e = bias_exp, bias_exp + 1, … 7 at which
    ``floor(|β|/2^e + 0.5) ≤ 4095`` (7 when none does)."""
    beta = np.abs(_host_beta(layer, x))
    exp = np.full(beta.shape, layer.bias_exp, np.int64)
    if layer.exp_per_value:
        for _ in range(8):  # raise each exponent until its value fits (or reaches 7)
            grow = (np.floor(beta / 2.0**exp + 0.5) > 4095) & (exp < 7)
            exp = exp + grow
    return exp


def _host_beta(layer: HostInputLayer, x) -> np.ndarray:
    """The float64 host current (conv2d by torch, or table lookup + position table) times
    ``bias_scale`` (v-units)."""
    if layer.op == "conv2d":
        cur = F.conv2d(torch.as_tensor(np.asarray(x), dtype=torch.float64),
                       torch.as_tensor(layer.weight, dtype=torch.float64),
                       stride=layer.stride, padding=layer.padding).numpy()
        cur = cur + np.asarray(layer.bias, np.float64)[:, None, None]
    else:
        cur = np.asarray(layer.weight, np.float64)[np.asarray(x)] + np.asarray(layer.bias)
    return cur * layer.bias_scale


def host_mantissa(layer: HostInputLayer, x) -> tuple[np.ndarray, int]:
    """Per-sample bias mantissas ``[B, *out_shape]`` of a host input, and how many saturated:
    β (:func:`_host_beta`) as a 13-bit mantissa at its exponent (:func:`host_exponent`),
    rounded half up (``floor(β/2^e + 0.5)``) and clipped to −4096 … 4095."""
    scaled = np.floor(_host_beta(layer, x) / 2.0**host_exponent(layer, x) + 0.5)
    mant = np.clip(scaled, -4096, 4095)
    return mant.astype(np.int64), int(np.count_nonzero(mant != scaled))


def host_bias(layer: HostInputLayer, x) -> tuple[np.ndarray, int]:
    """The injected bias in v-units, ``mant·2^exp`` (:func:`host_mantissa`,
    :func:`host_exponent`), and clips."""
    mant, clipped = host_mantissa(layer, x)
    return bias_value(mant, host_exponent(layer, x)), clipped


def readout(a, layer: ReadoutLayer) -> np.ndarray:
    """Features ``[B, F]`` from integer currents ``a`` ``[T, B, D, *tokens]``: X = a·scale +
    bias (float64), mean over tokens, Σ_t w_t·x_t, head (numpy, its own order of operations)."""
    a = i64(a)
    x = a.astype(np.float64) * layer.input_scale
    x = x + np.asarray(layer.input_bias).reshape(-1, *([1] * (a.ndim - 3)))
    if layer.token_axis is not None:
        x = x.mean(axis=tuple(range(3, a.ndim)))
    feat = np.tensordot(np.asarray(layer.time_weights), x, axes=(0, 0))  # [B, D]
    return feat @ np.asarray(layer.head_weight).T + np.asarray(layer.head_bias)


@dataclass
class NetworkRun:
    """What :func:`run_network` returns: per LIF ``{u, v, s}`` ``[T, B, *shape]`` and its
    :class:`Regimes`; per readout its features ``[B, F]``; per host input its clipped
    mantissas (summed over samples and steps, as the simulator counts them)."""

    states: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    regimes: dict[str, Regimes] = field(default_factory=dict)
    features: dict[str, np.ndarray] = field(default_factory=dict)
    host_clipped: dict[str, int] = field(default_factory=dict)


def run_network(
    net: LoihiNetwork, inputs: dict, *, raw: dict | None = None, counts: Counter | None = None
) -> NetworkRun:
    """``net`` in logical time from zero state (layer by layer over all T: the graph is
    feed-forward), for spike/host inputs, Dense, Conv, LIF and readout layers.

    ``inputs[name]``: a 0/1 raster or integer currents ``[T, B, *shape]``, or the host input's
    images / token ids ``[B, …]``. ``raw[name]``: a Dense layer's weights as handed to Lava
    (default: the layer's own); they go through this module's grid rule. ``counts`` collects synapse
    regimes (clipped/truncated weights, floored sums, conv wraps, coverage keys).
    """
    counts = Counter() if counts is None else counts
    raw = raw or {}
    T = net.T
    out: dict[str, np.ndarray] = {}
    host: dict[str, np.ndarray] = {}
    res = NetworkRun()
    for name in net.topological_order():
        la = net.layer(name)
        srcs = [e.src for e in net.in_edges(name)]
        if isinstance(la, SpikeInputLayer | CurrentInputLayer):  # spikes, or currents (wu)
            out[name] = i64(inputs[name])
            B = out[name].shape[1]
        elif isinstance(la, HostInputLayer):
            host[name], clipped = host_bias(la, inputs[name])
            B = host[name].shape[0]
            res.host_clipped[name] = clipped * T
        elif isinstance(la, DenseLayer):
            w_raw = i64(raw.get(name, la.weights))
            w = weights_on_grid(w_raw, la.sign_mode, la.num_weight_bits)
            lo, hi = weight_range(la.sign_mode)
            clipped = (w_raw < lo) | (w_raw > hi)
            counts["weights clipped by Lava"] += int(np.count_nonzero(clipped))
            counts["weights truncated by Lava"] += int(np.count_nonzero(~clipped & (w != w_raw)))
            counts[f"sign_mode={la.sign_mode}"] += int(np.count_nonzero(w_raw))
            counts[f"weight_exp={la.weight_exp}"] += int(np.count_nonzero(w))
            s = out[srcs[0]].reshape(T, B, -1)
            out[name] = dense(s, w, la.weight_exp).reshape(T, B, *la.out_shape)
            if la.weight_exp < 0:
                several = matmul(s, w != 0) >= 2
                per_term = matmul(s, scale_sum(w, la.weight_exp))
                counts["neg weight_exp: floor(sum) != sum(floor), several spikes"] += int(
                    np.count_nonzero(several & (out[name].reshape(T, B, -1) != per_term))
                )
        elif isinstance(la, ConvLayer):
            x = out[srcs[0]].reshape(T * B, *la.in_shape)
            acc = conv(x, la.weights, la.stride, la.padding, la.groups)
            wrapped = wrap24(acc)
            counts["conv 24-bit wrap"] += int(np.count_nonzero(wrapped != acc))
            counts[f"conv groups={la.groups}"] += int(np.count_nonzero(acc))
            out[name] = wrapped.reshape(T, B, *la.out_shape)
        elif isinstance(la, LIFLayer):
            cur = [out[s].reshape(T, B, *la.shape) for s in srcs if s not in host]
            a = sum(cur) if cur else np.zeros((T, B, *la.shape), np.int64)
            counts["|a| < 2^25 (Lava's int32 domain) violated"] += int(
                np.count_nonzero(np.abs(a) >= 1 << 25)
            )
            bias = bias_value(la.bias_mant, la.bias_exp)
            for s in srcs:
                if s in host:
                    bias = bias + host[s].reshape(B, *la.shape)
            st, reg = lif_run(a, du=la.du, dv=la.dv, vth=la.vth, bias=bias,
                              reset_sub=la.reset_sub, rec=_recurrence(la, B))
            res.states[name], res.regimes[name] = st, reg
            out[name] = st["s"].astype(np.int64)
            counts[f"du={la.du}"] += a.size
            counts[f"dv={la.dv}"] += a.size
            for e in range(8):
                counts[f"bias_exp={e}"] += int(
                    np.count_nonzero((la.bias_exp == e) & (la.bias_mant != 0))
                )
        elif isinstance(la, ReadoutLayer):
            a = sum(out[s].reshape(T, B, *la.in_shape) for s in srcs)
            res.features[name] = readout(a, la)
        else:
            raise TypeError(f"the reading has no rule for {la.KIND} ({name})")
    for st in res.states.values():
        st["s"] = st["s"].astype(np.int64)
    return res
