"""Typed errors of :mod:`export.lava`."""

from __future__ import annotations


class LavaLoweringError(ValueError):
    """A network cannot be lowered to a Lava process graph; ``layer`` names where and why."""

    def __init__(self, layer: str, reason: str) -> None:
        self.layer = layer
        self.reason = reason
        super().__init__(f"export.lava: layer {layer!r}: {reason}")
