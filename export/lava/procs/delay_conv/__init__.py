"""A weight-shared convolution with a delay line (``DelayConv`` + its fixed-point model)."""

from export.lava.procs.delay_conv.process import DelayConv

__all__ = ["DelayConv"]
