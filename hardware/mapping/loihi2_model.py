"""The Loihi 2 neurocore model: per-core limits and synapse-memory costs, calibrated on Intel's
compiler output (lava-loihi), one variant per data column.

The numbers live in ``hardware/mapping/targets/loihi2-resources.json`` (each with its source;
derivations in ``loihi2-resources.md``): limits of the six resources Intel's partition table
prints (:data:`RESOURCES`) and the costs of the synapse encodings (dense rows with a target
index per synapse, shared convolutional kernels with stride-phase bits, a header per row,
64-bit words). How a population uses them: :mod:`hardware.mapping.loihi2_resources`.

Raises :class:`ResourceModelError` (usage, exit 2) for an invalid variant or data file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from importlib import resources
from types import MappingProxyType
from typing import Any, Literal

from spikeclip.errors import UsageError

FORMAT_VERSION = 1
"""The ``format_version`` the data file must carry."""

DATA_FILE = "loihi2-resources.json"
"""The data file in ``hardware/mapping/targets/``."""

Variant = Literal["calibrated", "optimistic", "pessimistic"]
VARIANTS: tuple[str, ...] = ("calibrated", "optimistic", "pessimistic")

RESOURCES: tuple[str, ...] = (
    "axon_in",
    "neuron_groups",
    "neurons",
    "syn_mem_words",
    "axon_map",
    "axon_mem",
)
"""The per-core resources, in the column order of Intel's table."""

RULES: Mapping[str, str] = MappingProxyType(
    {
        "axon_in": "fan_in_within_axons",
        "neuron_groups": "fits_neuron_groups",
        "neurons": "fits_neurons_per_core",
        "syn_mem_words": "fits_synaptic_memory",
        "axon_map": "fits_axon_map",
        "axon_mem": "fits_axon_memory",
    }
)
"""The design-rule name a violation of each resource raises under."""

MAX_WEIGHT_BITS = 8
"""Loihi 2 stores 1..8-bit signed weight mantissas (Lava ``optimize_weight_bits(loihi2=True)``)."""


class ResourceModelError(UsageError):
    """An invalid layer geometry, split, variant or resource data file; the message says which."""


