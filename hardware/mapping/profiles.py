"""Target profiles: Loihi generations and systems, read from `hardware/mapping/targets/*.json`.

Every number in a profile file is `{"value": x, "source": "..."}` or, where the figure is not
public (most Loihi 2 per-core limits), `{"low": a, "high": b, "source": "..."}`. A result
computed from a profile is therefore produced for two scenarios:

- `optimistic`: every capacity at its high end, every per-op time at its low end;
- `pessimistic`: every capacity at its low end, every per-op time at its high end.

A *generation* file (`loihi1`, `loihi2`) holds per-core limits, per-chip counts and per-op
times; a *system* file (`loihi2-kapoho-point`, …) names its generation and a chip count. Loading
a generation by name gives a target with no chip limit (used to ask "how many chips?").

A generation whose cores are described by a calibrated core model (``"core_model"``: Loihi 2,
:mod:`hardware.mapping.loihi2_model`) takes the per-core limits of the model's variant for each
bound (``optimistic``/``pessimistic``) and the split strategy named there; its ``core`` section
then holds only what the model does not (delays, weight bits, weight sharing, graded spikes),
and the model's parameters appear in `TargetProfile.quantities` as ``core_model.<name>``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any, Literal

from hardware.mapping.loihi2_model import (
    VARIANTS,
    Loihi2CoreModel,
    load_core_model,
    parameters,
)
from spikeclip.errors import UsageError

FORMAT_VERSION = 1
"""The `format_version` every profile file must carry."""

Bound = Literal["optimistic", "pessimistic"]
BOUNDS: tuple[Bound, ...] = ("optimistic", "pessimistic")

CORE_KEYS = (
    "neurons",
    "input_axons",
    "output_axons",
    "synaptic_memory_bits",
    "neuron_groups",
    "max_delay",
    "max_weight_bits",
    "synapses_per_block",
    "synapse_block_header_bits",
    "memory_word_bits",
    "conv_weight_sharing",
    "graded_spike_bits",
)
MODEL_CORE_KEYS = (
    "neurons",
    "input_axons",
    "output_axons",
    "synaptic_memory_bits",
    "neuron_groups",
    "synapses_per_block",
    "synapse_block_header_bits",
    "memory_word_bits",
)
"""The `CORE_KEYS` a calibrated core model supplies (a generation with a core model omits them)."""
CORE_MODELS = ("loihi2-resources",)
"""Calibrated core models a generation may name."""
SPLIT_STRATEGIES = ("intel", "tight")
CHIP_KEYS = ("cores", "embedded_cores", "mesh_columns", "cores_per_tile")
TIMING_KEYS = (
    "synaptic_op_s",
    "neuron_update_s",
    "spike_out_s",
    "hop_s",
    "barrier_s",
    "embedded_op_s",
    "host_round_trip_s",
    "host_link_bits_per_s",
    "host_op_s",
)
_COST_KEYS = frozenset(TIMING_KEYS) - {"host_link_bits_per_s"}
"""Timing entries where more is worse (a bandwidth is a capacity: more is better)."""


class TargetProfileError(UsageError):
    """A profile file is missing, malformed or names an unknown generation; message names it."""


@dataclass(frozen=True, kw_only=True)
class Quantity:
    """One profile number with its provenance; `low == high` when the figure is exact."""

    low: float | int | bool
    high: float | int | bool
    unit: str
    source: str

    @property
    def exact(self) -> bool:
        """True when the profile gives a single value (no low/high pair)."""
        return self.low == self.high

    def pick(self, bound: Bound, *, more_is_better: bool) -> float | int | bool:
        """The value for `bound`: capacities take `high` when optimistic, costs take `low`."""
        if bound not in BOUNDS:
            raise TargetProfileError(f"bound must be one of {BOUNDS}, got {bound!r}")
        optimistic_high = more_is_better
        if (bound == "optimistic") == optimistic_high:
            return self.high
        return self.low


@dataclass(frozen=True, kw_only=True)
class CoreLimits:
    """Per-core and per-chip limits of one scenario, as plain integers.

    neurons: compartments per core; input_axons / output_axons: axons per core;
    synaptic_memory_bits: bits per core; neuron_groups: distinct neuron profiles per core;
    max_delay: steps; max_weight_bits: stored bits per weight (incl. sign);
    synapses_per_block / synapse_block_header_bits / memory_word_bits: the synapse-memory
    layout (a group of ≤ synapses_per_block synapses of one axon costs
    `ceil_word(n·bits_per_synapse + header)` bits); conv_weight_sharing: a conv / token-shared
    kernel is stored once per core instead of once per connection; graded_spike_bits: payload
    bits of a graded spike (0 = binary spikes only); cores_per_chip, embedded_cores_per_chip;
    chips: chips in the system (None = unlimited); mesh_columns, cores_per_tile: the chip's
    mesh (cores per mesh row, cores sharing one router: a hop is a router-to-router step);
    core_model: the calibrated Loihi 2 core model of this bound (None: explicit synapses in
    nengo-loihi's layout) and split_strategy, how its splits are chosen (``intel``: Intel's
    2022 compiler; ``tight``: fewest cores).
    """

    neurons: int
    input_axons: int
    output_axons: int
    synaptic_memory_bits: int
    neuron_groups: int
    max_delay: int
    max_weight_bits: int
    synapses_per_block: int
    synapse_block_header_bits: int
    memory_word_bits: int
    conv_weight_sharing: bool
    graded_spike_bits: int
    cores_per_chip: int
    embedded_cores_per_chip: int
    chips: int | None
    mesh_columns: int = 1
    cores_per_tile: int = 1
    core_model: Loihi2CoreModel | None = None
    split_strategy: str = ""


@dataclass(frozen=True, kw_only=True)
class Timing:
    """Per-op times of one scenario: seconds per op, and the host link in bit/s."""

    synaptic_op_s: float
    neuron_update_s: float
    spike_out_s: float
    hop_s: float
    barrier_s: float
    embedded_op_s: float
    host_round_trip_s: float
    host_link_bits_per_s: float
    host_op_s: float


@dataclass(frozen=True, kw_only=True)
class TargetProfile:
    """A generation (chips=None) or a system of `chips` chips of that generation.

    `quantities` maps dotted keys (`core.neurons`, `chip.cores`, `timing.hop_s`,
    `system.chips`) to their `Quantity` with source.
    """

    name: str
    generation: str
    description: str
    quantities: MappingProxyType[str, Quantity] = field(repr=False)
    core_model: CoreModelChoice | None = None

    @property
    def is_range(self) -> bool:
        """True when some limit or time is a low/high pair (results come out as ranges)."""
        return any(not q.exact for q in self.quantities.values())

    @property
    def chips(self) -> int | None:
        """Chips in the system; None for a bare generation (no chip limit)."""
        q = self.quantities.get("system.chips")
        return None if q is None else int(q.low)

    def limits(self, bound: Bound) -> CoreLimits:
        """Per-core/per-chip limits for `bound` (capacities high when optimistic)."""
        keys = [k for k in CORE_KEYS if f"core.{k}" in self.quantities]
        core = {k: self.quantities[f"core.{k}"].pick(bound, more_is_better=True) for k in keys}
        ints = {k: (bool(v) if k == "conv_weight_sharing" else int(v)) for k, v in core.items()}
        model, strategy = None, ""
        if self.core_model is not None:
            model = load_core_model(self.core_model.variant[bound])  # type: ignore[arg-type]
            strategy = self.core_model.strategy[bound]
            ints.update(model_limits(model))
        return CoreLimits(
            **ints,
            core_model=model,
            split_strategy=strategy,
            cores_per_chip=int(self.quantities["chip.cores"].pick(bound, more_is_better=True)),
            embedded_cores_per_chip=int(
                self.quantities["chip.embedded_cores"].pick(bound, more_is_better=True)
            ),
            mesh_columns=int(self.quantities["chip.mesh_columns"].low),
            cores_per_tile=int(self.quantities["chip.cores_per_tile"].low),
            chips=self.chips,
        )

    def timing(self, bound: Bound) -> Timing:
        """Per-op times for `bound` (times low and bandwidth high when optimistic)."""
        values = {
            k: float(self.quantities[f"timing.{k}"].pick(bound, more_is_better=k not in _COST_KEYS))
            for k in TIMING_KEYS
        }
        return Timing(**values)


@dataclass(frozen=True, kw_only=True)
class CoreModelChoice:
    """Which calibrated core model a generation uses: the model's name, and per bound its
    variant and split strategy, with the reason (``source``)."""

    name: str
    variant: MappingProxyType[str, str]
    strategy: MappingProxyType[str, str]
    source: str


def model_limits(model: Loihi2CoreModel) -> dict[str, int]:
    """The `MODEL_CORE_KEYS` of `CoreLimits` from a calibrated core model: output axons are
    its axon-map entries, synaptic memory its words × word bits, the synapse-row header its
    row header (a "block" is a row of any length: ``synapses_per_block`` 0)."""
    return {
        "neurons": model.neurons,
        "input_axons": model.axon_in,
        "output_axons": model.axon_map,
        "synaptic_memory_bits": model.syn_mem_words * model.syn_mem_word_bits,
        "neuron_groups": model.neuron_groups,
        "synapses_per_block": 0,
        "synapse_block_header_bits": model.row_header_bits,
        "memory_word_bits": model.syn_mem_word_bits,
    }


def _core_model(name: str, data: dict[str, Any]) -> CoreModelChoice | None:
    """The ``core_model`` entry of a generation file (None when absent)."""
    entry = data.get("core_model")
    if entry is None:
        return None
    where = f"{_file(name)} core_model"
    if not isinstance(entry, dict) or entry.get("name") not in CORE_MODELS:
        raise TargetProfileError(f"{where}: 'name' must be one of {CORE_MODELS}")
    if not isinstance(entry.get("source"), str):
        raise TargetProfileError(f"{where}: missing 'source'")
    variant, strategy = {}, {}
    for bound in BOUNDS:
        pick = entry.get(bound)
        if not isinstance(pick, dict) or pick.get("variant") not in VARIANTS:
            raise TargetProfileError(f"{where}.{bound}: 'variant' must be one of {VARIANTS}")
        if pick.get("strategy") not in SPLIT_STRATEGIES:
            raise TargetProfileError(
                f"{where}.{bound}: 'strategy' must be one of {SPLIT_STRATEGIES}"
            )
        variant[bound], strategy[bound] = pick["variant"], pick["strategy"]
    return CoreModelChoice(
        name=entry["name"],
        variant=MappingProxyType(variant),
        strategy=MappingProxyType(strategy),
        source=entry["source"],
    )


def _model_quantities(choice: CoreModelChoice) -> dict[str, Quantity]:
    """The core model's parameters as quantities (low/high over the two bounds' variants)."""
    out = {}
    for p in parameters():
        values = [p.values[choice.variant[b]] for b in BOUNDS]
        out[f"core_model.{p.name}"] = Quantity(
            low=min(values), high=max(values), unit=p.unit, source=p.source
        )
    return out


def parse_quantity(entry: Any, where: str) -> Quantity:
    """Parse one `{"value"|"low","high", "source"}` entry; `where` names file and key."""
    if not isinstance(entry, dict) or not isinstance(entry.get("source"), str):
        raise TargetProfileError(f"{where}: expected an object with a 'source' string")
    if "value" in entry:
        if "low" in entry or "high" in entry:
            raise TargetProfileError(f"{where}: give either 'value' or 'low'/'high', not both")
        low = high = entry["value"]
    elif "low" in entry and "high" in entry:
        low, high = entry["low"], entry["high"]
        if not low <= high:
            raise TargetProfileError(f"{where}: low {low} > high {high}")
    else:
        raise TargetProfileError(f"{where}: missing 'value' (or 'low' and 'high')")
    for v in (low, high):
        if isinstance(v, bool):
            continue
        if not isinstance(v, int | float) or v < 0:
            raise TargetProfileError(f"{where}: {v!r} is not a non-negative number")
    return Quantity(low=low, high=high, unit=str(entry.get("unit", "")), source=entry["source"])


def _read(name: str) -> dict[str, Any]:
    """Read `hardware/mapping/targets/<name>.json` (package data)."""
    path = resources.files("hardware.mapping") / "targets" / f"{name}.json"
    if not path.is_file():
        raise TargetProfileError(
            f"{_file(name)}: no such target; known: {', '.join(available_targets())}"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise TargetProfileError(f"{_file(name)}: invalid JSON ({err})") from err
    if data.get("format_version") != FORMAT_VERSION:
        raise TargetProfileError(
            f"{_file(name)}: format_version {data.get('format_version')!r}, "
            f"expected {FORMAT_VERSION}"
        )
    return data


def _generation_quantities(name: str, data: dict[str, Any]) -> dict[str, Quantity]:
    """All `core.*`, `chip.*`, `timing.*` quantities of a generation file (and the
    `core_model.*` parameters of its calibrated core model)."""
    out: dict[str, Quantity] = {}
    choice = _core_model(name, data)
    core_keys = (
        CORE_KEYS if choice is None else tuple(k for k in CORE_KEYS if k not in MODEL_CORE_KEYS)
    )
    for section, keys in (("core", core_keys), ("chip", CHIP_KEYS), ("timing", TIMING_KEYS)):
        block = data.get(section)
        if not isinstance(block, dict):
            raise TargetProfileError(f"{_file(name)}: missing section '{section}'")
        for key in keys:
            if key not in block:
                raise TargetProfileError(f"{_file(name)}: missing {section}.{key}")
            out[f"{section}.{key}"] = parse_quantity(block[key], f"{name}.json {section}.{key}")
    if choice is not None:
        out.update(_model_quantities(choice))
    return out


def load_target(name: str) -> TargetProfile:
    """Load a generation (`loihi1`, `loihi2`) or a system (`loihi2-kapoho-point`, …) by name.

    Raises TargetProfileError naming the file and key when a file is missing or malformed.
    """
    data = _read(name)
    kind = data.get("kind")
    if kind == "generation":
        quantities = _generation_quantities(name, data)
        return TargetProfile(
            name=name,
            generation=name,
            description=str(data.get("description", "")),
            quantities=MappingProxyType(quantities),
            core_model=_core_model(name, data),
        )
    if kind == "system":
        generation = data.get("generation")
        if not isinstance(generation, str):
            raise TargetProfileError(f"{_file(name)}: missing 'generation'")
        gen = _read(generation)
        if gen.get("kind") != "generation":
            raise TargetProfileError(
                f"{_file(name)}: generation {generation!r} is not a generation file"
            )
        quantities = _generation_quantities(generation, gen)
        chips = parse_quantity(data.get("chips"), f"{name}.json chips")
        if not chips.exact or chips.low < 1:
            raise TargetProfileError(f"{_file(name)}: chips must be one value ≥ 1")
        quantities["system.chips"] = chips
        return TargetProfile(
            name=name,
            generation=generation,
            description=str(data.get("description", "")),
            quantities=MappingProxyType(quantities),
            core_model=_core_model(generation, gen),
        )
    raise TargetProfileError(f"{_file(name)}: kind must be 'generation' or 'system', got {kind!r}")


NOT_TARGET_KINDS = ("resource-model", "compiler-table")
"""`kind`s of data files in `hardware/mapping/targets/` that are not target profiles (the Loihi 2
core model `loihi2-resources.json` of `hardware.mapping.loihi2_model`, Intel's compiler tables
of `hardware.mapping.intel_tables`)."""


def _file(name: str) -> str:
    """A profile's file as users see it in messages (relative to the repository)."""
    return f"hardware/mapping/targets/{name}.json"


def available_targets() -> tuple[str, ...]:
    """Names of every profile file shipped in `hardware/mapping/targets/`, sorted (files whose
    `kind` is in `NOT_TARGET_KINDS` are not targets; an unreadable file is listed so that loading it
    reports the error)."""
    folder = resources.files("hardware.mapping") / "targets"
    names = []
    for p in folder.iterdir():
        if not p.name.endswith(".json"):
            continue
        try:
            kind = json.loads(p.read_text(encoding="utf-8")).get("kind")
        except (json.JSONDecodeError, AttributeError):
            kind = None
        if kind not in NOT_TARGET_KINDS:
            names.append(p.name[: -len(".json")])
    return tuple(sorted(names))
