"""`map_network(network, target) -> Mapping`: layers → core groups → cores → chips, with what
runs where, off-neurocore traffic and latency.

The steps, one module each: core groups (:mod:`hardware.mapping.grouping`, roles from
:mod:`hardware.mapping.kinds`), splits, consumers first (:mod:`hardware.mapping.splitting`),
cores and chips (:mod:`hardware.mapping.packing`), placement and traffic
(:mod:`hardware.mapping.traffic`), latency (:mod:`hardware.mapping.latency`); the records are in
:mod:`hardware.mapping.records`. A target with low/high limits is mapped twice (`optimistic`,
`pessimistic`); a design rule that fails under the optimistic limits raises, one that fails
only under the pessimistic limits is recorded in `Mapping.failures` (the upper end of the range
is then "does not fit").

Counts are functions of shapes only: ops are dense-equivalent (every connection every step;
activity is applied only in the latency estimate, `spike_rate`), replicas counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from hardware.ir.network import LoihiNetwork
from hardware.mapping.bounds import lower_bounds
from hardware.mapping.design_rules import DesignRuleError, MappingError, fits_system_chips
from hardware.mapping.grouping import CoreGroup, accumulator_levels, core_groups
from hardware.mapping.latency import latency, pipeline_depth
from hardware.mapping.offload import Offload, offload_currents
from hardware.mapping.packing import binding_summary, chips_used, interchip_edges, pack
from hardware.mapping.profiles import BOUNDS, Bound, CoreLimits, TargetProfile
from hardware.mapping.records import GroupMapping, Mapping, ScenarioMapping, Traffic
from hardware.mapping.splitting import split_all
from hardware.mapping.traffic import placement_summary, traffic_per_image

DEFAULT_SPIKE_RATE = 0.1
"""Assumed fraction of neurons spiking per step, used only by the latency estimate."""

COMMON_ASSUMPTIONS = (
    "Bit-accuracy refers to Lava 0.10's CPU fixed-point models, not Loihi 2 silicon "
    "(lava#322, lava#829).",
    "Ops are dense-equivalent (every connection every step, the Lava graph's synapse copies "
    "counted); latency applies `spike_rate`.",
    "Traffic counts every element every step (spike bitmaps, 24-bit currents).",
    "One population per core group; a core holds one group (Intel's tables never co-locate "
    "layers), so a small population still takes a whole core.",
)
LOIHI2_ASSUMPTIONS = (
    "Per-core limits and synapse-memory costs: the calibrated Loihi 2 core model "
    "(hardware/mapping/targets/loihi2-resources.json; reproduces Intel's PilotNet SNN, SDNN, "
    "YOLO-KP and MNIST tables); its parameters and sources are listed below.",
    "UNSOURCED: a synaptic delay of d steps costs ceil(log2(d + 1)) more bits per stored weight "
    "(Loihi 1's format and netx's num_delay_bits; no Intel table has a delay).",
    "UNSOURCED: a population feeding several consumer populations stores axon-map entries and "
    "axon memory for each (Intel's tables have one consumer per layer).",
    "UNSOURCED: relays and accumulators are graded pass-through neurons (Lava's GradedVec: the "
    "summed input sent as a graded spike, 24-bit payload) costing one compartment each, and "
    "a one-to-one graded input costs one shared-kernel row per channel.",
    "A host-driven input (a current written every step, as Intel's input layer) costs one "
    "input axon and no synaptic memory.",
)
LOIHI1_ASSUMPTIONS = (
    "Synaptic memory uses nengo-loihi's Loihi 1 layout (64-synapse groups, 10 header bits, "
    "64-bit words, no index bits): a lower bound for sparse conv connectivity.",
    "A population whose fan-out exceeds one core's output axons even at one neuron per core "
    "gets fan-out repeaters (64 destinations each; one extra step on those paths, not added "
    "to the depth).",
    "Without graded spikes, ops that take or give currents run on the x86 cores or the host "
    "with the synapse layers and populations next to them (hardware/mapping/offload.py).",
)


def assumptions(limits: CoreLimits) -> tuple[str, ...]:
    """The assumptions a mapping onto cores of `limits` rests on."""
    own = LOIHI2_ASSUMPTIONS if limits.core_model is not None else LOIHI1_ASSUMPTIONS
    return COMMON_ASSUMPTIONS + own


@dataclass(frozen=True, kw_only=True)
class _Layout:
    """One way to place a scenario: its groups, packed cores and chip pipeline depth."""

    residual: str
    groups: list[CoreGroup]
    mapped: list[GroupMapping]
    cores: int
    chips: int
    depth: int


def _layout(net: LoihiNetwork, limits: CoreLimits, depth: int, accumulate: bool) -> _Layout:
    groups = core_groups(net, limits, accumulate=accumulate)
    mapped = pack(split_all(net, groups, limits), limits)
    cores, chips = chips_used(mapped, limits)
    return _Layout(
        residual="accumulators" if accumulate else "replicas",
        groups=groups,
        mapped=mapped,
        cores=cores,
        chips=chips,
        depth=depth + accumulator_levels(groups),
    )


def _cheapest(net: LoihiNetwork, limits: CoreLimits, depth: int) -> tuple[_Layout, int | None]:
    """Replicas, or (with graded spikes) accumulators where they take fewer cores; with the
    other choice's cores (None when not tried or when it does not fit)."""
    replicas = _layout(net, limits, depth, accumulate=False)
    if limits.graded_spike_bits == 0:
        return replicas, None
    try:
        acc = _layout(net, limits, depth, accumulate=True)
    except DesignRuleError:
        return replicas, None
    if acc.cores < replicas.cores:
        return acc, replicas.cores
    return replicas, acc.cores


