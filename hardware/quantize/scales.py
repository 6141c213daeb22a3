"""Choosing a `QuantPlan`: scales, bias exponents, sign modes and weight exponents.

Every group of LIFs that share an input synapse (:func:`hardware.quantize.plan.scale_groups`)
gets the **largest** power of two s ≤ 2**max_log2_scale (the finest weights and thresholds)
that passes every check below; if not even s = 1 does, :class:`QuantizationRangeError` names the
layer and what fails. Every check needs ``θ·s`` to be an integer ≤ 2¹⁷ − 1 (vth). An attention
LIF gets s = τ/qk_scale (DESIGN §5).

**From calibration data** (:func:`plan_from_stats`, :class:`QuantOptions`; the float run's
maxima from :mod:`hardware.quantize.calibrate`): (1) at most ``max_clip_fraction`` of each conv's
weights clip at the 8-bit range (token-linear/dense layers: at their smallest weight exponent
≤ 7), (2) the observed ``max |Σ W·x|·s/τ`` times ``margin`` stays within 131,071 wu (u = a << 6
fits 24 bits), (3) ``64·s·max |H|`` times ``margin`` stays within 2²³ − 1, (4) every bias (and
the host-injected input, times ``margin``) fits a 13-bit mantissa at exponent ≤ 7. Bias
exponents: the smallest that holds the layer's largest bias, at least T − 1
(:func:`hardware.ir.grid.bias_exp_for`).

**From static bounds** (:func:`static_plan`, :class:`StaticOptions`; no data, no overflow
possible): inputs to synapses are binary spikes, so a neuron's synaptic input is bounded by
Σ|w| over its row. (1) at most ``max_clip_fraction`` of each synapse's weights clip at weight
exponent 0; (2) an embedding host input's worst case ``s·(max|token| + max|position|)/τ`` wu
and (3) every bias ``|b|·s/τ`` wu fit a 13-bit mantissa at the bias exponent; (4) ``Σ|w|`` per
row plus ``|bias|`` stays ≤ 65,535 wu (``|v| ≤ 2·64·(|a| + |bias|)`` under ``dv = 2048`` keeps v
below 2²³ − 1, u below 2²³). Weight exponents are 0; bias exponents the fixed ``bias_exp``
(netx: 6), else chosen as above from the worst case.
"""

from __future__ import annotations

import math

import torch

from hardware.ir import fixed
from hardware.ir.grid import bias_exp_for, sign_mode_for, weight_clipped, weight_grid
from hardware.lower.float_graph import FLIF, FAttention, FHostInput, FloatGraph, FSynapse
from hardware.quantize.calibrate import FloatStats
from hardware.quantize.plan import (
    QuantizationRangeError,
    QuantOptions,
    QuantPlan,
    StaticOptions,
    bias_divisor,
    current_consumers,
    current_feeders,
    feeder_divisor,
    input_divisor,
    largest_scale,
    scale_groups,
    vth_mantissa,
    vth_off_grid,
)

#: Largest |β| (v-units) a 13-bit mantissa at exponent 7 holds.
BIAS_MAX = fixed.BIAS_MANT_MAX << fixed.BIAS_EXP_MAX
#: Largest ``Σ|w| + |bias|`` (wu) per neuron under the static v bound (module doc): 65,535.
STATIC_SUM_MAX = fixed.V_MAX // (2 * fixed.V_PER_WU)
_RETRAIN = (
    ". Lower the calibration margin, allow more weight clipping (max_clip_fraction), or retrain "
    "with smaller weights/activations (hardware-aware fine-tuning)."
)


def _clip_fraction(weight: torch.Tensor, s: float, tau: float, exp: int = 0) -> float:
    real = weight * (s / (tau * (1 << exp)))
    return float(weight_clipped(real, sign_mode_for(weight)).double().mean())


def weight_exp_for(syn: FSynapse, s: float, tau: float, max_clip_fraction: float) -> int | None:
    """Smallest weight exponent (0 for convs) at which ≤ max_clip_fraction of weights clip."""
    top = fixed.WEIGHT_EXP_MAX if syn.kind in ("token_linear", "dense") else 0
    return _exp_for(syn.weight.detach(), top, s, tau, max_clip_fraction)


def _exp_for(weight: torch.Tensor, top: int, s: float, tau: float, max_clip: float) -> int | None:
    for e in range(top + 1):
        if _clip_fraction(weight, s, tau, e) <= max_clip:
            return e
    return None


def recurrent_key(lif: str) -> str:
    """The plan's ``weight_exps`` / ``sign_modes`` key of a LIF's recurrent Dense."""
    return f"{lif}.rec"


def recurrent_exp_for(graph: FloatGraph, node: FLIF, s: float, max_clip: float) -> int | None:
    """:func:`weight_exp_for` of a LIF's recurrent matrix (a Dense into its own input)."""
    return _exp_for(node.recurrent.detach(), fixed.WEIGHT_EXP_MAX, s,
                    input_divisor(graph, node.name), max_clip)


