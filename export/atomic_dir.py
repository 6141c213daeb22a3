"""Write an output folder atomically: build it beside its destination, then rename it in place.

A failure at any point leaves the destination as it was (absent, or the previous export), never
half-written. Files inside are written with :func:`write_text_atomic` / :func:`write_bytes_atomic`
so a single-file output (outside such a folder) is atomic too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

FILE_MODE = 0o644  # mkstemp creates 0o600; outputs are ordinary readable files
DIR_MODE = 0o755  # mkdtemp creates 0o700

def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """UTF-8 text version of :func:`write_bytes_atomic`."""
    write_bytes_atomic(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_directory(destination: Path) -> Iterator[Path]:
    """Yield a fresh staging folder; on success it replaces ``destination`` as one rename.

    The staging folder is a sibling (same file system, so the rename is atomic). If the body
    raises, the staging folder is deleted and ``destination`` is untouched. An existing
    ``destination`` is moved aside first and deleted only after the new folder is in place.
    """
    destination = Path(destination).absolute()
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    os.chmod(staging, DIR_MODE)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = None
    if destination.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{destination.name}.old.", dir=destination.parent))
        os.rmdir(old)
        os.replace(destination, old)
    try:
        os.replace(staging, destination)
    except BaseException:
        if old is not None:
            os.replace(old, destination)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
