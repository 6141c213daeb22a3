"""Training artifacts (state, logs) written atomically through :mod:`spikeclip.atomic_io`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from spikeclip.atomic_io import open_atomic, write_text_atomic


def atomic_save(obj: Any, path: str | Path) -> None:
    """`torch.save(obj)` to `path` atomically (loadable with weights_only=True if obj is)."""
    with open_atomic(path, durable=True) as handle:
        torch.save(obj, handle)


def atomic_write_json(obj: Any, path: str | Path) -> None:
    """Write `obj` as indented JSON to `path` atomically."""
    write_text_atomic(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")
