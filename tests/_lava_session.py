"""Run a hand-built Lava graph inside a test: bounded in time, always released (not a test module).

Lava 0.10's blocking ``run`` never returns when a process model hangs, and its ``stop`` then
waits forever for the hung child, so neither a ``try/finally: stop()`` nor pytest-timeout's
signal method alone ends such a test (checked: the SIGALRM interrupts ``run`` but the test's
``stop()`` then blocks). :class:`export.lava.LavaSession` runs Lava in a worker thread, watches
it, and on a timeout or a dead child tears the runtime down (children killed, shared memory
unlinked) and raises ``LavaRunError``: the test fails with its own name and the session goes on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: Seconds one Lava run may take in a test (the largest runs here take ~10 s on 2 cores).
LAVA_RUN_TIMEOUT_S = 120.0


@contextmanager
def lava_run(anchor: Any, n_steps: int, *, timeout_s: float = LAVA_RUN_TIMEOUT_S) -> Iterator[Any]:
    """Run the graph of ``anchor`` for ``n_steps`` (``Loihi2SimCfg``, ``fixed_pt``); yield the
    session for reading Vars and Monitors, then stop Lava (bounded) on leaving the block."""
    from export.lava import LavaSession

    with LavaSession(anchor, n_steps, timeout_s=timeout_s) as session:
        session.run()
        yield session
