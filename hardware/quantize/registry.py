"""Per-layer-kind rule tables of the quantizer's backends, and the error for a missing entry.

Each backend of this package keeps one table from a layer kind to its rule:
:data:`hardware.quantize.build.BUILD` (float node class → integer layer builder),
:data:`hardware.quantize.twin.FAKE_QUANTIZE` (float node class → fake-quantized node) and
:data:`hardware.quantize.twin.DEQUANTIZE` (integer layer ``KIND`` → float node). A new layer kind
is one entry per table; a kind a table does not hold raises :class:`NoRuleError` naming the kind,
the layer and the backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from spikeclip.errors import UnsupportedError

K = TypeVar("K")
R = TypeVar("R")


class NoRuleError(UnsupportedError, LookupError):
    """A backend has no rule for a layer kind. ``backend``, ``kind`` and ``layer`` name it."""

    def __init__(self, backend: str, kind: str, layer: str, known: tuple[str, ...]) -> None:
        self.backend, self.kind, self.layer = backend, kind, layer
        super().__init__(
            f"{backend}: no rule for layer kind {kind!r} (layer {layer!r}); "
            f"this backend handles {', '.join(known)}"
        )


def _kind_name(key: object) -> str:
    return key.__name__ if isinstance(key, type) else str(key)


def rule_for(table: Mapping[K, R], key: K, *, backend: str, layer: str) -> R:
    """``table[key]``, or :class:`NoRuleError` naming the kind, ``layer`` and ``backend``."""
    try:
        return table[key]
    except KeyError:
        known = tuple(sorted(_kind_name(k) for k in table))
        raise NoRuleError(backend, _kind_name(key), layer, known) from None
