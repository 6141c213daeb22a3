"""The one reader of the model files this project loads: safe, checked, one-line errors.

`read_torch_file(path)` returns what `torch.load(path, weights_only=True)` returns, after these
checks, in this order (every failure is a `CheckpointError`, exit 3, message = path + reason):

1. the path: missing → `CheckpointNotFound` ("no such file"); a directory →
   `CheckpointIsDirectory` ("is a directory"); a FIFO, device or socket, no read permission or
   an I/O error → `CheckpointUnreadable`. A FIFO is refused from its `stat`, never opened.
2. the bytes: empty, or neither a zip archive nor a pickle → `NotACheckpoint`; a zip archive
   (what `torch.save` writes since torch 1.6) has every record read back and checked against its
   stored CRC-32 before torch sees it, so flipped bytes inside a tensor record are refused
   (`CorruptCheckpoint`, naming the record) instead of loading silently (torch's reader does not
   check them).
3. the pickle: `torch.load(weights_only=True)`, whose restricted unpickler is the security
   boundary: it refuses any import outside tensors, containers and `SAFE_GLOBALS` before running
   anything. A refusal is `UnsafeCheckpoint` naming the callable the pickle really imports (torch
   names the first it blocks; otherwise a static opcode scan finds it, e.g. in a legacy-format
   file), with re-save advice only when that callable is a class of a known model library
   (a whole pickled model), never for anything else.

`check_finite(tensors, path)` then refuses NaN/±Inf weights (`NonFiniteTensor`, naming the
tensor); `spikeclip.checkpoint` and `spikeclip.official` both call it on the state dict they use.
"""

from __future__ import annotations

import argparse
import os
import pickle
import pickletools
import re
import stat
import struct
import warnings
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import torch

from spikeclip.errors import (
    CheckpointIsDirectory,
    CheckpointNotFound,
    CheckpointUnreadable,
    CorruptCheckpoint,
    NonFiniteTensor,
    NotACheckpoint,
    UnsafeCheckpoint,
)

FORMAT_NAME = "spikeclip-checkpoint"
"""The `format` entry of a `model.pt` (`spikeclip.checkpoint`); `spikeclip.official` uses it to
tell such a file apart from an official-code checkpoint."""

SAFE_GLOBALS: tuple[type, ...] = (argparse.Namespace,)
"""Classes allowed besides weights_only's defaults: timm's `CheckpointSaver` stores the training
`args` as an argparse.Namespace, which only holds attributes."""

KNOWN_MODEL_LIBRARIES = (
    "torch.nn.",
    "transformers.",
    "open_clip.",
    "timm.",
    "sentence_transformers.",
    "spikingjelly.",
    "snntorch.",
    "spikeclip.",
)
"""Module prefixes whose classes a whole pickled model holds. Only when every import of a refused
file is a tensor/container global or a class (CapWords name) under these prefixes does the
refusal suggest re-saving the weights with an unrestricted load; anything else (`posix.system`,
`builtins.eval`, `builtins.getattr`, functions) gets no such advice."""

READ_CHUNK = 1 << 20
"""Bytes read at a time when checking zip records' CRC-32."""

MAX_LEGACY_PICKLES = 5
"""A legacy (torch < 1.6) file is magic number, protocol, sys info, object and storage keys:
five pickles in a row, then raw storage bytes. The scan reads at most this many."""

_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTO = b"\x80"  # a pickle of protocol >= 2 starts with the PROTO opcode
_TORCH_GLOBAL_RE = re.compile(r"GLOBAL ([\w.]+)")
_RENAMED_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}  # protocol-2 spellings
_TENSOR_GLOBALS = frozenset(
    {
        "collections.OrderedDict",
        "torch._tensor._rebuild_from_type_v2",
        "torch.device",
        "torch.Size",
        "torch.storage.UntypedStorage",
        "torch.storage.TypedStorage",
        "torch.nn.parameter.Parameter",
        "builtins.set",
        "builtins.frozenset",
        "builtins.bytearray",
        "builtins.slice",
        "builtins.complex",
        "argparse.Namespace",
    }
)
_STRING_OPS = frozenset(
    {
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
        "UNICODE",
        "BINUNICODE",
        "SHORT_BINUNICODE",
        "BINUNICODE8",
    }
)
_GET_OPS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_PUT_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
# What a pickle parser raises on malformed bytes (torch's restricted unpickler and pickletools
# index their memo/stack and unpack structs directly on the file's contents).
_MALFORMED = (
    EOFError,
    RuntimeError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    struct.error,
    zipfile.BadZipFile,
    UnicodeDecodeError,
)