def _scenario(
    net: LoihiNetwork,
    target: TargetProfile,
    bound: Bound,
    spike_rate: float,
    traffic: Traffic,
    depth: int,
) -> ScenarioMapping:
    """The mapping under the limits and timing of `bound`."""
    limits, timing = target.limits(bound), target.timing(bound)
    best, other = _cheapest(net, limits, depth)
    fits_system_chips(best.chips, limits)
    binding, by_binding = binding_summary(best.mapped)
    return ScenarioMapping(
        bound=bound,
        limits=limits,
        timing=timing,
        groups=tuple(best.mapped),
        cores=best.cores,
        chips=best.chips,
        binding=binding,
        cores_by_binding=MappingProxyType(by_binding),
        interchip_edges=interchip_edges(best.groups, best.mapped),
        latency=latency(
            best.mapped,
            net,
            limits,
            timing,
            spike_rate=spike_rate,
            traffic=traffic,
            chips=best.chips,
            depth=best.depth,
        ),  # fmt: skip
        residual=best.residual,
        other_residual_cores=other,
        depth=best.depth,
        lower=lower_bounds(net, limits),
    )


def _same_as_optimistic(target: TargetProfile, optimistic: ScenarioMapping | None) -> bool:
    """The pessimistic scenario equals the optimistic one (exact limits and timing)."""
    return (
        optimistic is not None
        and target.limits("pessimistic") == optimistic.limits
        and target.timing("pessimistic") == optimistic.timing
    )


def map_network(
    network: LoihiNetwork, target: TargetProfile, *, spike_rate: float = DEFAULT_SPIKE_RATE
) -> Mapping:
    """Map `network` onto `target`: core groups, splits, chips, placement, traffic, latency.

    On a target without graded spikes, what its neurocores cannot do runs on the embedded x86
    cores or the host first (`Mapping.offloaded`). Raises `DesignRuleError` (layer, resource,
    demand, limit) when a rule fails under the optimistic limits (or under exact limits);
    `MappingError` for a layout it cannot read.
    """
    if not 0.0 <= spike_rate <= 1.0:
        raise MappingError(f"spike_rate must be in [0, 1], got {spike_rate}")
    offloaded: tuple[Offload, ...] = ()
    if target.limits("optimistic").graded_spike_bits == 0:
        network, offloaded = offload_currents(network)
    traffic = traffic_per_image(network)
    depth = pipeline_depth(network)
    scenarios: dict[str, ScenarioMapping] = {}
    failures: dict[str, DesignRuleError] = {}
    for bound in BOUNDS:
        if bound == "pessimistic" and _same_as_optimistic(target, scenarios.get("optimistic")):
            scenarios[bound] = scenarios["optimistic"]
            continue
        try:
            scenarios[bound] = _scenario(network, target, bound, spike_rate, traffic, depth)
        except DesignRuleError as err:
            if bound == "optimistic":
                raise
            failures[bound] = err
    return Mapping(
        target=target.name,
        generation=target.generation,
        T=network.T,
        depth=depth,
        spike_rate=spike_rate,
        scenarios=MappingProxyType(scenarios),
        failures=MappingProxyType(failures),
        placement=placement_summary(network),
        traffic=traffic,
        assumptions=assumptions(target.limits("optimistic")),
        offloaded=offloaded,
    )
