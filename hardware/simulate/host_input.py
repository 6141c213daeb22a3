"""The host input rule of the simulators: a `HostInputLayer`'s float64 current for one batch.

``op = "conv2d"``: images ``[B, C, H, W]`` → ``conv2d(images, weight) + bias`` ``[B, C', H', W']``
(:func:`hardware.lower.graph_run.host_input_current`); ``op = "embedding"``: integer token ids
``[B, L]`` in ``[0, V)`` → ``weight[ids] + bias`` ``[B, L, D]``
(:func:`hardware.lower.graph_run.embedding_current`). The caller turns the current into bias
mantissas and exponents with ``fixed.host_bias_encode(x · bias_scale, bias_exp,
exp_per_value)``. Both simulators (:mod:`hardware.simulate.engine`,
:mod:`hardware.simulate.fast`) and the float graph use these same functions, so the injected
bits are the ones the fake-quant twin sees.
"""

from __future__ import annotations

import numpy as np
import torch

from hardware.ir import fixed
from hardware.ir.layers import GRADED_INPUT_BITS, CurrentInputLayer, HostInputLayer
from hardware.lower.graph_run import embedding_current, host_input_current
from hardware.simulate.result import SimulationError


def host_layer_current(layer: HostInputLayer, x) -> np.ndarray:
    """Float64 host current ``[B, *layer.out_shape]`` of ``layer`` for the batch ``x``.

    Raises :class:`hardware.simulate.engine.SimulationError` naming the layer when ``x`` does not
    fit (shape, integer dtype and vocabulary range of token ids).
    """

    arr = torch.as_tensor(np.asarray(x))
    if layer.op == "embedding":
        vocab = int(layer.weight.shape[0])
        if arr.ndim != 2 or tuple(arr.shape[1:]) != layer.in_shape or arr.is_floating_point():
            raise SimulationError(
                f"layer {layer.name!r}: expected integer token ids [B, {layer.in_shape[0]}], "
                f"got {arr.dtype} {tuple(arr.shape)}"
            )
        if arr.numel() and (int(arr.min()) < 0 or int(arr.max()) >= vocab):
            raise SimulationError(f"layer {layer.name!r}: token ids outside [0, {vocab})")
        value = embedding_current(torch.from_numpy(np.array(layer.weight)),
                                  torch.from_numpy(np.array(layer.bias)), arr)
        return value.numpy()
    if tuple(arr.shape[1:]) != layer.in_shape or arr.ndim != 4:
        raise SimulationError(
            f"layer {layer.name!r}: expected conv2d images [B, {layer.in_shape}], "
            f"got {tuple(arr.shape)}"
        )
    return host_input_current(torch.from_numpy(np.array(layer.weight)),
                              torch.from_numpy(np.array(layer.bias)), layer.stride,
                              layer.padding, arr).numpy()


def host_injection_stats(layer: HostInputLayer, x) -> dict[str, float]:
    """How the 13-bit injection treats the batch ``x`` (DESIGN §5, plan_review §B (xi)).

    With ``β = current · bias_scale`` (v-units) and ``β̂ = mant << exp``
    (``fixed.host_bias_encode``): ``max_abs_beta`` = max |β|, ``max_abs_error`` = max |β̂ − β|
    (v-units, clipping included), ``pct_rounded`` = % of values changed by rounding alone,
    ``pct_clipped`` = % whose mantissa saturated.
    """
    beta = host_layer_current(layer, x) * layer.bias_scale
    mant, exp, n_clipped = fixed.host_bias_encode(beta, layer.bias_exp, layer.exp_per_value)
    err = np.abs(fixed.bias_s13e3(mant, exp) - beta)
    n = max(beta.size, 1)
    return {
        "max_abs_beta": float(np.abs(beta).max(initial=0.0)),
        "max_abs_error": float(err.max(initial=0.0)),
        # every clipped value also differs from β: the rest were changed by rounding alone
        "pct_rounded": 100.0 * (np.count_nonzero(err) - n_clipped) / n,
        "pct_clipped": 100.0 * n_clipped / n,
    }


def host_injected_bias(layer: HostInputLayer, x) -> tuple[np.ndarray, int, int]:
    """The bias a host input writes into its LIF for the batch ``x``.

    Returns ``(bias [B, *out_shape]`` in v-units (``bias_mant << bias_exp``, 13-bit mantissas,
    :func:`hardware.ir.fixed.host_bias_encode`), ``clipped``: mantissas saturated at 13 bits in
    one step, ``B``).
    """
    current = host_layer_current(layer, x)
    mant, exp, n_clip = fixed.host_bias_encode(current * layer.bias_scale, layer.bias_exp,
                                               layer.exp_per_value)
    return fixed.bias_s13e3(mant, exp), int(n_clip), int(current.shape[0])


def spike_raster(layer, x, T: int) -> np.ndarray:
    """Validate a spike input ``x`` ``[T, B, *layer.shape]`` of 0/1 values; returns int8.

    Raises :class:`hardware.simulate.engine.SimulationError` naming the layer.
    """

    raster = np.asarray(x)
    if raster.size and (raster.min() < 0 or raster.max() > 1):
        raise SimulationError(f"layer {layer.name!r}: spike input must be 0/1")
    raster = raster.astype(np.int8)
    if raster.ndim < 2 or raster.shape[0] != T or tuple(raster.shape[2:]) != layer.shape:
        raise SimulationError(
            f"layer {layer.name!r}: expected spikes [T={T}, B, {layer.shape}], got {raster.shape}"
        )
    return raster


def current_raster(layer: CurrentInputLayer, x, T: int) -> np.ndarray:
    """Validate a current input ``x`` ``[T, B, *layer.shape]`` of integers (wu), each a signed
    ``GRADED_INPUT_BITS``-bit value; returns int64. Raises :class:`SimulationError` naming the
    layer."""
    raster = np.asarray(x)
    integral = raster.dtype.kind in "iub" or (
        raster.dtype.kind == "f" and bool(np.all(raster == np.trunc(raster)))
    )
    if not integral:
        raise SimulationError(f"layer {layer.name!r}: current input must be integers (wu)")
    if raster.ndim < 2 or raster.shape[0] != T or tuple(raster.shape[2:]) != layer.shape:
        raise SimulationError(
            f"layer {layer.name!r}: expected currents [T={T}, B, {layer.shape}], "
            f"got {raster.shape}"
        )
    half = 1 << (GRADED_INPUT_BITS - 1)
    if raster.size and (raster.min() < -half or raster.max() > half - 1):
        raise SimulationError(
            f"layer {layer.name!r}: current input outside the signed {GRADED_INPUT_BITS}-bit "
            f"range [{-half}, {half - 1}]"
        )
    return raster.astype(np.int64)
