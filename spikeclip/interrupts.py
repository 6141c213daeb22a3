"""End a command cleanly on SIGINT, SIGTERM or SIGHUP, and never leave its child processes behind.

Every command that writes output runs its body inside :func:`exit_on_signals`:

- The first of SIGINT, SIGTERM or SIGHUP raises :class:`Interrupted` in the main thread. It is
  a :class:`KeyboardInterrupt`, so no ``except Exception`` swallows it while every ``finally`` /
  ``except BaseException`` cleanup runs on the way out (the staging folder, Lava's processes
  and shared memory). The command prints one line and returns ``Interrupted.exit_code``
  (128 + n: 130 SIGINT, 143 SIGTERM, 129 SIGHUP). Later signals while that cleanup runs are
  ignored, so the cleanup itself is not cut short.
- :func:`deferred` holds the signals over a short critical section (the final rename of an
  output folder) and raises after it.
- Children forked while the handlers are installed (Lava's runtime forks its actors and a shared
  memory manager) ignore the three signals: Ctrl-C, a closed terminal or a scheduler's SIGTERM
  reach the whole process group, and the parent must stop its children in order (the memory
  manager unlinks its segments before it goes; killed first, it would leave that to Python's
  resource tracker, which warns on stderr). Each such child runs a watchdog thread that kills
  it within :data:`ORPHAN_POLL_S` once its parent has died (also by SIGKILL, which no handler
  sees); the parent kills them with SIGKILL when it tears them down. A signal that reaches a
  child before that hook runs (Python runs ``random``'s reseed hook first) finds the inherited
  handler, which does nothing outside the process that installed it.
  ``prctl(PR_SET_PDEATHSIG)`` cannot do this here: Linux sends that signal when the *thread*
  that forked the child ends, and Lava forks from the worker thread that runs it, which ends
  before its processes are read back.

Handlers are Python-level (they run between bytecodes of the main thread); a C call that does
not return (none in this project's stages) would delay them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, NoReturn

#: The signals a command turns into :class:`Interrupted` (``kill``, ``timeout``, schedulers,
#: Ctrl-C, a closed terminal).
SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: Seconds between a forked child's checks that its parent is still alive.
ORPHAN_POLL_S = 0.2


class Interrupted(KeyboardInterrupt):
    """The run was ended by ``signum``; ``exit_code`` is ``128 + signum``."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(f"interrupted by {signal.Signals(self.signum).name}")

    @property
    def exit_code(self) -> int:
        """The shell's convention for a run ended by a signal: 128 + its number."""
        return 128 + self.signum


@dataclass
class _State:
    """The process's handler state (one per process: signal handlers are process-wide)."""

    installed: int = 0  # nesting depth of exit_on_signals
    raised: bool = False  # the first signal has been turned into Interrupted
    deferring: int = 0  # nesting depth of deferred()
    pending: int | None = None  # a signal held back by deferred()
    previous: dict[int, Any] = field(default_factory=dict)
    guard_children: int = 0  # nesting depth of exit_on_signals / children_die_with_parent
    forking_pid: int = 0  # the pid that forked, as seen in the child (set just before fork)
    owner_pid: int = 0  # the process that installed the handlers (children inherit them)


_STATE = _State()


def _handler(signum: int, _frame: FrameType | None) -> None:
    if os.getpid() != _STATE.owner_pid:
        # A child forked while the handlers were installed, caught before its own at-fork hook
        # set SIG_IGN (Python runs ``random``'s reseed hook first). Its parent stops it.
        return
    if _STATE.raised:
        return  # cleanup of the first signal is running: let it finish
    if _STATE.deferring:
        _STATE.pending = _STATE.pending or signum
        return
    _STATE.raised = True
    raise Interrupted(signum)


@contextlib.contextmanager
def exit_on_signals() -> Iterator[None]:
    """Turn SIGINT/SIGTERM/SIGHUP into :class:`Interrupted` in the body (main thread only).

    Restores the previous handlers on exit. Also makes children forked in the body die with
    this process (see the module docstring).
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread
        return
    if not _STATE.installed:
        _STATE.raised, _STATE.pending, _STATE.owner_pid = False, None, os.getpid()
        _STATE.previous = {int(s): signal.signal(s, _handler) for s in SIGNALS}
    _STATE.installed += 1
    try:
        with children_die_with_parent():
            yield
    finally:
        _STATE.installed -= 1
        if not _STATE.installed:
            for signum, previous in _STATE.previous.items():
                signal.signal(signum, previous)
            _STATE.previous = {}


def exit_process(code: int) -> NoReturn:
    """Flush stdout and stderr and end the process now with ``code``.

    For a command ended by a signal, after its cleanup ran: the interpreter's own teardown
    with torch and Lava loaded takes seconds (measured 2-5 s on a loaded 2-core machine), which
    would break the promise to end within 5 s. Only the command's entry point calls this, never
    a library function.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold the signals over the body; one that arrived meanwhile is raised after it."""
    _STATE.deferring += 1
    try:
        yield
    finally:
        _STATE.deferring -= 1
    if not _STATE.deferring and _STATE.pending is not None and not _STATE.raised:
        signum, _STATE.pending = _STATE.pending, None
        _STATE.raised = True
        raise Interrupted(signum)


@contextlib.contextmanager
def children_die_with_parent() -> Iterator[None]:
    """Children forked in the body kill themselves within :data:`ORPHAN_POLL_S` of this
    process's death, and do not run this process's signal handlers."""
    _STATE.guard_children += 1
    try:
        yield
    finally:
        _STATE.guard_children -= 1


def pid_alive(pid: int) -> bool:
    """Whether a process with id ``pid`` exists (also another user's: ``kill(pid, 0)`` is then
    refused with EPERM). A pid the system reused for another process counts as alive."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _watch_parent(parent: int) -> None:
    """In a forked child: SIGKILL this process once ``parent`` is no longer its parent."""
    while os.getppid() == parent:
        time.sleep(ORPHAN_POLL_S)
    os.kill(os.getpid(), signal.SIGKILL)  # no atexit hooks: they may wait on the dead parent


def _before_fork() -> None:
    _STATE.forking_pid = os.getpid()


def _after_fork_in_child() -> None:
    if not _STATE.guard_children:
        return
    if _STATE.installed:
        for signum in SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        _STATE.installed, _STATE.previous = 0, {}
    # The pid recorded before the fork, not getppid(): the parent may already be gone.
    watch = threading.Thread(
        target=_watch_parent, args=(_STATE.forking_pid,), name="orphan-watch", daemon=True
    )
    watch.start()


os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
