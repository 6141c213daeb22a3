"""`model.pt`: the SpikeCLIP checkpoint format (version `FORMAT_VERSION`).

The file is a `torch.save` zip whose pickle holds only builtins and tensors:

    {"format": "spikeclip-checkpoint", "format_version": 1,
     "config": SpikeCLIPConfig.to_dict(), "state_dict": {name: Tensor},
     "class_names": [str] | None, "templates": [str] | None, "metadata": {str: json-like}}

It is read with `torch.load(weights_only=True)` only: a pickle that would need code execution is
refused before anything runs (`UnsafeCheckpoint`). Writes are atomic (temp file + os.replace).
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import pickletools
import re
import struct
import tempfile
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spikeclip.config import SpikeCLIPConfig
from spikeclip.errors import (
    CheckpointNotFound,
    ConfigError,
    InvalidCheckpointContent,
    NotACheckpoint,
    StateDictMismatch,
    UnknownFormatVersion,
    UnsafeCheckpoint,
)
from spikeclip.model import SpikeCLIP

FORMAT_NAME = "spikeclip-checkpoint"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
CONVERTED_FORMAT_VERSION = 0
"""`Checkpoint.format_version` of an official-code checkpoint converted while loading."""
FILE_MODE = 0o644
MAX_LISTED_MISMATCHES = 3
"""How many mismatched state-dict keys an error message names before '…'."""


@dataclass(frozen=True, kw_only=True)
class Checkpoint:
    """A loaded `model.pt`: the model (eval mode, CPU unless map_location says otherwise), its
    config, the class names and prompt templates it was trained/evaluated with (or None), free
    metadata (JSON-like) and the file's format version."""

    model: SpikeCLIP
    config: SpikeCLIPConfig
    class_names: tuple[str, ...] | None = None
    templates: tuple[str, ...] | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION


