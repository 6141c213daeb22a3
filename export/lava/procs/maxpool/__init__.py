"""Max-pool over integer currents (``CurrentMaxPool`` + its fixed-point model)."""

from export.lava.procs.maxpool.process import CurrentMaxPool

__all__ = ["CurrentMaxPool"]
