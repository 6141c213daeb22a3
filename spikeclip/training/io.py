"""Atomic file writes for training artifacts (temp file in the same folder + os.replace)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from spikeclip.checkpoint import FILE_MODE


def _atomic(path: str | Path, write: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, FILE_MODE)  # mkstemp made it 0o600; outputs are ordinary readable files
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_save(obj: Any, path: str | Path) -> None:
    """`torch.save(obj)` to `path` atomically (loadable with weights_only=True if obj is)."""
    _atomic(path, lambda tmp: torch.save(obj, tmp))


def atomic_write_json(obj: Any, path: str | Path) -> None:
    """Write `obj` as indented JSON to `path` atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=1, sort_keys=True)
            f.write("\n")

    _atomic(path, write)
