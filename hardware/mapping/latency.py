"""Time per step and per image of a scenario (seconds), from its core groups and traffic.

Per step: the slowest core + barrier + mesh hops, then the embedded and host work on the
per-step path. Neurocore: max over groups of (connections/core × spike_rate × t_syn +
neurons × t_update + out axons × spike_rate × t_spike), + barrier + 2·sqrt(cores/chip) hops.
Embedded: the slowest embedded layer, its per-step ops spread over its share of the x86 cores
of the chips used. Host: one round trip per host layer exchanging per-step data, its bits over
the link and its per-step ops (the once-per-image input is excluded: it overlaps the previous
image).
"""

from __future__ import annotations

import math

from hardware.ir.network import LoihiNetwork
from hardware.mapping.kinds import layer_ops_per_image, role
from hardware.mapping.profiles import CoreLimits, Timing
from hardware.mapping.records import GroupMapping, Latency, Traffic

OUTPUT_RESOURCES = ("output_axons", "axon_map")
"""The per-core resource that counts spikes sent, by core model (Loihi 1, Loihi 2)."""


def _outputs(g: GroupMapping) -> float:
    return next((g.demand[r] for r in OUTPUT_RESOURCES if r in g.demand), 0.0)


def neurocore_step_s(
    groups: list[GroupMapping], limits: CoreLimits, timing: Timing, spike_rate: float
) -> float:
    """The slowest core's step, the barrier and the mesh hops (0 without groups)."""
    if not groups:
        return 0.0
    core_s = 0.0
    for g in groups:
        t = (
            g.synapses / g.cores * spike_rate * timing.synaptic_op_s
            + g.demand["neurons"] * timing.neuron_update_s
            + _outputs(g) * spike_rate * timing.spike_out_s
        )
        core_s = max(core_s, t)
    hops = 2 * math.isqrt(max(limits.cores_per_chip, 1))
    return core_s + timing.barrier_s + hops * timing.hop_s


def embedded_step_s(net: LoihiNetwork, limits: CoreLimits, timing: Timing, chips: int) -> float:
    """The slowest embedded layer's per-step ops over its share of the chips' x86 cores."""
    layers = [layer for layer in net.layers if layer.placement == "embedded"]
    x86 = limits.embedded_cores_per_chip * max(chips, 1)
    per_layer = max(1, x86 // max(len(layers), 1))
    return max(
        (
            layer_ops_per_image(net, layer) / net.T * timing.embedded_op_s / per_layer
            for layer in layers
        ),
        default=0.0,
    )


def host_step_s(net: LoihiNetwork, traffic: Traffic, timing: Timing) -> float:
    """Round trips of the host layers, their per-step bits over the link and the host's
    per-step ops (the once-per-image input is excluded: it overlaps the previous image)."""
    T = net.T
    per_step_bits = sum(bits for cat, bits in traffic.host_bits.items() if cat != "input") / T
    ops = sum(
        layer_ops_per_image(net, layer)
        for layer in net.layers
        if layer.placement == "host" and role(layer) != "source"
    )
    return (
        traffic.host_round_trips_per_step * timing.host_round_trip_s
        + per_step_bits / timing.host_link_bits_per_s
        + ops / T * timing.host_op_s
    )


def latency(
    groups: list[GroupMapping],
    net: LoihiNetwork,
    limits: CoreLimits,
    timing: Timing,
    *,
    spike_rate: float,
    traffic: Traffic,
    chips: int,
    depth: int,
) -> Latency:
    """The `Latency` of one scenario (see the module docstring)."""
    neuro = neurocore_step_s(groups, limits, timing, spike_rate)
    embedded = embedded_step_s(net, limits, timing, chips)
    host = host_step_s(net, traffic, timing)
    step = neuro + embedded + host
    return Latency(
        neurocore_s=neuro,
        embedded_s=embedded,
        host_s=host,
        step_s=step,
        image_s=step * (net.T + depth),
        images_per_s=1.0 / (step * net.T),
    )


def pipeline_depth(net: LoihiNetwork) -> int:
    """Steps from a sample's first input to its last output: max over layers of depth+latency."""
    return max((net.depth(layer.name) + layer.latency for layer in net.layers), default=0)
