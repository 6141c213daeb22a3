"""Differential tests: ``hardware.kernels`` against Lava 0.10's own fixed-point processes in Lava.

Two Lava runs (each ~1 s of start-up, so many random networks are packed into one graph):

Run A — current-driven LIFs (``PyLifModelBitAcc``), logical time = Lava time (depth 0):
  RingBuffer of random graded currents (N,) → four LIF processes with
  (du, dv) = (0, 4095), (1, 2047), (2047, 1), (4095, 0) and vth = 0, 1000, 3000, 131071
  (every du/dv edge value, both vth limits); each LIF's u, v and spikes are monitored.
  The same RingBuffer (reshaped to (W, H, C), spikes = nonzero currents) feeds a Conv
  (``PyConvModelFixed``) with weights far beyond 8 bits, whose output wraps at 24 bits.

Run B — ≥ 500 random two-layer networks streamed as S samples of T steps:
  RingBuffer spikes (W, H, C) → [transpose to CHW, flatten] → 8 Dense processes
  (num_weight_bits 1 … 8, random weight_exp and sign mode, raw weights outside the 8-bit grid so
  Lava's clip/truncation is exercised) → 2 LIFReset → 2 Dense → 2 LIFReset, and the same source
  → one grouped Conv (every group an independent network; non-square kernel, stride and padding
  so the NCHW → WHC conversion is exercised) → LIFReset. Each network is a block of a
  block-diagonal weight matrix (its own inputs, hidden and output neurons); networks sharing
  du/dv/vth share a LIF process and networks sharing num_weight_bits/weight_exp/sign_mode share a
  Dense process. The reference is the *logical-time* simulation (each sample from zero state,
  batched over samples) built from ``hardware.kernels``; LIFReset uses
  ``reset_interval = T, reset_offset = depth + 1`` and Lava's trace of layer n at Monitor index
  ``s·T + t + depth(n)`` must equal the reference at sample s, step t — depth from
  ``LoihiNetwork.depth`` of the packed graph.

Every regime the issue names is counted on the reference and asserted to be hit a minimum number
of times (u correction, v saturation, v == vth, negative v, odd mixed-sign weights, negative
weight_exp with several spikes in one step, bias_exp 0 … 7, num_weight_bits 1 … 8,
du/dv ∈ {0, 1, 2047, 4095}).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np
import pytest

from hardware import fixed, kernels
from hardware.network import (
    ConvLayer,
    DenseLayer,
    Edge,
    Layer,
    LIFLayer,
    LoihiNetwork,
    SpikeInputLayer,
)

pytestmark = pytest.mark.lava

RNG_SEED = 20261129
EDGE_DECAYS = (0, 1, 2047, 4095)
A_MAX = 1 << 18  # |a| bound (wu) of run A: keeps Lava's int32 u arithmetic exact (see kernels)


def _lava():
    """Import Lava's pieces (after ``export.lava_compat``, installed by tests/conftest.py)."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.conv.process import Conv
    from lava.proc.dense.process import Dense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF, LIFReset
    from lava.proc.monitor.process import Monitor
    from lava.utils.weightutils import SignMode

    sign = {
        "mixed": SignMode.MIXED,
        "excitatory": SignMode.EXCITATORY,
        "inhibitory": SignMode.INHIBITORY,
    }
    return dict(
        RunSteps=RunSteps,
        Loihi2SimCfg=Loihi2SimCfg,
        Conv=Conv,
        Dense=Dense,
        RingBuffer=RingBuffer,
        LIF=LIF,
        LIFReset=LIFReset,
        Monitor=Monitor,
        sign=sign,
    )


def _monitor(lava: dict, target, steps: int):
    mon = lava["Monitor"]()  # one probe per Monitor: Lava 0.10 mis-records a second probe
    mon.probe(target, steps)
    return mon


def _read(mon, proc, name: str) -> np.ndarray:
    return np.rint(mon.get_data()[proc.name][name]).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Reference with regime counters.