def read_torch_file(path: str | os.PathLike, *, map_location: Any = "cpu") -> Any:
    """`torch.load(path, map_location, weights_only=True)` after the checks of the module
    docstring; raises their typed errors (all `CheckpointError`, exit 3), nothing else on a bad
    file. Nothing in the file is executed."""
    path = Path(path)
    with _open_regular_file(path) as fh:
        head = _read(path, fh, len(_ZIP_MAGIC))
        if not head:
            raise NotACheckpoint(path, "empty file")
        if head == _ZIP_MAGIC:
            _verify_zip_records(path, fh)
        elif not head.startswith(_PICKLE_PROTO):
            raise NotACheckpoint(path, f"not a torch checkpoint (starts with bytes {head!r})")
    try:
        with torch.serialization.safe_globals(list(SAFE_GLOBALS)), warnings.catch_warnings():
            # torch warns about non-default pickle protocols before refusing them; the typed
            # error below is the one-line message the user gets.
            warnings.filterwarnings(
                "ignore", message="Detected pickle protocol", category=UserWarning
            )
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise _refusal(path, err) from None
    except OSError as err:
        raise CheckpointUnreadable(path, f"cannot be read ({_os_reason(err)})") from None
    except _MALFORMED as err:
        raise NotACheckpoint(
            path, f"not a torch checkpoint, or a damaged one ({_reason(err)})"
        ) from None


