"""Session-wide test settings: offline hub, single-threaded deterministic torch, the Lava shim,
one fixed hypothesis profile, and time limits (every test; Lava tests tighter, by name).

Determinism: torch runs with one intra-op thread and ``use_deterministic_algorithms(True)``
for the whole session (and ``OMP_NUM_THREADS=1`` for the subprocesses tests start). Several
tests assert exact float equality or thresholds on float32 training (the twin against the
simulator, NIR exactness, training-loss bounds): with one thread their reductions run in one
order on every machine, whatever its core count. It is also much faster for the suite's tiny
models: on the shared 2-core development machine, test_train_cli + test_twin + test_fidelity
took 267.5 s wall / 264.7 s user with 2 torch threads and 21.6 s / 19.0 s with 1.

Time limits (pytest-timeout): 300 s per test by default (pyproject.toml), counted over setup,
call and teardown. Lava tests (marker ``lava``) carry their own lower limit; where a test runs
Lava through ``export.lava.LavaSession`` (``tests/_lava_session.py``), a hang ends in a
``LavaRunError`` naming the test and the session goes on. A Lava test without its own
``timeout`` marker gets :data:`LAVA_TIMEOUT_S` by the *thread* method: pytest-timeout's signal
method interrupts Lava's blocking ``run`` but then hangs in Lava's ``stop`` (checked), so the
thread method dumps every stack and exits, and :func:`pytest_timeout_set_timer` below first
names the test that hung.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import pytest_timeout  # noqa: E402
import torch  # noqa: E402
from hypothesis import settings  # noqa: E402

from export.lava import compat as lava_compat

lava_compat.install()

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

#: Derandomized (the same examples on every run), no deadline (CI machines are shared and
#: slow), bounded example counts, no example database written into the checkout.
settings.register_profile("ci", derandomize=True, deadline=None, max_examples=100,
                          database=None, print_blob=True)
#: ``HYPOTHESIS_PROFILE=explore pytest tests/hardware/ir/test_fixed_properties.py``: new random
#: examples, more of them (for a local search; a failure prints its reproduction blob).
settings.register_profile("explore", deadline=None, max_examples=2000, database=None,
                          print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: Seconds a ``lava``-marked test without its own ``timeout`` marker may take (thread method).
LAVA_TIMEOUT_S = 240


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("lava") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(LAVA_TIMEOUT_S, method="thread"))


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings) -> bool | None:
    """Thread method: say which test timed out, then pytest-timeout's stack dump and exit
    (its own dump leaves the test's name out). Signal method: pytest-timeout's (it fails the
    test by name)."""
    if settings.method != "thread":
        return None

    def expire() -> None:
        capman = item.config.pluginmanager.getplugin("capturemanager")
        if capman:
            capman.suspend_global_capture(item)
        sys.stderr.write(f"\nTIMEOUT: {item.nodeid} exceeded {settings.timeout:g} s\n")
        sys.stderr.flush()
        # The exit below would orphan Lava's child processes (they keep running, and keep the
        # job's output pipe open): kill this process's own children first.
        for child in multiprocessing.active_children():
            child.kill()
        pytest_timeout.timeout_timer(item, settings)

    timer = threading.Timer(settings.timeout, expire)
    timer.name = f"pytest_timeout {item.nodeid}"
    timer.daemon = True

    def cancel() -> None:
        timer.cancel()
        timer.join()

    item.cancel_timeout = cancel
    timer.start()
    return True
