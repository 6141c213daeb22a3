"""`to_nir`: a SpikeCLIP (or one tower) as a `nir.NIRGraph`, plus atomic write / checked read.

The graph's layout, the extension carriers and the metadata schema are documented in
`export.nir.schema`; which module becomes which node in `export.nir.builders`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import nir
import torch
from torch import nn

from export.nir.builders import TOWERS, build, roots
from export.nir.context import GraphBuilder
from export.nir.errors import MetadataError, NIRFileError, UnsupportedModuleError
from export.nir.schema import GRAPH_KEY, graph_meta


def to_nir(model: nn.Module, tower: str = "image") -> nir.NIRGraph:
    """Export `model` (SpikeCLIP, ImageEncoder or TextEncoder) to a type-checked NIR graph.

    tower: "image", "text" or "both" (SpikeCLIP only; a bare encoder exports itself).
    Parameters are read in eval-mode semantics (BatchNorm running statistics) and written in
    float64. Raises `UnsupportedModuleError` naming the module path of anything without a
    builder (e.g. the ANN twin's ReLUs, a foreign layer swapped into a block).
    """
    if tower not in TOWERS:
        raise UnsupportedModuleError(
            "", type(model).__name__, f"tower must be one of {sorted(TOWERS)}, got {tower!r}"
        )
    config = getattr(model, "config", None)
    timesteps = getattr(config, "T", None)
    if not isinstance(timesteps, int):
        raise UnsupportedModuleError("", type(model).__name__, "model has no config.T")
    ctx = GraphBuilder(timesteps=timesteps)
    with torch.no_grad():
        for module, path in roots(model, tower):
            build(module, ctx, path, None)
    return nir.NIRGraph(
        nodes=ctx.nodes, edges=ctx.edges, metadata={GRAPH_KEY: ctx.meta().to_metadata()}
    )


def write_nir(
    graph: nir.NIRGraph, path: str | Path, *, compression: str | None = "gzip", level: int = 1
) -> Path:
    """`nir.write` to a temp file beside `path`, then `os.replace` (atomic). Returns the path.

    compression: "gzip" (at `level`, 1 = fastest), "lzf" or None; it changes no value.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        opts = level if compression == "gzip" else None
        nir.write(tmp, graph, compression=compression, compression_opts=opts)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def read_nir(path: str | Path) -> nir.NIRGraph:
    """`nir.read` (type-checked) with one-line `NIRFileError`s for missing, truncated or
    corrupted files and for files that are NIR but were not written by `to_nir`."""
    path = Path(path)
    if not path.is_file():
        raise NIRFileError(path, "no such file")
    try:
        graph = nir.read(path)
    except (OSError, KeyError, ValueError, TypeError, AssertionError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise NIRFileError(
            path, f"not a readable NIR file ({type(err).__name__}: {reason})"
        ) from None
    try:
        graph_meta(graph)
    except MetadataError as err:
        raise NIRFileError(path, str(err)) from None
    return graph


__all__ = ["to_nir", "write_nir", "read_nir"]
