"""Loihi fixed-point number formats: one pure function per rule, on integer numpy arrays.

The reference is Lava 0.10's CPU models ``PyLifModelBitAcc`` / ``PyLifResetModelBitAcc``,
``PyDenseModelBitAcc`` and ``PyConvModelFixed`` (Loihi-1-style). "Bit-accurate" in this project
means bit-exact to those models; it has not been checked against Loihi silicon (lava#322,
lava#829). Nothing here imports Lava: the tests run Lava's own processes against these
functions.

Units: one **weight unit (wu)** is one integer of a synaptic sum ``a``; one **v-unit** is one
integer of the current ``u`` or the voltage ``v``. One wu adds ``1 << ACT_SHIFT = 64`` v-units.

Every function takes and returns integer ``np.ndarray`` (any shape, broadcast as numpy does)
and computes in ``int64``; none mutates its arguments. Widths and limits are the named
constants below; the functions never use bare numbers.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

# ---------------------------------------------------------------------------------------------
# Widths and limits (Lava 0.10 AbstractPyLifModelFixed / PyDenseModelBitAcc / PyConvModelFixed).
# ---------------------------------------------------------------------------------------------

#: Decay constants ``du``, ``dv``: unsigned 12-bit, 0 … 4095; the decay unity is 2¹² = 4096.
DECAY_BITS = 12
DECAY_UNITY = 1 << DECAY_BITS
DECAY_MAX = DECAY_UNITY - 1
DU_NO_MEMORY = DECAY_MAX  # du = 4095: u forgets everything, u = a << 6 each step (DESIGN §4)
#: Lava adds a 1-bit offset to du (``ds_offset = 1``) and none to dv (``dm_offset = 0``).
DU_OFFSET = 1
DV_OFFSET = 0

#: State ``u``, ``v``: signed 24-bit. ``STATE_HALF_RANGE`` = 2²³ (Lava's ``max_uv_val``).
STATE_BITS = 24
STATE_HALF_RANGE = 1 << (STATE_BITS - 1)
#: v saturates symmetrically at ±(2²³ − 1).
V_MAX = STATE_HALF_RANGE - 1
V_MIN = -V_MAX

#: Synaptic input is MSB-aligned by 6 bits into u (``act_shift``).
ACT_SHIFT = 6
V_PER_WU = 1 << ACT_SHIFT  # v-units per weight unit (wu)
#: Largest |a| (wu) whose ``a << 6`` fits the 24-bit u: 2¹⁷ − 1 = 131,071.
A_MAX_NO_WRAP = (STATE_HALF_RANGE >> ACT_SHIFT) - 1

#: Threshold mantissa ``vth``: unsigned 17-bit, 0 … 131,071; compared as ``vth << 6``.
VTH_BITS = 17
VTH_MAX = (1 << VTH_BITS) - 1
VTH_SHIFT = 6

#: Bias mantissa: signed 13-bit, −4096 … 4095; bias exponent: unsigned 3-bit, 0 … 7.
BIAS_MANT_BITS = 13
BIAS_MANT_MIN = -(1 << (BIAS_MANT_BITS - 1))
BIAS_MANT_MAX = (1 << (BIAS_MANT_BITS - 1)) - 1
BIAS_EXP_BITS = 3
BIAS_EXP_MIN = 0
BIAS_EXP_MAX = (1 << BIAS_EXP_BITS) - 1

#: Synaptic weights: 8 magnitude bits (+ sign in mixed mode); ``num_weight_bits`` 1 … 8.
WEIGHT_BITS = 8
NUM_WEIGHT_BITS_MIN = 1
NUM_WEIGHT_BITS_MAX = WEIGHT_BITS
#: Shared weight exponent, signed 4-bit on Loihi: −8 … 7.
WEIGHT_EXP_BITS = 4
WEIGHT_EXP_MIN = -(1 << (WEIGHT_EXP_BITS - 1))
WEIGHT_EXP_MAX = (1 << (WEIGHT_EXP_BITS - 1)) - 1

#: Lava's fixed-point Conv wraps its output to signed 24 bits.
CONV_OUT_BITS = 24

#: Lava's CPU LIF holds ``a << 6``, u and v in int32 (numpy arithmetic wraps modulo 2³²); the
#: 24-bit correction and saturation act on those int32 values (:func:`wrap_s32`).
LAVA_STATE_INT_BITS = 32

#: Largest synaptic delay (steps): 0 … 62, the Loihi limit that lava-dl netx enforces
#: (``netx.utils.num_delay_bits`` refuses ≥ 63). Lava 0.10's CPU ``DelayDense`` has no cap.
MAX_DELAY = 62

SignMode = Literal["mixed", "excitatory", "inhibitory"]
SIGN_MODES: tuple[SignMode, ...] = ("mixed", "excitatory", "inhibitory")

IntArray = np.ndarray


def _i64(x: IntArray | int) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# Synaptic weights (PyDenseModelBitAcc: clip, truncate once; shift the summed input each step).
# ---------------------------------------------------------------------------------------------


def weight_limits_8(sign_mode: SignMode) -> tuple[int, int]:
    """Inclusive range of an 8-bit Loihi weight per sign mode.

    mixed: ``[−2⁸, 2⁸ − 1] = [−256, 255]``; excitatory: ``[0, 255]``; inhibitory:
    ``[−255, 0]`` (Lava clips ``−w`` to ``[0, 255]`` and negates back).
    Raises ``ValueError`` for an unknown sign mode.
    """
    full = 1 << WEIGHT_BITS
    if sign_mode == "mixed":
        return -full, full - 1
    if sign_mode == "excitatory":
        return 0, full - 1
    if sign_mode == "inhibitory":
        return -(full - 1), 0
    raise ValueError(f"hardware.fixed: unknown sign_mode {sign_mode!r}; expected {SIGN_MODES}")


def sign_mode_of(weights: IntArray) -> SignMode:
    """Lava's automatic sign mode: excitatory if min ≥ 0, else inhibitory if max ≤ 0, else mixed.

    An all-zero matrix is excitatory (the first test wins), as in Lava.
    """
    w = _i64(weights)
    if w.size == 0 or w.min() >= 0:
        return "excitatory"
    if w.max() <= 0:
        return "inhibitory"
    return "mixed"


def weight_truncate_bits(sign_mode: SignMode, num_weight_bits: int) -> int:
    """Number of low bits dropped from an 8-bit weight: ``8 − num_weight_bits + [mixed]``.

    So the weight grid step is ``2**weight_truncate_bits(...)``: 1 … 128 for excitatory and
    inhibitory, 2 … 256 for mixed (mixed spends one of the ``num_weight_bits`` on the sign).
    """
    return WEIGHT_BITS - int(num_weight_bits) + (1 if sign_mode == "mixed" else 0)


def clip_weight_8(weights: IntArray, sign_mode: SignMode) -> np.ndarray:
    """Clip to the 8-bit range of ``sign_mode`` (see :func:`weight_limits_8`). Saturating."""
    lo, hi = weight_limits_8(sign_mode)
    return np.clip(_i64(weights), lo, hi)


def truncate_weight_floor(
    weights: IntArray, sign_mode: SignMode, num_weight_bits: int
) -> np.ndarray:
    """Drop ``k = weight_truncate_bits(sign_mode, num_weight_bits)`` low bits, as Lava does.

    mixed, excitatory: ``(w >> k) << k`` — arithmetic shift, i.e. floor to a multiple of 2ᵏ
    (mixed 8-bit: ``−3 → −4``, ``−1 → −2``, ``101 → 100``).
    inhibitory: ``−(((−w) >> k) << k)`` — Lava truncates the magnitude, i.e. toward zero.
    Inputs should already be clipped (:func:`clip_weight_8`); no overflow is possible then.
    """
    k = weight_truncate_bits(sign_mode, num_weight_bits)
    w = _i64(weights)
    if sign_mode == "inhibitory":
        return -(((-w) >> k) << k)
    return (w >> k) << k


def weight_on_grid_8(weights: IntArray, sign_mode: SignMode, num_weight_bits: int) -> np.ndarray:
    """Weights as Lava's Dense uses them: ``truncate_weight_floor(clip_weight_8(w))``.

    Range: :func:`weight_limits_8`; every value a multiple of ``2**weight_truncate_bits``.
    Lossy (saturating clip, then floor/toward-zero truncation); a quantizer that rounds straight
    onto this grid makes it the identity.
    """
    return truncate_weight_floor(clip_weight_8(weights, sign_mode), sign_mode, num_weight_bits)


def shift_weight_exp_floor(acc: IntArray, weight_exp: int) -> np.ndarray:
    """Scale a summed synaptic input by ``2**weight_exp``: ``acc << e`` or ``acc >> −e``.

    Applied to the *sum* over presynaptic spikes of one step (Lava Dense), so a negative
    exponent floors the sum once (arithmetic shift, toward −∞): ``−3 >> 1 = −2``, not the sum
    of floored terms. No width limit is applied (Lava's ``a_buff`` is int32; keep
    ``|acc << e| < 2**25`` so the later ``<< ACT_SHIFT`` fits int32).
    """
    a = _i64(acc)
    e = int(weight_exp)
    return a << e if e > 0 else a >> -e


# ---------------------------------------------------------------------------------------------
# LIF sub-threshold dynamics (AbstractPyLifModelFixed.subthr_dynamics).
# ---------------------------------------------------------------------------------------------


def decay_trunc0(x: IntArray, keep: IntArray | int) -> np.ndarray:
    """``sign(x·keep) · (|x·keep| >> 12)``: multiply by ``keep / 4096`` rounding toward zero.

    ``keep`` is ``4096 − decay_constant`` (0 … 4096). Exact in int64 for 24-bit ``x``; the
    result has ``|·| ≤ |x|``.
    """
    prod = _i64(x) * _i64(keep)
    return np.sign(prod) * (np.abs(prod) >> DECAY_BITS)


def decay_u_trunc0(u: IntArray, du: IntArray | int) -> np.ndarray:
    """Current decay with Lava's +1: ``trunc0(u · (4096 − (du + 1)) / 4096)``.

    ``du`` 0 … 4095 (unsigned 12-bit); du = 4095 forgets u completely; no du keeps u unchanged
    (the +1 is the ``ds_offset`` register): du = 0 gives ``u·4095/4096``. Rounds toward zero,
    never overflows (``|result| ≤ |u|``).
    """
    return decay_trunc0(u, DECAY_UNITY - (_i64(du) + DU_OFFSET))


def decay_v_trunc0(v: IntArray, dv: IntArray | int) -> np.ndarray:
    """Voltage decay: ``trunc0(v · (4096 − dv) / 4096)``; dv 0 … 4095 (unsigned 12-bit).

    dv = 0 keeps v (no ``dm_offset``). Rounds toward zero, never overflows.
    """
    return decay_trunc0(v, DECAY_UNITY - (_i64(dv) + DV_OFFSET))


def act_shift_u(a: IntArray) -> np.ndarray:
    """Synaptic input (wu) in v-units: ``a << 6`` (exact in int64).

    Lava shifts in int32, so ``|a| < 2²⁵`` is the model's domain; ``|a| ≤ A_MAX_NO_WRAP``
    (2¹⁷ − 1) is what fits the 24-bit u without a correction.
    """
    return _i64(a) << ACT_SHIFT


def wrap_u_once_s24(u: IntArray) -> np.ndarray:
    """Lava's 24-bit correction of the new current: one conditional ``±2²⁴``, not modular.

    ``u > 2²³ → u − 2²⁴``; ``u ≤ −2²³ → u + 2²⁴``; else unchanged. So ``+2²³`` itself is kept
    (one above the 24-bit maximum), ``−2²³`` becomes ``+2²³``, and ``|u| ≥ 3·2²³`` stays out of
    range after the correction. Two's-complement wrapping would differ at exactly these points
    (hardware truth unknown; we follow Lava 0.10).
    """
    x = _i64(u)
    return np.where(
        x > STATE_HALF_RANGE,
        x - 2 * STATE_HALF_RANGE,
        np.where(x <= -STATE_HALF_RANGE, x + 2 * STATE_HALF_RANGE, x),
    )


def wrap_s32(x: IntArray) -> np.ndarray:
    """Lava's int32 arithmetic of the new u and v: ``((x + 2³¹) mod 2³²) − 2³¹``.

    ``PyLifModelBitAcc`` adds ``a << 6`` to the decayed u, and u and the bias to the decayed v,
    in int32 numpy arrays, which wrap silently. Every term is an integer, so the int32 result
    is this wrap of the exact int64 sum, taken before :func:`wrap_u_once_s24` and
    :func:`saturate_v_s24`. The identity while ``|x| < 2³¹``; only an out-of-range u that keeps
    growing (u memory and ``|a| > 2¹⁸`` wu per step) gets there. Loihi's own 24-bit registers
    are not modelled.
    """
    half = 1 << (LAVA_STATE_INT_BITS - 1)
    return np.mod(_i64(x) + half, 2 * half) - half


def saturate_v_s24(v: IntArray) -> np.ndarray:
    """Clip the voltage to ``[−(2²³ − 1), 2²³ − 1]`` (saturating, symmetric)."""
    return np.clip(_i64(v), V_MIN, V_MAX)


def bias_s13e3(bias_mant: IntArray, bias_exp: IntArray) -> np.ndarray:
    """Effective bias in v-units: ``bias_mant << bias_exp`` (mant −4096 … 4095, exp 0 … 7).

    Range ±524,288. Lava right-shifts for a negative exponent; that branch is kept for
    fidelity but the schema never allows one.
    """
    m = _i64(bias_mant)
    e = _i64(bias_exp)
    return np.where(e >= 0, m << np.maximum(e, 0), m >> np.maximum(-e, 0))


def threshold_v(vth: IntArray | int) -> np.ndarray:
    """Threshold in v-units: ``vth << 6`` (vth unsigned 17-bit, 0 … 131,071)."""
    return _i64(vth) << VTH_SHIFT


def spike_gt(v: IntArray, vth: IntArray | int) -> np.ndarray:
    """Spike rule: ``v > (vth << 6)`` — strict, so ``v == vth << 6`` does not fire. bool array."""
    return _i64(v) > threshold_v(vth)


# ---------------------------------------------------------------------------------------------
# Convolution output (PyConvModelFixed).
# ---------------------------------------------------------------------------------------------


def wrap_s24(x: IntArray) -> np.ndarray:
    """Modular signed 24-bit wrap: ``((x + 2²³) mod 2²⁴) − 2²³`` (Lava ``signed_clamp``).

    Result in ``[−2²³, 2²³ − 1]``; 2²³ → −2²³. Used on Lava Conv outputs only; Lava's Conv
    applies no clip, truncation or ``weight_exp`` to its weights.
    """
    half = 1 << (CONV_OUT_BITS - 1)
    return np.mod(_i64(x) + half, 2 * half) - half


# ---------------------------------------------------------------------------------------------
# Bias encoding (quantizer, host input injection).
# ---------------------------------------------------------------------------------------------


def bias_exp_min_s13(beta: IntArray | np.ndarray) -> np.ndarray:
    """Smallest ``bias_exp`` (0 … 7) with ``round_half_up(|β| / 2**exp) ≤ 4095`` per element.

    Symmetric: the extra negative mantissa −4096 is never relied on.

    ``β`` is a bias in v-units (int or float). Elements that need more than 7 return 7 (they
    will clip in :func:`bias_encode_s13`).
    """
    b = np.abs(np.asarray(beta, dtype=np.float64))
    out = np.full(b.shape, BIAS_EXP_MAX, dtype=np.int64)
    for e in range(BIAS_EXP_MAX, BIAS_EXP_MIN - 1, -1):  # 8 iterations, vectorized inside
        fits = np.floor(b / (1 << e) + 0.5) <= BIAS_MANT_MAX
        out = np.where(fits, e, out)
    return out


def bias_encode_s13(
    beta: IntArray | np.ndarray, bias_exp: IntArray | int
) -> tuple[np.ndarray, int]:
    """Mantissa for a bias ``β`` (v-units) at exponent ``bias_exp``: round half up, saturate.

    ``mant = clip(floor(β / 2**bias_exp + 0.5), −4096, 4095)``. Returns ``(mant int64,
    n_clipped)`` where ``n_clipped`` counts elements whose mantissa saturated (lossy beyond
    rounding). The represented bias is ``mant << bias_exp``.
    """
    scale = np.left_shift(1, _i64(bias_exp)).astype(np.float64)
    raw = np.floor(np.asarray(beta, dtype=np.float64) / scale + 0.5)
    mant = np.clip(raw, BIAS_MANT_MIN, BIAS_MANT_MAX)
    return mant.astype(np.int64), int(np.count_nonzero(mant != raw))


def host_bias_exp(beta: IntArray | np.ndarray, bias_exp: int, per_value: bool) -> np.ndarray:
    """The exponent a host injection writes with each value ``β`` (v-units): ``bias_exp``, or
    with ``per_value`` the smallest exponent in ``bias_exp … 7`` that holds that value in 13 bits
    (:func:`bias_exp_min_s13`). int64, ``β``'s shape.

    Why per value: one exponent for a whole layer must hold its largest current, so every
    current is rounded on that coarse grid; each value's own exponent rounds the currents near
    the threshold up to 16× finer (DESIGN §5). ``bias_exp`` is then the floor (``T − 1`` keeps
    the decay's halving exact).
    """
    b = np.asarray(beta, dtype=np.float64)
    if not per_value:
        return np.full(b.shape, int(bias_exp), dtype=np.int64)
    return np.maximum(bias_exp_min_s13(b), int(bias_exp))


def host_bias_encode(
    beta: IntArray | np.ndarray, bias_exp: int, per_value: bool
) -> tuple[np.ndarray, np.ndarray, int]:
    """``(mant, exp, n_clipped)`` a host injection writes for ``β`` (v-units): the exponents of
    :func:`host_bias_exp` and the mantissas of :func:`bias_encode_s13` at those exponents. The
    injected bias is ``bias_s13e3(mant, exp)``."""
    exp = host_bias_exp(beta, bias_exp, per_value)
    mant, n_clipped = bias_encode_s13(beta, exp)
    return mant, exp, n_clipped
