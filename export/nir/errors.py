"""Typed errors of the NIR exporter and executor; each message is one line naming the culprit."""

from __future__ import annotations

from pathlib import Path

from spikeclip.errors import ModelFileError, SpikeCLIPError, UnsupportedError


class NIRError(SpikeCLIPError):
    """Base class of every error `export.nir` raises on purpose."""


class UnsupportedModuleError(NIRError, UnsupportedError, TypeError):
    """`to_nir` met a module it has no builder for; `path` is its dotted module path."""

    def __init__(self, path: str, module_type: str, reason: str = "no NIR builder") -> None:
        self.path = path
        self.module_type = module_type
        super().__init__(f"{path or '<root>'} ({module_type}): {reason}")


class MetadataError(NIRError, ValueError):
    """A `spikeclip` metadata entry is missing or has a bad type/value; `key` says which."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        super().__init__(f"NIR metadata {key}: {reason}")


class UnknownExtensionError(NIRError, UnsupportedError, ValueError):
    """The executor met a node it cannot run (unknown marker or node type), named by `node`."""

    def __init__(self, node: str, reason: str) -> None:
        self.node = node
        super().__init__(f"NIR node {node!r}: {reason}")


class GraphStructureError(NIRError, ValueError):
    """The graph's wiring cannot be executed (cycle, missing input, shape mismatch)."""


class NIRFileError(NIRError, ModelFileError, OSError):
    """A `.nir` file cannot be read or written; `path` and `reason` say which and why."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class NIRExportWarning(UserWarning):
    """Something lossy or surprising happened during export (e.g. a model in training mode:
    the graph uses BatchNorm running statistics, i.e. eval-mode semantics)."""
