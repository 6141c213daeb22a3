"""`hardware.ir.fixed`: every fixed-point rule on hand-derived integers (Lava 0.10 semantics)."""

from __future__ import annotations

import numpy as np
import pytest

from hardware.ir import fixed

H = 1 << 23  # 2²³


def _l(x: np.ndarray) -> list[int]:
    return np.asarray(x).tolist()


def test_widths_are_the_loihi_ones() -> None:
    assert (fixed.DECAY_UNITY, fixed.DECAY_MAX) == (4096, 4095)
    assert (fixed.STATE_HALF_RANGE, fixed.V_MAX, fixed.V_MIN) == (H, H - 1, -(H - 1))
    assert (fixed.VTH_MAX, fixed.VTH_SHIFT, fixed.ACT_SHIFT) == (131071, 6, 6)
    assert (fixed.BIAS_MANT_MIN, fixed.BIAS_MANT_MAX, fixed.BIAS_EXP_MAX) == (-4096, 4095, 7)
    assert (fixed.WEIGHT_EXP_MIN, fixed.WEIGHT_EXP_MAX, fixed.MAX_DELAY) == (-8, 7, 62)
    assert fixed.A_MAX_NO_WRAP == 131071  # (2¹⁷ − 1) << 6 = 2²³ − 64 < 2²³


def test_weight_limits_and_clip_per_sign_mode() -> None:
    assert fixed.weight_limits_8("mixed") == (-256, 255)
    assert fixed.weight_limits_8("excitatory") == (0, 255)
    assert fixed.weight_limits_8("inhibitory") == (-255, 0)
    assert _l(fixed.clip_weight_8([-300, -256, 255, 300], "mixed")) == [-256, -256, 255, 255]
    assert _l(fixed.clip_weight_8([-5, 300], "excitatory")) == [0, 255]
    assert _l(fixed.clip_weight_8([5, -300], "inhibitory")) == [0, -255]
    with pytest.raises(ValueError, match="unknown sign_mode 'both'"):
        fixed.weight_limits_8("both")  # type: ignore[arg-type]


def test_sign_mode_of_follows_lava_order() -> None:
    assert fixed.sign_mode_of(np.zeros((2, 2))) == "excitatory"  # min ≥ 0 is tested first
    assert fixed.sign_mode_of([[-1, 0]]) == "inhibitory"
    assert fixed.sign_mode_of([[-1, 1]]) == "mixed"


def test_truncation_bits_and_grids() -> None:
    # k = 8 − num_weight_bits + [mixed]
    assert [fixed.weight_truncate_bits("mixed", n) for n in (1, 6, 8)] == [8, 3, 1]
    assert [fixed.weight_truncate_bits("excitatory", n) for n in (1, 6, 8)] == [7, 2, 0]
    # mixed, 8 bits (k = 1): floor to even; −3 → −4, −1 → −2, 101 → 100, 255 → 254.
    assert _l(fixed.truncate_weight_floor([-3, -1, 101, 255], "mixed", 8)) == [-4, -2, 100, 254]
    # mixed, 6 bits (k = 3), the digest's observation of Lava: −3 → −8, −1 → −8; 7 → 0, 9 → 8.
    assert _l(fixed.truncate_weight_floor([-3, -1, 7, 9], "mixed", 6)) == [-8, -8, 0, 8]
    # excitatory, 6 bits (k = 2): 7 → 4; inhibitory (k = 2) truncates the magnitude: −7 → −4.
    assert _l(fixed.truncate_weight_floor([7, 255], "excitatory", 6)) == [4, 252]
    assert _l(fixed.truncate_weight_floor([-7, -255], "inhibitory", 6)) == [-4, -252]
    # mixed, 1 bit (k = 8): only −256 and 0 remain.
    assert _l(fixed.weight_on_grid_8([-300, -1, 255], "mixed", 1)) == [-256, -256, 0]
    # clip first, then truncate: 300 → 255 → 254 (mixed 8 bits).
    assert _l(fixed.weight_on_grid_8([300, -257], "mixed", 8)) == [254, -256]


def test_weight_exp_shifts_the_sum_with_floor() -> None:
    assert _l(fixed.shift_weight_exp_floor([-3, 3, -1, 5], -1)) == [-2, 1, -1, 2]
    assert _l(fixed.shift_weight_exp_floor([-1, 255], -8)) == [-1, 0]
    assert _l(fixed.shift_weight_exp_floor([5, -5], 2)) == [20, -20]
    # Sum then floor: two weights of 1 in one step with e = −1 give 1; per-weight floors give 0.
    assert int(fixed.shift_weight_exp_floor(1 + 1, -1)) == 1


def test_decays_truncate_toward_zero_with_the_du_offset() -> None:
    # trunc0(x·keep/4096): −3·2048/4096 = −1.5 → −1 (floor would give −2).
    assert _l(fixed.decay_trunc0([-3, 3, -4097], [2048, 2048, 1])) == [-1, 1, -1]
    # du = 0 still decays by 1/4096 (ds_offset = 1): 4096 → 4095, −4096 → −4095, 1 → 0.
    assert _l(fixed.decay_u_trunc0([4096, -4096, 1], 0)) == [4095, -4095, 0]
    assert _l(fixed.decay_u_trunc0([H, -H, 12345], 4095)) == [0, 0, 0]  # du = 4095: forget u
    # dv = 0 keeps v; dv = 2048 halves toward zero: 8191 → 4095, −8191 → −4095.
    assert _l(fixed.decay_v_trunc0([12345, -7], 0)) == [12345, -7]
    assert _l(fixed.decay_v_trunc0([8191, -8191], 2048)) == [4095, -4095]
    assert _l(fixed.decay_v_trunc0([8191, -8191], 4095)) == [1, -1]  # 8191/4096 = 1.99 → 1


