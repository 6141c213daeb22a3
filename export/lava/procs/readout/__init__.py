"""Host readout of the residual stream (``HostReadout`` + its model)."""

from export.lava.procs.readout.process import HostReadout

__all__ = ["HostReadout"]
