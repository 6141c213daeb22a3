"""`spikeclip.parallel.ordered_map`: results in item order from forked single-thread workers,
a worker's exception raised in the parent with its own type, one worker runs in-process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from _paths import REPO

from spikeclip.errors import UsageError
from spikeclip.parallel import WorkerDiedError, ordered_map, workers_for


def _work(item: int) -> tuple[int, int, int, float]:
    x = torch.arange(item + 1, dtype=torch.float64)
    return item, os.getpid(), torch.get_num_threads(), float((x * x).sum())


def test_two_workers_keep_the_order_and_the_values():
    got = list(ordered_map(_work, range(9), workers=2))
    assert [g[0] for g in got] == list(range(9))
    assert [g[3] for g in got] == [sum(k * k for k in range(i + 1)) for i in range(9)]
    pids = {g[1] for g in got}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert {g[2] for g in got} == {1}  # one torch thread per worker


def test_one_worker_runs_here_unchanged():
    got = list(ordered_map(_work, range(3), workers=1))
    assert {g[1] for g in got} == {os.getpid()}
    assert got[2][3] == 5.0


def test_a_closure_need_not_be_picklable():
    table = {i: i * 10 for i in range(4)}
    assert list(ordered_map(lambda i: table[i] + 1, range(4), workers=2)) == [1, 11, 21, 31]


def _fail(item: int) -> int:
    if item == 2:
        raise UsageError(f"item {item}")
    return item


def test_worker_exception_keeps_its_type():
    with pytest.raises(UsageError, match="item 2"):
        list(ordered_map(_fail, range(4), workers=2))


def test_workers_for():
    cores = len(os.sched_getaffinity(0))
    assert workers_for(1) == 1
    assert workers_for(100) == cores
    assert workers_for(100, limit=1) == 1


def _die(item: int) -> int:
    if item == 1:
        os._exit(3)  # as if killed: no exception, no result
    return item


def test_a_dead_worker_is_an_error_not_a_hang():
    with pytest.raises(WorkerDiedError):
        list(ordered_map(_die, range(4), workers=2))


_UNDER_SIGNALS = """
import sys
sys.path[:0] = ["tests/spikeclip", "tests"]
from spikeclip.interrupts import exit_on_signals
from spikeclip.parallel import ordered_map
from test_parallel import _work
with exit_on_signals():  # as in every CLI: forked children ignore SIGTERM
    for _ in range(2):
        print(sum(r[3] for r in ordered_map(_work, range(6), workers=2)))
"""


def test_pools_end_under_the_cli_signal_handlers():
    # multiprocessing.Pool's exit sends SIGTERM, which these children ignore: it hung there.
    out = subprocess.run([sys.executable, "-c", _UNDER_SIGNALS], cwd=REPO, timeout=60,
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["105.0", "105.0"]