# ---------------------------------------------------------------------------------------------


@dataclass
class Trace:
    u: list = field(default_factory=list)
    v: list = field(default_factory=list)
    s: list = field(default_factory=list)

    def stacked(self) -> dict[str, np.ndarray]:
        """``{u, v, s}`` each ``[B, steps, *shape]``."""
        return {k: np.stack(getattr(self, k), axis=1) for k in ("u", "v", "s")}


def _count_lif(
    counts: Counter, state: kernels.LIFState, a: np.ndarray, lif: LIFLayer, bias: np.ndarray
) -> None:
    """Count the regimes one LIF step passes through (recomputed from hardware.fixed pieces)."""
    u_raw = fixed.decay_u_trunc0(state.u, lif.du) + fixed.act_shift_u(a)
    counts["u correction"] += int(
        np.count_nonzero((u_raw > fixed.STATE_HALF_RANGE) | (u_raw <= -fixed.STATE_HALF_RANGE))
    )
    u_new = fixed.wrap_u_once_s24(u_raw)
    v_raw = fixed.decay_v_trunc0(state.v, lif.dv) + u_new + bias
    counts["v saturation"] += int(np.count_nonzero((v_raw > fixed.V_MAX) | (v_raw < fixed.V_MIN)))
    v_sat = fixed.saturate_v_s24(v_raw)
    counts["v == vth"] += int(np.count_nonzero(v_sat == fixed.threshold_v(lif.vth)))
    counts["negative v"] += int(np.count_nonzero(v_sat < 0))
    counts[f"du={lif.du}"] += a.size
    counts[f"dv={lif.dv}"] += a.size


def _lif_ref_step(
    counts: Counter, state: kernels.LIFState, a: np.ndarray, lif: LIFLayer, trace: Trace
) -> kernels.LIFState:
    bias = fixed.bias_s13e3(lif.bias_mant, lif.bias_exp)
    _count_lif(counts, state, a, lif, bias)
    state, spikes = kernels.lif_step(state, a, du=lif.du, dv=lif.dv, vth=lif.vth, bias=bias)
    trace.u.append(state.u)
    trace.v.append(state.v)
    trace.s.append(spikes.astype(np.int64))
    return state


def _count_dense(counts: Counter, s: np.ndarray, layer: DenseLayer) -> None:
    e = layer.weight_exp
    if e >= 0:
        return
    w = layer.weights.astype(np.int64)
    acc = s @ w.T
    sum_of_floors = s @ (w >> -e).T
    several = (s @ (w != 0).T) >= 2
    counts["neg weight_exp, several spikes, floor(sum) != sum(floor)"] += int(
        np.count_nonzero(several & ((acc >> -e) != sum_of_floors))
    )


def simulate_logical(
    net: LoihiNetwork, inputs: dict[str, np.ndarray], counts: Counter
) -> dict[str, dict[str, np.ndarray]]:
    """Logical-time reference: every sample from zero state, all layers within one step.

    ``inputs[name]``: spikes ``[B, T, *shape]`` of each SpikeInputLayer. Returns per LIF layer
    ``{u, v, s}`` of shape ``[B, T, *shape]``. Dense/Conv/LIF only (what Run B uses).
    """
    order = [net.layer(n) for n in net.topological_order()]
    batch = next(iter(inputs.values())).shape[0]
    states = {
        la.name: kernels.LIFState.zeros(batch, la.shape) for la in order if isinstance(la, LIFLayer)
    }
    traces = {name: Trace() for name in states}
    for t in range(net.T):
        out: dict[str, np.ndarray] = {}
        for la in order:
            srcs = [out[e.src] for e in net.in_edges(la.name)]
            if isinstance(la, SpikeInputLayer):
                out[la.name] = inputs[la.name][:, t]
            elif isinstance(la, DenseLayer):
                s = srcs[0].reshape(batch, -1).astype(np.int64)
                _count_dense(counts, s, la)
                out[la.name] = kernels.dense_step(s, la.weights, la.weight_exp)
            elif isinstance(la, ConvLayer):
                out[la.name] = kernels.conv_step(
                    srcs[0].reshape(batch, *la.in_shape),
                    la.weights,
                    stride=la.stride,
                    padding=la.padding,
                    groups=la.groups,
                )
            elif isinstance(la, LIFLayer):
                a = sum(x.reshape(batch, *la.shape) for x in srcs)
                states[la.name] = _lif_ref_step(counts, states[la.name], a, la, traces[la.name])
                out[la.name] = traces[la.name].s[-1]
            else:
                raise TypeError(f"reference does not simulate {la.KIND} ({la.name})")
    return {name: tr.stacked() for name, tr in traces.items()}


