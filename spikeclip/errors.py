"""Typed errors of the `spikeclip` package; each message is one line naming file/field/layer."""

from __future__ import annotations

from pathlib import Path


class SpikeCLIPError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(SpikeCLIPError, ValueError):
    """A `SpikeCLIPConfig` field (or a dict meant to become one) is invalid."""


class ModelInputError(SpikeCLIPError, ValueError):
    """A tensor handed to a model method has the wrong shape, dtype or range."""


class CheckpointError(SpikeCLIPError):
    """A checkpoint file cannot be written or read; `path` and `reason` say which and why."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class CheckpointNotFound(CheckpointError, FileNotFoundError):
    """The checkpoint path does not exist or is not a regular file."""


class NotACheckpoint(CheckpointError):
    """The file exists but is not a `model.pt` written by `spikeclip.checkpoint.save`."""


class UnknownFormatVersion(CheckpointError):
    """The file is a SpikeCLIP checkpoint of a format version this code cannot read."""


class InvalidCheckpointContent(CheckpointError):
    """A checkpoint field (config, class names, templates, metadata) has a bad type or value."""


class StateDictMismatch(CheckpointError):
    """The stored state dict does not fit the model built from the stored config."""


class UnsafeCheckpoint(CheckpointError):
    """The pickle would need code execution to load; it was refused and nothing was run."""
