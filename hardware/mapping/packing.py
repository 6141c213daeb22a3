"""Split groups → cores numbered in topological order → chips (a producer's cores sit next to
its consumers'), and the edges that cross a chip boundary."""

from __future__ import annotations

import math
from types import MappingProxyType

from hardware.mapping.grouping import IDENTITY_WEIGHT_BITS, CoreGroup
from hardware.mapping.profiles import CoreLimits
from hardware.mapping.records import GroupMapping
from hardware.mapping.specs import (
    GroupSplit,
    InputSpec,
    ceil_div,
    conv_connections,
    delay_bits,
    min_stored_bits,
)
from hardware.mapping.splitting import Placed


def _mapped(
    name: str,
    kind: str,
    placement: str,
    spec_shape: tuple[int, int, int],
    inputs: tuple[InputSpec, ...],
    s: GroupSplit,
    first_core: int,
    limits: CoreLimits,
    source: str,
) -> GroupMapping:
    """The record of one group whose cores start at `first_core`."""
    cores_per_chip = limits.cores_per_chip
    shared = limits.conv_weight_sharing
    return GroupMapping(
        name=name,
        kind=kind,
        placement=placement,
        shape=spec_shape,
        inputs=tuple(i.name for i in inputs),
        neurons=math.prod(spec_shape),
        input_axons=sum(math.prod(i.in_shape) for i in inputs),
        synapses=sum(conv_connections(i, spec_shape) for i in inputs),
        max_delay_bits=max((delay_bits(i.delay) for i in inputs), default=0),
        split=s.split,
        demand=s.demand,
        utilization=MappingProxyType(s.utilization),
        binding=s.binding,
        first_core=first_core,
        chips=(first_core // cores_per_chip, (first_core + s.split.cores - 1) // cores_per_chip),
        allocated=s.allocated,
        stored_bits=sum(min_stored_bits(i, spec_shape, shared) for i in inputs),
        sources=tuple(i.source for i in inputs),
        source=source,
    )


def _repeater_link(g: CoreGroup, fanout: int) -> tuple[tuple[int, int, int], InputSpec]:
    """Geometry and one-to-one input of the repeaters of `g` (``fanout`` per neuron)."""
    n = math.prod(g.spec.shape) * fanout
    link = InputSpec(
        name=g.spec.name,
        source=g.anchor,
        kind="conv",
        in_shape=(n, 1, 1),
        groups=n,
        weight_bits=IDENTITY_WEIGHT_BITS,
    )
    return (n, 1, 1), link


def pack(placed: list[Placed], limits: CoreLimits) -> list[GroupMapping]:
    """Number the cores of every group (and its repeaters) in order; chips of
    ``limits.cores_per_chip`` cores each."""
    mapped: list[GroupMapping] = []
    core = 0
    for p in placed:
        g = p.group
        spec = g.spec
        mapped.append(
            _mapped(
                spec.name,
                g.kind,
                g.placement,
                spec.shape,
                spec.inputs,
                p.split,
                core,
                limits,
                g.source,
            )  # fmt: skip
        )
        core += p.split.split.cores
        if p.repeaters is not None:
            shape, link = _repeater_link(g, p.repeat_fanout)
            name = f"repeat:{g.anchor}"
            mapped.append(
                _mapped(
                    name, "repeater", "neurocore", shape, (link,), p.repeaters, core, limits, name
                )  # fmt: skip
            )
            core += p.repeaters.split.cores
    return mapped


def chips_used(mapped: list[GroupMapping], limits: CoreLimits) -> tuple[int, int]:
    """(cores, chips) of a packing."""
    cores = sum(m.cores for m in mapped)
    return cores, (ceil_div(cores, limits.cores_per_chip) if cores else 0)


def interchip_edges(groups: list[CoreGroup], mapped: list[GroupMapping]) -> int:
    """Edges (group inputs) whose source population's cores end on an earlier chip than the
    consumer's first chip."""
    chip_of = {m.name: m.chips for m in mapped}
    group_of_source = {g.source: g.spec.name for g in groups if g.kind != "relay"}
    crossing = 0
    for g in groups:
        for spec in g.spec.inputs:
            src = group_of_source.get(spec.source)
            if src is not None and chip_of[src][1] < chip_of[g.spec.name][0]:
                crossing += 1
    return crossing


def binding_summary(mapped: list[GroupMapping]) -> tuple[str, dict[str, int]]:
    """(the resource binding the most cores, cores per binding resource)."""
    by_binding: dict[str, int] = {}
    for m in mapped:
        by_binding[m.binding] = by_binding.get(m.binding, 0) + m.cores
    binding = max(by_binding, key=by_binding.__getitem__) if by_binding else "none"
    return binding, by_binding
