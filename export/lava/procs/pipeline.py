"""The output pipeline register shared by the project's current-producing process models.

A process with ``steps = latency + delay`` emits, at Lava step t, what it computed at step
``t − steps``. ``steps = 0`` passes the value through in the same step (the process then
receives before it sends, as a Lava neuron does); ``steps = 1`` is a stock Dense's behaviour
(it sends the buffer of step t − 1, then computes); every extra step is one delay slot.
Before the first ``steps`` values arrive it emits zeros (Lava's ``a_buff`` starts at 0).
"""

from __future__ import annotations

import numpy as np


class OutputPipeline:
    """A FIFO of ``steps`` integer arrays of ``shape`` (int32), zero-initialized.

    ``push(new)`` stores this step's value and returns the one due now.
    """

    def __init__(self, steps: int, shape: tuple[int, ...]) -> None:
        if steps < 0:
            raise ValueError(f"OutputPipeline: steps must be ≥ 0, got {steps}")
        self.steps = int(steps)
        self.buffer = np.zeros((self.steps, *shape), dtype=np.int32)

    def push(self, new: np.ndarray) -> np.ndarray:
        """Enqueue ``new`` (this step's value) and return the value computed ``steps`` ago."""
        if self.steps == 0:
            return np.asarray(new, dtype=np.int32)
        due = self.buffer[0].copy()
        self.buffer[:-1] = self.buffer[1:]
        self.buffer[-1] = new
        return due
