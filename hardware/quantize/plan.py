"""The quantizer's choices (`QuantPlan`), its options, and the rounding rules every backend shares.

A plan holds one power-of-two scale ``s`` per LIF / readout group, a bias exponent per LIF and
host input, a sign mode and a weight exponent per synapse. Two policies choose it
(:mod:`hardware.quantize.scales`): from calibration data (:class:`QuantOptions`) or from static
worst-case bounds (:class:`StaticOptions`, no data; the netx text export's policy with its fixed
``bias_exp = 6``).

The rounding rules of a plan (units: :mod:`hardware.ir.grid`): a weight W becomes the mantissa
``w = grid(W·s/(τ·2^e))`` (:func:`weight_mantissas`); a LIF bias b becomes
``β̂ = bias_grid(64·s·b/τ, bias_exp)`` v-units (:func:`bias_on_grid`); a host current x is injected
as ``bias_grid(x·host_bias_scale(s, τ), bias_exp)``. ``τ`` here is the consumer neuron's input
divisor ``D`` (:func:`input_divisor`): τ̂ = 4096/dv for a leaky neuron (τ itself when 4096/τ is
an integer, as SpikeCLIP's τ = 2), 1 for an integrator, times τ̂_syn = 4096/(du + 1) for a
CUBA neuron; a bias uses the membrane part alone (:func:`bias_divisor`). The builder
(:mod:`hardware.quantize.build`) and the fake-quant twin (:mod:`hardware.quantize.twin`) both
call these, so the integers and their float twin come from one rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from torch import Tensor

from hardware.ir import fixed
from hardware.ir.grid import bias_grid, weight_grid
from hardware.lower.float_graph import (
    FLIF,
    FAttention,
    FHostInput,
    FloatGraph,
    FloatGraphError,
    FMaxPool,
    FReadout,
    FSynapse,
)
from spikeclip.errors import DoesNotFitError, UsageError


class QuantizationRangeError(DoesNotFitError, ValueError):
    """A layer's observed range cannot fit the 24-bit state / 8-bit weight / 13-bit bias limits.

    ``layer`` names it; the message says which limit and what to change.
    """

    def __init__(self, layer: str, reason: str) -> None:
        self.layer = layer
        super().__init__(f"quantize: layer {layer!r}: {reason}")


@dataclass(frozen=True, kw_only=True)
class QuantOptions:
    """Scales from calibration data. ``margin``: factor between the observed calibration
    maximum and the hard limit; ``max_clip_fraction``: share of a group's weights allowed to
    clip at the 8-bit range; ``max_log2_scale``: the largest scale tried is 2**max_log2_scale;
    ``host_exp_per_value``: the host injects each current at its own bias exponent (floor
    ``T − 1``, :func:`hardware.ir.fixed.host_bias_exp`) instead of one exponent per layer that
    holds the largest."""

    margin: float = 2.0
    max_clip_fraction: float = 1e-4
    max_log2_scale: int = 12
    host_exp_per_value: bool = True


@dataclass(frozen=True, kw_only=True)
class StaticOptions:
    """Scales from static worst-case bounds, no calibration data (module doc of
    :mod:`hardware.quantize.scales`). ``bias_exp``: one bias exponent for every LIF bias and
    host injection (lava-dl netx fixes 6); ``None`` picks the smallest ≥ T − 1 per layer.
    Weight exponents are 0. ``max_clip_fraction`` / ``max_log2_scale`` as in QuantOptions."""

    bias_exp: int | None = None
    max_clip_fraction: float = 1e-4
    max_log2_scale: int = 12

    def __post_init__(self) -> None:
        if self.bias_exp is not None and not (
            fixed.BIAS_EXP_MIN <= self.bias_exp <= fixed.BIAS_EXP_MAX
        ):
            raise UsageError(
                f"StaticOptions: bias_exp {self.bias_exp} is outside "
                f"{fixed.BIAS_EXP_MIN} … {fixed.BIAS_EXP_MAX}"
            )


@dataclass(frozen=True, kw_only=True)
class QuantPlan:
    """The quantizer's choices. ``scales``: LIF/readout name → s (power of two); ``bias_exps``:
    LIF / host-input name → bias exponent; ``sign_modes``: synapse name → Lava sign mode;
    ``weight_exps``: synapse name → weight exponent e ≥ 0 (token-linear only; the effective
    weight is ``w·2^e`` wu; absent = 0); ``host_exp_per_value``: host inputs inject each value
    at its own exponent, their ``bias_exps`` entry being the floor."""

    scales: Mapping[str, float]
    bias_exps: Mapping[str, int] = field(default_factory=dict)
    sign_modes: Mapping[str, str] = field(default_factory=dict)
    weight_exps: Mapping[str, int] = field(default_factory=dict)
    num_weight_bits: int = fixed.NUM_WEIGHT_BITS_MAX
    host_exp_per_value: bool = False


# ---------------------------------------------------------------------------------------------
# The rounding rules of a plan (shared by the builder and the fake-quant twin).
# ---------------------------------------------------------------------------------------------


def weight_mantissas(
    weight: Tensor, s: float, tau: float, weight_exp: int, sign_mode: str,
    num_weight_bits: int = fixed.NUM_WEIGHT_BITS_MAX, *, ste: bool = False,
) -> tuple[Tensor, Tensor]:
    """``(real, w)``: the real weights ``W·s/(τ·2^e)`` (wu per mantissa step) and their grid
    mantissas ``w = weight_grid(real)`` (float64, integer-valued; ``ste``: straight-through)."""
    real = weight * (s / (tau * (1 << weight_exp)))
    return real, weight_grid(real, sign_mode, num_weight_bits, ste=ste)


def bias_on_grid(
    bias: Tensor, s: float, tau: float, bias_exp: int, *, ste: bool = False
) -> tuple[Tensor, Tensor]:
    """``(β, β̂)``: the exact bias ``β = 64·s·b/τ`` v-units and its ``mant << bias_exp`` grid
    value (round half up, 13-bit saturation)."""
    beta = bias * (fixed.V_PER_WU * s / tau)
    return beta, bias_grid(beta, bias_exp, ste=ste)


def host_bias_scale(s: float, tau: float) -> float:
    """v-units per unit of host current injected into a LIF of scale ``s``: ``64·s/τ``."""
    return fixed.V_PER_WU * s / tau


# ---------------------------------------------------------------------------------------------
# A float neuron's Loihi decays and the divisors they give (units: DESIGN §4).
# ---------------------------------------------------------------------------------------------


def lif_decays(node: FLIF) -> tuple[int, int]:
    """Loihi's ``(du, dv)`` (unsigned 12-bit) for a float neuron, rounded to nearest (ties to
    even): ``dv = round(4096/τ)`` (0 for an integrator, τ = inf), ``du = round(4096/τ_syn) − 1``
    (4095, u forgets at once, without a synaptic current). The deployed neuron is the float one
    with τ̂ = 4096/dv, τ̂_syn = 4096/(du + 1) (:func:`decay_taus`); the fidelity report shows the
    effect. Raises :class:`QuantizationRangeError` for τ = 1 (dv = 4096 > 4095) or a τ so long
    that its decay rounds to 0 (τ > 8192 steps; an IF neuron has τ = inf instead)."""
    finite = {"τ": node.tau, "τ_syn": node.tau_syn}
    rounded = {k: round(fixed.DECAY_UNITY / t) for k, t in finite.items()
               if t is not None and t != float("inf")}
    for what, r in rounded.items():
        if not 1 <= r <= fixed.DECAY_MAX + (what == "τ_syn"):
            raise QuantizationRangeError(
                node.name, f"{what} = {finite[what]:g} steps has no 12-bit decay "
                f"(4096/{what} rounds to {r})")
    dv = rounded.get("τ", 0)
    du = rounded["τ_syn"] - fixed.DU_OFFSET if "τ_syn" in rounded else fixed.DU_NO_MEMORY
    return du, dv


def decay_taus(du: int, dv: int) -> tuple[float, float | None]:
    """The time constants a LIF runs with: ``(τ̂, τ̂_syn)`` = ``(4096/dv, 4096/(du + 1))``,
    τ̂ = inf for ``dv = 0`` (IF) and τ̂_syn ``None`` for ``du = 4095`` (no synaptic current)."""
    tau = fixed.DECAY_UNITY / dv if dv else float("inf")
    tau_syn = None if du == fixed.DU_NO_MEMORY else fixed.DECAY_UNITY / (du + fixed.DU_OFFSET)
    return tau, tau_syn


def divisors(du: int, dv: int) -> tuple[float, float]:
    """``(D, D_v)``: a current X reaches v as ``64·s·X/D`` per step (a = s·X/D wu), a bias b as
    ``64·s·b/D_v`` v-units; ``D_v`` = τ̂ (1 for IF), ``D = D_v·τ̂_syn`` (``D_v`` without)."""
    tau, tau_syn = decay_taus(du, dv)
    d_v = 1.0 if dv == 0 else tau
    return d_v * (tau_syn or 1.0), d_v


def vth_mantissa(theta: float, s: float) -> int | None:
    """Loihi's threshold mantissa ``n`` for a float threshold θ at scale ``s``, or None when θ
    is not on Loihi's grid (or ``n > VTH_MAX``).

    Loihi fires on ``v > 64·n`` (integer v). The float rule ``H ≥ θ`` is ``v ≥ 64·θ·s``, which
    fires on exactly the same integer v when ``64·θ·s`` lies strictly between ``64·n`` and
    ``64·n + 1``, and differs only at exact ties (``v = 64·n``) when it equals ``64·n``. So
    ``n = ⌊θ·s⌋`` is accepted when ``64·(θ·s − n) < 1``:
    :func:`hardware.quantize.grid_snap.tie_threshold` puts a snapped model's θ there, so that
    its float spikes equal Loihi's at ties too.
    """
    n = math.floor(theta * s)
    if (1 << fixed.VTH_SHIFT) * (theta * s - n) >= 1 or not 0 <= n <= fixed.VTH_MAX:
        return None
    return n


def lif_vth(node: FLIF, s: float) -> int:
    """The threshold mantissa (:func:`vth_mantissa`); an LI's (θ = inf, never fires) is
    ``VTH_MAX``, which its v stays below (calibration bounds its |v|·margin by ``64·VTH_MAX``).
    Raises :class:`QuantizationRangeError` when θ·s is off the grid."""
    if node.role == "li":
        return fixed.VTH_MAX
    n = vth_mantissa(node.theta, s)
    if n is None:
        raise QuantizationRangeError(node.name, vth_off_grid(node.theta, s))
    return n


def vth_off_grid(theta: float, s: float) -> str:
    """Why θ at scale ``s`` has no threshold mantissa (:func:`vth_mantissa` returned None)."""
    return (f"vth = θ·s = {theta * s:g} is not an integer ≤ {fixed.VTH_MAX} (nor less than "
            f"1/64 above one)")


def reset_sub_v(node: FLIF, s: float) -> int | None:
    """Reset by subtraction in v-units: ``round(64·s·Δ)`` for the float ``V ← H − Δ`` of a
    spiking neuron (None: reset to 0). Raises :class:`QuantizationRangeError` past 2²³ − 1."""
    if node.reset_sub is None:
        return None
    r = round(fixed.V_PER_WU * s * node.reset_sub)
    if not 0 <= r <= fixed.V_MAX:
        raise QuantizationRangeError(
            node.name, f"reset by subtraction of {r} v-units is outside 0 … {fixed.V_MAX}")
    return r


def _lif_divisors(graph: FloatGraph, name: str) -> tuple[float, float]:
    node = graph.node(name)
    if not isinstance(node, FLIF):
        return graph.tau, graph.tau  # the host readout decodes with the graph's τ
    return divisors(*lif_decays(node))


def input_divisor(graph: FloatGraph, name: str) -> float:
    """``D`` of the LIF (or readout: the graph's τ) ``name``: :func:`divisors`."""
    return _lif_divisors(graph, name)[0]


def bias_divisor(graph: FloatGraph, name: str) -> float:
    """``D_v`` of the LIF (or readout: the graph's τ) ``name``: :func:`divisors`."""
    return _lif_divisors(graph, name)[1]


def feeder_divisor(graph: FloatGraph, name: str) -> float:
    """The one input divisor of every consumer of ``name``'s current (error if they differ)."""
    ds = {input_divisor(graph, c) for c in current_consumers(graph, name)}
    if len(ds) != 1:
        raise FloatGraphError(
            f"node {name!r}: its consumers need one input divisor (τ̂·τ̂_syn), got {sorted(ds)}")
    return ds.pop()


# ---------------------------------------------------------------------------------------------
# Graph helpers.
# ---------------------------------------------------------------------------------------------


def current_consumers(graph: FloatGraph, name: str) -> tuple[str, ...]:
    """The LIF/readout nodes a current-producing node feeds (through max-pools)."""
    found: list[str] = []
    for dst in graph.consumers(name):
        node = graph.node(dst)
        if isinstance(node, FMaxPool):
            found.extend(current_consumers(graph, dst))
        elif isinstance(node, FLIF | FReadout):
            found.append(dst)
    return tuple(found)


def current_feeders(graph: FloatGraph, name: str) -> tuple[str, ...]:
    """The current-producing nodes (synapse, host input, attention) feeding ``name`` (through
    max-pools): the inverse of :func:`current_consumers`."""
    found: list[str] = []
    for src in graph.inputs(name):
        if isinstance(graph.node(src), FMaxPool):
            found.extend(current_feeders(graph, src))
        else:
            found.append(src)
    return tuple(found)


def consumer_scale(graph: FloatGraph, plan: QuantPlan, name: str) -> float:
    """The one scale shared by every consumer of ``name``'s current (error if they differ)."""
    scales = {plan.scales[c] for c in current_consumers(graph, name)}
    if len(scales) != 1:
        raise FloatGraphError(
            f"node {name!r}: its consumers need one shared scale, plan gives {sorted(scales)}"
        )
    return scales.pop()


def scale_groups(graph: FloatGraph) -> list[list[str]]:
    """LIF/readout names that must share a scale (they share an input synapse), graph order."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for node in graph.nodes:
        if isinstance(node, FLIF | FReadout):
            find(node.name)
        if isinstance(node, FSynapse | FHostInput | FAttention):
            cons = current_consumers(graph, node.name)
            for c in cons[1:]:
                parent[find(c)] = find(cons[0])
    groups: dict[str, list[str]] = {}
    for node in graph.nodes:
        if isinstance(node, FLIF | FReadout):
            groups.setdefault(find(node.name), []).append(node.name)
    return list(groups.values())


def largest_scale(
    layer: str, max_log2_scale: int, reasons_at: Callable[[float], list[str]], hint: str = ""
) -> float:
    """The largest ``s = 2**k`` (k = max_log2_scale … 0) for which ``reasons_at(s)`` is empty.

    Raises :class:`QuantizationRangeError` naming ``layer`` with the reasons at s = 1 (+ hint).
    """
    reasons: list[str] = []
    for k in range(max_log2_scale, -1, -1):
        reasons = reasons_at(float(1 << k))
        if not reasons:
            return float(1 << k)
    raise QuantizationRangeError(
        layer, "no power-of-two scale s ≥ 1 fits (at s = 1: " + "; ".join(reasons) + ")" + hint
    )
