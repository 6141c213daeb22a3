"""Exact fan-out of every input position of a convolution (borders, stride, dilation, groups).

The fan-out of input element ``(c, i₁, …, i_k)`` is the number of output elements whose receptive
field contains it: ``(C_out / groups) · Π_axis n_axis[i_axis]``, where ``n_axis[i]`` counts the
output positions ``o`` and kernel taps ``j`` with ``o·stride − pad + j·dilation = i``. The spatial
part is separable, so the map is the outer product of the per-axis counts (integers, int64).
This is the same quantity as sinabs' connection map (a transposed conv of ones) computed without
floats; ``sum(spikes · fanout)`` is the exact number of synaptic events.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hardware.energy.errors import EnergyCountError
from hardware.ir.layers import conv_out_len

__all__ = ["axis_fanout", "conv_out_len", "spatial_fanout"]


def axis_fanout(n_in: int, kernel: int, stride: int, padding: int, dilation: int) -> np.ndarray:
    """Per-input-index count of (output position, tap) pairs on one axis; int64 ``[n_in]``."""
    n_out = conv_out_len(n_in, kernel, stride, padding, dilation)
    if n_out < 1:
        raise EnergyCountError(
            f"conv axis: input length {n_in} too short for kernel {kernel}, padding {padding}"
        )
    idx = (
        np.arange(n_out)[:, None] * stride - padding + np.arange(kernel)[None, :] * dilation
    ).ravel()
    idx = idx[(idx >= 0) & (idx < n_in)]
    return np.bincount(idx, minlength=n_in).astype(np.int64)


def spatial_fanout(
    spatial_in: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
) -> np.ndarray:
    """Fan-out map over the spatial axes, per output channel; int64 of shape ``spatial_in``.

    Multiply by ``C_out / groups`` for the full fan-out of one input channel.
    """
    lengths = {len(spatial_in), len(kernel), len(stride), len(padding), len(dilation)}
    if len(lengths) != 1:
        raise EnergyCountError(
            f"conv geometry: spatial {tuple(spatial_in)}, kernel {tuple(kernel)}, "
            f"stride {tuple(stride)}, padding {tuple(padding)}, dilation {tuple(dilation)} "
            "must have one entry per spatial axis"
        )
    fan = np.ones((), dtype=np.int64)
    for n, k, s, p, d in zip(spatial_in, kernel, stride, padding, dilation, strict=True):
        fan = np.multiply.outer(fan, axis_fanout(n, k, s, p, d))
    return fan
