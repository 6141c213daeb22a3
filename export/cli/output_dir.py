"""Write an output folder atomically, replacing only a folder this project wrote.

:func:`atomic_directory` is how every command that writes a folder (``spikeclip-export``,
``spikeclip-energy``) writes it:

1. The destination is refused (:class:`~spikeclip.errors.UsageError`, exit 2, nothing touched)
   if it is empty, ``/``, the current or home folder, an input or a folder holding one
   (:func:`spikeclip.outputs.refuse_destination`), a link, a file, or an existing folder that
   this project did not write exactly as it is: its ``manifest.json`` must say this project
   wrote it (``"format"`` in :data:`OWNED_FORMATS`) and list every file and folder in it
   (``"files"``: relative path → bytes and sha256; ``"folders"``), and the folder must hold
   nothing else, nothing changed (a file a user added or edited there is named in the refusal).
2. One lock per destination: ``fcntl.flock`` on the sibling ``.<name>.lock``, which holds the
   holder's pid. A second run for the same destination exits 2 at once, naming that pid.
3. Under the lock, staging folders (``.<name>.<pid>.<random>.staging``) left by a run that is
   gone (its pid is not alive; every live writer holds the lock) are deleted.
4. The body writes into a fresh staging folder beside the destination (same file system). On
   success, when the body wrote an owned ``manifest.json``, the files it wrote are listed in
   it (:func:`record_files`); then the staging folder takes the destination's place in one
   ``renameat2`` exchange (or, where the file system cannot exchange, two renames), and the
   previous folder is deleted. On any failure or signal the staging folder is deleted and the
   destination is as it was.

A write the user can fix (permission, read-only file system, full disk, quota) raises
:class:`~spikeclip.errors.OutputError` (exit 8) naming the path. Files inside are written with
:mod:`spikeclip.atomic_io` (the project's one atomic writer), so each file is atomic too.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from spikeclip.atomic_io import FILE_MODE, write_text_atomic
from spikeclip.errors import UsageError
from spikeclip.interrupts import deferred, pid_alive
from spikeclip.outputs import as_output_error, refuse_destination, write_errors

DIR_MODE = 0o755  # mkdtemp creates 0o700
MANIFEST = "manifest.json"
#: ``manifest.json`` ``"format"`` values of the folders this project writes (and may replace).
OWNED_FORMATS = frozenset({"spikeclip-export", "spikeclip-energy"})
#: A manifest larger than this is not one of ours (it is read to check ownership).
MANIFEST_MAX_BYTES = 16 << 20
_STAGING = re.compile(r"(?P<pid>[0-9]+)\.[a-z0-9_]{8}\.(?P<kind>staging|old)")
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2


def _owned_manifest(path: Path) -> dict | None:
    """The ``manifest.json`` of the real folder ``path`` if its ``"format"`` is in
    :data:`OWNED_FORMATS` (written by this project), else None."""
    manifest = Path(path) / MANIFEST
    try:
        if Path(path).is_symlink() or not Path(path).is_dir() or manifest.is_symlink():
            return None
        if manifest.stat().st_size > MANIFEST_MAX_BYTES:
            return None
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") in OWNED_FORMATS else None


def is_project_folder(path: Path) -> bool:
    """True if ``path`` is a real folder whose ``manifest.json`` has a ``"format"`` in
    :data:`OWNED_FORMATS` (written by this project; whether it still holds only what it
    wrote is :func:`foreign_entry`'s question)."""
    return _owned_manifest(path) is not None


def sha256_file(path: Path) -> str:
    """The sha256 hex digest of the file at ``path`` (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record_files(folder: Path) -> None:
    """List what is under ``folder`` in its owned ``manifest.json``: ``"files"`` (relative path
    → ``{"bytes", "sha256"}``, the manifest itself excepted) and ``"folders"`` (relative
    paths); a folder without such a manifest is left as it is (nothing marks it replaceable)."""
    manifest = _owned_manifest(folder)
    if manifest is None:
        return
    files, folders = {}, []
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_dir() and not path.is_symlink():
            folders.append(name)
        elif path.is_file() and not path.is_symlink() and name != MANIFEST:
            files[name] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    manifest["files"], manifest["folders"] = files, folders
    write_text_atomic(folder / MANIFEST, json.dumps(manifest, indent=2) + "\n")


def foreign_entry(folder: Path, manifest: dict) -> str | None:
    """The first entry of ``folder`` (sorted relative path, with why) that its ``manifest``
    does not list as written by this project: an added file, folder or link, or a listed file
    whose size or sha256 changed; None when it holds only what the manifest lists."""
    files, folders = manifest.get("files"), manifest.get("folders")
    if not isinstance(files, dict) or not isinstance(folders, list):
        return f"{MANIFEST} lists no files (written by an older version of this tool)"
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        entry = files.get(name)
        if name == MANIFEST or (path.is_dir() and not path.is_symlink() and name in folders):
            continue
        if path.is_symlink() or not path.is_file() or not isinstance(entry, dict):
            return f"{name} was not written by this tool"
        if path.stat().st_size != entry.get("bytes") or sha256_file(path) != entry.get("sha256"):
            return f"{name} was changed since this tool wrote it"
    return None


def _refuse_existing(destination: Path, shown: str) -> None:
    """UsageError unless ``destination`` is absent or a folder this project wrote that holds
    only what it wrote."""
    if destination.is_symlink():
        raise UsageError(f"{shown}: is a symbolic link; refusing to replace it")
    if not destination.exists():
        return
    if not destination.is_dir():
        raise UsageError(f"{shown}: is a file; refusing to replace it (name a new folder)")
    manifest = _owned_manifest(destination)
    if manifest is None:
        raise UsageError(
            f"{shown}: exists and was not written by this tool (no manifest.json saying so); "
            "refusing to replace it: name a new folder or remove it yourself"
        )
    foreign = foreign_entry(destination, manifest)
    if foreign is not None:
        raise UsageError(
            f"{shown}: holds more than this tool wrote ({foreign}); refusing to replace it: "
            "move that out, name a new folder or remove the folder yourself"
        )


class _DestinationLock:
    """``fcntl.flock`` on ``.<name>.lock`` beside the destination; the file holds the pid."""

    def __init__(self, destination: Path, shown: str) -> None:
        self.path = destination.parent / f".{destination.name}.lock"
        self.shown = shown
        self.fd: int | None = None

    def acquire(self) -> None:
        for _ in range(100):  # retried only if the holder deleted the file meanwhile
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                raise UsageError(
                    f"{self.shown}: another run (pid {holder}) is writing this folder; wait "
                    "for it to finish or name another folder"
                ) from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
                self.fd = fd
                _LOCK_FDS.add(fd)
                return
            os.close(fd)  # the file we locked was unlinked by its previous holder: retry
        raise UsageError(f"{self.shown}: could not take the lock {self.path}")

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # still holding it: a waiter re-checks the inode
        _LOCK_FDS.discard(self.fd)
        os.close(self.fd)
        self.fd = None


#: Lock descriptors held by this process; a forked child closes its copies, so a lock is
#: released as soon as its holder dies even while (orphaned) children still run.
_LOCK_FDS: set[int] = set()


def _close_inherited_locks() -> None:
    for fd in tuple(_LOCK_FDS):
        with contextlib.suppress(OSError):
            os.close(fd)
    _LOCK_FDS.clear()


os.register_at_fork(after_in_child=_close_inherited_locks)


def _remove_stale(destination: Path) -> list[Path]:
    """Delete staging folders of dead runs for ``destination`` (call with the lock held).

    A ``.<name>.<pid>.<random>.staging`` folder whose pid is not alive is deleted; a leftover
    ``.old`` one (the previous export, moved aside by a run killed between the two renames
    of the fallback commit) is put back if the destination is missing, else deleted.
    """
    prefix = f".{destination.name}."
    removed = []
    for entry in sorted(destination.parent.iterdir()):
        match = entry.name.startswith(prefix) and _STAGING.fullmatch(entry.name[len(prefix) :])
        if not match or entry.is_symlink() or not entry.is_dir():
            continue
        pid = int(match["pid"])
        if pid == os.getpid() or pid_alive(pid):
            continue
        if match["kind"] == "old" and not destination.exists():
            os.rename(entry, destination)
        else:
            shutil.rmtree(entry)
        removed.append(entry)
    return removed


def _renameat2(source: Path, target: Path, flags: int) -> bool:
    """``renameat2(source, target, flags)``; False where the kernel or file system lacks it."""
    libc = ctypes.CDLL(None, use_errno=True)
    call = getattr(libc, "renameat2", None)
    if call is None:
        return False
    if call(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(source), None, str(target))


def _commit(staging: Path, destination: Path) -> None:
    """Put ``staging`` in ``destination``'s place; the previous folder ends up deleted."""
    if not destination.exists():
        if not _renameat2(staging, destination, _RENAME_NOREPLACE):
            os.rename(staging, destination)
        return
    if _renameat2(staging, destination, _RENAME_EXCHANGE):
        shutil.rmtree(staging)  # now holds the previous folder
        return
    old = staging.with_name(staging.name.removesuffix(".staging") + ".old")
    os.rename(destination, old)
    try:
        os.rename(staging, destination)
    except BaseException:
        os.rename(old, destination)
        raise
    shutil.rmtree(old)


@contextlib.contextmanager
def atomic_directory(
    destination: Path, *, inputs: Iterable[str | os.PathLike] = (), option: str = "--out"
) -> Iterator[Path]:
    """Yield a fresh staging folder; on success it replaces ``destination`` as one rename.

    ``inputs`` are files the command reads (never replaced, nor a folder holding them);
    ``option`` names the destination in messages. Raises :class:`UsageError` (exit 2) for a
    refused destination or one another run holds, :class:`~spikeclip.errors.OutputError`
    (exit 8) when the folder cannot be written. See the module docstring for the rules.
    """
    shown = f"{option} {os.fspath(destination)}"
    destination = refuse_destination(destination, inputs=inputs, option=option)
    with write_errors(destination):
        _refuse_existing(destination, shown)  # before creating anything
        if destination.parent.exists() and not destination.parent.is_dir():
            raise UsageError(f"{shown}: {destination.parent} is not a folder")
        destination.parent.mkdir(parents=True, exist_ok=True)
        lock = _DestinationLock(destination, shown)
        lock.acquire()
    try:
        with write_errors(destination):
            _refuse_existing(destination, shown)  # again, now that nobody else writes it
            _remove_stale(destination)
            staging = Path(
                tempfile.mkdtemp(
                    prefix=f".{destination.name}.{os.getpid()}.",
                    suffix=".staging",
                    dir=destination.parent,
                )
            )
        try:
            with write_errors(destination):
                os.chmod(staging, DIR_MODE)
            try:
                yield staging
            except OSError as err:
                mapped = as_output_error(err, staging, destination)
                if mapped is err:
                    raise
                raise mapped from err
            with write_errors(destination):
                record_files(staging)
            with deferred(), write_errors(destination):
                _commit(staging, destination)
        finally:
            with deferred():
                shutil.rmtree(staging, ignore_errors=True)
    finally:
        lock.release()
