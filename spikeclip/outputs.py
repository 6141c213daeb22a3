"""Where a command may write, and how a failed write is reported (one home for both rules).

- :func:`refuse_destination`: an output path that would destroy what the user did not ask to
  replace is a :class:`~spikeclip.errors.UsageError` (exit 2) before anything is touched: an
  empty path, ``/``, the current folder, the home folder, the input file, or a folder holding
  any of them.
- :func:`check_output_file`: a single output file (``spikeclip-convert --out model.pt``) may
  replace only a file of the kind the tool writes (a checkpoint, told by
  :func:`is_torch_file_of`; a JSON record, by :func:`is_json_with_keys`), never an input.
- :func:`write_errors` / :func:`output_error`: an ``OSError`` of a write that the user can fix
  (permission, read-only file system, full disk, quota) becomes an
  :class:`~spikeclip.errors.OutputError` (exit 8) naming the path and the OS reason.

Folders have more rules (ownership by manifest, a lock, staging): :mod:`export.cli.output_dir`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from spikeclip.errors import OutputError, SpikeCLIPError, UsageError

#: errno values of a write the user can fix (not a bug): they become OutputError (exit 8).
WRITE_ERRNOS: frozenset[int] = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EFBIG}
)
#: The subset that only a write can cause (a full disk or quota): mapped whatever the path.
FULL_ERRNOS: frozenset[int] = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def output_error(err: OSError, path: str | os.PathLike, staging: Path | None = None) -> OutputError:
    """``err`` as an :class:`OutputError` naming the output ``path`` and the OS reason.

    The file the OS named (``err.filename``) is added in parentheses, relative to ``staging``
    (the output's staging folder) when inside it. The result keeps ``errno`` and, in
    ``written``, that file name (for a later re-mapping).
    """
    reason = os.strerror(err.errno) if err.errno else str(err)
    name = getattr(err, "written", None) or err.filename
    where = ""
    if isinstance(name, (str, bytes, os.PathLike)):
        name = os.fsdecode(name)
        full = Path(os.path.abspath(name))
        if staging is not None and _within(full, Path(os.path.abspath(staging))):
            inner = full.relative_to(os.path.abspath(staging))
            where = f" (writing {inner})" if str(inner) != "." else ""
        elif os.path.abspath(name) != os.path.abspath(path):
            where = f" ({name})"
    out = OutputError(f"cannot write {path}: {reason}{where}")
    out.errno = err.errno
    out.written = name if isinstance(name, str) else os.fspath(path)
    return out


@contextlib.contextmanager
def write_errors(path: str | os.PathLike) -> Iterator[None]:
    """Re-raise an ``OSError`` with an errno in :data:`WRITE_ERRNOS` as :func:`output_error`."""
    try:
        yield
    except SpikeCLIPError:
        raise
    except OSError as err:
        if err.errno in WRITE_ERRNOS:
            raise output_error(err, path) from err
        raise


def as_output_error(err: BaseException, folder: Path, path: str | os.PathLike) -> BaseException:
    """``err`` raised while writing into ``folder`` (the output ``path``'s staging folder), as
    an :class:`OutputError` if it is a write failure the user can fix, else ``err`` itself.

    A full disk or quota counts wherever it was reported (h5py reports ENOSPC without a file
    name); permission and read-only errors only for a file inside ``folder`` (an unreadable
    input is not an output error).
    """
    if isinstance(err, OutputError):  # a writer named the staging file: name the output
        return output_error(err, path, folder)
    if not isinstance(err, OSError) or isinstance(err, SpikeCLIPError):
        return err
    if err.errno in FULL_ERRNOS:
        return output_error(err, path, folder)
    if err.errno in WRITE_ERRNOS and isinstance(err.filename, (str, bytes, os.PathLike)):
        name = Path(os.path.abspath(os.fsdecode(err.filename)))
        if _within(name, Path(os.path.abspath(folder))):
            return output_error(err, path, folder)
    return err


def _real(path: Path) -> Path:
    """Absolute path with symlinks of its folders resolved (the last part kept as named)."""
    path = Path(os.path.abspath(path))
    return Path(os.path.realpath(path.parent)) / path.name


def _within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def refuse_destination(
    path: str | os.PathLike, *, inputs: Iterable[str | os.PathLike] = (), option: str = "--out"
) -> Path:
    """Return ``path`` made absolute, or raise :class:`UsageError` if writing there could
    destroy something the user did not create with this tool.

    Refused: an empty path; ``/``; the current folder, the home folder or a folder holding
    either; any of ``inputs`` or a folder holding one (``--out model.pt`` for ``model.pt``).
    Nothing on disk is changed.
    """
    text = os.fspath(path)
    if not str(text).strip():
        raise UsageError(f"{option} is empty; name a new folder to write to")
    real = _real(Path(text))
    cwd = Path(os.path.realpath(os.getcwd()))
    home = Path(os.path.realpath(Path.home()))
    shown = f"{option} {text}"
    if real == real.parent:
        raise UsageError(f"{shown}: refusing to write to the root folder")
    if _within(cwd, real):
        what = "is the current folder" if real == cwd else "holds the current folder"
        raise UsageError(f"{shown}: refusing to replace it: it {what}; name a new folder")
    if _within(home, real):
        what = "is your home folder" if real == home else "holds your home folder"
        raise UsageError(f"{shown}: refusing to replace it: it {what}; name a new folder")
    for given in inputs:
        source = Path(os.path.realpath(given))
        if _within(source, Path(os.path.realpath(real))):
            what = "is the input" if source == Path(os.path.realpath(real)) else "holds the input"
            raise UsageError(f"{shown}: refusing to replace it: it {what} {given}")
    return real


def check_output_file(
    path: str | os.PathLike,
    *,
    inputs: Iterable[str | os.PathLike] = (),
    replaceable: Callable[[Path], bool],
    kind: str,
    option: str = "--out",
) -> Path:
    """Refuse (``UsageError``, exit 2) a single output file that would replace something that
    is not ``kind`` (``replaceable(path)`` is False), a folder, a link, or one of ``inputs``.

    Returns the absolute path. Nothing on disk is changed.
    """
    real = refuse_destination(path, inputs=inputs, option=option)
    shown = f"{option} {os.fspath(path)}"
    if real.is_symlink():
        raise UsageError(f"{shown}: is a symbolic link; refusing to replace it")
    if real.is_dir():
        raise UsageError(f"{shown}: is a folder; name the {kind} file to write")
    if real.exists() and not replaceable(real):
        raise UsageError(
            f"{shown}: exists and is not a {kind}; refusing to replace it (choose a new name "
            "or remove it yourself)"
        )
    return real


#: A file larger than this is not read to tell whether it is one of ours.
SNIFF_MAX_BYTES = 64 << 20


def is_torch_file_of(path: str | os.PathLike, format_name: str) -> bool:
    """True if ``path`` is a ``torch.save`` zip whose pickle names ``format_name`` (the
    ``"format"`` field this project writes). The pickle is read as bytes, never unpickled."""
    marker = format_name.encode("utf-8")
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [i for i in archive.infolist() if i.filename.endswith("/data.pkl")]
            if len(pickles) != 1 or pickles[0].file_size > SNIFF_MAX_BYTES:
                return False
            return marker in archive.read(pickles[0])
    except (OSError, zipfile.BadZipFile):
        return False


def is_json_with_keys(path: str | os.PathLike, keys: Iterable[str]) -> bool:
    """True if ``path`` holds a JSON object with every one of ``keys`` (a record we wrote)."""
    try:
        if os.path.getsize(path) > SNIFF_MAX_BYTES:
            return False
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(data, dict) and all(k in data for k in keys)
