"""Torch ``(C, H, W)`` ↔ Lava ``(W, H, C)`` orientation: the only place it is written down.

The `LoihiNetwork` holds torch's orientation throughout (:mod:`hardware.ir.layers`); Lava's Conv
and its ``(W, H, C)`` populations are reached through these functions (``export.lava``).
"""

from __future__ import annotations

import numpy as np


def _pair(x: int | tuple[int, int]) -> tuple[int, int]:
    return (int(x), int(x)) if np.ndim(x) == 0 else (int(x[0]), int(x[1]))  # type: ignore[index]


def conv_weight_to_lava(weights: np.ndarray) -> np.ndarray:
    """torch kernel ``(C_out, C_in/g, kH, kW)`` → Lava Conv ``weight`` ``(C_out, kW, kH, C_in/g)``.

    Lava convolves (scipy ``convolve2d`` flips the kernel) on ``(W, H, C)`` tensors, torch
    cross-correlates on ``(C, H, W)``: flip both spatial axes, then reorder.
    """
    return np.ascontiguousarray(np.asarray(weights)[:, :, ::-1, ::-1].transpose(0, 3, 2, 1))


def chw_to_lava(x: np.ndarray) -> np.ndarray:
    """Reverse the last three axes: ``[..., C, H, W]`` → ``[..., W, H, C]`` (shape or data).

    Its own inverse: ``chw_to_lava(chw_to_lava(x))`` is ``x``.
    """
    x = np.asarray(x)
    return np.ascontiguousarray(np.moveaxis(x, (-3, -2, -1), (-1, -2, -3)))


def yx_to_lava(pair: int | tuple[int, int]) -> tuple[int, int]:
    """torch ``(y, x)`` stride/padding/dilation/kernel pair → Lava's ``(x, y)``."""
    y, x = _pair(pair)
    return (x, y)
