"""One batch planner for every stage that streams samples: batch size from a per-sample estimate.

A stage that runs ``samples`` samples estimates the peak bytes one sample adds to its working set
(its own formula; e.g. :func:`hardware.quantize.calibrate.sample_bytes`) and asks
:func:`plan_batches` for a batch size: as many samples as fit in ``budget`` (default: the
smaller of :data:`DEFAULT_BUDGET` and half the memory this process may still use,
:func:`spikeclip.memory.available_memory`). If not even one sample fits in the memory available
now, :class:`spikeclip.errors.InsufficientMemoryError` (exit 9) is raised before anything runs.
Every stage that uses it accumulates maxima and counts per batch and combines them exactly, so
the batch size changes memory and time, never a result.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from spikeclip.errors import InsufficientMemoryError
from spikeclip.memory import AvailableMemory, available_memory, format_bytes

#: Working set one batch aims for, at most (bytes): 1 GiB.
DEFAULT_BUDGET = 1 << 30


@dataclass(frozen=True, kw_only=True)
class Batching:
    """How ``samples`` samples of a stage (``what``, e.g. "calibration") are streamed:
    ``batch_size`` per batch, each sample estimated at ``sample_bytes`` (a batch at
    ``batch_bytes``)."""

    samples: int
    batch_size: int
    sample_bytes: int
    what: str = "calibration"

    @property
    def batches(self) -> int:
        return math.ceil(self.samples / self.batch_size) if self.samples else 0

    @property
    def batch_bytes(self) -> int:
        return self.batch_size * self.sample_bytes

    def describe(self) -> str:
        return (f"{self.what} in {self.batches} batch(es) of ≤ {self.batch_size} "
                f"(≈ {format_bytes(self.batch_bytes)} each)")


def plan_batches(
    samples: int, sample_bytes: int, *, stage: str, what: str = "calibration",
    batch_size: int | None = None, budget: int | None = None,
    default_budget: int | None = None, available: AvailableMemory | None = None,
) -> Batching:
    """The batching of ``samples`` samples of ``sample_bytes`` each (module doc). ``batch_size``
    forces one; ``budget`` (bytes) replaces the default ``min(default_budget or DEFAULT_BUDGET,
    available / 2)``; ``stage`` and ``what`` name the work in the error. Raises
    ``InsufficientMemoryError`` when one batch does not fit in the memory available now."""
    per = max(1, int(sample_bytes))
    free = (available or available_memory()).bytes
    if batch_size is None:
        limit = min(default_budget or DEFAULT_BUDGET, free // 2) if budget is None else budget
        batch_size = max(1, limit // per)
    batch_size = max(1, min(int(batch_size), samples))
    if batch_size * per > free:
        raise InsufficientMemoryError(
            f"{stage}: {what} of {batch_size} sample(s) at a time needs about "
            f"{format_bytes(batch_size * per)} ({format_bytes(per)} per sample), but only "
            f"{format_bytes(free)} is available; refused before allocating"
        )
    return Batching(samples=samples, batch_size=batch_size, sample_bytes=per, what=what)


def batches(x, batch_size: int) -> Iterator:
    """Consecutive slices ``x[i : i + batch_size]`` along the first axis."""
    for start in range(0, len(x), batch_size):
        yield x[start:start + batch_size]
