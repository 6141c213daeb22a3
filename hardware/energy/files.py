"""The energy report's files: ``{stem}.md``, ``{stem}.json`` and the PNG plots, each written
atomically (:mod:`spikeclip.atomic_io`)."""

from __future__ import annotations

import json
from pathlib import Path

from hardware.energy.plots import write_plots
from hardware.energy.report import EnergyReport, to_json, to_markdown
from spikeclip.atomic_io import write_text_atomic


def write_report(rep: EnergyReport, out_dir: str | Path, stem: str = "energy") -> list[Path]:
    """Write ``stem.md``, ``stem.json`` and the PNG plots into ``out_dir``; returns the paths."""
    out = Path(out_dir)
    md, js = out / f"{stem}.md", out / f"{stem}.json"
    write_text_atomic(md, to_markdown(rep))
    write_text_atomic(js, json.dumps(to_json(rep), indent=1, allow_nan=False) + "\n")
    return [md, js, *write_plots(rep, out, stem)]
