"""torch → NIR export of SpikeCLIP, and an executor for the graphs it writes.

- `to_nir(model, tower)`, `write_nir`, `read_nir` (export/nir/exporter.py; imports `spikeclip`);
- `from_nir(graph)` (export/nir/from_nir.py; must not import `spikeclip`);
- the metadata schema every reader uses (export/nir/schema.py: read its docstring first).

`to_nir`, `write_nir` and `read_nir` are loaded lazily so that importing `export.nir` (and
running `from_nir`) never pulls in the model package.
"""

from __future__ import annotations

from typing import Any

from export.nir.errors import (
    GraphStructureError,
    MetadataError,
    NIRError,
    NIRFileError,
    UnknownExtensionError,
    UnsupportedModuleError,
)
from export.nir.from_nir import NIRExecutor, NIRRun, from_nir

_LAZY = {"to_nir", "write_nir", "read_nir"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module("export.nir.exporter"), name)
    raise AttributeError(f"module 'export.nir' has no attribute {name!r}")


__all__ = [
    "GraphStructureError",
    "MetadataError",
    "NIRError",
    "NIRExecutor",
    "NIRFileError",
    "NIRRun",
    "UnknownExtensionError",
    "UnsupportedModuleError",
    "from_nir",
    "read_nir",
    "to_nir",
    "write_nir",
]
