"""An ordered map over work items on forked worker processes, one torch thread each.

Why processes and not torch threads: on the 2-core machine this project runs on, torch's two
intra-op threads lose badly when anything else runs (a barrier waits for the descheduled thread):
measured on the paper model, one batch of 3 images at load ~4: the float graph 0.62 s/image with
one thread vs 1.27–1.65 with two, the twin 0.60–0.68 vs 0.81–5.2, the simulator 0.32–0.33 vs
0.76–2.7. Independent single-threaded workers share the cores fairly whatever else runs, and use
both when nothing does.

:func:`ordered_map` forks ``workers`` processes (they share the parent's tensors copy-on-write;
only the items and the results are pickled), runs ``fn(item)`` on each item and yields the
results in item order. ``fn`` need not be picklable (the fork inherits it), its results must be
small and picklable (counts, features). With one worker (or one item) it runs ``fn`` in this
process, unchanged. The fork hooks of :mod:`spikeclip.interrupts` apply: workers ignore
SIGINT/SIGTERM/SIGHUP (the parent handles them) and exit when the parent is gone.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import torch

from spikeclip.errors import SpikeCLIPError


class WorkerDiedError(SpikeCLIPError):
    """A worker process of :func:`ordered_map` ended without a result (exit 7)."""


#: The task of the pool being started (read by forked workers; set before the fork).
_TASK: list[Callable[[Any], Any]] = []


def cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0))


def workers_for(items: int, limit: int | None = None) -> int:
    """Worker processes for ``items`` work items: one per core (at most ``limit``), never more
    than there are items, at least one."""
    return max(1, min(cores(), items, limit or cores()))


def _one_thread() -> None:
    torch.set_num_threads(1)


def _call(item: Any) -> Any:
    return _TASK[-1](item)


def ordered_map(fn: Callable[[Any], Any], items: Iterable[Any], *, workers: int) -> Iterator[Any]:
    """``fn(item)`` for each of ``items``, in order, on ``workers`` forked processes (module
    doc). An exception in a worker is raised here (its own type) when its item's turn comes; a
    worker that dies (killed by the system) is :class:`WorkerDiedError`, never a hang."""
    todo = list(items)
    if workers <= 1 or len(todo) <= 1:
        yield from map(fn, todo)
        return
    _TASK.append(fn)
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                               initializer=_one_thread)
    done = False
    try:
        yield from pool.map(_call, todo)
        done = True
    except BrokenProcessPool as err:
        raise WorkerDiedError(
            f"a worker process died while running {getattr(fn, '__name__', fn)!r} ({err}); "
            "was it killed for memory?") from err
    finally:
        # Workers end on the executor's sentinel, never on SIGTERM: children forked under
        # spikeclip.interrupts ignore it (multiprocessing.Pool's terminate() then hangs). On an
        # error or interrupt the queued items are dropped and the running ones left to finish
        # (one batch each); if this process ends first, the workers' orphan watch ends them.
        pool.shutdown(wait=done, cancel_futures=not done)
        _TASK.pop()