def is_int(value: object) -> bool:
    """An ``int`` that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


# --------------------------------------------------------------------------------------------
# The per-core model (limits and costs of one variant)


@dataclass(frozen=True, kw_only=True)
class Loihi2CoreModel:
    """Limits and costs of one variant of ``loihi2-resources.json`` (units in the field names).

    Limits per core: neurons, axon_in, neuron_groups, syn_mem_words (of ``syn_mem_word_bits``),
    axon_map, axon_mem. Costs: dense_index_bits per dense synapse, row_header_bits per synapse
    row, conv_stride_phase_bits (``ceil(log2(stride_x))`` more bits per conv weight),
    conv_axon_in_per_stride_phase (a conv input costs ``stride_x`` axons, else 1),
    axon_map_per_stride_phase (a conv feeding a conv stores ``stride_x`` entries per position,
    else 1), conv_tile_x_power_of_two (conv and input cores allocate ``tile_w`` columns even
    past the layer's edge; else only the columns they hold), delay_bits_per_weight (a synapse
    with a delay of d steps stores ``ceil(log2(d + 1))`` more bits per weight).
    """

    variant: str
    neurons: int
    axon_in: int
    neuron_groups: int
    syn_mem_words: int
    axon_map: int
    axon_mem: int
    syn_mem_word_bits: int
    dense_index_bits: int
    row_header_bits: int
    conv_stride_phase_bits: bool
    conv_axon_in_per_stride_phase: bool
    axon_map_per_stride_phase: bool
    conv_tile_x_power_of_two: bool
    delay_bits_per_weight: bool

    def limit(self, resource: str) -> int:
        """The per-core limit of `resource` (one of :data:`RESOURCES`)."""
        if resource not in RESOURCES:
            raise ResourceModelError(f"unknown resource {resource!r}; known: {RESOURCES}")
        return int(getattr(self, resource))


_PARAMETER_FIELDS: Mapping[str, str] = MappingProxyType(
    {
        "neurons_per_core": "neurons",
        "axon_in_per_core": "axon_in",
        "neuron_groups_per_core": "neuron_groups",
        "syn_mem_words_per_core": "syn_mem_words",
        "axon_map_per_core": "axon_map",
        "axon_mem_per_core": "axon_mem",
        "syn_mem_word_bits": "syn_mem_word_bits",
        "dense_index_bits": "dense_index_bits",
        "row_header_bits": "row_header_bits",
        "conv_stride_phase_bits": "conv_stride_phase_bits",
        "conv_axon_in_per_stride_phase": "conv_axon_in_per_stride_phase",
        "axon_map_per_stride_phase": "axon_map_per_stride_phase",
        "conv_tile_x_power_of_two": "conv_tile_x_power_of_two",
        "delay_bits_per_weight": "delay_bits_per_weight",
    }
)
"""Data-file parameter name -> `Loihi2CoreModel` field."""


@dataclass(frozen=True, kw_only=True)
class Parameter:
    """One entry of the data file: its value per variant, unit and source."""

    name: str
    values: Mapping[str, int | bool]
    unit: str
    source: str


def _read_data() -> dict[str, Any]:
    path = resources.files("hardware.mapping") / "targets" / DATA_FILE
    where = f"hardware/mapping/targets/{DATA_FILE}"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ResourceModelError(f"{where}: missing") from err
    except json.JSONDecodeError as err:
        raise ResourceModelError(f"{where}: invalid JSON ({err})") from err
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
        raise ResourceModelError(f"{where}: format_version must be {FORMAT_VERSION}")
    if tuple(data.get("variants", ())) != VARIANTS:
        raise ResourceModelError(f"{where}: variants must be {list(VARIANTS)}")
    return data


def parameters() -> tuple[Parameter, ...]:
    """Every parameter of the data file, validated (each variant present, a source given)."""
    data = _read_data()
    block = data.get("parameters")
    if not isinstance(block, dict) or set(block) != set(_PARAMETER_FIELDS):
        raise ResourceModelError(
            f"hardware/mapping/targets/{DATA_FILE}: parameters must be exactly "
            f"{sorted(_PARAMETER_FIELDS)}"
        )
    out = []
    for name in _PARAMETER_FIELDS:
        entry = block[name]
        where = f"hardware/mapping/targets/{DATA_FILE} parameters.{name}"
        source = entry.get("source") if isinstance(entry, dict) else None
        if not isinstance(source, str) or not source.strip():
            raise ResourceModelError(f"{where}: missing 'source'")
        if "value" in entry:
            values = {v: entry["value"] for v in VARIANTS}
        elif all(v in entry for v in VARIANTS):
            values = {v: entry[v] for v in VARIANTS}
        else:
            raise ResourceModelError(f"{where}: give 'value' or one value per variant {VARIANTS}")
        for v, x in values.items():
            if not isinstance(x, bool) and not (is_int(x) and x >= 0):
                raise ResourceModelError(f"{where}: {v} = {x!r} is not a non-negative integer")
        out.append(
            Parameter(
                name=name,
                values=MappingProxyType(values),
                unit=str(entry.get("unit", "")),
                source=source,
            )
        )
    return tuple(out)


def load_core_model(variant: Variant = "calibrated") -> Loihi2CoreModel:
    """The limits and costs of `variant` (``calibrated``, ``optimistic``, ``pessimistic``)."""
    if variant not in VARIANTS:
        raise ResourceModelError(f"variant must be one of {VARIANTS}, got {variant!r}")
    kwargs: dict[str, Any] = {"variant": variant}
    for p in parameters():
        kwargs[_PARAMETER_FIELDS[p.name]] = p.values[variant]
    model = Loihi2CoreModel(**kwargs)
    for f in fields(model):
        value = getattr(model, f.name)
        if f.type == "int" and not (is_int(value) and value >= 1):
            raise ResourceModelError(f"{variant}: {f.name} must be a positive integer")
        if f.type == "bool" and not isinstance(value, bool):
            raise ResourceModelError(f"{variant}: {f.name} must be true or false")
    return model


# --------------------------------------------------------------------------------------------
# Costs


def ceil_log2(n: int) -> int:
    """``ceil(log2(n))`` for ``n >= 1``: the bits that tell ``n`` cases apart."""
    return (int(n) - 1).bit_length()


def next_pow2(n: int) -> int:
    """The smallest power of two ``>= n`` (``n >= 1``)."""
    return 1 << ceil_log2(n)


def row_words(n_weights: int, bits: int, model: Loihi2CoreModel) -> int:
    """64-bit words of one synapse row of `n_weights` weights of `bits` bits:
    ``ceil((n_weights * bits + row_header_bits) / syn_mem_word_bits)``; 0 for an empty row."""
    if n_weights <= 0:
        return 0
    return -(-(n_weights * bits + model.row_header_bits) // model.syn_mem_word_bits)