def _assert_equal(what: str, lava: np.ndarray, ref: np.ndarray) -> None:
    if lava.shape != ref.shape:
        raise AssertionError(f"{what}: shape {lava.shape} (Lava) != {ref.shape} (ours)")
    bad = np.argwhere(lava != ref)
    if len(bad):
        first = tuple(int(i) for i in bad[0])
        raise AssertionError(
            f"{what}: {len(bad)} of {ref.size} values differ; first at "
            f"{first}: Lava {lava[first]} vs ours {ref[first]}"
        )


def _random_bias(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """Signed mantissas spread over magnitudes 0 … 4095 (log-uniform), exponents 0 … 7."""
    mag = np.floor(2.0 ** rng.uniform(0, 12, size=shape)).astype(np.int64)
    mant = np.clip(
        np.where(rng.random(shape) < 0.4, -mag, mag), fixed.BIAS_MANT_MIN, fixed.BIAS_MANT_MAX
    )
    mant[rng.random(shape) < 0.1] = 0
    return mant, rng.integers(0, fixed.BIAS_EXP_MAX + 1, size=shape)


def _count_bias(counts: Counter, lif: LIFLayer) -> None:
    for e in range(fixed.BIAS_EXP_MAX + 1):
        counts[f"bias_exp={e}"] += int(np.count_nonzero((lif.bias_exp == e) & (lif.bias_mant != 0)))


# ---------------------------------------------------------------------------------------------
# Run A: current-driven LIFs + wide-weight Conv.
# ---------------------------------------------------------------------------------------------

A_STEPS = 40
A_LAVA_SHAPE = (4, 6, 10)  # (W, H, C) of the conv input; the LIFs see it flat
A_N = int(np.prod(A_LAVA_SHAPE))
A_PARAMS = ((0, 4095, 0), (1, 2047, 1000), (2047, 1, 3000), (4095, 0, fixed.VTH_MAX))
U_EDGE_NEURONS = {"+2^23": 0, "-2^23": 1}


@dataclass
class RunA:
    lifs: list[LIFLayer]
    currents: np.ndarray  # [N, steps]
    lava: list[dict[str, np.ndarray]]  # per LIF: u, v, s  [steps, N]
    ref: list[dict[str, np.ndarray]]
    conv_weight: np.ndarray  # torch (C_out, C_in, 3, 3)
    conv_lava: np.ndarray  # Lava a_out [steps, W', H', C_out]
    counts: Counter


def _run_a_currents(rng: np.random.Generator) -> np.ndarray:
    """Graded currents per neuron profile: zeros, small, medium, large (|a| ≤ 2¹⁸ wu)."""
    profile = rng.choice(4, size=A_N, p=[0.1, 0.4, 0.3, 0.2])
    scale = np.array([0, 300, 1 << 14, A_MAX])[profile]
    a = rng.integers(-A_MAX, A_MAX + 1, size=(A_N, A_STEPS)) * scale[:, None] // A_MAX
    a[rng.random(a.shape) < 0.3] = 0  # sparse steps
    # Named edge neurons: a = ±2¹⁷ wu at step 0, nothing after, so u = ±2²³ exactly.
    a[list(U_EDGE_NEURONS.values())] = 0
    a[U_EDGE_NEURONS["+2^23"], 0] = 1 << 17
    a[U_EDGE_NEURONS["-2^23"], 0] = -(1 << 17)
    return a


@pytest.fixture(scope="module")
def run_a() -> RunA:
    rng = np.random.default_rng(RNG_SEED)
    currents = _run_a_currents(rng)
    lifs = []
    for i, (du, dv, vth) in enumerate(A_PARAMS):
        mant, exp = _random_bias(rng, (A_N,))
        mant[list(U_EDGE_NEURONS.values())] = 0
        if vth <= fixed.BIAS_MANT_MAX:  # ties: bias alone equals the threshold (v == vth << 6)
            ties = np.arange(10, 20)
            currents[ties, :3] = 0
            mant[ties], exp[ties] = vth, fixed.VTH_SHIFT
        lifs.append(
            LIFLayer(
                name=f"lifA{i}", shape=(A_N,), du=du, dv=dv, vth=vth, bias_mant=mant, bias_exp=exp
            )
        )
    conv_weight = rng.integers(-(1 << 21), 1 << 21, size=(4, A_LAVA_SHAPE[2], 3, 3))

    lava = _lava()
    src = lava["RingBuffer"](data=currents.astype(np.int32))
    procs, mons = [], []
    for lif in lifs:
        proc = lava["LIF"](
            shape=lif.shape,
            du=lif.du,
            dv=lif.dv,
            vth=lif.vth,
            bias_mant=lif.bias_mant.astype(np.int32),
            bias_exp=lif.bias_exp.astype(np.int32),
        )
        src.s_out.connect(proc.a_in)
        procs.append(proc)
        mons.append(
            {
                k: _monitor(lava, getattr(proc, name), A_STEPS)
                for k, name in (("u", "u"), ("v", "v"), ("s", "s_out"))
            }
        )
    conv = lava["Conv"](
        weight=kernels.conv_weight_to_lava(conv_weight),
        input_shape=A_LAVA_SHAPE,
        padding=1,
        stride=1,
    )
    src.s_out.reshape(A_LAVA_SHAPE).connect(conv.s_in)
    conv_mon = _monitor(lava, conv.a_out, A_STEPS)
    try:
        src.run(
            condition=lava["RunSteps"](num_steps=A_STEPS),
            run_cfg=lava["Loihi2SimCfg"](select_tag="fixed_pt"),
        )
        lava_traces = [
            {k: _read(m, proc, "s_out" if k == "s" else k) for k, m in mon.items()}
            for proc, mon in zip(procs, mons)
        ]
        conv_lava = _read(conv_mon, conv, "a_out")
    finally:
        src.stop()

    counts: Counter = Counter()
    ref = []
    for lif in lifs:
        _count_bias(counts, lif)
        trace = Trace()
        state = kernels.LIFState.zeros(1, lif.shape)
        for t in range(A_STEPS):
            state = _lif_ref_step(counts, state, currents[None, :, t], lif, trace)
        ref.append({k: v[0] for k, v in trace.stacked().items()})
    return RunA(lifs, currents, lava_traces, ref, conv_weight, conv_lava, counts)


def test_lif_processes_match_lava_every_step(run_a: RunA) -> None:
    for lif, lava_tr, ref in zip(run_a.lifs, run_a.lava, run_a.ref):
        for k in ("u", "v", "s"):
            _assert_equal(
                f"{lif.name} (du={lif.du}, dv={lif.dv}, vth={lif.vth}) {k}", lava_tr[k], ref[k]
            )
    assert sum(int(r["s"].sum()) for r in run_a.ref) > 500  # spikes do happen


def test_u_exactly_plus_minus_2_pow_23_follows_lava(run_a: RunA) -> None:
    """a = ±2¹⁷ wu from zero state gives u_raw = ±2²³. Lava keeps +2²³ (one above the 24-bit
    maximum: its test is ``u > 2²³``) and turns −2²³ into +2²³ (``u ≤ −2²³`` adds 2²⁴); a
    two's-complement wrap would give −2²³ for both. The neuron's v is then u + 0 = 2²³,
    saturated to 2²³ − 1, and spikes wherever vth << 6 < 2²³ − 1."""
    for lif, lava_tr in zip(run_a.lifs, run_a.lava):
        for name, idx in U_EDGE_NEURONS.items():
            assert lava_tr["u"][0, idx] == 1 << 23, (lif.name, name)
            assert lava_tr["s"][0, idx] == 1, (lif.name, name)  # 2²³ − 1 > every vth << 6
        assert fixed.wrap_u_once_s24(np.array([1 << 23, -(1 << 23)])).tolist() == [1 << 23] * 2


def test_vth_mant_limits_in_lava(run_a: RunA) -> None:
    """vth = 0: any v > 0 fires and resets, so Lava's recorded v is never positive.
    vth = 131071 (the 17-bit maximum; 131072 is rejected by the schema): the threshold is
    2²³ − 64, so only v in (2²³ − 64, 2²³ − 1] fires and recorded v never exceeds 2²³ − 64."""
    by_vth = {lif.vth: tr for lif, tr in zip(run_a.lifs, run_a.lava)}
    low, high = by_vth[0], by_vth[fixed.VTH_MAX]
    assert low["v"].max() <= 0 and low["s"].sum() > 100
    assert high["v"].max() <= int(fixed.threshold_v(fixed.VTH_MAX)) and high["s"].sum() >= 2


def test_conv_output_wraps_at_24_bits_like_lava(run_a: RunA) -> None:
    """Lava's Conv sends at step k what it computed from the input of step k − 1."""
    x = kernels.lava_to_chw(
        (run_a.currents != 0).reshape(*A_LAVA_SHAPE, A_STEPS).transpose(3, 0, 1, 2)
    ).astype(np.int64)  # [steps, C, H, W]
    raw = kernels.conv_accumulate(x, run_a.conv_weight, padding=1)
    ref = np.concatenate([np.zeros_like(raw[:1]), fixed.wrap_s24(raw[:-1])])
    _assert_equal("conv a_out", run_a.conv_lava, kernels.chw_to_lava(ref))
    assert np.count_nonzero(raw != fixed.wrap_s24(raw)) > 100  # the wrap is exercised


# ---------------------------------------------------------------------------------------------
# Run B: ≥ 500 random Dense→LIFReset→Dense→LIFReset networks and grouped-conv networks.
# ---------------------------------------------------------------------------------------------

T = 6
SAMPLES = 3
B_CHW = (128, 4, 4)  # source (C, H, W)
CONV_GROUPS = 64
DENSE1 = 8  # processes; num_weight_bits 1..8
NETS_PER_DENSE1 = 56


@dataclass
class RunB:
    net: LoihiNetwork
    n_networks: int
    lava: dict[str, dict[str, np.ndarray]]  # per LIF: [steps, *torch shape]
    ref: dict[str, dict[str, np.ndarray]]  # per LIF: [S, T, *torch shape]
    counts: Counter


def _block_weights(rng: np.random.Generator, rows: int, cols: int, mode: str) -> np.ndarray:
    """Raw weights around the 8-bit range (so clipping and truncation both happen)."""
    w = rng.integers(-300, 301, size=(rows, cols))
    if mode == "excitatory":
        w = np.abs(w) - rng.integers(0, 2, size=w.shape) * 20
    elif mode == "inhibitory":
        w = -np.abs(w) + rng.integers(0, 2, size=w.shape) * 20
    return w


def _build_run_b(
    rng: np.random.Generator,
) -> tuple[LoihiNetwork, dict[str, np.ndarray], int, Counter]:
    """The packed graph as a LoihiNetwork (weights on Lava's grid) + the raw Lava weights."""
    counts: Counter = Counter()
    n_src = int(np.prod(B_CHW))
    modes = ["mixed"] * 6 + ["excitatory", "inhibitory"]
    nwbs = rng.permutation(np.arange(1, 9))
    exps = rng.permutation([-8, -3, -2, -1, 0, 2, 5, 7])
    hidden_of_group: list[list[tuple[int, int, int]]] = [[], []]  # (first, n_hid, n_out)
    dense1_blocks: list[list[tuple]] = [[] for _ in range(DENSE1)]
    in_cursor, hid_cursor = 0, [0, 0]  # each network gets its own inputs and hidden neurons
    for k in range(DENSE1):
        g = k // (DENSE1 // 2)
        for _ in range(NETS_PER_DENSE1):
            n_in, n_hid, n_out = rng.integers(1, 7), rng.integers(1, 5), rng.integers(1, 4)
            rows = slice(hid_cursor[g], hid_cursor[g] + n_hid)
            cols = slice(in_cursor, in_cursor + n_in)
            dense1_blocks[k].append((rows, cols, _block_weights(rng, n_hid, n_in, modes[k])))
            hidden_of_group[g].append((hid_cursor[g], n_hid, n_out))
            hid_cursor[g] += n_hid
            in_cursor += n_in
            counts[f"num_weight_bits={nwbs[k]}"] += 1
    if in_cursor > n_src:
        raise ValueError(f"run B needs {in_cursor} source neurons, has {n_src}")
    layers: list[Layer] = [SpikeInputLayer(name="src", shape=B_CHW)]
    edges: list[Edge] = []
    raw: dict[str, np.ndarray] = {}
    lif_params = [
        (4095, 2048, int(rng.integers(100, 1500))),
        (int(rng.integers(0, 4096)), int(rng.integers(0, 4096)), int(rng.integers(100, 3000))),
    ]
    for k in range(DENSE1):
        g = k // (DENSE1 // 2)
        w = np.zeros((hid_cursor[g], n_src), np.int64)
        for rows, cols, block in dense1_blocks[k]:
            w[rows, cols] = block
            if modes[k] == "mixed":
                counts["odd mixed-sign weights"] += int(np.count_nonzero(block % 2))
        name = f"dense1_{k}"
        raw[name] = w
        layers.append(
            DenseLayer(
                name=name,
                weights=fixed.weight_on_grid_8(w, modes[k], nwbs[k]),
                num_weight_bits=int(nwbs[k]),
                weight_exp=int(exps[k]),
                sign_mode=modes[k],
            )
        )
        edges += [Edge(src="src", dst=name), Edge(src=name, dst=f"lif1_{g}")]
    for g in range(2):
        du, dv, vth = lif_params[g]
        mant, exp = _random_bias(rng, (hid_cursor[g],))
        layers.append(
            LIFLayer(
                name=f"lif1_{g}",
                shape=(hid_cursor[g],),
                du=du,
                dv=dv,
                vth=vth,
                bias_mant=mant,
                bias_exp=exp,
                reset_interval=T,
            )
        )
        n_out_total = sum(n for _, _, n in hidden_of_group[g])
        w2 = np.zeros((n_out_total, hid_cursor[g]), np.int64)
        row = 0
        for first, n_hid, n_out in hidden_of_group[g]:
            w2[row : row + n_out, first : first + n_hid] = _block_weights(
                rng, n_out, n_hid, "mixed"
            )
            row += n_out
        nwb2, exp2 = int(rng.integers(3, 9)), int(rng.integers(-2, 3))
        counts[f"num_weight_bits={nwb2}"] += len(hidden_of_group[g])
        raw[f"dense2_{g}"] = w2
        layers.append(
            DenseLayer(
                name=f"dense2_{g}",
                weights=fixed.weight_on_grid_8(w2, "mixed", nwb2),
                num_weight_bits=nwb2,
                weight_exp=exp2,
                sign_mode="mixed",
            )
        )
        mant, exp = _random_bias(rng, (n_out_total,))
        layers.append(
            LIFLayer(
                name=f"lif2_{g}",
                shape=(n_out_total,),
                du=int(rng.integers(0, 4096)),
                dv=int(rng.integers(0, 4096)),
                vth=int(rng.integers(50, 2000)),
                bias_mant=mant,
                bias_exp=exp,
                reset_interval=T,
            )
        )
        edges += [
            Edge(src=f"lif1_{g}", dst=f"dense2_{g}"),
            Edge(src=f"dense2_{g}", dst=f"lif2_{g}"),
        ]
    # Grouped conv: group i (channels 2i, 2i+1 → channel i) is one network.
    conv_w = 2 * rng.integers(-128, 128, size=(CONV_GROUPS, B_CHW[0] // CONV_GROUPS, 3, 2))
    conv = ConvLayer(
        name="conv",
        weights=conv_w,
        in_shape=B_CHW,
        stride=(1, 2),
        padding=(1, 0),
        groups=CONV_GROUPS,
    )
    mant, exp = _random_bias(rng, conv.out_shape)
    layers += [
        conv,
        LIFLayer(
            name="lif_conv",
            shape=conv.out_shape,
            du=int(rng.integers(0, 4096)),
            dv=int(rng.integers(0, 4096)),
            vth=int(rng.integers(50, 500)),
            bias_mant=mant,
            bias_exp=exp,
            reset_interval=T,
        ),
    ]
    edges += [Edge(src="src", dst="conv"), Edge(src="conv", dst="lif_conv")]
    net = LoihiNetwork(
        layers=tuple(layers),
        edges=tuple(edges),
        T=T,
        provenance={"test": "lava differential run B"},
    )
    # The pipeline offsets come from the graph.
    net = LoihiNetwork(
        layers=tuple(_with_offset(la, net) for la in net.layers), edges=net.edges, T=T
    )
    n_networks = DENSE1 * NETS_PER_DENSE1 + CONV_GROUPS
    return net, raw, n_networks, counts


def _with_offset(layer: Layer, net: LoihiNetwork) -> Layer:
    if not isinstance(layer, LIFLayer):
        return layer
    return replace(layer, reset_offset=net.pipeline_reset_offset(layer.name))


@pytest.fixture(scope="module")
def run_b() -> RunB:
    rng = np.random.default_rng(RNG_SEED + 1)
    net, raw, n_networks, counts = _build_run_b(rng)
    steps = SAMPLES * T + net.max_depth
    rates = rng.choice([0.05, 0.2, 0.5, 0.9], size=B_CHW[0])
    x = (rng.random((SAMPLES, T, *B_CHW)) < rates[None, None, :, None, None]).astype(np.int64)
    raster = np.zeros((*B_CHW, steps), np.int32)  # Lava column s·T + t ← sample s, step t
    raster[..., : SAMPLES * T] = x.reshape(SAMPLES * T, *B_CHW).transpose(1, 2, 3, 0)

    lava = _lava()
    src = lava["RingBuffer"](
        data=kernels.chw_to_lava(raster.transpose(3, 0, 1, 2)).transpose(1, 2, 3, 0)
    )
    procs: dict[str, object] = {}
    mons: dict[str, dict] = {}
    for name in net.topological_order():
        la = net.layer(name)
        if isinstance(la, DenseLayer):
            procs[name] = lava["Dense"](
                weights=raw[name],
                num_weight_bits=la.num_weight_bits,
                weight_exp=la.weight_exp,
                sign_mode=lava["sign"][la.sign_mode],
            )
        elif isinstance(la, ConvLayer):
            procs[name] = lava["Conv"](
                weight=kernels.conv_weight_to_lava(la.weights),
                input_shape=tuple(kernels.chw_to_lava(np.empty(la.in_shape)).shape),
                stride=kernels.yx_to_lava(la.stride),
                padding=kernels.yx_to_lava(la.padding),
                groups=la.groups,
            )
        elif isinstance(la, LIFLayer):
            lava_shape = la.shape if len(la.shape) == 1 else tuple(reversed(la.shape))
            to_lava = (lambda a: a) if len(la.shape) == 1 else kernels.chw_to_lava
            procs[name] = lava["LIFReset"](
                shape=lava_shape,
                du=la.du,
                dv=la.dv,
                vth=la.vth,
                bias_mant=to_lava(la.bias_mant).astype(np.int32),
                bias_exp=to_lava(la.bias_exp).astype(np.int32),
                reset_interval=la.reset_interval,
                reset_offset=la.reset_offset,
            )
            mons[name] = {
                k: _monitor(lava, getattr(procs[name], n), steps)
                for k, n in (("u", "u"), ("v", "v"), ("s", "s_out"))
            }
    for e in net.edges:
        dst = procs[e.dst]
        if e.src == "src":
            port = (
                src.s_out
                if isinstance(net.layer(e.dst), ConvLayer)
                else src.s_out.transpose([2, 1, 0]).flatten()
            )  # WHC → CHW, flattened as torch does
            port.connect(dst.s_in)
        elif isinstance(net.layer(e.src), LIFLayer):
            procs[e.src].s_out.connect(dst.s_in)
        else:
            procs[e.src].a_out.connect(dst.a_in)
    try:
        src.run(
            condition=lava["RunSteps"](num_steps=steps),
            run_cfg=lava["Loihi2SimCfg"](select_tag="fixed_pt"),
        )
        lava_traces = {}
        for name, mon in mons.items():
            shape = net.layer(name).shape
            back = (lambda a: a) if len(shape) == 1 else kernels.lava_to_chw
            lava_traces[name] = {
                k: back(_read(m, procs[name], "s_out" if k == "s" else k)) for k, m in mon.items()
            }
    finally:
        src.stop()

    for la in net.layers:
        if isinstance(la, LIFLayer):
            _count_bias(counts, la)
    ref = simulate_logical(net, {"src": x}, counts)
    return RunB(net, n_networks, lava_traces, ref, counts)


def test_packed_networks_match_lava_after_pipeline_shift(run_b: RunB) -> None:
    assert run_b.n_networks >= 500
    net = run_b.net
    assert {name: net.depth(name) for name in run_b.ref} == {
        "lif1_0": 1,
        "lif1_1": 1,
        "lif2_0": 2,
        "lif2_1": 2,
        "lif_conv": 1,
    }
    for name, ref in run_b.ref.items():
        d = net.depth(name)
        for k in ("u", "v", "s"):
            lava = run_b.lava[name][k]
            shifted = np.stack([lava[s * T + d : s * T + d + T] for s in range(SAMPLES)])
            _assert_equal(f"{name} {k} (depth {d})", shifted, ref[k])
        assert ref["s"].any(), name


def test_every_regime_is_hit(run_a: RunA, run_b: RunB) -> None:
    counts = run_a.counts + run_b.counts
    minimum = {
        "u correction": 50,
        "v saturation": 20,
        "v == vth": 20,
        "negative v": 1000,
        "odd mixed-sign weights": 200,
        "neg weight_exp, several spikes, floor(sum) != sum(floor)": 50,
        **{f"bias_exp={e}": 30 for e in range(fixed.BIAS_EXP_MAX + 1)},
        **{f"num_weight_bits={n}": 20 for n in range(1, fixed.NUM_WEIGHT_BITS_MAX + 1)},
        **{f"du={d}": 100 for d in EDGE_DECAYS},
        **{f"dv={d}": 100 for d in EDGE_DECAYS},
    }
    short = {k: (counts[k], m) for k, m in minimum.items() if counts[k] < m}
    assert not short, f"regimes hit too rarely (count, minimum): {short}"
