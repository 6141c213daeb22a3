"""spikeclip.interrupts: signal handlers inherited by forked children stay silent."""

from __future__ import annotations

import os
import signal

from spikeclip import interrupts


def test_a_child_caught_before_its_at_fork_hook_does_not_raise() -> None:
    # CI found Lava's forked actors printing "Exception ignored in: Random.seed ... Interrupted"
    # on Ctrl-C: Python runs random's reseed at-fork hook before ours sets SIG_IGN, and a
    # SIGINT landing in that window ran the parent's handler in the child. Reproduce the window
    # by putting the inherited handler back in a child and signalling it.
    with interrupts.exit_on_signals():
        pid = os.fork()
        if pid == 0:  # child
            code = 0
            try:
                signal.signal(signal.SIGINT, interrupts._handler)
                os.kill(os.getpid(), signal.SIGINT)
                for _ in range(1000):  # let the handler run between bytecodes
                    pass
            except interrupts.Interrupted:
                code = 1
            except BaseException:
                code = 2
            os._exit(code)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_the_process_that_installed_the_handlers_is_interrupted() -> None:
    before = signal.getsignal(signal.SIGTERM)
    caught = None
    try:
        with interrupts.exit_on_signals():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):
                pass
    except interrupts.Interrupted as exc:
        caught = exc
    assert caught is not None and caught.exit_code == 143
    assert signal.getsignal(signal.SIGTERM) is before
