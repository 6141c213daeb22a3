"""SpikeCLIP: a spiking CLIP (image + text towers), its ANN twin and its checkpoint format.

Import-light: importing ``spikeclip`` (or its error root, :mod:`spikeclip.errors`, which every
package of the project derives its errors from) loads no model code; the names below are
resolved on first use. The package pulls in torch only (no teachers, no Lava, no
export/hardware).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "FORMAT_VERSION": "spikeclip.checkpoint",
    "Checkpoint": "spikeclip.checkpoint",
    "load": "spikeclip.checkpoint",
    "save": "spikeclip.checkpoint",
    "SpikeCLIPConfig": "spikeclip.config",
    "SpikeCLIP": "spikeclip.model",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'spikeclip' has no attribute {name!r}")


__all__ = ["FORMAT_VERSION", "Checkpoint", "SpikeCLIP", "SpikeCLIPConfig", "load", "save"]
