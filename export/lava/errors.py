"""Typed errors of :mod:`export.lava`."""

from __future__ import annotations

from spikeclip.errors import LavaError, UnsupportedError


class LavaLoweringError(UnsupportedError, ValueError):
    """A network cannot be lowered to a Lava process graph; ``layer`` names where and why."""

    def __init__(self, layer: str, reason: str) -> None:
        self.layer = layer
        self.reason = reason
        super().__init__(f"export.lava: layer {layer!r}: {reason}")


class LavaRunError(LavaError, RuntimeError):
    """A Lava run failed: bad inputs, an exception in a process model (in its child process),
    a child that died, a run or stop that timed out. The message names the stage and carries
    Lava's reason (the child's traceback tail when there is one). When it is raised, the
    runtime's child processes and shared memory have been released."""


class LavaInputError(LavaRunError, ValueError):
    """The inputs given to a run do not fit the network (shape, dtype); names the layer."""

    def __init__(self, layer: str, reason: str) -> None:
        self.layer = layer
        self.reason = reason
        super().__init__(f"export.lava: inputs for layer {layer!r}: {reason}")