def test_u_correction_is_lavas_single_conditional_step() -> None:
    # u > 2²³ → u − 2²⁴; u ≤ −2²³ → u + 2²⁴. So +2²³ is kept, −2²³ becomes +2²³,
    # and 3·2²³ + 5 stays out of range after one correction (2²³ + 5).
    u = [H - 1, H, H + 1, -H + 1, -H, -H - 1, 3 * H + 5]
    assert _l(fixed.wrap_u_once_s24(u)) == [H - 1, H, -H + 1, -H + 1, H, H - 1, H + 5]
    # The digest's overflow example: u = 2²³ − 1, du = 0, a = 64 wu:
    # trunc0(8388607·4095/4096) = 8386559; + (64 << 6) = 8390655 > 2²³ → 8390655 − 2²⁴ = −8386561.
    raw = fixed.decay_u_trunc0(H - 1, 0) + fixed.act_shift_u(64)
    assert int(raw) == 8390655 and int(fixed.wrap_u_once_s24(raw)) == -8386561


def test_v_saturates_symmetrically() -> None:
    assert _l(fixed.saturate_v_s24([H, -H, H - 1, -(H - 1), 5 * H])) == [
        H - 1,
        -(H - 1),
        H - 1,
        -(H - 1),
        H - 1,
    ]


def test_bias_threshold_and_spike_rule() -> None:
    assert int(fixed.bias_s13e3(4095, 5)) == 131040  # Lava's bias-scaling test: 4095·2⁵
    assert _l(fixed.bias_s13e3([-4096, 1, -3], [7, 0, 2])) == [-524288, 1, -12]
    assert int(fixed.threshold_v(fixed.VTH_MAX)) == 8388544  # 131071 << 6 = 2²³ − 64
    # strict '>': v == vth << 6 does not fire.
    assert _l(fixed.spike_gt([640, 641, 0, 1], [10, 10, 0, 0])) == [False, True, False, True]
    assert _l(fixed.spike_gt([8388544, 8388545], fixed.VTH_MAX)) == [False, True]


def test_conv_wrap_is_modular_24_bit() -> None:
    assert _l(fixed.wrap_s24([H, -H, (1 << 24) + 5, -H - 1, H - 1])) == [-H, -H, 5, H - 1, H - 1]


def test_bias_encoding_rounds_half_up_and_counts_clips() -> None:
    mant, clipped = fixed.bias_encode_s13([131040.0, 131041.0, -2.5, 1e6], [5, 5, 0, 7])
    # 131041/32 = 4095.03 → 4095; −2.5 + 0.5 = −2 (half up); 1e6/128 = 7812.5 → clipped 4095.
    assert _l(mant) == [4095, 4095, -2, 4095] and clipped == 1
    # Smallest exponent whose rounded mantissa fits 4095: 4095 → 0, 4096 → 1, 8190 → 1,
    # 8191 → 2 (8191/2 = 4095.5 rounds to 4096), 524160 → 7, 10⁷ → 7 (will clip).
    assert _l(fixed.bias_exp_min_s13([4095, 4096, -8190, 8191, 524160, 1e7])) == [0, 1, 1, 2, 7, 7]


def test_host_bias_per_value_takes_each_values_own_exponent() -> None:
    # floor 3 (T = 4): 20000/8 = 2500 fits at 3; 32764/8 rounds to 4096 > 4095, so 4
    # (32764/16 = 2047.75 → 2048); −32768/8 = −4096 is not relied on (symmetric), so 4;
    # 3/8 rounds to 0 at the floor; 1e7 needs more than 7 and clips there.
    beta = [20000.0, 32764.0, -32768.0, 3.0, 1e7]
    mant, exp, clipped = fixed.host_bias_encode(beta, 3, True)
    assert _l(exp) == [3, 4, 4, 3, 7]
    assert _l(mant) == [2500, 2048, -2048, 0, 4095]
    assert clipped == 1
    assert _l(fixed.bias_s13e3(mant, exp)) == [20000, 32768, -32768, 0, 4095 << 7]
    # one exponent for every value: the old rule, 20000 on a grid of 128
    mant, exp, clipped = fixed.host_bias_encode(beta, 7, False)
    assert _l(exp) == [7] * 5
    assert _l(mant) == [156, 256, -256, 0, 4095]
    assert clipped == 1


def test_wrap_s32_is_lavas_int32_arithmetic() -> None:
    # numpy int32 wraps as Lava's LIF does: 2³¹ → −2³¹, −2³¹ − 1 → 2³¹ − 1, 3·2³¹ → −2³¹,
    # 2³² + 5 → 5; inside ±2³¹ the identity.
    xs = [0, -5, 2**31 - 1, -(2**31), 2**31, -(2**31) - 1, 3 * 2**31, 2**32 + 5]
    assert _l(fixed.wrap_s32(xs)) == [0, -5, 2**31 - 1, -(2**31), -(2**31), 2**31 - 1,
                                      -(2**31), 5]
    x = np.array([2**30, -(2**30) - 7, 2**31 - 1], np.int32)
    assert _l(fixed.wrap_s32(2 * x.astype(np.int64))) == _l(x + x)  # numpy's own int32 sum
