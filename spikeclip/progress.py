"""Progress bars for the long loops of every stage (calibration, simulation, Lava), one switch.

:func:`bar` wraps tqdm on stderr. A bar is shown only when progress is on (:func:`quiet` turns
it off for a block: the CLIs' ``--quiet``) and stderr is a terminal (tqdm's ``disable=None``), so
logs, pipes and tests get no bar characters.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from tqdm import tqdm

_state = {"on": True}


@contextmanager
def quiet(flag: bool = True) -> Iterator[None]:
    """No progress bars inside the block when ``flag`` (the previous setting comes back after)."""
    before = _state["on"]
    _state["on"] = before and not flag
    try:
        yield
    finally:
        _state["on"] = before


def enabled() -> bool:
    """Whether a bar made now would draw: progress on and stderr a terminal."""
    return _state["on"] and bool(getattr(sys.stderr, "isatty", lambda: False)())


def bar(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
        unit: str = "it") -> tqdm:
    """A tqdm bar over ``iterable`` (or a manual one of ``total`` for ``update``), drawn on
    stderr only when :func:`enabled`; it disappears when done (``leave=False``)."""
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=False, file=sys.stderr,
                disable=not enabled(), dynamic_ncols=True)