def check_finite(tensors: Mapping[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Raise `NonFiniteTensor` naming the first floating tensor of `tensors` (name → tensor)
    that holds NaN or ±Inf, with the counts; integer tensors are skipped."""
    for name, tensor in tensors.items():
        if not (tensor.is_floating_point() or tensor.is_complex()) or tensor.numel() == 0:
            continue
        values = tensor.detach()
        # A finite sum proves every value finite (NaN and ±Inf propagate) and costs ~20x less
        # than an elementwise isfinite; only a non-finite sum (or an overflow) looks closer.
        if bool(torch.isfinite(values.sum())) or bool(torch.isfinite(values).all()):
            continue
        nan, inf = int(torch.isnan(values).sum()), int(torch.isinf(values).sum())
        raise NonFiniteTensor(
            path,
            f"tensor {name} holds non-finite values ({nan} NaN, {inf} ±Inf of "
            f"{values.numel()}); refused (a diverged training run or a damaged file?)",
        )


def pickle_imports(path: str | os.PathLike) -> tuple[str, ...]:
    """Every `module.name` the file's pickle imports (GLOBAL, INST, STACK_GLOBAL), in order of
    first appearance, read from the opcodes without executing anything.

    A zip archive's `data.pkl` is scanned; a legacy file's consecutive pickles are scanned up to
    `MAX_LEGACY_PICKLES`. Unparsable bytes end the scan (what was found so far is returned).
    """
    found: dict[str, None] = {}
    try:
        with Path(path).open("rb") as fh:
            if zipfile.is_zipfile(fh):
                with zipfile.ZipFile(fh) as zf:
                    names = [n for n in zf.namelist() if n.endswith("data.pkl")]
                    if names:
                        with zf.open(names[0]) as pkl:
                            found.update(dict.fromkeys(_scan_one(pkl)))
            else:
                fh.seek(0)
                for _ in range(MAX_LEGACY_PICKLES):
                    start = fh.tell()
                    found.update(dict.fromkeys(_scan_one(fh)))
                    if fh.tell() == start:
                        break
    except (*_MALFORMED, OSError):
        pass
    return tuple(found)


def unsafe_reason(blocked: str, imports: Iterable[str] = ()) -> str:
    """One line for a refused pickle: what it imports and, only when the file looks like a whole
    pickled model of a known library (see `KNOWN_MODEL_LIBRARIES`), how to re-save its weights."""
    reason = f"refused: loading needs code execution (imports {blocked}); nothing was run"
    if _is_library_class(blocked) and all(
        _is_tensor_global(g) or _is_library_class(g) for g in imports
    ):
        return (
            f"{reason}; {blocked} is a class of a model library, so the file probably holds a "
            "whole pickled model: if you trust its source, re-save its weights once: python -c "
            "\"import torch; m = torch.load('IN', weights_only=False); "
            "torch.save(getattr(m, 'state_dict', lambda: m)(), 'OUT.pth')\" and pass OUT.pth"
        )
    return f"{reason}; {blocked} is not a class of a known model library: do not unpickle this file"


# ----------------------------------------------------------------------------- helpers


def _open_regular_file(path: Path) -> IO[bytes]:
    """Open `path` for reading after `stat` says it is a regular file (a FIFO is never opened:
    that would block)."""
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise CheckpointNotFound(path, "no such file") from None
    except OSError as err:
        raise CheckpointUnreadable(path, f"cannot be read ({_os_reason(err)})") from None
    if stat.S_ISDIR(mode):
        raise CheckpointIsDirectory(path, "is a directory, not a checkpoint file")
    if not stat.S_ISREG(mode):
        raise CheckpointUnreadable(path, f"is not a regular file (a {_file_kind(mode)})")
    try:
        return path.open("rb")
    except OSError as err:
        raise CheckpointUnreadable(path, f"cannot be read ({_os_reason(err)})") from None


def _read(path: Path, fh: IO[bytes], size: int) -> bytes:
    try:
        return fh.read(size)
    except OSError as err:
        raise CheckpointUnreadable(path, f"cannot be read ({_os_reason(err)})") from None


def _verify_zip_records(path: Path, fh: IO[bytes]) -> None:
    """Read every record of the zip archive in `fh`; raise `CorruptCheckpoint` naming the first
    whose bytes do not match its CRC-32 (or whose header is broken)."""
    try:
        fh.seek(0)
        archive = zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, EOFError, ValueError) as err:
        raise CorruptCheckpoint(
            path, f"truncated or corrupt torch zip archive ({_reason(err)})"
        ) from None
    with archive:
        for info in archive.infolist():
            try:
                with archive.open(info) as record:
                    while _read(path, record, READ_CHUNK):
                        pass
            except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError) as err:
                what = (
                    "fails its CRC-32 check (its bytes changed after it was written)"
                    if "CRC" in str(err)
                    else f"is damaged ({_reason(err)})"
                )
                raise CorruptCheckpoint(
                    path, f"zip record {info.filename!r} {what}; nothing was loaded"
                ) from None


def _refusal(path: Path, err: pickle.UnpicklingError) -> NotACheckpoint | UnsafeCheckpoint:
    """`UnsafeCheckpoint` naming the blocked import, or `NotACheckpoint` for a broken pickle."""
    imports = pickle_imports(path)
    named = _TORCH_GLOBAL_RE.search(str(err))
    if named:
        blocked: str | None = _normalize(named.group(1))
    else:
        blocked = next((g for g in imports if not _is_tensor_global(g)), None)
    if blocked is None:
        return NotACheckpoint(path, f"not a torch checkpoint (corrupt pickle: {_reason(err)})")
    return UnsafeCheckpoint(path, unsafe_reason(blocked, imports))


def _scan_one(stream: IO[bytes]) -> Iterator[str]:
    """Imports of one pickle in `stream` (which is left after its STOP opcode).

    STACK_GLOBAL takes module and name from the two strings pushed just before it, either as
    literals or from the memo (protocol 4 memoizes them and reuses repeated module names).
    """
    memo: dict[int, str | None] = {}
    pushed: list[str | None] = []
    top: str | None = None
    for op, arg, _pos in pickletools.genops(stream):
        name = op.name
        if name == "MEMOIZE":
            memo[len(memo)] = top
            continue
        if name in _PUT_OPS:
            memo[arg] = top
            continue
        if name in _STRING_OPS:
            top = arg if isinstance(arg, str) else arg.decode("latin-1")
            pushed.append(top)
        elif name in _GET_OPS:
            top = memo.get(arg)
            pushed.append(top)
        else:
            top = None
        if name in ("GLOBAL", "INST"):
            yield _normalize(str(arg).replace(" ", "."))
        elif name == "STACK_GLOBAL" and len(pushed) >= 2 and None not in pushed[-2:]:
            yield _normalize(f"{pushed[-2]}.{pushed[-1]}")


def _normalize(qualified: str) -> str:
    module, _, rest = qualified.partition(".")
    return f"{_RENAMED_MODULES.get(module, module)}.{rest}" if rest else qualified


def _is_tensor_global(name: str) -> bool:
    """A global torch's weights-only unpickler accepts for tensors, storages and containers
    (for wording refusals only: torch's unpickler is what enforces safety)."""
    module, _, attr = name.rpartition(".")
    if name in _TENSOR_GLOBALS or (module == "torch._utils" and attr.startswith("_rebuild_")):
        return True
    return module == "torch" and (
        attr.endswith("Storage") or isinstance(getattr(torch, attr, None), torch.dtype)
    )


def _is_library_class(name: str) -> bool:
    """`name` is a CapWords attribute of a module under `KNOWN_MODEL_LIBRARIES` (by spelling
    only: nothing is imported)."""
    attr = name.rpartition(".")[2]
    return name.startswith(KNOWN_MODEL_LIBRARIES) and attr[:1].isupper()


def _file_kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return kind
    return "special file"


def _os_reason(err: OSError) -> str:
    return (err.strerror or type(err).__name__).lower()


def _reason(err: BaseException) -> str:
    """The first meaningful line of an exception, prefixed with its type when that helps."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(("Weights only load failed", "Please"))]
    first = (useful or lines or [""])[0][:160]
    return f"{type(err).__name__}: {first}" if first else type(err).__name__
