"""What runs where (ops and neurons per placement label) and the off-neurocore traffic per image.

Ops are dense-equivalent (every connection every step; synapse replicas counted, per
:func:`hardware.mapping.kinds.layer_ops_per_image`). Traffic counts every element every step:
spikes cost 1 bit per neuron per step (a bitmap; event coding would cost spikes × address
bits), currents ``GRADED_PAYLOAD_BITS`` per value per step, injected biases
``BIAS_PAYLOAD_BITS`` per neuron once per image.
"""

from __future__ import annotations

import math
from types import MappingProxyType

from hardware.ir import fixed
from hardware.ir.layers import PLACEMENTS, Layer
from hardware.ir.network import LoihiNetwork
from hardware.mapping.grouping import RELAY_PLACEMENT, is_core_synapse, on_core
from hardware.mapping.kinds import category, layer_ops_per_image, role
from hardware.mapping.records import PlacementShare, Traffic

GRADED_PAYLOAD_BITS = 24
"""Bits per current value sent off-core (Lava's graded messages: 24 bits)."""
BIAS_PAYLOAD_BITS = fixed.BIAS_MANT_BITS + fixed.BIAS_EXP_BITS
"""Bits per injected bias: 13-bit mantissa + 3-bit exponent = 16."""


def _relay_neurons(net: LoihiNetwork, layer: Layer) -> int:
    """Relay compartments forwarding neurocore currents to off-core `layer` (0: none)."""
    if role(layer) not in ("op", "sink") or on_core(layer):
        return 0
    fed = any(is_core_synapse(net.layer(e.src)) for e in net.in_edges(layer.name))
    return math.prod(layer.in_shape) if fed else 0


def placement_summary(net: LoihiNetwork) -> tuple[PlacementShare, ...]:
    """Ops per image and neurons per placement label (relay compartments: `neurocore-L2`)."""
    ops = dict.fromkeys(PLACEMENTS, 0)
    neurons = dict.fromkeys(PLACEMENTS, 0)
    for layer in net.layers:
        ops[layer.placement] += layer_ops_per_image(net, layer)
        if role(layer) == "neurons":
            neurons[layer.placement] += math.prod(layer.out_shape)
        relay = _relay_neurons(net, layer)
        neurons[RELAY_PLACEMENT] += relay
        ops[RELAY_PLACEMENT] += relay * net.T
    total_ops, total_neurons = sum(ops.values()) or 1, sum(neurons.values()) or 1
    return tuple(
        PlacementShare(
            placement=p,
            ops=ops[p],
            neurons=neurons[p],
            op_fraction=ops[p] / total_ops,
            neuron_fraction=neurons[p] / total_neurons,
        )
        for p in PLACEMENTS
    )


def _domain(layer: Layer) -> str:
    return "chip" if on_core(layer) else layer.placement


def _category(src: Layer, dst: Layer) -> str:
    """The traffic category of an edge: its source's if a source, else the sink's, else the
    first off-core op's, else the op the consumer (or else the producer) was moved to serve."""
    if role(src) == "source":
        return category(src)
    if role(dst) == "sink":
        return category(dst)
    for layer in (src, dst):
        if role(layer) == "op":
            return category(layer)
    return next((c for c in (category(dst), category(src)) if c != "other"), "other")


def _edge_bits(net: LoihiNetwork, src: Layer, dst: Layer, from_chip: bool) -> int:
    """Bits one image sends along src → dst (currents into a relayed consumer: its input)."""
    if src.OUTPUT == "bias":
        return math.prod(src.out_shape) * BIAS_PAYLOAD_BITS
    if src.OUTPUT == "spikes":
        return math.prod(src.out_shape) * net.T
    elements = math.prod(dst.in_shape) if from_chip else math.prod(src.out_shape)
    return elements * GRADED_PAYLOAD_BITS * net.T


def traffic_per_image(net: LoihiNetwork) -> Traffic:
    """Bits crossing neurocore ↔ embedded and chip ↔ host for one image (every step, dense).

    Currents of several on-chip synapse layers into one off-chip consumer are summed by its
    relay and sent once. Per-step exchanges count distinct off-neurocore layers that trade
    data with the chip every step.
    """
    host: dict[str, int] = {}
    embedded: dict[str, int] = {}
    exchanges: dict[str, set[str]] = {"host": set(), "embedded": set()}
    relayed: set[str] = set()
    for e in net.edges:
        src, dst = net.layer(e.src), net.layer(e.dst)
        a, b = _domain(src), _domain(dst)
        if a == b:
            continue
        from_chip_current = a == "chip" and src.OUTPUT == "current"
        if from_chip_current and dst.name in relayed:
            continue
        if from_chip_current:
            relayed.add(dst.name)
        bucket = host if "host" in (a, b) else embedded
        cat = _category(src, dst)
        bucket[cat] = bucket.get(cat, 0) + _edge_bits(net, src, dst, a == "chip")
        if src.OUTPUT != "bias":
            off = dst if a == "chip" else src
            exchanges["host" if off.placement == "host" else "embedded"].add(off.name)
    outputs = [x for x in net.layers if role(x) == "neurons" and not net.out_edges(x.name)]
    for x in outputs:  # the network's outputs: spikes streamed to the host every step
        if on_core(x) or x.placement == "embedded":
            host["output"] = host.get("output", 0) + math.prod(x.out_shape) * net.T
    return Traffic(
        host_bits=MappingProxyType(host),
        embedded_bits=MappingProxyType(embedded),
        host_round_trips_per_step=len(exchanges["host"]),
        embedded_round_trips_per_step=len(exchanges["embedded"]),
    )
