"""Run ``hardware.simulate.engine.simulate`` on both of its paths (not a test module).

``simulate(net, x)`` runs the fast path (:func:`hardware.simulate.fast.simulate_fast`) and falls
back to the int64 reference path where the fast path cannot prove a tensor exact; a test that
means the fast path must know it ran, or it would silently test the reference twice. The fast
path is watched where ``simulate`` looks it up (module attributes), no source hook needed.
"""

from __future__ import annotations

import pytest

import hardware.simulate.engine as simulate_module
from hardware.simulate import fast
from hardware.simulate.engine import SimResult, simulate

#: ``default``: ``simulate(...)`` (asserted to have run the fast path); ``reference``:
#: ``simulate(..., reference=True)`` (int64 numpy).
PATHS = ("default", "reference")


def simulate_default(net, inputs, *, keep_states: bool = True) -> SimResult:
    """``simulate(net, inputs)``; fails if it fell back from the fast path."""
    finished: list[bool] = []
    simulate_fast = fast.simulate_fast

    def watched(*args, **kwargs):
        result = simulate_fast(*args, **kwargs)
        finished.append(True)
        return result

    with pytest.MonkeyPatch.context() as mp:
        # Where simulate() looks it up (its module-level import binds it in the engine).
        mp.setattr(simulate_module, "simulate_fast", watched)
        result = simulate(net, inputs, keep_states=keep_states)
    assert finished == [True], "simulate() fell back to the reference path"
    return result


def simulate_path(net, inputs, path: str, *, keep_states: bool = True) -> SimResult:
    if path == "default":
        return simulate_default(net, inputs, keep_states=keep_states)
    return simulate(net, inputs, keep_states=keep_states, reference=True)


def simulate_paths(net, inputs, *, keep_states: bool = True) -> dict[str, SimResult]:
    return {p: simulate_path(net, inputs, p, keep_states=keep_states) for p in PATHS}
