"""`LoihiNetwork` → core groups: what neurocores hold, in topological order.

- One group per neuron population placed on a neurocore: its compartments plus one synapse
  *replica* of every synapse layer feeding it (an edge delay is stored per synapse). A current
  arriving from an off-neurocore op (max-pool, attention) is a one-to-one graded input.
- One *relay* per off-neurocore consumer of currents (max-pool, readout) fed by neurocore
  synapse layers: graded compartments that forward the summed current.

Roles come from :data:`hardware.mapping.kinds.MAPPING_KINDS`; nothing here tests a layer's class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hardware.ir.layers import Layer
from hardware.ir.network import Edge, LoihiNetwork
from hardware.mapping.design_rules import (
    ON_NEUROCORE,
    delay_within_limit,
    graded_spikes_supported,
    known_placement,
    weight_bits_within_limit,
)
from hardware.mapping.kinds import Geometry, geometry, role, rule
from hardware.mapping.profiles import CoreLimits
from hardware.mapping.specs import GroupSpec, InputSpec

IDENTITY_WEIGHT_BITS = 1
"""A one-to-one graded input is stored as one 1-bit unit weight per axon."""
RELAY_PLACEMENT = "neurocore-L2"
"""Relay compartments send graded spikes: a Loihi 2 feature."""


@dataclass(frozen=True, kw_only=True)
class CoreGroup:
    """One core group: its spec, ``kind`` (``lif`` or ``relay``), placement label, the layer
    that anchors it in topological order (the population or the off-core consumer), and
    whether it receives (``graded_in``) or sends (``graded_out``) graded spikes."""

    spec: GroupSpec
    kind: str
    placement: str
    anchor: str
    graded_in: bool
    graded_out: bool


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


def _identity(src: Layer, delay: int, layout: Geometry) -> InputSpec:
    """A one-to-one graded current input (from an off-neurocore op) as a depthwise 1×1 conv."""
    return InputSpec(
        name=src.name,
        source=src.name,
        kind="conv",
        in_shape=layout,
        groups=layout[0],
        weight_bits=IDENTITY_WEIGHT_BITS,
        delay=delay,
        graded=True,
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
            inputs.append(_identity(src, e.delay, layout))
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
    )


def core_groups(net: LoihiNetwork, limits: CoreLimits) -> list[CoreGroup]:
    """Core groups in topological order; checks placements, delays, weight bits and the
    graded spikes that relays and graded inputs need."""
    groups = []
    for name in net.topological_order():
        layer = net.layer(name)
        known_placement(name, layer.placement)
        group = _group(net, layer, limits)
        if group is not None:
            groups.append(group)
    for g in groups:
        if g.graded_in or g.graded_out:
            graded_spikes_supported(g.spec.name, RELAY_PLACEMENT, limits)
    return groups


def offcore_spike_consumers(net: LoihiNetwork, name: str) -> int:
    """Routes from spike source `name` to consumers that are not neurocore synapses."""
    return sum(1 for e in net.out_edges(name) if not is_core_synapse(net.layer(e.dst)))
