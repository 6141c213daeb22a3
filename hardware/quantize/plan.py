"""`QuantPlan` (the per-layer choices of the quantizer) and the fake-quant transform of a graph.

:func:`fake_quantize` returns the :class:`FloatGraph` whose float parameters are exactly the
dequantized integers of the network :func:`hardware.quantize.image.quantize_graph` builds from the
same plan (Ŵ = τ·w/s, b̂ = τ·β/(64·s), θ̂ = vth/s; host currents on the bias grid). Run with the
strict ``>`` rule it is the fake-quant twin; with ``ste=True`` its rounding passes gradients
straight through, for hardware-aware fine-tuning.

The attention LIF is special (DESIGN §5): on Loihi it gets ``a = P`` (scale s = τ/qk_scale = 16),
``vth = θ·s = 8`` and, when the float model fires on ``>=``, a tie-break bias of 1 v-unit, which
makes Loihi's ``v > 512`` equal the float ``H ≥ θ`` exactly; its twin therefore keeps bias 0
and compares with ``>=``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hardware.ir import fixed
from hardware.ir.grid import bias_grid, weight_grid
from hardware.lower.float_graph import (
    FLIF,
    FAttention,
    FHostInput,
    FloatGraph,
    FloatGraphError,
    FMaxPool,
    FNode,
    FReadout,
    FSynapse,
)

#: v-units per wu (``a << 6``).
V_PER_WU = 1 << fixed.ACT_SHIFT


@dataclass(frozen=True, kw_only=True)
class QuantPlan:
    """The quantizer's choices. ``scales``: LIF/readout name → s (power of two); ``bias_exps``:
    LIF / host-input name → bias exponent; ``sign_modes``: synapse name → Lava sign mode;
    ``weight_exps``: synapse name → weight exponent e ≥ 0 (token-linear only; the effective
    weight is ``w·2^e`` wu; absent = 0)."""

    scales: Mapping[str, float]
    bias_exps: Mapping[str, int] = field(default_factory=dict)
    sign_modes: Mapping[str, str] = field(default_factory=dict)
    weight_exps: Mapping[str, int] = field(default_factory=dict)
    num_weight_bits: int = fixed.NUM_WEIGHT_BITS_MAX


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


def fake_quantize(graph: FloatGraph, plan: QuantPlan, *, ste: bool = False) -> FloatGraph:
    """The graph with every parameter replaced by its dequantized grid value (see module doc)."""
    tau = graph.tau
    new: dict[str, FNode] = {}
    for node in graph.nodes:
        if isinstance(node, FSynapse):
            s = consumer_scale(graph, plan, node.name)
            mode = plan.sign_modes[node.name]
            unit = float(1 << plan.weight_exps.get(node.name, 0))  # wu per mantissa step
            w = weight_grid(node.weight * (s / (tau * unit)), mode, plan.num_weight_bits, ste=ste)
            new[node.name] = FSynapse(
                name=node.name, kind=node.kind, weight=w * (unit * tau / s),
                in_shape=node.in_shape,
                out_shape=node.out_shape, stride=node.stride, padding=node.padding,
                meta=node.meta,
            )
        elif isinstance(node, FHostInput):
            s = consumer_scale(graph, plan, node.name)
            new[node.name] = FHostInput(
                name=node.name, weight=node.weight, bias=node.bias, in_shape=node.in_shape,
                out_shape=node.out_shape, stride=node.stride, padding=node.padding,
                bias_scale=V_PER_WU * s / tau, bias_exp=plan.bias_exps[node.name], ste=ste,
                op=node.op, meta=node.meta,
            )
        elif isinstance(node, FLIF):
            s = plan.scales[node.name]
            if node.role == "attention" and graph.compare == ">=":
                new[node.name] = FLIF(
                    name=node.name, shape=node.shape, theta=node.theta, tau=node.tau,
                    bias=node.bias * 0.0, role=node.role, compare=">=", meta=node.meta,
                )
                continue
            beta = bias_grid(node.bias * (V_PER_WU * s / tau), plan.bias_exps[node.name],
                             ste=ste)
            new[node.name] = FLIF(
                name=node.name, shape=node.shape, theta=round(node.theta * s) / s,
                tau=node.tau, bias=beta * (tau / (V_PER_WU * s)), role=node.role,
                meta=node.meta,
            )
        elif not isinstance(node, FMaxPool | FAttention | FReadout):
            raise FloatGraphError(f"fake_quantize: no rule for {type(node).__name__} {node.name!r}")
    return graph.replace(new)
