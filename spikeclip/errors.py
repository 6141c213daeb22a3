"""The error root of the whole toolchain and the typed errors of the `spikeclip` package.

Every error any package of this project (``spikeclip``, ``export``, ``hardware``) raises on
purpose derives from :class:`SpikeCLIPError` and carries the exit status a command-line tool
returns for it in ``exit_code``. The categories below fix those statuses (documented in the
README and in every command's ``--help``); a module's own error class derives from the category
that says what went wrong, so the CLI maps by class and never by message:

====  =====================================  ==============================================
code  category                               meaning
====  =====================================  ==============================================
0     --                                     success
2     :class:`UsageError`                    bad command line or option value, missing data
3     :class:`ModelFileError`                the model file is missing, unreadable, corrupt,
                                             unsafe or holds non-finite numbers
4     :class:`UnsupportedError`              a layer or node that cannot be lowered
5     :class:`DoesNotFitError`               the network does not fit the target's limits
6     :class:`LavaError`                     Lava failed (or disagreed with the simulator)
7     (anything not derived from the root)   a bug: please report it with the message
8     :class:`OutputError`                   the output cannot be written (permission, disk)
9     :class:`InsufficientMemoryError`       not enough memory for the requested model/stage
10    :class:`CheckFailedError`              a ``--require-*`` gate failed
11    --                                     training stopped by ``--max-steps`` before its
                                             last epoch (continue with ``--resume``)
128+n  --                                    ended by signal n (130 SIGINT, 143 SIGTERM,
                                             129 SIGHUP)
====  =====================================  ==============================================

This module sits at the bottom of the import graph (it imports nothing of the project), so every
stage can derive its errors from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_BAD_MODEL = 3
EXIT_UNSUPPORTED = 4
EXIT_DOES_NOT_FIT = 5
EXIT_LAVA_FAILED = 6
EXIT_INTERNAL = 7
EXIT_OUTPUT = 8
EXIT_MEMORY = 9
EXIT_CHECK_FAILED = 10
EXIT_INCOMPLETE = 11

#: One line per exit status, for ``--help`` epilogs and the README (one home for the wording).
EXIT_CODE_LINES: tuple[tuple[int, str], ...] = (
    (EXIT_OK, "success"),
    (EXIT_USAGE, "bad command line or option value, or missing data"),
    (EXIT_BAD_MODEL, "the model file is missing, unreadable, corrupt, unsafe or not finite"),
    (EXIT_UNSUPPORTED, "a layer that cannot be lowered"),
    (EXIT_DOES_NOT_FIT, "the model does not fit the target"),
    (EXIT_LAVA_FAILED, "Lava failed or disagreed with the simulator"),
    (EXIT_INTERNAL, "a bug (please report it with the message)"),
    (EXIT_OUTPUT, "the output cannot be written (permission, disk full)"),
    (EXIT_MEMORY, "not enough memory on this machine for the requested model or stage"),
    (EXIT_CHECK_FAILED, "a --require-* check failed"),
    (EXIT_INCOMPLETE, "training stopped by --max-steps early (continue with --resume)"),
    (130, "interrupted (SIGINT); 143 SIGTERM; 129 SIGHUP"),
)


def exit_codes_epilog() -> str:
    """The exit-code table as ``--help`` text."""
    return "exit codes:\n" + "\n".join(f"  {code:>3}  {what}" for code, what in EXIT_CODE_LINES)


class SpikeCLIPError(Exception):
    """Root of every error this project raises on purpose; ``exit_code`` is the CLI status."""

    exit_code: ClassVar[int] = EXIT_INTERNAL


class UsageError(SpikeCLIPError, ValueError):
    """A command line, option value or requested dataset that cannot be used (exit 2)."""

    exit_code: ClassVar[int] = EXIT_USAGE


class ModelFileError(SpikeCLIPError):
    """The model file cannot be used: missing, unreadable, corrupt, unsafe, non-finite (exit 3)."""

    exit_code: ClassVar[int] = EXIT_BAD_MODEL


class UnsupportedError(SpikeCLIPError):
    """A layer, node or parameter combination that cannot be lowered; names it (exit 4)."""

    exit_code: ClassVar[int] = EXIT_UNSUPPORTED


class DoesNotFitError(SpikeCLIPError):
    """The network does not fit the target's limits; names layer, demand and limit (exit 5)."""

    exit_code: ClassVar[int] = EXIT_DOES_NOT_FIT


class LavaError(SpikeCLIPError):
    """Lava failed to build or run, or disagreed with the simulator (exit 6)."""

    exit_code: ClassVar[int] = EXIT_LAVA_FAILED


class OutputError(SpikeCLIPError, OSError):
    """The output cannot be written: permission, full disk, read-only file system (exit 8)."""

    exit_code: ClassVar[int] = EXIT_OUTPUT


class InsufficientMemoryError(SpikeCLIPError, MemoryError):
    """The requested model or stage needs more memory than this machine has; raised before
    allocating, with the estimate and what is available (exit 9)."""

    exit_code: ClassVar[int] = EXIT_MEMORY


class CheckFailedError(SpikeCLIPError):
    """A ``--require-*`` verification gate failed; names the check and the figures (exit 10)."""

    exit_code: ClassVar[int] = EXIT_CHECK_FAILED


class ConfigError(UsageError):
    """A `SpikeCLIPConfig` field (or a dict meant to become one) is invalid."""


class ModelInputError(UsageError):
    """A tensor handed to a model method has the wrong shape, dtype or range."""


class CheckpointError(ModelFileError):
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


class CheckpointIsDirectory(CheckpointError, IsADirectoryError):
    """The checkpoint path names a directory, not a file."""


class CheckpointUnreadable(CheckpointError):
    """The checkpoint path exists but cannot be read: no permission, not a regular file (a FIFO,
    a device, a socket), or an I/O error."""


class CorruptCheckpoint(NotACheckpoint):
    """A damaged torch file: a truncated or malformed zip archive, or a zip record whose bytes
    fail its stored CRC-32 (bit rot, an interrupted copy)."""


class NonFiniteTensor(CheckpointError):
    """A stored tensor holds NaN or ±Inf values; names the tensor and the counts."""


class ConversionOptionRequired(UsageError):
    """Converting an official checkpoint needs a value its file does not store (the attention
    head count) and its configuration is not the paper's, so no default is safe: the caller must
    give it (``spikeclip-convert --num-heads``, ``spikeclip.checkpoint.load(num_heads=)``)."""
