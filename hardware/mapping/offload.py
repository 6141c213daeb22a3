"""Where a target without graded spikes (Loihi 1) runs what its neurocores cannot.

A Loihi 1 neurocore sends and receives binary spikes only, so no current can leave or enter
it. Every layer that would need one moves to the processor of the off-neurocore op it serves
(the op's own placement: ``embedded`` x86 or ``host``), until no current crosses:

- a population fed currents by an off-core op (max-pool, attention) runs there too, and sends
  its spikes back to the chip;
- a neurocore synapse layer feeding an off-core consumer of currents (max-pool, readout) runs
  there on the spikes it receives: moved when that is all it feeds, else replicated for that
  consumer (``<layer>@<consumer>``), the same integer sum the chip computes for its other
  consumers.

The result is a network with the same layers, weights and timing and other placements (plus
the replicas), and one :class:`Offload` record per moved or replicated layer, naming the op it
serves (its traffic category). What stays on the neurocores is labelled ``neurocore``: without
graded spikes or kernel sharing nothing there uses a Loihi 2 feature (a shared conv kernel
becomes explicit synapses). With graded spikes (Loihi 2) nothing moves: relays and graded
inputs carry the currents instead (:mod:`hardware.mapping.grouping`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hardware.ir.layers import Layer
from hardware.ir.network import Edge, LoihiNetwork
from hardware.mapping.grouping import (
    RELAY_PLACEMENT as L2_PLACEMENT,
)
from hardware.mapping.grouping import (
    is_core_synapse,
    is_population,
    on_core,
)
from hardware.mapping.kinds import OFFLOAD_CATEGORY, category


@dataclass(frozen=True, kw_only=True)
class Offload:
    """One layer moved (or replicated) off the neurocores: where to, why, and for which op."""

    layer: str
    placement: str
    reason: str
    category: str


def _moved(layer: Layer, placement: str, serves: str) -> Layer:
    return replace(layer, placement=placement, meta={**dict(layer.meta), OFFLOAD_CATEGORY: serves})


def _step(net: LoihiNetwork) -> tuple[LoihiNetwork, list[Offload]] | None:
    """One move or replication that removes one current crossing (None: none left)."""
    for e in net.edges:
        src, dst = net.layer(e.src), net.layer(e.dst)
        if src.OUTPUT != "current" or on_core(src) == on_core(dst):
            continue
        if not on_core(src) and is_population(dst):
            serves = category(src)
            layers = tuple(
                _moved(x, src.placement, serves) if x.name == dst.name else x for x in net.layers
            )
            note = Offload(
                layer=dst.name,
                placement=src.placement,
                reason=f"fed currents by {src.name} ({src.placement})",
                category=serves,
            )
            return replace(net, layers=layers), [note]
        if is_core_synapse(src) and not on_core(dst):
            return _off_core_synapse(net, src, dst, e)
    return None


def _off_core_synapse(
    net: LoihiNetwork, syn: Layer, consumer: Layer, edge: Edge
) -> tuple[LoihiNetwork, list[Offload]]:
    """Move synapse layer `syn` to off-core `consumer`'s processor, or replicate it there."""
    serves = category(consumer)
    where = consumer.placement
    if all(not on_core(net.layer(o.dst)) for o in net.out_edges(syn.name)):
        layers = tuple(_moved(x, where, serves) if x.name == syn.name else x for x in net.layers)
        reason = f"its currents feed {consumer.name} ({where})"
        note = Offload(layer=syn.name, placement=where, reason=reason, category=serves)
        return replace(net, layers=layers), [note]
    name = f"{syn.name}@{consumer.name}"
    copy = _moved(replace(syn, name=name), where, serves)
    edges = [x for x in net.edges if x != edge]
    edges += [Edge(src=f.src, dst=name, delay=f.delay) for f in net.in_edges(syn.name)]
    edges.append(Edge(src=name, dst=consumer.name, delay=edge.delay))
    reason = f"replica of {syn.name} computing {consumer.name}'s input from spikes ({where})"
    note = Offload(layer=name, placement=where, reason=reason, category=serves)
    return replace(net, layers=(*net.layers, copy), edges=tuple(edges)), [note]


def offload_currents(net: LoihiNetwork) -> tuple[LoihiNetwork, tuple[Offload, ...]]:
    """`net` with every current crossing between neurocores and off-core ops removed by moving
    or replicating layers (see the module docstring), and the moves made."""
    notes: list[Offload] = []
    while (step := _step(net)) is not None:
        net, made = step
        notes += made
    layers = tuple(
        replace(x, placement="neurocore") if x.placement == L2_PLACEMENT else x for x in net.layers
    )
    return replace(net, layers=layers), tuple(notes)
