"""Spike × spike attention without softmax (``SpikeAttention`` + its fixed-point model)."""

from export.lava.procs.attention.process import SpikeAttention

__all__ = ["SpikeAttention"]
