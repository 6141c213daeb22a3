"""The mapper's products: frozen records of core groups, scenarios, placement, traffic, latency.

Units are in the field names or docstrings: cores and chips are counts, ``*_s`` seconds,
``*_bits`` bits per image; a demand or limit is in the unit of its resource (compartments,
axons, map entries, 64-bit words or bits, neuron groups).
"""

from __future__ import annotations

from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass, field

from hardware.mapping.bounds import LowerBounds
from hardware.mapping.design_rules import DesignRuleError
from hardware.mapping.offload import Offload
from hardware.mapping.profiles import Bound, CoreLimits, Timing
from hardware.mapping.specs import Split


@dataclass(frozen=True, kw_only=True)
class GroupMapping:
    """One core group mapped: totals of the unsplit group and the chosen split.

    kind: ``lif``, ``relay`` or ``repeater``; neurons: compartments the group holds;
    input_axons: Σ over incoming edges of presynaptic neurons (unsplit); synapses: connections
    (dense-equivalent, replicas of this group only); inputs: names of the synapse layers (or
    ops) feeding it; demand: the worst core, per resource of the core's model; utilization:
    worst-core demand / limit per limited resource; binding: the most utilized one;
    first_core: index of its first core in packing order; chips: (first, last) chip index;
    allocated: compartments allocated on its cores (0: as many as it holds); stored_bits: the
    fewest bits its synapses take (`specs.min_stored_bits`), for its own lower bound;
    sources: the population (or accumulator, or off-core op) feeding each input; source: the
    name its own consumers give as theirs (its population's, or its own for an accumulator).
    """

    name: str
    kind: str
    placement: str
    shape: tuple[int, int, int]
    inputs: tuple[str, ...]
    neurons: int
    input_axons: int
    synapses: int
    max_delay_bits: int
    split: Split
    demand: AbcMapping[str, float]
    utilization: AbcMapping[str, float]
    binding: str
    first_core: int
    chips: tuple[int, int]
    allocated: int = 0
    stored_bits: int = 0
    sources: tuple[str, ...] = ()
    source: str = ""

    @property
    def cores(self) -> int:
        return self.split.cores


@dataclass(frozen=True, kw_only=True)
class Latency:
    """Per-step and per-image time estimate (seconds) of one scenario.

    step_s = neurocore_s + embedded_s + host_s (the off-core ops sit on the per-step path);
    image_s = step_s × (T + depth); images_per_s = 1 / (step_s × T) when streaming.
    """

    neurocore_s: float
    embedded_s: float
    host_s: float
    step_s: float
    image_s: float
    images_per_s: float


@dataclass(frozen=True, kw_only=True)
class ScenarioMapping:
    """The mapping under one set of limits (`bound`).

    residual: how sums of synapse layers shared by several populations are placed
    (``replicas``: every consumer stores every synapse layer it sums; ``accumulators``: shared
    sums materialized once by graded accumulators), the cheaper of the two where the target has
    graded spikes; other_residual_cores: the cores of the other choice (None: not tried);
    depth: the chip's pipeline depth in steps (the network's, plus one per accumulator on the
    longest chain); lower: the lower bounds of the network on this bound's cores.
    """

    bound: Bound
    limits: CoreLimits
    timing: Timing
    groups: tuple[GroupMapping, ...]
    cores: int
    chips: int
    binding: str
    cores_by_binding: AbcMapping[str, int]
    interchip_edges: int
    latency: Latency
    residual: str = "replicas"
    other_residual_cores: int | None = None
    depth: int = 0
    lower: LowerBounds | None = None


@dataclass(frozen=True, kw_only=True)
class PlacementShare:
    """Ops per image and neurons of one placement label, with their fractions of the total."""

    placement: str
    ops: int
    neurons: int
    op_fraction: float
    neuron_fraction: float


@dataclass(frozen=True, kw_only=True)
class Traffic:
    """Off-neurocore traffic of one image (bits, dense-equivalent: every element every step).

    host_bits: host↔chip bits per category (``input``, ``readout``, ``maxpool``, ``attention``,
    ``output``: spikes of populations nothing consumes, ``other``); embedded_bits:
    neurocore↔embedded bits per category; round_trips_per_step: off-neurocore ops on the
    per-step path (each a neurocore → x86/host → neurocore hop).
    """

    host_bits: AbcMapping[str, int]
    embedded_bits: AbcMapping[str, int]
    host_round_trips_per_step: int
    embedded_round_trips_per_step: int

    @property
    def host_total_bits(self) -> int:
        return sum(self.host_bits.values())

    @property
    def embedded_total_bits(self) -> int:
        return sum(self.embedded_bits.values())


@dataclass(frozen=True, kw_only=True)
class Mapping:
    """Result of `map_network`: per scenario core groups and chips, placement, traffic.

    scenarios: ``optimistic`` and ``pessimistic`` (the same object when the target's limits
    are exact); failures: scenario → the design rule that failed (pessimistic only; an
    optimistic failure raises); depth: pipeline depth in steps (``network.max_depth`` plus the
    last layer's latency); offloaded: layers moved (or replicated) off the neurocores because
    the target has no graded spikes (:mod:`hardware.mapping.offload`).
    """

    target: str
    generation: str
    T: int
    depth: int
    spike_rate: float
    scenarios: AbcMapping[str, ScenarioMapping]
    failures: AbcMapping[str, DesignRuleError]
    placement: tuple[PlacementShare, ...]
    traffic: Traffic
    assumptions: tuple[str, ...] = field(default=())
    offloaded: tuple[Offload, ...] = field(default=())

    def chips_range(self) -> tuple[int, int | None]:
        """(chips under optimistic limits, chips under pessimistic limits or None = no fit)."""
        lo = self.scenarios["optimistic"].chips
        hi = self.scenarios["pessimistic"].chips if "pessimistic" in self.scenarios else None
        return lo, hi

    def cores_range(self) -> tuple[int, int | None]:
        """(cores optimistic, cores pessimistic or None = no fit)."""
        lo = self.scenarios["optimistic"].cores
        hi = self.scenarios["pessimistic"].cores if "pessimistic" in self.scenarios else None
        return lo, hi
