"""Exit codes of the command-line tools and the mapping from typed errors to them.

The codes and their meanings live once, in :mod:`spikeclip.errors` (the error root): every error
raised on purpose derives from :class:`~spikeclip.errors.SpikeCLIPError` and carries its
``exit_code``. :func:`classify` turns an exception raised in a stage into an
:class:`ExportFailure` with that code and a one-line message naming the stage. Anything else is a
bug: it keeps its traceback and exits with ``EXIT_INTERNAL``.
"""

from __future__ import annotations

import traceback

from spikeclip.errors import (
    EXIT_BAD_MODEL,
    EXIT_CHECK_FAILED,
    EXIT_DOES_NOT_FIT,
    EXIT_INTERNAL,
    EXIT_LAVA_FAILED,
    EXIT_MEMORY,
    EXIT_OK,
    EXIT_OUTPUT,
    EXIT_UNSUPPORTED,
    EXIT_USAGE,
    SpikeCLIPError,
)

__all__ = [
    "EXIT_BAD_MODEL",
    "EXIT_CHECK_FAILED",
    "EXIT_DOES_NOT_FIT",
    "EXIT_INTERNAL",
    "EXIT_LAVA_FAILED",
    "EXIT_MEMORY",
    "EXIT_OK",
    "EXIT_OUTPUT",
    "EXIT_UNSUPPORTED",
    "EXIT_USAGE",
    "ExportFailure",
    "classify",
]


class ExportFailure(Exception):
    """A stage failed: ``exit_code`` says how, the message says where and why (one line)."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def classify(stage: str, err: BaseException) -> ExportFailure:
    """Map ``err`` raised in ``stage`` to an :class:`ExportFailure` (by the error's class)."""
    if isinstance(err, ExportFailure):
        return err
    if isinstance(err, SpikeCLIPError) and err.exit_code != EXIT_INTERNAL:
        text = str(err).strip()
        first = text.splitlines()[0] if text else type(err).__name__
        # Errors of the stage's own library often name it already ("quantize: layer …").
        where = "" if first.startswith(f"{stage}: ") else f"{stage}: "
        return ExportFailure(err.exit_code, f"{where}{first}")
    detail = "".join(traceback.format_exception(err))
    return ExportFailure(
        EXIT_INTERNAL,
        f"{stage}: unexpected {type(err).__name__}: {err}\n{detail}",
    )
