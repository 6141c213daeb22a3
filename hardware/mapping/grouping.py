"""`LoihiNetwork` → core groups: what neurocores hold, in topological order.

- One group per neuron population placed on a neurocore: its compartments plus one synapse
  *replica* of every synapse layer feeding it (an edge delay is stored per synapse), and its
  recurrent synapse (a recurrent LIF's ``rec_weights``: a dense N×N input ``<lif>:rec`` whose
  source is the population itself). A current
  arriving from an off-neurocore op (max-pool, attention) is a one-to-one graded input.
- One *relay* per off-neurocore consumer of currents (max-pool, readout) fed by neurocore
  synapse layers: graded compartments that forward the summed current.

Roles come from :data:`hardware.mapping.kinds.MAPPING_KINDS`; nothing here tests a layer's class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from hardware.ir.layers import Layer
from hardware.ir.network import Edge, LoihiNetwork
from hardware.mapping.design_rules import (
    ON_NEUROCORE,
    delay_within_limit,
    graded_spikes_supported,
    known_placement,
    weight_bits_within_limit,
)
from hardware.mapping.kinds import Geometry, feedback, geometry, role, rule
from hardware.mapping.profiles import CoreLimits
from hardware.mapping.specs import GroupSpec, InputSpec

IDENTITY_WEIGHT_BITS = 1
"""A one-to-one graded input is stored as one 1-bit unit weight per axon."""
RELAY_PLACEMENT = "neurocore-L2"
"""Relay compartments send graded spikes: a Loihi 2 feature."""


@dataclass(frozen=True, kw_only=True)
class CoreGroup:
    """One core group: its spec, ``kind`` (``lif``, ``relay`` or ``accumulator``), placement
    label, the layer that anchors it in topological order (the population, the off-core
    consumer, or the population whose input sum an accumulator materializes), and whether it
    receives (``graded_in``) or sends (``graded_out``) graded spikes. ``source``: the name its
    consumers' inputs give as their source (the population's, or the accumulator's own);
    ``feeds_cores``: a relay whose graded output feeds neurocore groups (an accumulator) rather
    than an off-core op."""

    spec: GroupSpec
    kind: str
    placement: str
    anchor: str
    graded_in: bool
    graded_out: bool
    source: str = ""
    feeds_cores: bool = False


def on_core(layer: Layer) -> bool:
    """Whether ``layer`` runs on a neurocore."""
    return layer.placement in ON_NEUROCORE


def is_core_synapse(layer: Layer) -> bool:
    """A synapse layer stored on neurocores."""
    return role(layer) == "synapse" and on_core(layer)


def is_population(layer: Layer) -> bool:
    """A neuron population placed on neurocores."""
    return role(layer) == "neurons" and on_core(layer)


def _takes_currents_off_core(layer: Layer) -> bool:
    """An off-neurocore layer that consumes currents (needs a relay when neurocore synapses
    feed it)."""
    return role(layer) in ("neurons", "op", "sink") and not on_core(layer)


def _layout(net: LoihiNetwork, layer: Layer) -> Geometry:
    """The group's ``(C, H, W)``: the neuron shape (a relay: the consumer's input shape), laid
    out as the conv feeding it when one does (tokens as the conv's ``h × w`` grid)."""
    shape = layer.shape if role(layer) == "neurons" else layer.in_shape  # type: ignore[attr-defined]
    layout = geometry(shape)
    for e in net.in_edges(layer.name):
        src = net.layer(e.src)
        if src.KIND == "conv" and on_core(src):
            if math.prod(src.out_shape) == math.prod(layout):
                return geometry(src.out_shape)
            break
    return layout


def _replicas(
    net: LoihiNetwork, syn: Layer, edge: Edge, layout: Geometry, limits: CoreLimits
) -> list[InputSpec]:
    """One input per edge feeding synapse layer `syn` (its source spikes), with the summed
    delay of both edges; checks the weight bits and delays against `limits`."""
    weight_bits_within_limit(syn.name, syn.num_weight_bits, limits)  # type: ignore[attr-defined]
    spec_of = rule(syn).synapse
    out = []
    for feed in net.in_edges(syn.name):
        delay = feed.delay + edge.delay
        delay_within_limit(syn.name, delay, limits)
        out.append(spec_of(syn, feed.src, delay, layout))  # type: ignore[misc]
    return out


def identity(src: str, delay: int, layout: Geometry, *, host: bool = False) -> InputSpec:
    """A one-to-one graded current input from `src` (an off-neurocore op, a relay, or the host)
    as a depthwise 1×1 conv."""
    return InputSpec(
        name=src,
        source=src,
        kind="conv",
        in_shape=layout,
        groups=layout[0],
        weight_bits=IDENTITY_WEIGHT_BITS,
        delay=delay,
        graded=True,
        host=host,
    )


def _inputs(
    net: LoihiNetwork, layer: Layer, layout: Geometry, limits: CoreLimits
) -> tuple[list[InputSpec], bool]:
    """The group inputs of `layer` and whether one of them is a graded current."""
    inputs: list[InputSpec] = []
    graded = False
    for e in net.in_edges(layer.name):
        src = net.layer(e.src)
        if src.OUTPUT == "bias":
            continue  # a bias edge: written once per image, no synapses
        if is_core_synapse(src):
            inputs += _replicas(net, src, e, layout, limits)
        elif is_population(layer):
            graded = True
            delay_within_limit(src.name, e.delay, limits)
            inputs.append(identity(src.name, e.delay, layout, host=role(src) == "source"))
    rec = feedback(layer)
    if rec is not None:
        weight_bits_within_limit(rec.name, rec.weight_bits, limits)
        inputs.append(rec)
    return inputs, graded


def _group(net: LoihiNetwork, layer: Layer, limits: CoreLimits) -> CoreGroup | None:
    """The core group anchored at `layer`, or None."""
    population = is_population(layer)
    if not (population or _takes_currents_off_core(layer)):
        return None
    layout = _layout(net, layer)
    inputs, graded = _inputs(net, layer, layout, limits)
    if not population and not inputs:
        return None
    # One neuron profile per layer: du, dv and vth are per layer in the schema (bias is per
    # compartment state, not a profile).
    spec = GroupSpec(
        name=layer.name if population else f"relay:{layer.name}",
        shape=layout,
        inputs=tuple(inputs),
        neuron_groups=1,
    )
    return CoreGroup(
        spec=spec,
        kind="lif" if population else "relay",
        placement=layer.placement if population else RELAY_PLACEMENT,
        anchor=layer.name,
        graded_in=graded,
        graded_out=not population,
        source=layer.name,
    )


def core_groups(
    net: LoihiNetwork, limits: CoreLimits, *, accumulate: bool = False
) -> list[CoreGroup]:
    """Core groups in topological order; checks placements, delays, weight bits and the
    graded spikes that relays and graded inputs need. ``accumulate``: sums of synapse layers
    shared by several groups are materialized once (:func:`accumulate_sums`)."""
    groups = []
    for name in net.topological_order():
        layer = net.layer(name)
        known_placement(name, layer.placement)
        group = _group(net, layer, limits)
        if group is not None:
            groups.append(group)
    if accumulate:
        groups = accumulate_sums(net, groups, limits)
    for g in groups:
        if g.graded_in or g.graded_out:
            graded_spikes_supported(g.spec.name, RELAY_PLACEMENT, limits)
    return groups


def offcore_spike_consumers(net: LoihiNetwork, name: str) -> int:
    """Routes from spike source `name` to consumers that are not neurocore synapses."""
    return sum(1 for e in net.out_edges(name) if not is_core_synapse(net.layer(e.dst)))


# --------------------------------------------------------------------------------------------
# Accumulators: a sum of synapse layers that several groups receive, materialized once.


def _summed(g: CoreGroup) -> frozenset[str]:
    """The synapse layers whose currents `g` sums (graded and host inputs excluded)."""
    return frozenset(s.name for s in g.spec.inputs if not s.graded)


def _prefixes(groups: list[CoreGroup]) -> tuple[dict[str, str | None], dict[frozenset, str]]:
    """For each group, the earlier group whose summed set is the largest proper subset of its
    own (None: none), and the first group of each summed set (its owner)."""
    prefix: dict[str, str | None] = {}
    owner: dict[frozenset, str] = {}
    sets = {g.spec.name: _summed(g) for g in groups}
    for g in groups:
        mine = sets[g.spec.name]
        smaller = [o for s, o in owner.items() if s and s < mine]
        prefix[g.spec.name] = max(smaller, key=lambda o: len(sets[o]), default=None)
        if mine:
            owner.setdefault(mine, g.spec.name)
    return prefix, owner


def _materialized(
    groups: list[CoreGroup], prefix: dict[str, str | None], owner: dict[frozenset, str]
) -> set[str]:
    """Owners whose sum is worth one accumulator: a prefix of another group's sum, or shared
    by several groups."""
    used = {p for p in prefix.values() if p is not None}
    for g in groups:
        first = owner.get(_summed(g))
        if first is not None and first != g.spec.name:
            used.add(first)
    return used


def _acc_name(owner: str) -> str:
    return f"acc:{owner}"


def _rebuilt_inputs(
    net: LoihiNetwork, g: CoreGroup, prefix: str | None, by_name: dict[str, CoreGroup],
    limits: CoreLimits,
) -> list[InputSpec]:  # fmt: skip
    """The summed inputs of `g` with its prefix's sum taken from that prefix's accumulator
    (delayed by the depth between the two groups' anchors)."""
    own = [s for s in g.spec.inputs if not s.graded]
    if prefix is None:
        return own
    done = _summed(by_name[prefix])
    delay = net.depth(g.anchor) - net.depth(by_name[prefix].anchor)
    delay_within_limit(_acc_name(prefix), delay, limits)
    acc = identity(_acc_name(prefix), delay, g.spec.shape)
    return [acc] + [s for s in own if s.name not in done]


def _accumulator(g: CoreGroup, inputs: list[InputSpec]) -> CoreGroup:
    """The accumulator that materializes `g`'s sum from `inputs`."""
    name = _acc_name(g.spec.name)
    spec = GroupSpec(name=name, shape=g.spec.shape, inputs=tuple(inputs), neuron_groups=1)
    return CoreGroup(
        spec=spec,
        kind="accumulator",
        placement=RELAY_PLACEMENT,
        anchor=g.anchor,
        graded_in=any(s.graded for s in inputs),
        graded_out=True,
        source=name,
        feeds_cores=True,
    )


def accumulate_sums(
    net: LoihiNetwork, groups: list[CoreGroup], limits: CoreLimits
) -> list[CoreGroup]:
    """`groups` with shared input sums materialized by accumulators (graded relays).

    Where group B sums the synapse layers of an earlier group A and more (A's set is the
    largest proper subset of B's; the residual stream: X grows by one branch per consumer),
    A's sum is materialized once by an accumulator, which A and B receive as one graded
    one-to-one input (B with a synaptic delay of depth(B) − depth(A), aligning it with B's
    own extra branches, which it keeps). A chain of k accumulators adds k steps to the chip's
    pipeline (:func:`accumulator_levels`). Each synapse layer is then stored once instead of
    once per consumer.
    """
    prefix, owner = _prefixes(groups)
    used = _materialized(groups, prefix, owner)
    by_name = {g.spec.name: g for g in groups}
    out: list[CoreGroup] = []
    for g in groups:
        name = g.spec.name
        inputs = _rebuilt_inputs(net, g, prefix[name], by_name, limits)
        first = owner.get(_summed(g))
        kept = [s for s in g.spec.inputs if s.graded]
        if name in used:
            out.append(_accumulator(g, inputs))
            inputs = [identity(_acc_name(name), 0, g.spec.shape)]
        elif first is not None and first != name and first in used:
            delay = net.depth(g.anchor) - net.depth(by_name[first].anchor)
            inputs = [identity(_acc_name(first), delay, g.spec.shape)]
        spec = GroupSpec(
            name=name, shape=g.spec.shape, inputs=tuple(kept + inputs), neuron_groups=1
        )
        graded = g.graded_in or any(s.graded for s in inputs)
        out.append(replace(g, spec=spec, graded_in=graded))
    return out


def accumulator_levels(groups: list[CoreGroup]) -> int:
    """The longest chain of accumulators (each adds one step to the chip's pipeline)."""
    level: dict[str, int] = {}
    for g in groups:
        if g.kind == "accumulator":
            feeding = [level.get(s.source, 0) for s in g.spec.inputs]
            level[g.spec.name] = 1 + max(feeding, default=0)
    return max(level.values(), default=0)