def save(
    path: str | os.PathLike,
    model: SpikeCLIP,
    *,
    class_names: Sequence[str] | None = None,
    templates: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write `model` (config + state dict) and the optional fields to `path` atomically.

    metadata must be JSON-like (str keys; str/int/float/bool/None, lists and dicts of them).
    Returns the path. Raises `InvalidCheckpointContent` for a bad field, before writing anything.
    """
    path = Path(path)
    if not isinstance(model, SpikeCLIP):
        raise InvalidCheckpointContent(
            path, f"model must be a SpikeCLIP, got {type(model).__name__}"
        )
    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "class_names": _string_list(path, "class_names", class_names),
        "templates": _string_list(path, "templates", templates),
        "metadata": _json_like(path, "metadata", dict(metadata or {})),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp_name, FILE_MODE)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    return path


def load(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read a `model.pt` written by `save`; the model comes back in eval mode.

    A checkpoint written by the paper's official code is converted on the fly (see
    `_from_foreign`). Raises (all `CheckpointError`, message = path + one-line reason):
    `CheckpointNotFound`, `NotACheckpoint`, `UnsafeCheckpoint` (the pickle needs code execution;
    refused, nothing run), `UnknownFormatVersion`, `InvalidCheckpointContent` (bad config or
    field), `StateDictMismatch` (names the first missing/unexpected/mis-shaped keys).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFound(path, "no such file")
    payload = _safe_torch_load(path, map_location)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        return _from_foreign(path, payload)
    version = payload.get("format_version")
    if (
        not isinstance(version, int)
        or isinstance(version, bool)
        or version not in SUPPORTED_VERSIONS
    ):
        raise UnknownFormatVersion(
            path,
            f"format version {version!r} is not one of {SUPPORTED_VERSIONS} "
            "(written by another version of this toolchain?)",
        )
    try:
        config = SpikeCLIPConfig.from_dict(payload.get("config"))
    except ConfigError as err:
        raise InvalidCheckpointContent(path, f"bad config: {err}") from err
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise InvalidCheckpointContent(path, "state_dict must map str to tensors")
    model = SpikeCLIP(config)
    _check_fits(path, model, state)
    model.load_state_dict(state, strict=True)
    model.eval()
    metadata = payload.get("metadata", {})
    if not isinstance(metadata, dict):
        raise InvalidCheckpointContent(
            path, f"metadata must be a dict, got {type(metadata).__name__}"
        )
    metadata = _json_like(path, "metadata", metadata)
    names = _string_list(path, "class_names", payload.get("class_names"))
    templates = _string_list(path, "templates", payload.get("templates"))
    return Checkpoint(
        model=model,
        config=config,
        class_names=None if names is None else tuple(names),
        templates=None if templates is None else tuple(templates),
        metadata=metadata,
        format_version=version,
    )


def _from_foreign(path: Path, payload: Any) -> Checkpoint:
    """A checkpoint of the paper's official code (either tower, either layout) is converted
    (`spikeclip.official.convert_loaded`, which warns `OfficialConversionNotice` with what it
    assumed); format_version is then 0. Anything else raises `NotACheckpoint`."""
    from spikeclip import official  # lazy: official imports this module's names lazily too

    if official.looks_official(payload):
        conversion = official.convert_loaded(payload, path)
        return Checkpoint(
            model=conversion.model.eval(),
            config=conversion.config,
            metadata=official.conversion_metadata(conversion),
            format_version=CONVERTED_FORMAT_VERSION,
        )
    what = type(payload).__name__
    raise NotACheckpoint(
        path,
        f"not a SpikeCLIP checkpoint (top level is a {what} without "
        f"format={FORMAT_NAME!r}); write it with spikeclip.checkpoint.save",
    )


def _safe_torch_load(path: Path, map_location: str | torch.device) -> Any:
    """`torch.load(weights_only=True)`, its failures mapped to typed errors.

    Besides torch's weights-only defaults, only the attribute holders in
    `spikeclip.official.SAFE_GLOBALS` (argparse.Namespace, stored by timm) are allowed.
    """
    from spikeclip.official import SAFE_GLOBALS

    try:
        with torch.serialization.safe_globals(list(SAFE_GLOBALS)), warnings.catch_warnings():
            # torch warns about non-default pickle protocols before refusing them; the typed
            # error below is the one-line message the user gets.
            warnings.filterwarnings(
                "ignore", message="Detected pickle protocol", category=UserWarning
            )
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        unsafe = _needs_code(str(err)) or _pickle_imports(path)
        if unsafe:
            raise UnsafeCheckpoint(
                path, f"refused: loading needs code execution ({unsafe}); nothing was run"
            ) from None
        raise NotACheckpoint(path, f"not a torch checkpoint ({_first_line(err)})") from None
    except _MALFORMED as err:
        first = _first_line(err)
        reason = f"{type(err).__name__}: {first}" if first else type(err).__name__
        raise NotACheckpoint(path, f"not a torch checkpoint ({reason})") from None


# What torch.load(weights_only=True) raises on malformed (non-malicious) bytes: its restricted
# unpickler indexes its memo/stack and unpacks structs directly on the file's contents.
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

_GLOBAL_RE = re.compile(r"Unsupported global: GLOBAL (\S+)")


def _needs_code(message: str) -> str:
    """The forbidden global torch's weights-only unpickler named in `message`, or ''."""
    match = _GLOBAL_RE.search(message)
    return f"imports {match.group(1)}" if match else ""


def _pickle_imports(path: Path) -> str:
    """Statically scan the file's pickle (no execution) for imports/calls; '' if none/unparsable.

    torch refuses some pickles (e.g. protocol-4 plain pickles) before naming a global; this
    tells such a pickle apart from a file that is not a pickle at all.
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if n.endswith("data.pkl")]
                data = zf.read(names[0]) if names else b""
        else:
            data = path.read_bytes()
        strings: list[str] = []
        found: list[str] = []
        for op, arg, _pos in pickletools.genops(data):
            if isinstance(arg, str):
                strings.append(arg)
            if op.name in ("GLOBAL", "INST"):
                found.append(str(arg).replace(" ", "."))
            elif op.name == "STACK_GLOBAL":
                found.append(".".join(strings[-2:]) if len(strings) >= 2 else "a global")
            elif op.name in ("REDUCE", "OBJ", "NEWOBJ", "NEWOBJ_EX") and not found:
                found.append("a call")
    except (ValueError, zipfile.BadZipFile, KeyError, OSError, IndexError):
        return ""
    return f"imports {found[0]}" if found else ""


def _first_line(err: BaseException) -> str:
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    meaningful = [ln for ln in lines if not ln.startswith(("Weights only load failed", "Please"))]
    return (meaningful or lines or [""])[0][:160]


def _check_fits(path: Path, model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Raise `StateDictMismatch` naming the first missing, unexpected and mis-shaped keys."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} {list(state[k].shape)} vs model {list(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape", shapes)):
        if items:
            more = ", …" if len(items) > MAX_LISTED_MISMATCHES else ""
            problems.append(
                f"{len(items)} {label}: {', '.join(items[:MAX_LISTED_MISMATCHES])}{more}"
            )
    if problems:
        raise StateDictMismatch(path, "state dict does not fit its config: " + "; ".join(problems))


def _string_list(path: Path, name: str, value: Any) -> list[str] | None:
    if value is None:
        return None
    if (
        isinstance(value, str)
        or not isinstance(value, Sequence)
        or not all(isinstance(v, str) for v in value)
    ):
        raise InvalidCheckpointContent(path, f"{name} must be a list of str or None")
    return list(value)


def _json_like(path: Path, name: str, value: Any) -> Any:
    """Check `value` is JSON-like (what weights_only loading accepts); return a plain copy."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidCheckpointContent(path, f"{name} holds a non-finite float {value}")
        return value
    if isinstance(value, list | tuple):
        return [_json_like(path, f"{name}[{i}]", v) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise InvalidCheckpointContent(path, f"{name} has a non-str key {k!r}")
            out[k] = _json_like(path, f"{name}.{k}", v)
        return out
    raise InvalidCheckpointContent(
        path, f"{name} holds a {type(value).__name__}; only JSON-like values are allowed"
    )
