"""torch → NIR export of SpikeCLIP, and an executor for the graphs it writes.

- `to_nir(model, tower)` (export/nir/exporter.py; the only part that imports `spikeclip`);
- `write_nir` / `read_nir` (export/nir/io.py), `from_nir(graph)` (export/nir/from_nir.py);
- the metadata schema every reader uses (export/nir/schema.py: read its docstring first);
- `standard_parts(model)` / `write_standard_parts(model, folder)` (export/nir/parts.py): the
  standard-only parts (``text_encoder.nir``, ``image_stem.nir``) that snnTorch, Norse and
  sinabs import as they are; what foreign exporters write: export/nir/FOREIGN.md.

`to_nir` and the parts are loaded lazily so that importing `export.nir`, reading a file and
running `from_nir` never pull in the model package.
"""

from __future__ import annotations

from typing import Any

from export.nir.errors import (
    GraphStructureError,
    MetadataError,
    NIRError,
    NIRExportWarning,
    NIRFileError,
    UnknownExtensionError,
    UnsupportedModuleError,
)
from export.nir.from_nir import NIRExecutor, NIRRun, from_nir
from export.nir.io import read_nir, write_nir

_LAZY = {
    "to_nir": "export.nir.exporter",
    "standard_parts": "export.nir.parts",
    "write_standard_parts": "export.nir.parts",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'export.nir' has no attribute {name!r}")


__all__ = [
    "GraphStructureError",
    "MetadataError",
    "NIRError",
    "NIRExecutor",
    "NIRExportWarning",
    "NIRFileError",
    "NIRRun",
    "UnknownExtensionError",
    "UnsupportedModuleError",
    "from_nir",
    "read_nir",
    "standard_parts",
    "to_nir",
    "write_standard_parts",
    "write_nir",
]