LI_V_MAX = fixed.VTH_MAX << fixed.ACT_SHIFT
"""The largest |v| (v-units) an LI may reach: it is a LIF whose threshold mantissa is
``VTH_MAX`` (``build``), so it never fires while ``v ≤ vth·64``."""


def _vth_reasons(node, s: float) -> list[str]:
    if not isinstance(node, FLIF) or node.role == "li":
        return []  # an LI's threshold is VTH_MAX, whatever s (its |v| bound: _calibrated_reasons)
    if vth_mantissa(node.theta, s) is None:
        return [vth_off_grid(node.theta, s)]
    return []


def _attention_scale(graph: FloatGraph, group: list[str], att: FAttention) -> float:
    s = graph.tau / att.qk_scale
    if len(group) != 1 or s != 2.0 ** round(math.log2(s)) or s < 1:
        raise QuantizationRangeError(
            group[0], f"attention LIF needs its own scale τ/qk_scale = {s:g}, a power of 2"
        )
    return s


# ---------------------------------------------------------------------------------------------
# From calibration data.
# ---------------------------------------------------------------------------------------------


def _calibrated_reasons(
    graph: FloatGraph, group: list[str], stats: FloatStats, opts: QuantOptions, s: float
) -> list[str]:
    feeders = sorted({f for n in group for f in current_feeders(graph, n)})
    hosts = any(isinstance(graph.node(f), FHostInput) for f in feeders)
    reasons = []
    for w in (graph.node(f) for f in feeders):
        d = feeder_divisor(graph, w.name)
        if isinstance(w, FSynapse) and weight_exp_for(w, s, d, opts.max_clip_fraction) is None:
            frac = _clip_fraction(w.weight.detach(), s, d)
            reasons.append(f"{w.name}: {100 * frac:.3f}% of weights clip at 8 bits")
    for n in (graph.node(name) for name in group):
        a = stats.max_abs_current[n.name] * s / input_divisor(graph, n.name) * opts.margin
        if not hosts and a > fixed.A_MAX_NO_WRAP:
            reasons.append(f"observed |a|·margin = {a:.0f} wu > {fixed.A_MAX_NO_WRAP}")
        if hosts and a * fixed.V_PER_WU > BIAS_MAX:
            reasons.append(f"host input β·margin = {a * fixed.V_PER_WU:.0f} > {BIAS_MAX}")
        if isinstance(n, FLIF) and n.recurrent is not None and recurrent_exp_for(
                graph, n, s, opts.max_clip_fraction) is None:
            reasons.append(f"{n.name}: recurrent weights clip at 8 bits")
        if isinstance(n, FLIF):
            v = fixed.V_PER_WU * s * stats.max_abs_h[n.name] * opts.margin
            top = LI_V_MAX if n.role == "li" else fixed.V_MAX
            if v > top:
                reasons.append(f"observed |v|·margin = {v:.0f} > {top}")
            beta = (fixed.V_PER_WU * s * float(n.bias.detach().abs().max())
                    / bias_divisor(graph, n.name))
            if beta > BIAS_MAX:
                reasons.append(f"bias {beta:.0f} v-units > {BIAS_MAX}")
        reasons += _vth_reasons(n, s)
    return reasons


def calibrated_scale(
    graph: FloatGraph, group: list[str], stats: FloatStats, opts: QuantOptions
) -> float:
    """The scale of ``group`` from calibration maxima (module doc)."""
    feeders = {f for n in group for f in current_feeders(graph, n)}
    att = [graph.node(f) for f in sorted(feeders) if isinstance(graph.node(f), FAttention)]
    if att:
        return _attention_scale(graph, group, att[0])
    return largest_scale(
        group[0], opts.max_log2_scale,
        lambda s: _calibrated_reasons(graph, group, stats, opts, s), _RETRAIN,
    )


def plan_from_stats(graph: FloatGraph, stats: FloatStats, opts: QuantOptions) -> QuantPlan:
    """The calibrated plan (module doc) from the float run's maxima ``stats``."""
    scales: dict[str, float] = {}
    for group in scale_groups(graph):
        scales.update(dict.fromkeys(group, calibrated_scale(graph, group, stats, opts)))
    bias_exps: dict[str, int] = {}
    sign_modes: dict[str, str] = {}
    weight_exps: dict[str, int] = {}
    with torch.no_grad():
        for node in graph.nodes:
            if isinstance(node, FSynapse):
                sign_modes[node.name] = sign_mode_for(node.weight)
                s = scales[current_consumers(graph, node.name)[0]]
                e = weight_exp_for(node, s, feeder_divisor(graph, node.name),
                                   opts.max_clip_fraction)
                weight_exps[node.name] = e or 0
            elif isinstance(node, FLIF) and node.role != "attention":
                beta = (fixed.V_PER_WU * scales[node.name] * float(node.bias.abs().max())
                        / bias_divisor(graph, node.name))
                bias_exps[node.name] = bias_exp_for(beta, graph.T)
                if node.recurrent is not None:
                    key = recurrent_key(node.name)
                    sign_modes[key] = sign_mode_for(node.recurrent)
                    weight_exps[key] = recurrent_exp_for(graph, node, scales[node.name],
                                                         opts.max_clip_fraction) or 0
        for node in graph.nodes:
            if isinstance(node, FHostInput):
                (lif,) = current_consumers(graph, node.name)
                s = scales[lif]
                beta = (fixed.V_PER_WU * s * stats.max_abs_current[lif]
                        / input_divisor(graph, lif) * opts.margin)
                # per value: the floor T − 1; the range check above (calibrated_scale) still
                # holds the largest current at exponent 7
                bias_exps[node.name] = bias_exps[lif] = bias_exp_for(
                    0.0 if opts.host_exp_per_value else beta, graph.T)
    return QuantPlan(scales=scales, bias_exps=bias_exps, sign_modes=sign_modes,
                     weight_exps=weight_exps, host_exp_per_value=opts.host_exp_per_value)


