"""The stages of `spikeclip-export`, each one small function from the context to a summary line.

A stage reads what earlier stages put on the :class:`ExportContext`, writes its files into the
staging folder and returns one line for the progress display. Which stages run depends on the
target (:data:`TARGETS`). The CLI (:mod:`export.cli`) runs them in order.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from export.atomic_dir import write_text_atomic

MANIFEST_FORMAT_VERSION = 1
TARGETS = ("loihi", "loihi1", "sim", "nir", "onnx")
BIT_ACCURACY_STATEMENT = (
    "Bit-accurate here means bit-exact to Lava 0.10's CPU fixed-point models "
    "(PyLifModelBitAcc, PyDenseModelBitAcc; Loihi-1-style). It has not been verified against "
    "Loihi 2 silicon (lava#322, lava#829)."
)


@dataclass(frozen=True, kw_only=True)
class ExportOptions:
    """What the user asked for (parsed command line)."""

    model_path: Path
    target: str
    out: Path
    calib: str | None = None
    samples: int = 256
    run_lava: int = 2
    presets: tuple[str, ...] | None = None
    classes: tuple[str, ...] | None = None
    templates: tuple[str, ...] | None = None
    argv: tuple[str, ...] = ()


@dataclass(kw_only=True)
class ExportContext:
    """Mutable state passed from stage to stage; ``folder`` is the staging output folder."""

    options: ExportOptions
    folder: Path
    checkpoint: Any = None
    checkpoint_sha256: str = ""
    nir_graph: Any = None
    timings: dict[str, float] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)  # file name -> what it is
    summary_lines: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Stage:
    """One pipeline stage: ``run(context) -> summary line``, for the listed targets."""

    name: str
    title: str
    run: Callable[[ExportContext], str]
    targets: frozenset[str]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def stage_load(ctx: ExportContext) -> str:
    """Load the checkpoint safely (weights_only)."""
    from spikeclip.checkpoint import load

    ctx.checkpoint = load(ctx.options.model_path)
    ctx.checkpoint_sha256 = _sha256(ctx.options.model_path)
    cfg = ctx.checkpoint.config
    n_params = sum(p.numel() for p in ctx.checkpoint.model.image_encoder.parameters())
    return (
        f"T={cfg.T}, image {cfg.in_channels}x{cfg.img_size}x{cfg.img_size}, embed {cfg.embed_dim},"
        f" depth {cfg.depth}, {n_params:,} image-encoder parameters"
    )


def stage_nir(ctx: ExportContext) -> str:
    """Export both towers to NIR and write model.nir."""
    import nir

    from export.nir import to_nir

    ctx.nir_graph = to_nir(ctx.checkpoint.model, tower="both")
    path = ctx.folder / "model.nir"
    nir.write(str(path), ctx.nir_graph)
    ctx.artifacts["model.nir"] = "NIR graph of both towers (standard nodes + marked extensions)"
    return f"{len(ctx.nir_graph.nodes)} nodes, {len(ctx.nir_graph.edges)} edges -> model.nir"


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for dist in ("spikeclip-loihi", "torch", "nir", "lava-nc", "lava-dl", "snntorch", "onnx"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def stage_report(ctx: ExportContext) -> str:
    """Write manifest.json and report.md (links to every artifact)."""
    opts = ctx.options
    manifest = {
        "format": "spikeclip-export",
        "format_version": MANIFEST_FORMAT_VERSION,
        "versions": _versions(),
        "checkpoint": {"path": str(opts.model_path), "sha256": ctx.checkpoint_sha256},
        "target": opts.target,
        "options": {
            "calib": opts.calib,
            "samples": opts.samples,
            "run_lava": opts.run_lava,
            "presets": list(opts.presets) if opts.presets else None,
            "classes": list(opts.classes) if opts.classes else None,
            "templates": list(opts.templates) if opts.templates else None,
            "argv": list(opts.argv),
        },
        "stage_seconds": {k: round(v, 4) for k, v in ctx.timings.items()},
        "artifacts": dict(ctx.artifacts),
    }
    write_text_atomic(ctx.folder / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    lines = [
        f"# SpikeCLIP export: `{opts.model_path.name}` → {opts.target}",
        "",
        f"> {BIT_ACCURACY_STATEMENT}",
        "",
        *ctx.summary_lines,
        "",
        "## Files",
        "",
        *(f"- [`{name}`]({name}): {what}" for name, what in ctx.artifacts.items()),
        "- [`manifest.json`](manifest.json): versions, checkpoint hash, options, stage timings",
        "",
        "## Stage timings",
        "",
        "| stage | seconds |",
        "|---|---:|",
        *(f"| {name} | {sec:.2f} |" for name, sec in ctx.timings.items()),
        "",
    ]
    write_text_atomic(ctx.folder / "report.md", "\n".join(lines))
    return "manifest.json, report.md"


_ALL = frozenset(TARGETS)
STAGES: tuple[Stage, ...] = (
    Stage("load", "load checkpoint", stage_load, _ALL),
    Stage("nir", "export NIR graph", stage_nir, frozenset({"loihi", "loihi1", "sim", "nir"})),
    Stage("report", "write manifest and report", stage_report, _ALL),
)
