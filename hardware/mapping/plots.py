"""PNG figures of a mapping (matplotlib `Figure` objects: no pyplot, no backend switch).

``{stem}_cores.png``: cores per core group, this mapper against the group's own lower bound
(its compartments or its weights at their width, whichever needs more cores), per scenario.
``{stem}_vs_intel.png``: cores per layer, this mapper (each scenario) against Intel's compiler
(a network with a compiler table, e.g. PilotNet SNN).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from hardware.mapping.bounds import group_lower_bound
from hardware.mapping.intel_tables import CompilerTable, side_by_side
from hardware.mapping.records import Mapping
from spikeclip.atomic_io import write_bytes_atomic


def save_png(fig: Figure, path: Path) -> Path:
    """Write `fig` as a PNG atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    write_bytes_atomic(path, buf.getvalue())
    return path


def _short(name: str) -> str:
    return name.removeprefix("image_encoder.").replace("tokenizer.", "").replace("blocks.", "b")


def cores_figure(mapping: Mapping, title: str) -> Figure:
    """Bars: cores per group per scenario; markers: each group's own lower bound."""
    scenarios = list(mapping.scenarios.items())
    names = [g.name for g in scenarios[0][1].groups]
    fig = Figure(figsize=(max(7.0, 0.28 * len(names) + 2), 4.8))
    ax = fig.subplots()
    x = np.arange(len(names))
    width = 0.8 / len(scenarios)
    for k, (bound, s) in enumerate(scenarios):
        cores = {g.name: g.cores for g in s.groups}
        lower = {g.name: group_lower_bound(g.neurons, g.stored_bits, s.limits) for g in s.groups}
        offset = (k - (len(scenarios) - 1) / 2) * width
        ax.bar(x + offset, [cores.get(n, 0) for n in names], width, label=f"{bound}: mapped")
        ax.plot(x + offset, [lower.get(n, 0) for n in names], "k_", ms=8,
                label=f"{bound}: lower bound" if k == 0 else None)  # fmt: skip
    ax.set_yscale("log")
    ax.set_ylabel("cores")
    ax.set_xticks(x, [_short(n) for n in names], rotation=90, fontsize=6)
    ax.set_title(f"{title}: cores per core group (bars) vs the group's lower bound (—)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def intel_figure(mapping: Mapping, table: CompilerTable, title: str) -> Figure:
    """Bars: cores per layer, Intel's compiler and this mapper's scenarios."""
    rows = {b: side_by_side(table, s) for b, s in mapping.scenarios.items()}
    labels = [r.label for r in next(iter(rows.values()))]
    series = [("Intel's compiler", [r.intel for r in next(iter(rows.values()))])]
    series += [(f"this mapper, {b}", [r.ours or 0 for r in rs]) for b, rs in rows.items()]
    fig = Figure(figsize=(8.0, 4.5))
    ax = fig.subplots()
    x = np.arange(len(labels))
    width = 0.8 / len(series)
    for k, (label, values) in enumerate(series):
        ax.bar(x + (k - (len(series) - 1) / 2) * width, values, width, label=label)
    ax.set_ylabel("cores")
    ax.set_xticks(x, labels, rotation=45, ha="right", fontsize=7)
    ax.set_title(f"{title}: cores per layer")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def write_plots(
    mapping: Mapping, out_dir: str | Path, *, stem: str = "mapping", title: str = "Mapping",
    table: CompilerTable | None = None,
) -> list[Path]:  # fmt: skip
    """Write ``{stem}_cores.png`` (and ``{stem}_vs_intel.png`` given a compiler `table`)."""
    out = Path(out_dir)
    paths = [save_png(cores_figure(mapping, title), out / f"{stem}_cores.png")]
    if table is not None:
        paths.append(save_png(intel_figure(mapping, table, title), out / f"{stem}_vs_intel.png"))
    return paths
