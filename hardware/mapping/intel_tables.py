"""Intel's compiler output as data, and this mapper's result next to it.

``hardware/mapping/targets/intel-*.json`` hold what Intel's compiler (lava-loihi) printed for a
public network: per layer (keyed by the netx block index) the six per-core columns and the
cores, and what Intel measured on the chip. :func:`side_by_side` lines a scenario's groups up
with those rows (a group is matched by the block index its name ends with, as
:func:`hardware.lower.from_netx.load_netx` names them: ``input0``, ``conv1``, ``dense7``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any

from hardware.mapping.loihi2_model import ResourceModelError
from hardware.mapping.records import ScenarioMapping

PILOTNET_SNN = "intel-pilotnet-snn"
"""Intel's PilotNet SNN table (74 cores) and its measured energy."""


@dataclass(frozen=True, kw_only=True)
class CompilerRow:
    """One layer as Intel's compiler printed it: the per-core columns (means over the layer's
    cores for most of them) and the cores."""

    block: int
    label: str
    columns: Mapping[str, int]

    @property
    def cores(self) -> int:
        return int(self.columns["cores"])


@dataclass(frozen=True, kw_only=True)
class CompilerTable:
    """A compiler table: rows, total cores, what was measured on the chip, and the sources."""

    name: str
    network: str
    source: str
    rows: tuple[CompilerRow, ...]
    total_cores: int
    measured: Mapping[str, Any]


def load_compiler_table(name: str = PILOTNET_SNN) -> CompilerTable:
    """Read ``hardware/mapping/targets/<name>.json``."""
    where = f"hardware/mapping/targets/{name}.json"
    path = resources.files("hardware.mapping") / "targets" / f"{name}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError) as err:
        raise ResourceModelError(f"{where}: cannot read ({err})") from err
    if data.get("kind") != "compiler-table" or data.get("format_version") != 1:
        raise ResourceModelError(f"{where}: not a compiler table of format_version 1")
    columns = data["columns"]
    rows = tuple(
        CompilerRow(
            block=int(r["block"]),
            label=str(r["label"]),
            columns=MappingProxyType(dict(zip(columns, r["values"], strict=True))),
        )
        for r in data["rows"]
    )
    return CompilerTable(
        name=name,
        network=data["network"],
        source=data["source"],
        rows=rows,
        total_cores=int(data["total_cores"]),
        measured=MappingProxyType(dict(data.get("measured", {}))),
    )


@dataclass(frozen=True, kw_only=True)
class SideBySide:
    """One layer: Intel's cores and this mapper's (None: no group of that block)."""

    label: str
    group: str
    intel: int
    ours: int | None

    @property
    def error(self) -> float | None:
        """(ours − Intel) / Intel."""
        return None if self.ours is None else (self.ours - self.intel) / self.intel


def _block(group_name: str) -> int | None:
    match = re.search(r"(\d+)$", group_name)
    return int(match.group(1)) if match else None


def side_by_side(table: CompilerTable, scenario: ScenarioMapping) -> list[SideBySide]:
    """Intel's rows with the cores of this scenario's group of the same netx block."""
    by_block = {_block(g.name): g for g in scenario.groups if g.kind == "lif"}
    out = []
    for row in table.rows:
        g = by_block.get(row.block)
        out.append(
            SideBySide(
                label=row.label,
                group=g.name if g else "—",
                intel=row.cores,
                ours=g.cores if g else None,
            )
        )
    return out
