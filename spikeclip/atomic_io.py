"""Atomic file writes: a temp file beside the target, then ``os.replace``.

The one copy used by every writer of the project (checkpoints, training state and logs, NIR and
netx HDF5, ONNX, the network ``.npz``, every report and plot, the output folders' manifests).
It sits in the bottom package so that every stage can use it. Files get mode ``0o644``
(``mkstemp`` alone would leave ``0o600``). A failure leaves ``path`` as it was; one
the user can fix (permission, read-only file system, full disk) raises
:class:`~spikeclip.errors.OutputError` (exit 8) naming ``path`` (:mod:`spikeclip.outputs`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from spikeclip.outputs import write_errors

#: Permission bits of every file written here (``mkstemp`` creates ``0o600``).
FILE_MODE = 0o644


@contextlib.contextmanager
def open_atomic(path: str | os.PathLike, *, durable: bool = False) -> Iterator[BinaryIO]:
    """Yield a binary handle on a temp file beside ``path``; on success it replaces ``path``.

    If the body raises, the temp file is deleted and ``path`` is untouched. ``durable``: fsync
    the data before the rename (checkpoints: a crash right after cannot leave an empty file).
    """
    path = Path(path)
    with write_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                yield handle
                if durable:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.chmod(tmp, FILE_MODE)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with open_atomic(path) as handle:
        handle.write(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    return write_bytes_atomic(path, text.encode("utf-8"))
