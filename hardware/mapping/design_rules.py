"""Design rules of the Loihi mapper: small named checks that raise with evidence.

Each rule compares one demand with one limit of a `CoreLimits` scenario and raises
`DesignRuleError` naming the rule, the layer, the resource, the demand and the limit
(in the manner of Rockpool's Xylo DRC: "rule: evidence"). Per-core rules take the worst-core
`CoreDemand` of a layer split; graph rules take the number they check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

from hardware.ir.layers import PLACEMENTS
from hardware.mapping.profiles import CoreLimits
from spikeclip.errors import DoesNotFitError

ON_NEUROCORE = ("neurocore", "neurocore-L2")


class MappingError(DoesNotFitError, ValueError):
    """The network cannot be mapped onto the target; the message names the layer and why."""


class DesignRuleError(MappingError):
    """A design rule failed. Attributes give the evidence: rule, layer, resource, demand, limit."""

    def __init__(self, *, rule: str, layer: str, resource: str, demand: int, limit: int) -> None:
        self.rule = rule
        self.layer = layer
        self.resource = resource
        self.demand = demand
        self.limit = limit
        super().__init__(
            f"design rule {rule} failed: layer {layer!r} needs {resource} = {demand} "
            f"> limit {limit}"
        )


@dataclass(frozen=True, kw_only=True)
class CoreDemand:
    """Worst-core demand of one layer split (each field: the max over the layer's cores).

    neurons: compartments; input_axons / output_axons: axons; synapses: stored connections
    (a shared kernel counts its weights once); memory_bits: synaptic memory in bits including
    delay bits and block headers; neuron_groups: distinct neuron profiles on the core.
    """

    neurons: int
    input_axons: int
    output_axons: int
    synapses: int
    memory_bits: int
    neuron_groups: int

    def as_dict(self) -> dict[str, int]:
        """Every field by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _require(rule: str, layer: str, resource: str, demand: int, limit: int) -> None:
    if demand > limit:
        raise DesignRuleError(rule=rule, layer=layer, resource=resource, demand=demand, limit=limit)


def fits_neurons_per_core(layer: str, demand: CoreDemand, limits: CoreLimits) -> None:
    """Neurons (compartments) on one core ≤ `limits.neurons`."""
    _require("fits_neurons_per_core", layer, "neurons", demand.neurons, limits.neurons)


def fan_in_within_axons(layer: str, demand: CoreDemand, limits: CoreLimits) -> None:
    """Input axons (distinct presynaptic sources per incoming edge) ≤ `limits.input_axons`."""
    _require("fan_in_within_axons", layer, "input_axons", demand.input_axons, limits.input_axons)


def fan_out_within_axons(layer: str, demand: CoreDemand, limits: CoreLimits) -> None:
    """Output axons (one per neuron per destination core) ≤ `limits.output_axons`."""
    _require(
        "fan_out_within_axons", layer, "output_axons", demand.output_axons, limits.output_axons
    )


def fits_synaptic_memory(layer: str, demand: CoreDemand, limits: CoreLimits) -> None:
    """Synaptic memory bits on one core ≤ `limits.synaptic_memory_bits`."""
    _require(
        "fits_synaptic_memory",
        layer,
        "synaptic_memory_bits",
        demand.memory_bits,
        limits.synaptic_memory_bits,
    )


def fits_neuron_groups(layer: str, demand: CoreDemand, limits: CoreLimits) -> None:
    """Distinct neuron profiles (threshold/decay configurations) on one core ≤ the limit."""
    _require(
        "fits_neuron_groups", layer, "neuron_groups", demand.neuron_groups, limits.neuron_groups
    )


CoreRule = Callable[[str, CoreDemand, CoreLimits], None]
CORE_RULES: tuple[CoreRule, ...] = (
    fits_neurons_per_core,
    fits_neuron_groups,
    fan_in_within_axons,
    fits_synaptic_memory,
    fan_out_within_axons,
)
"""Per-core rules in the order the mapper reports them."""


def core_violations(layer: str, demand: CoreDemand, limits: CoreLimits) -> list[DesignRuleError]:
    """Every per-core rule that `demand` breaks (empty when the core fits)."""
    found: list[DesignRuleError] = []
    for rule in CORE_RULES:
        try:
            rule(layer, demand, limits)
        except DesignRuleError as err:
            found.append(err)
    return found


def check_core(layer: str, demand: CoreDemand, limits: CoreLimits) -> None:
    """Raise the first per-core rule that `demand` breaks."""
    for rule in CORE_RULES:
        rule(layer, demand, limits)


def delay_within_limit(layer: str, delay: int, limits: CoreLimits) -> None:
    """An edge's axonal/synaptic delay (steps) ≤ `limits.max_delay`."""
    _require("delay_within_limit", layer, "delay_steps", delay, limits.max_delay)


def weight_bits_within_limit(layer: str, weight_bits: int, limits: CoreLimits) -> None:
    """Stored bits per weight ≤ `limits.max_weight_bits`."""
    _require("weight_bits_within_limit", layer, "weight_bits", weight_bits, limits.max_weight_bits)


def graded_spikes_supported(layer: str, placement: str, limits: CoreLimits) -> None:
    """A `neurocore-L2` op needs graded spikes or conv weight sharing, i.e. a Loihi 2 core."""
    if placement == "neurocore-L2" and limits.graded_spike_bits == 0:
        raise DesignRuleError(
            rule="graded_spikes_supported",
            layer=layer,
            resource="graded_spike_bits",
            demand=1,
            limit=0,
        )


def known_placement(layer: str, placement: str) -> None:
    """A layer's placement is one of `PLACEMENTS`."""
    if placement not in PLACEMENTS:
        raise MappingError(
            f"layer {layer!r}: placement {placement!r} is not one of {', '.join(PLACEMENTS)}"
        )


def fits_system_chips(chips_needed: int, limits: CoreLimits) -> None:
    """The chips the packing needs ≤ the system's chips (no check for a bare generation)."""
    if limits.chips is not None:
        _require("fits_system_chips", "<network>", "chips", chips_needed, limits.chips)
