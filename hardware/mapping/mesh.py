"""Where the cores of a mapping sit on the chips' meshes, and how far spikes travel.

Cores are numbered in packing order, ``cores_per_chip`` per chip; within a chip, core ``i``
shares router ``i // cores_per_tile``, and routers fill mesh rows of
``mesh_columns / cores_per_tile`` (the target profile's mesh). A *route* carries the spikes of
one source (a population, or an accumulator's graded spikes) to one consumer group: its hops are
the Manhattan distance between the two groups' middle cores (positions within their chips),
and it crosses ``|chip(consumer) − chip(source)|`` chip boundaries. An estimate: a group's cores
are spread around its middle, and the chip-to-chip path is taken as a chain of links.
"""

from __future__ import annotations

from dataclasses import dataclass

from hardware.mapping.profiles import CoreLimits
from hardware.mapping.records import GroupMapping, ScenarioMapping


@dataclass(frozen=True, kw_only=True)
class Route:
    """Spikes of `source` to consumer group `group`: mesh hops and chip boundaries crossed."""

    source: str
    group: str
    hops: int
    chips_crossed: int


def position(core: int, limits: CoreLimits) -> tuple[int, int, int]:
    """``(chip, x, y)`` of core number `core` (routers on the mesh, see the module doc)."""
    chip, local = divmod(core, limits.cores_per_chip)
    router = local // limits.cores_per_tile
    per_row = max(1, limits.mesh_columns // limits.cores_per_tile)
    return chip, router % per_row, router // per_row


def _middle(g: GroupMapping) -> int:
    return g.first_core + g.cores // 2


def routes(scenario: ScenarioMapping) -> list[Route]:
    """Every route between groups of `scenario` (one per consumer input from a group)."""
    by_source = {g.source: g for g in scenario.groups if g.source}
    out = []
    for g in scenario.groups:
        for src in dict.fromkeys(g.sources):
            producer = by_source.get(src)
            if producer is None or producer.name == g.name:
                continue
            a = position(_middle(producer), scenario.limits)
            b = position(_middle(g), scenario.limits)
            out.append(
                Route(
                    source=src,
                    group=g.name,
                    hops=abs(a[1] - b[1]) + abs(a[2] - b[2]),
                    chips_crossed=abs(b[0] - a[0]),
                )
            )
    return out
