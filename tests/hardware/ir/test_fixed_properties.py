"""Property tests: every rule of `hardware.ir.fixed` equals the test's own int64 reading of DESIGN
§4 (``_design_int64.py``, Python integer operators, not built from `fixed`) on generated integers,
edge values of each width included; and one whole LIF population through `simulate` (both
paths) equals the reading step by step.

Hypothesis runs under the suite's fixed profile (tests/conftest.py: derandomized, no deadline,
bounded example counts), so every CI run tries the same examples.
"""

from __future__ import annotations

import numpy as np
from _design_int64 import (
    HALF,
    V_LIMIT,
    bias_value,
    dense,
    lif_run,
    scale_sum,
    threshold,
    trunc0_scale,
    u_correct,
    v_saturate,
    weight_range,
    weights_on_grid,
    wrap24,
)
from _sim_paths import PATHS, simulate_path
from hypothesis import event, example, given
from hypothesis import strategies as st

from hardware.ir import fixed
from hardware.ir.layers import DenseLayer, LIFLayer, SpikeInputLayer
from hardware.ir.network import Edge, LoihiNetwork


def _near(*points: int, spread: int = 3) -> st.SearchStrategy[int]:
    """Integers within ``spread`` of the given edge points."""
    return st.sampled_from(points).flatmap(
        lambda p: st.integers(p - spread, p + spread))


#: States: the 24-bit range and beyond (a corrected u may stay out of range), edges dense.
STATE = st.one_of(
    st.integers(-(2**31) + 1, 2**31 - 1),
    _near(0, HALF, -HALF, 2 * HALF, -2 * HALF, 3 * HALF, -3 * HALF),
)
DECAY = st.one_of(st.integers(0, 4095), st.sampled_from([0, 1, 2047, 2048, 4094, 4095]))
SIGN_MODE = st.sampled_from(fixed.SIGN_MODES)
NWB = st.integers(1, 8)


def _i(x) -> int:
    return int(np.asarray(x))


# ---------------------------------------------------------------------------------------------
# One rule at a time.
# ---------------------------------------------------------------------------------------------


@given(x=STATE, keep=st.integers(0, 4096))
@example(x=-3, keep=2048)  # −1.5 → −1 (floor would give −2)
@example(x=-1, keep=4095)
def test_decay_truncates_toward_zero(x, keep):
    got = _i(fixed.decay_trunc0(x, keep))
    assert got == _i(trunc0_scale(x, keep))
    assert abs(got) <= abs(x) and _i(fixed.decay_trunc0(-x, keep)) == -got  # odd: not floor


@given(u=STATE, du=DECAY, v=STATE, dv=DECAY)
def test_u_and_v_decay_constants(u, du, v, dv):
    # du has Lava's +1 offset (du = 0 still decays by 1/4096), dv none (dv = 0 keeps v).
    assert _i(fixed.decay_u_trunc0(u, du)) == _i(trunc0_scale(u, 4096 - (du + 1)))
    assert _i(fixed.decay_v_trunc0(v, dv)) == _i(trunc0_scale(v, 4096 - dv))
    assert _i(fixed.decay_v_trunc0(v, 0)) == v and _i(fixed.decay_u_trunc0(u, 4095)) == 0


@given(u=STATE)
@example(u=HALF)  # kept: one above the 24-bit maximum
@example(u=-HALF)  # becomes +2²³
@example(u=3 * HALF + 5)  # stays out of range: one correction, not modular
def test_the_single_u_correction(u):
    got = _i(fixed.wrap_u_once_s24(u))
    assert got == _i(u_correct(u))
    assert got in (u, u - 2**24, u + 2**24)  # at most one ±2²⁴
    if -HALF < u <= HALF:
        assert got == u


@given(a=st.integers(-(2**25) + 1, 2**25 - 1))
def test_synaptic_input_is_shifted_by_6(a):
    assert _i(fixed.act_shift_u(a)) == 64 * a


@given(v=STATE)
@example(v=V_LIMIT + 1)
@example(v=-V_LIMIT - 1)
def test_v_saturates_at_plus_minus_2_pow_23_minus_1(v):
    got = _i(fixed.saturate_v_s24(v))
    assert got == _i(v_saturate(v)) and -V_LIMIT <= got <= V_LIMIT
    assert got == v or abs(v) > V_LIMIT


@given(w=st.integers(-1000, 1000), mode=SIGN_MODE, nwb=NWB)
@example(w=-3, mode="mixed", nwb=8)  # floor to even: −4
@example(w=-7, mode="inhibitory", nwb=6)  # magnitude truncated: −4
def test_weight_clip_and_truncation(w, mode, nwb):
    got = _i(fixed.weight_on_grid_8(w, mode, nwb))
    assert got == _i(weights_on_grid(w, mode, nwb))
    lo, hi = weight_range(mode)
    step = 2 ** (8 - nwb + (mode == "mixed"))
    clipped = min(max(w, lo), hi)
    assert lo <= got <= hi and got % step == 0
    if mode == "inhibitory":
        assert clipped <= got <= 0  # toward zero
    else:
        assert got <= clipped < got + step  # floor (mixed: to a multiple of 2, 4, …)


