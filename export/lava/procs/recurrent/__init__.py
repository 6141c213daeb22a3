"""A population's recurrent Dense (``RecurrentDense`` + its fixed-point model)."""

from export.lava.procs.recurrent.process import RecurrentDense

__all__ = ["RecurrentDense"]
