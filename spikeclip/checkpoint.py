"""`model.pt`: the SpikeCLIP checkpoint format (version `FORMAT_VERSION`).

The file is a `torch.save` zip whose pickle holds only builtins and tensors:

    {"format": "spikeclip-checkpoint", "format_version": 1,
     "config": SpikeCLIPConfig.to_dict(), "state_dict": {name: Tensor},
     "class_names": [str] | None, "templates": [str] | None, "metadata": {str: json-like}}

It is read through `spikeclip.safe_load` only (`torch.load(weights_only=True)` after path and
CRC-32 checks): a pickle that would need code execution is refused before anything runs
(`UnsafeCheckpoint`), and NaN/±Inf weights are refused naming the tensor. Writes are atomic
(temp file + os.replace).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spikeclip import official
from spikeclip.atomic_io import open_atomic
from spikeclip.config import SpikeCLIPConfig
from spikeclip.errors import (
    ConfigError,
    InvalidCheckpointContent,
    NotACheckpoint,
    StateDictMismatch,
    UnknownFormatVersion,
)
from spikeclip.memory import check_memory, estimate_memory
from spikeclip.model import SpikeCLIP
from spikeclip.safe_load import FORMAT_NAME, check_finite, read_torch_file

FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
CONVERTED_FORMAT_VERSION = 0
"""`Checkpoint.format_version` of an official-code checkpoint converted while loading."""
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
    with open_atomic(path, durable=True) as fh:
        torch.save(payload, fh)
    return path


def load(
    path: str | os.PathLike,
    *,
    map_location: str | torch.device = "cpu",
    num_heads: int | None = None,
    img_size: int | None = None,
) -> Checkpoint:
    """Read a `model.pt` written by `save`; the model comes back in eval mode.

    The file is read by `spikeclip.safe_load.read_torch_file` (path, CRC-32 of every zip record,
    weights_only unpickling); every stored tensor is checked finite; the config is validated and
    its memory estimated (`spikeclip.memory`) before the model is built. A checkpoint written by
    the paper's official code is converted on the fly (`spikeclip.official.convert_loaded`):
    `num_heads` (and `img_size`) give what such files do not store; num_heads is required
    unless the file's configuration is exactly the paper's. For a `model.pt` they must be None
    or equal to the stored values.

    Raises `CheckpointError` (exit 3; message = path + one-line reason): `CheckpointNotFound`,
    `CheckpointIsDirectory`, `CheckpointUnreadable`, `NotACheckpoint` / `CorruptCheckpoint`,
    `UnsafeCheckpoint` (refused, nothing run), `NonFiniteTensor`, `UnknownFormatVersion`,
    `InvalidCheckpointContent` (bad config or field, e.g. T above `config.MAX_T`),
    `StateDictMismatch`; `InsufficientMemoryError` (exit 9) when the model does not fit this
    machine; `ConfigError`/`ConversionOptionRequired` (exit 2) for bad or missing keywords.
    """
    path = Path(path)
    payload = read_torch_file(path, map_location=map_location)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        return _from_foreign(path, payload, num_heads=num_heads, img_size=img_size)
    version = _format_version(path, payload)
    try:
        config = SpikeCLIPConfig.from_dict(payload.get("config"))
    except ConfigError as err:
        raise InvalidCheckpointContent(path, f"bad config: {err}") from err
    _check_keywords(path, config, num_heads=num_heads, img_size=img_size)
    state = _state_dict(path, payload)
    check_memory(estimate_memory(config), what=f"{path}: building its model")
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


def _format_version(path: Path, payload: dict) -> int:
    """The payload's format version; `UnknownFormatVersion` unless it is supported."""
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
    return version


def _state_dict(path: Path, payload: dict) -> dict[str, torch.Tensor]:
    """The stored state dict: str → finite tensors (else `InvalidCheckpointContent` or
    `NonFiniteTensor` naming the tensor)."""
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise InvalidCheckpointContent(path, "state_dict must map str to tensors")
    check_finite(state, path)
    return state


def _check_keywords(
    path: Path, config: SpikeCLIPConfig, *, num_heads: int | None, img_size: int | None
) -> None:
    """`num_heads`/`img_size` only complete official files: for a model.pt they must agree."""
    for name, given in (("num_heads", num_heads), ("img_size", img_size)):
        stored = getattr(config, name)
        if given is not None and given != stored:
            raise ConfigError(
                f"{path}: {name}={given} was given, but this model.pt stores {name}={stored} "
                "(the keyword only completes official checkpoints, which do not store it)"
            )


def _from_foreign(
    path: Path, payload: Any, *, num_heads: int | None, img_size: int | None
) -> Checkpoint:
    """A checkpoint of the paper's official code (either tower, either layout) is converted
    (`spikeclip.official.convert_loaded`, which warns `OfficialConversionNotice` with what it
    assumed); format_version is then 0. Anything else raises `NotACheckpoint`."""
    if official.looks_official(payload):
        conversion = official.convert_loaded(
            payload, path, num_heads=num_heads, img_size=img_size
        )
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