# ---------------------------------------------------------------------------------------------
# From static bounds.
# ---------------------------------------------------------------------------------------------


def _bias_limit_wu(opts: StaticOptions) -> float:
    """Largest |bias| (wu) a 13-bit mantissa holds at the fixed (or the largest) exponent."""
    exp = fixed.BIAS_EXP_MAX if opts.bias_exp is None else opts.bias_exp
    return (fixed.BIAS_MANT_MAX << exp) / fixed.V_PER_WU


def host_drive_bound(host: FHostInput) -> float:
    """Worst-case |current| of an embedding host input: ``max|token| + max|position|``."""
    if host.op != "embedding":
        raise QuantizationRangeError(
            host.name, f"static bounds need an embedding host input (op {host.op!r} has no bound "
            "without data): pass calibration data instead"
        )
    return float(host.weight.detach().abs().max() + host.bias.detach().abs().max())


def _static_reasons(
    graph: FloatGraph, group: list[str], opts: StaticOptions, s: float
) -> list[str]:
    limit = _bias_limit_wu(opts)
    reasons: list[str] = []
    for n in (graph.node(name) for name in group):
        tau = input_divisor(graph, n.name)
        row: torch.Tensor | float = 0.0
        for f in (graph.node(x) for x in current_feeders(graph, n.name)):
            if isinstance(f, FHostInput):
                d = s * host_drive_bound(f) / tau
                reasons += [f"drive {d:.0f} wu > {limit:.0f}"] if d > limit else []
            elif isinstance(f, FSynapse):
                real = f.weight.detach() * (s / tau)
                mode = sign_mode_for(f.weight)
                frac = float(weight_clipped(real, mode).double().mean())
                if frac > opts.max_clip_fraction:
                    reasons.append(f"{f.name}: {100 * frac:.3f}% of weights clip at 8 bits")
                row = row + weight_grid(real, mode).abs().reshape(real.shape[0], -1).sum(1)
            else:
                raise QuantizationRangeError(
                    n.name, f"static bounds cover host inputs and synapses, not {f.name!r}"
                )
        if isinstance(n, FLIF) and isinstance(row, torch.Tensor):
            mant = (n.bias.detach() * (s / bias_divisor(graph, n.name))).abs().reshape(-1)
            if float(mant.max()) > limit:
                reasons.append(f"bias {float(mant.max()):.0f} wu > {limit:.0f}")
            if float((row + mant).max()) > STATIC_SUM_MAX:
                reasons.append(f"Σ|w| + |bias| = {float((row + mant).max()):.0f} wu > "
                               f"{STATIC_SUM_MAX}")
        reasons = _vth_reasons(n, s) + reasons
    return reasons


def static_plan(graph: FloatGraph, opts: StaticOptions) -> QuantPlan:
    """The plan from static bounds (module doc); needs no calibration data."""
    scales: dict[str, float] = {}
    for group in scale_groups(graph):
        s = largest_scale(group[0], opts.max_log2_scale,
                          lambda s, g=group: _static_reasons(graph, g, opts, s))
        scales.update(dict.fromkeys(group, s))
    bias_exps: dict[str, int] = {}
    for node in graph.nodes:
        if isinstance(node, FLIF):
            beta = fixed.V_PER_WU * scales[node.name] * float(node.bias.detach().abs().max())
            bias_exps[node.name] = _static_bias_exp(beta / bias_divisor(graph, node.name),
                                                    graph.T, opts)
    for node in graph.nodes:
        if isinstance(node, FHostInput):
            (lif,) = current_consumers(graph, node.name)
            beta = fixed.V_PER_WU * scales[lif] * host_drive_bound(node) / input_divisor(graph,
                                                                                         lif)
            bias_exps[node.name] = bias_exps[lif] = _static_bias_exp(beta, graph.T, opts)
    syns = [n for n in graph.nodes if isinstance(n, FSynapse)]
    return QuantPlan(scales=scales, bias_exps=bias_exps,
                     sign_modes={n.name: sign_mode_for(n.weight) for n in syns},
                     weight_exps=dict.fromkeys((n.name for n in syns), 0))


def _static_bias_exp(max_abs_beta: float, T: int, opts: StaticOptions) -> int:
    return bias_exp_for(max_abs_beta, T) if opts.bias_exp is None else opts.bias_exp
