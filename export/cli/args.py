"""Shared command-line pieces of every console script: option value types and the help format.

The type functions are ``argparse`` ``type=`` callables: they turn the option's text into a
value or raise :class:`argparse.ArgumentTypeError`, which argparse reports as
``error: argument --NAME: <message>`` and exit status 2 (a bad option value, see
:mod:`spikeclip.errors`), before anything is loaded or written. Floats must be finite.

:class:`HelpFormatter` keeps the line breaks of descriptions and epilogs (target tables, exit
codes) and appends ``(default: X)`` to every option that has a default worth showing;
:func:`help_epilog` ends every command's ``--help`` the same way: what it writes, the exit codes.
"""

from __future__ import annotations

import argparse
import math
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from spikeclip.errors import exit_codes_epilog

__all__ = [
    "HelpFormatter",
    "help_epilog",
    "nonnegative_float",
    "nonnegative_int",
    "positive_float",
    "positive_int",
    "probability",
]


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def output_path(text: str) -> Path:
    """A path to write to. An empty string (an unset shell variable: ``--out "$OUT"``) is refused
    here rather than read as ``.``, the current folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must name a file or folder, got an empty string")
    return Path(text)


def _checked(
    parse: Callable[[str], Any], accept: Callable[[Any], bool], rule: str, name: str, doc: str
) -> Callable[[str], Any]:
    """An argparse ``type=``: ``parse(text)``, then ArgumentTypeError "must be <rule>, got
    <value>" unless ``accept(value)``."""

    def value_type(text: str) -> Any:
        value = parse(text)
        if not accept(value):
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            raise argparse.ArgumentTypeError(f"must be {rule}, got {shown}")
        return value

    value_type.__name__ = value_type.__qualname__ = name
    value_type.__doc__ = doc
    return value_type


positive_int: Callable[[str], int] = _checked(
    _int, lambda v: v >= 1, "a positive integer (≥ 1)", "positive_int",
    "An integer ≥ 1 (a count of samples, steps, images, threads, heads, pixels …).")
nonnegative_int: Callable[[str], int] = _checked(
    _int, lambda v: v >= 0, "a non-negative integer (≥ 0)", "nonnegative_int",
    'An integer ≥ 0 (a count where 0 means "none": ``--run-lava 0`` skips Lava; a seed).')
positive_float: Callable[[str], float] = _checked(
    _float, lambda v: v > 0, "a positive number (> 0)", "positive_float",
    "A finite number > 0 (a learning rate, a temperature, a scale).")
nonnegative_float: Callable[[str], float] = _checked(
    _float, lambda v: v >= 0, "a non-negative number (≥ 0)", "nonnegative_float",
    "A finite number ≥ 0 (a weight, a decay, a tolerance in percentage points).")
probability: Callable[[str], float] = _checked(
    _float, lambda v: 0.0 <= v <= 1.0, "a fraction between 0 and 1", "probability",
    "A fraction in [0, 1] (e.g. a required prediction agreement: 0.99 = 99 %).")  # fmt: skip


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """``RawDescriptionHelpFormatter`` (descriptions and epilogs keep their line breaks) that
    appends ``(default: X)`` to each option's help, like ``ArgumentDefaultsHelpFormatter``,
    except where there is nothing to show: no default (``None``), an on/off flag, or a help text
    that already says ``%(default)s``. Lists are shown space-separated, as typed."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" in text
            or default is None
            or default is argparse.SUPPRESS
            or isinstance(default, bool)
            or action.nargs == 0
            or not (action.option_strings or action.nargs in (argparse.OPTIONAL,
                                                              argparse.ZERO_OR_MORE))
        ):
            return action.help
        if isinstance(default, Sequence) and not isinstance(default, str):
            shown = " ".join(str(v) for v in default)
        else:
            shown = str(default)
        shown = shown.replace("%", "%%") if shown else "''"
        return f"{text} (default: {shown})" if text else f"(default: {shown})"


HELP_WIDTH = 79
"""Columns the ``--help`` paragraphs are filled to."""


def help_epilog(*, writes: str, examples: str = "", note: str = "") -> str:
    """The end of every command's ``--help``: ``examples`` (as given), ``writes:`` and what the
    command writes (filled), the exit-code table (:func:`spikeclip.errors.exit_codes_epilog`)
    and a closing ``note`` (filled)."""
    parts = [examples.rstrip("\n")] if examples else []
    parts.append("writes:\n" + textwrap.fill(writes, HELP_WIDTH, initial_indent="  ",
                                             subsequent_indent="  "))
    parts.append(exit_codes_epilog())
    if note:
        parts.append(textwrap.fill(note, HELP_WIDTH))
    return "\n\n".join(parts)
