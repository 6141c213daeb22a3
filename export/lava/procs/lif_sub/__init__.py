"""LIF with reset by subtraction (``LIFResetSub`` + its fixed-point model)."""

from export.lava.procs.lif_sub.process import LIFResetSub

__all__ = ["LIFResetSub"]