@given(acc=st.integers(-(2**24), 2**24), e=st.integers(fixed.WEIGHT_EXP_MIN,
                                                          fixed.WEIGHT_EXP_MAX))
@example(acc=-3, e=-1)  # floor of the sum: −2
def test_weight_exp_shifts_the_sum_with_floor(acc, e):
    got = _i(fixed.shift_weight_exp_floor(acc, e))
    assert got == _i(scale_sum(acc, e))
    assert got == (acc * 2**e if e >= 0 else acc // 2**-e)


@given(mant=st.integers(fixed.BIAS_MANT_MIN, fixed.BIAS_MANT_MAX),
       exp=st.integers(fixed.BIAS_EXP_MIN, fixed.BIAS_EXP_MAX))
def test_bias_is_mant_shifted_by_exp(mant, exp):
    assert _i(fixed.bias_s13e3(mant, exp)) == _i(bias_value(mant, exp)) == mant * 2**exp


@given(v=STATE, vth=st.integers(0, fixed.VTH_MAX))
def test_spike_rule_is_strictly_greater(v, vth):
    assert bool(fixed.spike_gt(v, vth)) == (v > _i(threshold(vth)))
    assert not bool(fixed.spike_gt(vth * 64, vth))  # a tie does not fire


@given(x=st.one_of(st.integers(-(2**40), 2**40), _near(HALF, -HALF, 2**24, -(2**24))))
def test_conv_wrap_is_modular(x):
    got = _i(fixed.wrap_s24(x))
    assert got == _i(wrap24(x)) and -HALF <= got < HALF and (got - x) % 2**24 == 0


# ---------------------------------------------------------------------------------------------
# A whole population through the simulator.
# ---------------------------------------------------------------------------------------------

N_IN, N_OUT, T = 6, 4, 6


@st.composite
def populations(draw):
    """A Dense (own sign mode, num_weight_bits, weight_exp) into one LIF population with
    per-neuron biases, and a spike raster; large exponents reach the u correction and v
    saturation, small thresholds ties and spikes."""
    mode, nwb = draw(SIGN_MODE), draw(NWB)
    raw = np.array(draw(st.lists(st.integers(-300, 300), min_size=N_IN * N_OUT,
                                 max_size=N_IN * N_OUT))).reshape(N_OUT, N_IN)
    w = fixed.weight_on_grid_8(raw, mode, nwb)
    exp = draw(st.one_of(st.integers(fixed.WEIGHT_EXP_MIN, fixed.WEIGHT_EXP_MAX),
                         st.integers(5, fixed.WEIGHT_EXP_MAX)))  # often large: overflow
    ints = st.lists(st.integers(fixed.BIAS_MANT_MIN, fixed.BIAS_MANT_MAX), min_size=N_OUT,
                    max_size=N_OUT)
    lif = LIFLayer(name="lif", shape=(N_OUT,), du=draw(DECAY), dv=draw(DECAY),
                   vth=draw(st.one_of(st.integers(0, 64), st.integers(0, fixed.VTH_MAX))),
                   bias_mant=draw(ints),
                   bias_exp=draw(st.lists(st.integers(0, 7), min_size=N_OUT, max_size=N_OUT)))
    net = LoihiNetwork(
        layers=(SpikeInputLayer(name="in", shape=(N_IN,)),
                DenseLayer(name="d", weights=w, num_weight_bits=nwb, weight_exp=exp,
                           sign_mode=mode),
                lif),
        edges=(Edge(src="in", dst="d"), Edge(src="d", dst="lif")),
        T=T,
    )
    bits = draw(st.lists(st.booleans(), min_size=T * 2 * N_IN, max_size=T * 2 * N_IN))
    return net, np.array(bits, np.int8).reshape(T, 2, N_IN)


@given(case=populations())
def test_simulated_population_equals_the_reading(case):
    net, raster = case
    layer, syn = net.layer("lif"), net.layer("d")
    a = dense(raster, syn.weights, syn.weight_exp)
    want, reg = lif_run(a, du=layer.du, dv=layer.dv, vth=layer.vth,
                        bias=bias_value(layer.bias_mant, layer.bias_exp))
    for regime in ("u_corrected", "v_saturated", "ties", "trunc_differs_from_floor"):
        if getattr(reg, regime):
            event(regime)  # --hypothesis-show-statistics: how often each regime is reached
    for path in PATHS:
        sim = simulate_path(net, raster, path)
        assert np.array_equal(sim.u["lif"], want["u"]), path
        assert np.array_equal(sim.v["lif"], want["v"]), path
        assert np.array_equal(sim.spikes["lif"], want["s"]), path
        assert (sim.overflow_u["lif"], sim.saturations_v["lif"], sim.ties["lif"]) == (
            reg.u_corrected, reg.v_saturated, reg.ties), path
