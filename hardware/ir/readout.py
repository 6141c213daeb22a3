"""The host readout of an integer network: decode a readout layer's integer input stream.

One function for every engine that holds the readout's integer currents (the simulator's
reference and fast paths, the Lava host-readout process), so their features agree bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from hardware.ir.layers import ReadoutLayer


def readout_features(
    xs: Tensor,
    token_axes: tuple[int, ...],
    time_weights: Tensor,
    head_weight: Tensor | None,
    head_bias: Tensor | None,
) -> Tensor:
    """Host readout: ``head_weight · Σ_t w_t · mean_tokens(xs[t]) + head_bias``.

    ``xs`` ``[T, B, D, ...]`` the decoded stream; ``token_axes`` index the per-sample axes
    (0 = channels). Returns ``[B, F]``. Shared by the float graph executor, the twin,
    the simulator and the Lava host-readout process.

    Batch-invariant by construction: every reduction runs along one sample's own elements
    (broadcast multiply then sum, no GEMM, whose blocking depends on the batch size), so a
    host that decodes one sample at a time gets the same float64 bits as a batched run.
    """
    axes = tuple(a + 2 for a in token_axes)
    pooled = xs.mean(dim=axes) if axes else xs  # [T, B, D]
    weights = time_weights.to(pooled.dtype).reshape(-1, *([1] * (pooled.dim() - 1)))
    feat = (weights * pooled).sum(dim=0)  # [B, D]
    if head_weight is not None:
        feat = (feat.unsqueeze(-2) * head_weight.to(feat.dtype)).sum(dim=-1)
        feat = feat + head_bias.to(feat.dtype)
    return feat


def decode_readout(
    a: np.ndarray,
    *,
    input_scale: float,
    input_bias: Any,
    token_axis: int | None,
    time_weights: Any,
    head_weight: Any,
    head_bias: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode integer currents ``a`` ``[T, B, D, *tokens]`` (weight units) into features.

    ``X_t = a_t · input_scale + input_bias`` (float64, ``input_bias`` ``(D,)``), then
    :func:`readout_features` (mean over ``token_axis`` of the per-sample
    axes, time weights ``(T,)``, head ``(F, D)`` + ``(F,)``). Returns ``(X, features [B, F])``.
    """
    a = np.asarray(a)
    lead = (-1, *([1] * (a.ndim - 3)))
    bias = np.asarray(input_bias, np.float64).reshape(lead)
    xs = torch.from_numpy(a.astype(np.float64) * input_scale + bias)
    features = readout_features(
        xs,
        () if token_axis is None else (token_axis,),
        torch.tensor(np.asarray(time_weights, np.float64)),
        torch.tensor(np.asarray(head_weight, np.float64)),
        torch.tensor(np.asarray(head_bias, np.float64)),
    )
    return xs.numpy(), features.numpy()


def readout_layer_features(a: np.ndarray, layer: ReadoutLayer) -> tuple[np.ndarray, np.ndarray]:
    """:func:`decode_readout` with the parameters of ``layer`` (``a`` ``[T, B, *in_shape]``)."""
    return decode_readout(
        a,
        input_scale=layer.input_scale,
        input_bias=layer.input_bias,
        token_axis=layer.token_axis,
        time_weights=layer.time_weights,
        head_weight=layer.head_weight,
        head_bias=layer.head_bias,
    )
