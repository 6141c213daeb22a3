"""`to_nir`: a SpikeCLIP (or one tower) as a type-checked `nir.NIRGraph`.

The graph's layout, the extension carriers and the metadata schema are documented in
`export.nir.schema`; which module becomes which node in `export.nir.builders`.
"""

from __future__ import annotations

import warnings

import nir
import torch
from torch import nn

from export.nir.builders import TOWERS, build, roots
from export.nir.context import GraphBuilder
from export.nir.errors import NIRExportWarning, UnsupportedModuleError
from export.nir.schema import GRAPH_KEY


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
    if model.training:
        warnings.warn(
            f"{type(model).__name__} is in training mode; the NIR graph folds BatchNorm with its "
            "running statistics (eval-mode semantics): call model.eval() to match it",
            NIRExportWarning,
            stacklevel=2,
        )
    ctx = GraphBuilder(timesteps=timesteps)
    with torch.no_grad():
        for module, path in roots(model, tower):
            build(module, ctx, path, None)
    return nir.NIRGraph(
        nodes=ctx.nodes, edges=ctx.edges, metadata={GRAPH_KEY: ctx.meta().to_metadata()}
    )


__all__ = ["to_nir"]
