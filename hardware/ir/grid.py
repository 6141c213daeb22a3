"""The quantizer's rounding rules, in torch float64, shared by `quantize` and the fake-quant twin.

One function per rule; each returns integer-valued float64 tensors (exact: every value is far
below 2⁵³) and has a straight-through variant (``ste=True``: forward value rounded, gradient of
the identity) for hardware-aware fine-tuning.

Units: a LIF (or readout) with scale ``s`` (a power of two) represents the float membrane H by
``v = 64·s·H`` v-units; a synaptic weight W of the float model (after BN folding, before the
1/τ of the LIF) becomes ``w = W·s/τ`` wu; a bias b becomes ``β = 64·s·b/τ`` v-units.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from hardware.ir import fixed


def _round_ste(x: Tensor, fn, ste: bool) -> Tensor:
    q = fn(x)
    return x + (q - x).detach() if ste else q


def _grid_step_and_range(sign_mode: str, num_weight_bits: int) -> tuple[float, float, float]:
    step = float(1 << fixed.weight_truncate_bits(sign_mode, num_weight_bits))
    lo, hi = fixed.weight_limits_8(sign_mode)
    return step, float(-int(-lo // step) * step), float(int(hi // step) * step)


def weight_grid(
    w_wu: Tensor, sign_mode: str, num_weight_bits: int = fixed.NUM_WEIGHT_BITS_MAX,
    *, ste: bool = False,
) -> Tensor:
    """Round real weights (wu) to the nearest point of Lava's grid and clip to its range.

    Grid step ``2**fixed.weight_truncate_bits(sign_mode, num_weight_bits)`` (2 for 8-bit mixed),
    round half to even, then clip to the grid points inside
    :func:`hardware.ir.fixed.weight_limits_8` (mixed 8-bit: −256 … 254). The result is already on
    the grid, so Lava's own truncation is the identity.
    """
    step, lo, hi = _grid_step_and_range(sign_mode, num_weight_bits)
    q = _round_ste(w_wu / step, torch.round, ste) * step
    return q.clamp(lo, hi)


def weight_clipped(
    w_wu: Tensor, sign_mode: str, num_weight_bits: int = fixed.NUM_WEIGHT_BITS_MAX
) -> Tensor:
    """Bool mask of the weights that :func:`weight_grid` clips (rounded value out of range)."""
    step, lo, hi = _grid_step_and_range(sign_mode, num_weight_bits)
    q = torch.round(w_wu / step) * step
    return (q < lo) | (q > hi)


def bias_grid(
    beta_v: Tensor, bias_exp: int, *, ste: bool = False, per_value: bool = False
) -> Tensor:
    """Bias in v-units on the ``mant << bias_exp`` grid: ``clip(⌊β/2^e + ½⌋, ±13-bit)·2^e``.

    The same rule as :func:`hardware.ir.fixed.bias_encode_s13` (round half up, saturate), in torch.
    ``per_value``: each value on the grid of its own exponent
    (:func:`hardware.ir.fixed.host_bias_exp`, the host injection's rule; ``bias_exp`` the floor).
    """
    if per_value:
        exp = fixed.host_bias_exp(beta_v.detach().cpu().numpy(), bias_exp, True)
        scale: Tensor | float = torch.from_numpy(
            np.left_shift(1, exp).astype(np.float64)).to(beta_v)
    else:
        scale = float(1 << int(bias_exp))
    mant = _round_ste(beta_v / scale, lambda z: torch.floor(z + 0.5), ste)
    return mant.clamp(fixed.BIAS_MANT_MIN, fixed.BIAS_MANT_MAX) * scale


def sign_mode_for(weight: Tensor) -> str:
    """Sign mode for a float weight tensor: excitatory if all ≥ 0, inhibitory if all ≤ 0, else
    mixed (Lava's automatic rule, decided on the float weights so that the grid is known)."""
    if bool((weight >= 0).all()):
        return "excitatory"
    if bool((weight <= 0).all()):
        return "inhibitory"
    return "mixed"


def bias_exp_for(max_abs_beta: float, T: int) -> int:
    """Smallest bias exponent that holds ``max_abs_beta`` (v-units) in 13 bits, and at least
    ``T − 1`` so that every bias is a multiple of ``2**(T−1)``: trunc0's halving is then exact
    for T ≤ 7 (DESIGN §4). Capped at 7 (larger biases clip, counted in the record)."""
    need = int(fixed.bias_exp_min_s13(max_abs_beta))
    return min(fixed.BIAS_EXP_MAX, max(need, T - 1))
