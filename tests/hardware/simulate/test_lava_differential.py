"""Differential test: the shipped simulator against Lava 0.10 running the same networks.

Every u, v and spike of every LIF is compared between
- **Lava** (CPU, ``fixed_pt``): the stock graph is stock ``Dense``/``DelayDense``/``Conv``/
  ``LIFReset`` processes wired here by hand from the *raw* weights (Lava clips and truncates
  them itself; the ``LoihiNetwork`` holds them on the grid, as its schema requires), u and v
  read by Monitors, spikes by the project's spike recorder; run C is the project's own
  processes (``export.lava.procs``: bias injection, token-shared linear with delays, spike
  attention, max-pool over currents, spike recorder, host readout) as ``export.lava``'s
  builder instantiates them;
- **the simulator** ``hardware.simulate.engine.simulate`` on the same network and inputs, on both
  paths: the default entry (asserted to have run its fast path, not fallen back) and
  ``reference=True`` (int64); states through ``keep_states``;
- for the stock graph, the test's own int64 reading of DESIGN §4 (``_design_int64.py``), which
  also counts the regimes every LIF passes through; the simulator's counters (``overflow_u``,
  ``saturations_v``, ``ties``, ``conv_wraps``) must equal those counts.

The stock graph (one network, 3 samples × 6 steps streamed, one Lava run):
- part A: 4 LIF populations (du, dv) = (0, 4095), (1, 2047), (2047, 1), (4095, 0) with
  vth = 0, 1000, 3000, 131071, each fed the same graded currents by four Dense layers
  (weight_exp 7, 4, 1, 0; mixed, excitatory, inhibitory) from 6 private inputs per neuron;
  named neurons get u = ±2²³ exactly and ties. A conv with 36,864 8-bit weights per output
  (Σ|w| > 2²³) whose output wraps at 24 bits, into a LIF whose u stays out of the 24-bit
  range after the single correction, and into one with u memory whose u passes 2³¹, where
  Lava's int32 sums wrap (6 networks);
- part B: 448 random dense networks (own inputs → Dense → LIFReset → Dense → LIFReset, plus a
  delayed skip DelayDense into the output layer), packed as blocks of block-diagonal
  matrices: 8 first-layer Dense processes with num_weight_bits 1 … 8 and every sign mode;
  and 64 grouped-conv networks (one conv with 64 groups, non-square kernel, stride, padding).
weight_exp −8 … 7 all occur. Run C: two components that use every project process
(3 samples × 4 steps), also checking the readout's features against a float64 decode.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np
import pytest
from _design_int64 import Regimes, readout, run_network
from _lava_session import lava_run
from _sim_paths import PATHS, simulate_paths

from hardware.ir import fixed
from hardware.ir.layers import (
    AttentionLayer,
    ConvLayer,
    DenseLayer,
    HostInputLayer,
    LIFLayer,
    MaxPoolLayer,
    ReadoutLayer,
    SpikeInputLayer,
    TokenLinearLayer,
)
from hardware.ir.network import Edge, Layer, LoihiNetwork
from hardware.ir.timing import Timing
from hardware.simulate.engine import SimResult

pytestmark = [pytest.mark.lava, pytest.mark.timeout(240)]

RNG_SEED = 20261129
EDGE_DECAYS = (0, 1, 2047, 4095)


# ---------------------------------------------------------------------------------------------
# Torch (C, H, W) ↔ Lava (W, H, C) orientation, written here (independent of export.lava).
# ---------------------------------------------------------------------------------------------


def _whc(x: np.ndarray) -> np.ndarray:
    """Reverse the last three axes (``[..., C, H, W]`` ↔ ``[..., W, H, C]``)."""
    return np.ascontiguousarray(np.moveaxis(np.asarray(x), (-3, -2, -1), (-1, -2, -3)))


def _lava_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(reversed(shape)) if len(shape) == 3 else tuple(shape)


def _to_lava(x: np.ndarray, ndim: int) -> np.ndarray:
    return _whc(x) if ndim == 3 else np.asarray(x)


def _kernel_to_lava(w: np.ndarray) -> np.ndarray:
    """torch ``(C_out, C_in/g, kH, kW)`` cross-correlation → Lava ``(C_out, kW, kH, C_in/g)``
    (Lava convolves: both spatial axes flipped)."""
    return np.ascontiguousarray(np.asarray(w)[:, :, ::-1, ::-1].transpose(0, 3, 2, 1))


# ---------------------------------------------------------------------------------------------
# Engines and comparisons.
# ---------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One network on every engine. States are ``{lif: {"u", "v", "s"}}``, ``[T, B, *shape]``."""

    net: LoihiNetwork
    lava: dict[str, dict[str, np.ndarray]]
    sims: dict[str, SimResult]
    ref: dict[str, dict[str, np.ndarray]] | None = None
    regimes: dict[str, Regimes] | None = None
    counts: Counter | None = None
    n_networks: int = 0


def _sim_states(sim: SimResult, lif: str) -> dict[str, np.ndarray]:
    return {"u": sim.u[lif], "v": sim.v[lif], "s": sim.spikes[lif].astype(np.int64)}


def _assert_equal(what: str, lava: np.ndarray, other: np.ndarray) -> None:
    lava, other = np.asarray(lava), np.asarray(other)
    if lava.shape != other.shape:
        raise AssertionError(f"{what}: shape {lava.shape} (Lava) != {other.shape}")
    bad = np.argwhere(lava != other)
    if len(bad):
        first = tuple(int(i) for i in bad[0])
        raise AssertionError(
            f"{what}: {len(bad)} of {other.size} values differ; first at [t, b, …] = {first}: "
            f"Lava {lava[first]} vs {other[first]}"
        )


def _assert_sim_equals_lava(run: Run, path: str) -> None:
    sim = run.sims[path]
    lifs = sorted(run.lava)
    assert sorted(sim.u) == lifs
    for lif in lifs:
        got = _sim_states(sim, lif)
        for k in ("u", "v", "s"):
            _assert_equal(f"simulate ({path}) {lif} {k}", run.lava[lif][k], got[k])


def _monitor(target, steps: int):
    from lava.proc.monitor.process import Monitor

    mon = Monitor()  # one probe per Monitor: Lava 0.10 mis-records a second probe
    mon.probe(target, steps)
    return mon


def _read(mon, proc, var: str) -> np.ndarray:
    return np.rint(mon.get_data()[proc.name][var]).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# The stock graph: Lava wired by hand from the raw weights.
# ---------------------------------------------------------------------------------------------


def _stock_lava(
    net: LoihiNetwork, raw: dict[str, np.ndarray], rasters: dict[str, np.ndarray], n_samples: int
) -> dict[str, dict[str, np.ndarray]]:
    """Run ``net`` (spike inputs, Dense, Conv, LIFReset) in Lava with the raw Dense weights;
    ``rasters[name]`` ``[T, B, *shape]``. Returns each LIF's logical ``{u, v, s}``."""
    from lava.proc.conv.process import Conv
    from lava.proc.dense.process import DelayDense, Dense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIFReset
    from lava.utils.weightutils import SignMode

    from export.lava.procs.recorder.process import SpikeRecorder, unpack_spikes

    T = net.T
    steps = n_samples * T + net.max_depth
    procs: dict[str, object] = {}
    mons: dict[str, dict] = {}
    for name in net.topological_order():
        la = net.layer(name)
        if isinstance(la, SpikeInputLayer):
            x = rasters[name]  # Lava column k·T + t ← sample k, step t
            flat = np.swapaxes(x, 0, 1).reshape(n_samples * T, *la.shape)
            data = np.zeros((*_lava_shape(la.shape), steps), np.int32)
            data[..., : n_samples * T] = np.moveaxis(_to_lava(flat, len(la.shape)), 0, -1)
            procs[name] = RingBuffer(data=data)
        elif isinstance(la, DenseLayer):
            (delay,) = {e.delay for e in net.out_edges(name)}  # fan-out shares one delay
            kw = dict(
                weights=raw[name],
                num_weight_bits=la.num_weight_bits,
                weight_exp=la.weight_exp,
                sign_mode=getattr(SignMode, la.sign_mode.upper()),
            )
            procs[name] = DelayDense(delays=delay, **kw) if delay else Dense(**kw)
        elif isinstance(la, ConvLayer):
            procs[name] = Conv(
                weight=_kernel_to_lava(la.weights),
                input_shape=_lava_shape(la.in_shape),
                stride=la.stride[::-1],
                padding=la.padding[::-1],
                groups=la.groups,
            )
        elif isinstance(la, LIFLayer):
            nd = len(la.shape)
            procs[name] = LIFReset(
                shape=_lava_shape(la.shape),
                du=la.du,
                dv=la.dv,
                vth=la.vth,
                bias_mant=_to_lava(la.bias_mant, nd).astype(np.int32),
                bias_exp=_to_lava(la.bias_exp, nd).astype(np.int32),
                reset_interval=la.reset_interval,
                reset_offset=la.reset_offset,
            )
            mons[name] = {k: _monitor(getattr(procs[name], k), steps) for k in ("u", "v")}
        else:
            raise TypeError(f"{la.KIND} is not a stock layer here")
    for e in net.edges:
        src, dst = net.layer(e.src), net.layer(e.dst)
        if isinstance(dst, LIFLayer):
            port = procs[e.src].a_out  # Dense: flat C-order; Conv: already (W, H, C)
            if isinstance(src, DenseLayer) and len(dst.shape) == 3:
                port = port.reshape(dst.shape).transpose([2, 1, 0])
            port.connect(procs[e.dst].a_in)
        else:
            port = procs[e.src].s_out
            if isinstance(dst, DenseLayer) and len(src.out_shape) == 3:
                port = port.transpose([2, 1, 0]).flatten()  # (W, H, C) → C-order flat
            port.connect(procs[e.dst].s_in)
    # Spikes: one recorder process for all LIFs (a Monitor per population costs a process).
    lifs = list(mons)
    rec = SpikeRecorder(sizes=[math.prod(net.layer(n).shape) for n in lifs], n_steps=steps)
    for i, name in enumerate(lifs):
        procs[name].s_out.flatten().connect(rec.port(i))  # (W, H, C) order for 3-D
    offsets = rec.proc_params["offsets"]
    out: dict[str, dict[str, np.ndarray]] = {}
    with lava_run(rec, steps) as session:
        spikes = unpack_spikes(session.get(rec.words), offsets[-1]).astype(np.int64)
        for i, name in enumerate(lifs):
            la = net.layer(name)
            nd = len(la.shape)
            k = np.arange(n_samples)[None, :]
            idx = k * T + np.arange(T)[:, None] + net.depth(name)  # [T, B]
            out[name] = {key: _to_lava(_read(m, procs[name], key), nd)[idx]
                         for key, m in mons[name].items()}  # back to (C, H, W)
            s = spikes[:, offsets[i] : offsets[i + 1]].reshape(steps, *_lava_shape(la.shape))
            out[name]["s"] = _to_lava(s, nd)[idx]
    return out


def _with_reset_offsets(layers: list[Layer], edges: list[Edge], T: int) -> LoihiNetwork:
    """The network with each LIF's ``LIFReset`` schedule (interval T, offset depth + 1)."""
    timing = Timing.of(LoihiNetwork(layers=tuple(layers), edges=tuple(edges), T=T))
    return LoihiNetwork(
        layers=tuple(
            replace(la, reset_interval=T, reset_offset=timing.reset_offset(la.name))
            if isinstance(la, LIFLayer)
            else la
            for la in layers
        ),
        edges=tuple(edges),
        T=T,
    )


def _random_bias(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """Signed mantissas spread over magnitudes 0 … 4095 (log-uniform), exponents 0 … 7."""
    mag = np.floor(2.0 ** rng.uniform(0, 12, size=shape)).astype(np.int64)
    mant = np.clip(
        np.where(rng.random(shape) < 0.4, -mag, mag), fixed.BIAS_MANT_MIN, fixed.BIAS_MANT_MAX
    )
    mant[rng.random(shape) < 0.1] = 0
    return mant, rng.integers(0, fixed.BIAS_EXP_MAX + 1, size=shape)


# ---------------------------------------------------------------------------------------------
# The stock graph: part A (LIF edge regimes, the conv wrap) and part B (512 random networks),
# one network of 3 samples × 6 steps, one Lava run.
# ---------------------------------------------------------------------------------------------

T = 6
SAMPLES = 3

A_N = 240  # neurons per part-A LIF population
A_K = 6  # private inputs per neuron
A_LIFS = ((0, 4095, 0), (1, 2047, 1000), (2047, 1, 3000), (4095, 0, fixed.VTH_MAX))
#: Dense layers into every part-A LIF: (weight_exp, sign mode, num_weight_bits).
A_DENSE = ((7, "mixed", 8), (4, "excitatory", 3), (1, "inhibitory", 5), (0, "mixed", 8))
U_EDGE = {"+2^23": 0, "-2^23": 1}  # a = ±2¹⁷ wu at step 0 only: u = ±2²³ exactly
TIES = np.arange(10, 20)  # bias alone equals the threshold (v == vth << 6) in steps 0 … 2
A_CONV_IN = (1024, 8, 8)  # conv 6×6: 1024·6·6 = 36,864 weights per output, Σ|w| ≤ 9.4 M

B_CHW = (128, 4, 4)  # part-B source (C, H, W)
B_GROUPS = 2  # LIF parameter groups; each has 4 first-layer Dense processes
B_DENSE1 = 8  # first-layer Dense processes: num_weight_bits 1 … 8
B_NETS_PER_DENSE1 = 56
B_CONV_GROUPS = 64
B_MODES = ("mixed",) * 3 + ("excitatory",) + ("mixed",) * 3 + ("inhibitory",)
B_EXP1 = (-8, -6, -4, -3, -2, -1, 2, 5)  # first layer; with B_EXP2, B_EXP_SKIP, A_DENSE: −8 … 7
B_EXP2 = (-7, 3)
B_EXP_SKIP = (-5, 6)


@dataclass
class Graph:
    """Layers, edges, raw Dense weights and input rasters ``[T, S, *shape]`` being assembled."""

    layers: list[Layer] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    raw: dict[str, np.ndarray] = field(default_factory=dict)
    rasters: dict[str, np.ndarray] = field(default_factory=dict)

    def chain(self, *names: str, delay: int = 0) -> None:
        self.edges += [Edge(src=a, dst=b) for a, b in zip(names[:-2], names[1:-1])]
        self.edges.append(Edge(src=names[-2], dst=names[-1], delay=delay))

    def dense(self, name: str, raw: np.ndarray, mode: str, nwb: int, exp: int) -> None:
        """The schema's Dense layer for raw weights: on the grid by the project's rule."""
        self.raw[name] = raw
        self.layers.append(DenseLayer(name=name, weights=fixed.weight_on_grid_8(raw, mode, nwb),
                                      num_weight_bits=nwb, weight_exp=exp, sign_mode=mode))


def _part_a(rng: np.random.Generator, g: Graph) -> None:
    """Four LIF populations with every du/dv edge value and both vth limits, fed the same
    graded currents by four block-diagonal Dense layers (neuron j reads inputs 6j … 6j + 5);
    named neurons get u = ±2²³ exactly, or a bias equal to the threshold (ties). A conv whose
    sums straddle ±2²³ into a LIF whose u leaves the 24-bit range even after the correction."""
    n_in = A_N * A_K
    profile = rng.choice(4, size=A_N, p=[0.1, 0.4, 0.3, 0.2])  # zero, small, medium, large
    g.layers.append(SpikeInputLayer(name="a_src", shape=(n_in,)))
    for i, (exp, mode, nwb) in enumerate(A_DENSE):
        mag = np.array([0, 9, 41, 300])[profile] if i == 0 else np.full(A_N, 300)
        w = np.zeros((A_N, n_in), np.int64)
        for j in range(A_N):
            block = rng.integers(-mag[j], mag[j] + 1, size=A_K)
            if mode == "excitatory":
                block = np.abs(block) - 20 * rng.integers(0, 2, size=A_K)  # some clip to 0
            elif mode == "inhibitory":
                block = -np.abs(block) + 20 * rng.integers(0, 2, size=A_K)
            w[j, j * A_K : (j + 1) * A_K] = block
        w[list(U_EDGE.values())] = 0
        if i == 0:  # only the exp-7 layer drives the edge neurons: 1024 << 7 = 2¹⁷ wu
            w[U_EDGE["+2^23"], 0:A_K] = [254, 254, 254, 254, 8, 0]
            w[U_EDGE["-2^23"], A_K : 2 * A_K] = [-256, -256, -256, -256, 0, 0]
        g.dense(f"a_dense{i}", w, mode, nwb, exp)
        g.edges.append(Edge(src="a_src", dst=f"a_dense{i}"))
    for k, (du, dv, vth) in enumerate(A_LIFS):
        mant, bexp = _random_bias(rng, (A_N,))
        mant[list(U_EDGE.values())] = 0
        if vth <= fixed.BIAS_MANT_MAX:
            mant[TIES], bexp[TIES] = vth, fixed.VTH_SHIFT
        g.layers.append(LIFLayer(name=f"a_lif{k}", shape=(A_N,), du=du, dv=dv, vth=vth,
                                 bias_mant=mant, bias_exp=bexp))
        # Lava: each Dense a_out fans out to the four LIFs.
        g.edges += [Edge(src=f"a_dense{i}", dst=f"a_lif{k}") for i in range(len(A_DENSE))]
    rates = rng.choice([0.05, 0.2, 0.5, 0.9], size=n_in)
    x = (rng.random((T, SAMPLES, n_in)) < rates).astype(np.int8)
    x[:, :, : 2 * A_K] = 0
    x[0, :, : 2 * A_K] = 1  # the edge neurons' inputs fire at each sample's step 0 only
    for j in TIES:
        x[:3, :, j * A_K : (j + 1) * A_K] = 0
    g.rasters["a_src"] = x

    # Conv: kernels 6×6 over 8×8 inputs (3×3 outputs, each a full window): all +254, all
    # −256, and two 97 %-one-sign mixtures. Input rates 0.8 … 1.0 per step, so the sums of the
    # first two straddle ±2²³ (Lava computes its Conv in float32: exact, as Σ|w| < 2²⁴).
    kernel = (A_CONV_IN[0], 6, 6)
    w = np.empty((4, *kernel), np.int64)
    w[0], w[1] = 254, -256
    for c, sign in ((2, 1), (3, -1)):
        mag = 2 * rng.integers(100, 128, size=kernel)
        w[c] = np.where(rng.random(kernel) < 0.97, sign, -sign) * mag
    conv_layer = ConvLayer(name="a_conv", weights=w, in_shape=A_CONV_IN)
    mant, bexp = _random_bias(rng, conv_layer.out_shape)
    g.layers += [
        SpikeInputLayer(name="a_conv_src", shape=A_CONV_IN),
        conv_layer,
        # du = 4095 (u = a << 6, no memory) keeps |u| < 2³¹, inside Lava's int32.
        LIFLayer(name="a_conv_lif", shape=conv_layer.out_shape, du=4095,
                 dv=int(rng.integers(0, 4096)), vth=int(rng.integers(1000, 100_000)),
                 bias_mant=mant, bias_exp=bexp),
    ]
    g.chain("a_conv_src", "a_conv", "a_conv_lif")
    rate = rng.uniform(0.8, 1.0, size=(T, SAMPLES, 1, 1, 1))
    g.rasters["a_conv_src"] = (rng.random((T, SAMPLES, *A_CONV_IN)) < rate).astype(np.int8)
    # A small Dense into the conv's LIF checks the C-order flat → (W, H, C) wiring of a Dense
    # into a 3-D population. (The spike recorder joins all parts into one Lava graph: Lava
    # runs only what is connected to the anchor.)
    g.dense("a_link", rng.integers(-300, 301, size=(math.prod(conv_layer.out_shape), n_in)),
            "mixed", 8, 0)
    g.chain("a_src", "a_link", "a_conv_lif")
    # With u memory (du = 0) the out-of-range u accumulates by up to 2²⁹ per step and passes
    # 2³¹ within a sample: Lava's int32 sums wrap (fixed.wrap_s32). Own generator, so the
    # draws of every other part stay as they were.
    rng_mem = np.random.default_rng(RNG_SEED + 3)
    mant, bexp = _random_bias(rng_mem, conv_layer.out_shape)
    g.layers.append(LIFLayer(name="a_conv_lif_mem", shape=conv_layer.out_shape, du=0,
                             dv=int(rng_mem.integers(0, 4096)),
                             vth=int(rng_mem.integers(1000, 100_000)), bias_mant=mant,
                             bias_exp=bexp))
    g.edges.append(Edge(src="a_conv", dst="a_conv_lif_mem"))


def _block_weights(rng: np.random.Generator, rows: int, cols: int, mode: str) -> np.ndarray:
    """Raw weights around the 8-bit range (so clipping and truncation both happen)."""
    w = rng.integers(-300, 301, size=(rows, cols))
    if mode == "excitatory":
        w = np.abs(w) - rng.integers(0, 2, size=w.shape) * 20
    elif mode == "inhibitory":
        w = -np.abs(w) + rng.integers(0, 2, size=w.shape) * 20
    return w


def _part_b(rng: np.random.Generator, g: Graph, counts: Counter) -> int:
    """448 dense networks (own inputs → Dense → LIF → Dense → LIF, plus a delayed skip Dense
    into the output LIF), packed as blocks of block-diagonal matrices: networks sharing
    du/dv/vth share a LIF process, networks sharing num_weight_bits/weight_exp/sign mode a Dense
    process. 64 grouped-conv networks: group i (channels 2i, 2i+1 → channel i) is one network.
    Returns the number of networks."""
    n_src = math.prod(B_CHW)
    nwbs = rng.permutation(np.arange(1, 9))
    exps = rng.permutation(B_EXP1)
    nets: list[list[tuple[int, ...]]] = [[] for _ in range(B_GROUPS)]
    blocks1: list[list[tuple]] = [[] for _ in range(B_DENSE1)]
    hid, out, cursor = [0] * B_GROUPS, [0] * B_GROUPS, 0
    for k in range(B_DENSE1):
        grp = k // (B_DENSE1 // B_GROUPS)
        for _ in range(B_NETS_PER_DENSE1):
            n_in, n_hid, n_out = (int(rng.integers(1, m)) for m in (7, 5, 4))
            blocks1[k].append((hid[grp], n_hid, cursor, n_in))
            nets[grp].append((cursor, n_in, hid[grp], n_hid, out[grp], n_out))
            cursor, hid[grp], out[grp] = cursor + n_in, hid[grp] + n_hid, out[grp] + n_out
        counts[f"num_weight_bits={nwbs[k]} (networks)"] += B_NETS_PER_DENSE1
    assert cursor <= n_src
    g.layers.append(SpikeInputLayer(name="b_src", shape=B_CHW))
    for k in range(B_DENSE1):
        grp = k // (B_DENSE1 // B_GROUPS)
        w1 = np.zeros((hid[grp], n_src), np.int64)
        for r0, nr, c0, nc in blocks1[k]:
            w1[r0 : r0 + nr, c0 : c0 + nc] = _block_weights(rng, nr, nc, B_MODES[k])
        g.dense(f"b_dense1_{k}", w1, B_MODES[k], int(nwbs[k]), int(exps[k]))
        g.chain("b_src", f"b_dense1_{k}", f"b_lif1_{grp}")
    lif_params = [
        (4095, 2048, int(rng.integers(100, 1500))),
        (int(rng.integers(0, 4096)), int(rng.integers(0, 4096)), int(rng.integers(100, 3000))),
    ]
    for grp in range(B_GROUPS):
        du, dv, vth = lif_params[grp]
        mant, bexp = _random_bias(rng, (hid[grp],))
        g.layers.append(LIFLayer(name=f"b_lif1_{grp}", shape=(hid[grp],), du=du, dv=dv,
                                 vth=vth, bias_mant=mant, bias_exp=bexp))
        w2 = np.zeros((out[grp], hid[grp]), np.int64)
        ws = np.zeros((out[grp], n_src), np.int64)
        for c0, n_in, h0, n_hid, o0, n_out in nets[grp]:
            w2[o0 : o0 + n_out, h0 : h0 + n_hid] = _block_weights(rng, n_out, n_hid, "mixed")
            ws[o0 : o0 + n_out, c0 : c0 + n_in] = _block_weights(rng, n_out, n_in, "mixed")
        g.dense(f"b_dense2_{grp}", w2, "mixed", int(rng.integers(3, 9)), B_EXP2[grp])
        g.dense(f"b_skip_{grp}", ws, "mixed", int(rng.integers(3, 9)), B_EXP_SKIP[grp])
        mant, bexp = _random_bias(rng, (out[grp],))
        g.layers.append(LIFLayer(name=f"b_lif2_{grp}", shape=(out[grp],),
                                 du=int(rng.integers(0, 4096)), dv=int(rng.integers(0, 4096)),
                                 vth=int(rng.integers(50, 2000)), bias_mant=mant,
                                 bias_exp=bexp))
        g.chain(f"b_lif1_{grp}", f"b_dense2_{grp}", f"b_lif2_{grp}")
        g.chain("b_src", f"b_skip_{grp}", f"b_lif2_{grp}", delay=1)  # DelayDense: residual
    conv_w = 2 * rng.integers(-128, 128, size=(B_CONV_GROUPS, B_CHW[0] // B_CONV_GROUPS, 3, 2))
    conv_layer = ConvLayer(name="b_conv", weights=conv_w, in_shape=B_CHW, stride=(1, 2),
                           padding=(1, 0), groups=B_CONV_GROUPS)
    mant, bexp = _random_bias(rng, conv_layer.out_shape)
    g.layers += [
        conv_layer,
        LIFLayer(name="b_conv_lif", shape=conv_layer.out_shape, du=int(rng.integers(0, 4096)),
                 dv=int(rng.integers(0, 4096)), vth=int(rng.integers(50, 500)),
                 bias_mant=mant, bias_exp=bexp),
    ]
    g.chain("b_src", "b_conv", "b_conv_lif")
    counts["grouped-conv networks"] += B_CONV_GROUPS
    rates = rng.choice([0.05, 0.2, 0.5, 0.9], size=B_CHW[0])
    g.rasters["b_src"] = (
        rng.random((T, SAMPLES, *B_CHW)) < rates[:, None, None]
    ).astype(np.int8)
    return B_DENSE1 * B_NETS_PER_DENSE1 + B_CONV_GROUPS


@pytest.fixture(scope="module")
def stock() -> Run:
    rng = np.random.default_rng(RNG_SEED)
    g = Graph()
    counts: Counter = Counter()
    _part_a(rng, g)
    n_b = _part_b(rng, g, counts)
    net = _with_reset_offsets(g.layers, g.edges, T)
    reading = run_network(net, g.rasters, raw=g.raw, counts=counts)
    return Run(
        net=net,
        lava=_stock_lava(net, g.raw, g.rasters, SAMPLES),
        sims=simulate_paths(net, g.rasters),
        ref=reading.states,
        regimes=reading.regimes,
        counts=counts,
        n_networks=len(A_LIFS) + 2 + n_b,
    )


def test_depths_are_the_pipeline_ones(stock: Run) -> None:
    depths = {n: stock.net.depth(n) for n in sorted(stock.lava)}
    assert depths == {n: 2 if n.startswith("b_lif2") else 1 for n in depths}
    assert len(depths) == 11 and stock.n_networks >= 500


@pytest.mark.parametrize("path", PATHS)
def test_stock_networks_simulator_equals_lava(stock: Run, path: str) -> None:
    _assert_sim_equals_lava(stock, path)
    for lif, st in stock.lava.items():
        assert st["s"].any(), lif


def test_int64_reading_equals_lava(stock: Run) -> None:
    """The reading that counts the regimes is itself exact (so its counts are Lava's)."""
    for lif, st in stock.ref.items():
        for k in ("u", "v", "s"):
            _assert_equal(f"int64 reading {lif} {k}", stock.lava[lif][k], st[k])


def test_u_exactly_plus_minus_2_pow_23_follows_lava(stock: Run) -> None:
    """a = ±2¹⁷ wu from zero state gives u_raw = ±2²³. Lava keeps +2²³ (one above the 24-bit
    maximum: its test is ``u > 2²³``) and turns −2²³ into +2²³ (``u ≤ −2²³`` adds 2²⁴); a
    two's-complement wrap would give −2²³ for both. The neuron's v is then 2²³ (+ 0 bias),
    saturated to 2²³ − 1, and spikes: 2²³ − 1 > vth << 6 for every vth."""
    for k in range(len(A_LIFS)):
        lava = stock.lava[f"a_lif{k}"]
        for name, idx in U_EDGE.items():
            assert lava["u"][0, :, idx].tolist() == [1 << 23] * SAMPLES, (k, name)
            assert lava["s"][0, :, idx].tolist() == [1] * SAMPLES, (k, name)


def test_vth_limits_in_lava(stock: Run) -> None:
    """vth = 0: any v > 0 fires and resets, so Lava's recorded v is never positive.
    vth = 131071 (the 17-bit maximum): the threshold is 2²³ − 64, so recorded v never exceeds
    it and only v in (2²³ − 64, 2²³ − 1] fires."""
    low, high = stock.lava["a_lif0"], stock.lava["a_lif3"]
    assert low["v"].max() <= 0 and low["s"].sum() > 100
    assert high["v"].max() <= int(fixed.threshold_v(fixed.VTH_MAX)) and high["s"].sum() >= 2


# ---------------------------------------------------------------------------------------------
# Counters: the simulator's equal the reading's; every regime is hit.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
def test_simulator_counters_equal_the_regimes_counted(stock: Run, path: str) -> None:
    sim = stock.sims[path]
    assert dict(sim.overflow_u) == {n: r.u_corrected for n, r in stock.regimes.items()}
    assert dict(sim.saturations_v) == {n: r.v_saturated for n, r in stock.regimes.items()}
    assert dict(sim.ties) == {n: r.ties for n, r in stock.regimes.items()}
    assert dict(sim.int32_wraps) == {n: r.int32_wrapped for n, r in stock.regimes.items()}
    assert sum(sim.conv_wraps.values()) == stock.counts["conv 24-bit wrap"]


#: Minimum hits (neuron-steps, weights, or networks where named) per regime.
REGIME_MINIMUM = {
    "u_corrected": 200,
    "u_plus_half_kept": 3 * SAMPLES,
    "u_still_out": 50,
    "v_saturated": 100,
    "v_saturated_negative": 20,
    "ties": 20,
    "int32_wrapped": 10,
    "negative_v": 1000,
    "trunc_differs_from_floor": 1000,
    "conv 24-bit wrap": 50,
    "weights clipped by Lava": 200,
    "weights truncated by Lava": 500,
    "neg weight_exp: floor(sum) != sum(floor), several spikes": 50,
    "grouped-conv networks": 64,
    **{f"bias_exp={e}": 30 for e in range(fixed.BIAS_EXP_MAX + 1)},
    **{f"num_weight_bits={n} (networks)": 56 for n in range(1, 9)},
    **{f"weight_exp={e}": 20 for e in range(fixed.WEIGHT_EXP_MIN, fixed.WEIGHT_EXP_MAX + 1)},
    **{f"sign_mode={m}": 100 for m in fixed.SIGN_MODES},
    **{f"du={d}": 100 for d in EDGE_DECAYS},
    **{f"dv={d}": 100 for d in EDGE_DECAYS},
}


def test_every_regime_is_hit(stock: Run) -> None:
    counts = Counter(stock.counts)
    for reg in stock.regimes.values():
        counts.update(vars(reg))
    short = {k: (counts[k], m) for k, m in REGIME_MINIMUM.items() if counts[k] < m}
    assert not short, f"regimes hit too rarely (count, minimum): {short}"
    # Lava holds u, v and a << 6 in int32: the sums past 2³¹ wrap (counted above, emulated by
    # the simulator); a itself stays inside the domain where a << 6 fits int32 (|a| < 2²⁵).
    assert counts["|a| < 2^25 (Lava's int32 domain) violated"] == 0


# ---------------------------------------------------------------------------------------------
# Run C: the project's own Lava processes, through export.lava's builder.
# ---------------------------------------------------------------------------------------------

C_T, C_SAMPLES = 4, 3
C_SCALE = 1.0 / 128  # readout input scale: exact in float64, so X equal ⇔ a equal


def _grid(rng: np.random.Generator, shape: tuple[int, ...], step: int = 2) -> np.ndarray:
    """Mixed 8-bit weights on the grid of the given step (2: num_weight_bits 8)."""
    return step * rng.integers(-256 // step, 256 // step, size=shape)


def _run_c_network(rng: np.random.Generator) -> LoihiNetwork:
    """Image component: host conv2d injection → LIF → Conv → MaxPool → LIF → TokenLinear →
    LIF (q|k|v) → attention → LIF → TokenLinear ─┐
                      └→ TokenLinear (skip, delayed by the builder) ─┴→ readout (tokens).
    Text component: host embedding injection → LIF → Dense → LIF → Dense → readout (no mean)."""
    C = 4  # attention channels; q|k|v = 12; tokens 3·3 = 9
    img = HostInputLayer(name="img", op="conv2d", weight=rng.normal(size=(4, 3, 3, 3)),
                         bias=rng.normal(size=4), in_shape=(3, 6, 6), padding=(1, 1),
                         bias_scale=3000.0, bias_exp=2)  # mantissas beyond 13 bits: clipped
    emb = HostInputLayer(name="emb", op="embedding", weight=rng.normal(size=(11, 5)),
                         bias=rng.normal(size=(4, 5)), in_shape=(4,), bias_scale=900.0,
                         bias_exp=1)

    def lif(name, shape, du, dv, vth, *, host: HostInputLayer | None = None, **kw):
        if host is not None:
            kw = dict(bias_mant=0, bias_exp=host.bias_exp)
        elif "bias_mant" not in kw:
            kw = dict(zip(("bias_mant", "bias_exp"), _random_bias(rng, shape)))
        return LIFLayer(name=name, shape=shape, du=du, dv=dv, vth=vth, **kw)

    def readout(name, in_shape, token_axis):
        return ReadoutLayer(name=name, in_shape=in_shape, time_weights=rng.normal(size=C_T),
                            head_weight=rng.normal(size=(5, in_shape[0])),
                            head_bias=rng.normal(size=5), input_scale=C_SCALE,
                            input_bias=rng.normal(size=in_shape[0]), token_axis=token_axis)

    w_f1 = _grid(rng, (8, 20))
    w_f1[0] = 0  # neuron 0 of "ld" sees its bias only, = the threshold: a tie every other step
    mant_d, exp_d = _random_bias(rng, (8,))
    mant_d[0], exp_d[0] = 30, fixed.VTH_SHIFT
    layers = [
        img,
        lif("l0", (4, 6, 6), 4095, 2048, 100, host=img),
        ConvLayer(name="c1", weights=_grid(rng, (6, 4, 3, 3)), in_shape=(4, 6, 6),
                  padding=(1, 1)),
        MaxPoolLayer(name="p1", in_shape=(6, 6, 6)),
        lif("l1", (6, 3, 3), 1000, 300, 50),
        TokenLinearLayer(name="tq", weights=_grid(rng, (3 * C, 6), 4), tokens=9,
                         num_weight_bits=7, weight_exp=-2),
        lif("lq", (3 * C, 9), 4095, 4095, 1),
        AttentionLayer(name="att", channels=C, tokens=9, heads=2, p_shift=14),
        lif("la", (C, 9), 0, 2048, 8, bias_mant=1, bias_exp=0),  # u memory: overflows
        TokenLinearLayer(name="proj", weights=_grid(rng, (6, C)), tokens=9, weight_exp=3),
        TokenLinearLayer(name="skip", weights=_grid(rng, (6, 6)), tokens=9, weight_exp=-1),
        readout("out", (6, 9), 1),
        emb,
        lif("le", (4, 5), 4095, 1024, 40, host=emb),
        DenseLayer(name="f1", weights=w_f1, weight_exp=-1),
        lif("ld", (8,), 2047, 77, 30, bias_mant=mant_d, bias_exp=exp_d),
        DenseLayer(name="f2", weights=_grid(rng, (6, 8)), weight_exp=2),
        readout("out_t", (6,), None),
    ]
    chain = ("img", "l0", "c1", "p1", "l1", "tq", "lq", "att", "la", "proj", "out")
    edges = [Edge(src=a, dst=b) for a, b in zip(chain, chain[1:])]
    edges += [Edge(src="l1", dst="skip"), Edge(src="skip", dst="out")]
    text = ("emb", "le", "f1", "ld", "f2", "out_t")
    edges += [Edge(src=a, dst=b) for a, b in zip(text, text[1:])]
    return LoihiNetwork(layers=tuple(layers), edges=tuple(edges), T=C_T)


@dataclass
class RunC(Run):
    stream: dict[str, np.ndarray] | None = None  # Lava readout currents [T, B, *in_shape]
    features: dict[str, np.ndarray] | None = None


@pytest.fixture(scope="module")
def run_c() -> RunC:
    from export.lava import to_lava
    from export.lava.procs.recorder.process import unpack_spikes

    rng = np.random.default_rng(RNG_SEED + 2)
    graph = to_lava(_run_c_network(rng))
    net, timing = graph.network, graph.timing
    inputs = {
        "img": rng.normal(size=(C_SAMPLES, 3, 6, 6)),
        "emb": rng.integers(0, 11, size=(C_SAMPLES, 4)),
    }
    build = graph.build(inputs)
    lifs = [la.name for la in net.layers if isinstance(la, LIFLayer)]
    mons = {n: {k: _monitor(getattr(build.processes[(n, 0)], k), build.n_steps)
                for k in ("u", "v")} for n in lifs}
    lava: dict[str, dict[str, np.ndarray]] = {}
    with lava_run(build.anchor, build.n_steps) as session:
        words = session.get(build.recorder.words)
        spikes = unpack_spikes(words, build.recorder.proc_params["offsets"][-1])
        for n in lifs:
            idx = timing.logical_indices(n, C_SAMPLES)  # [T, B]: row k·T + t + depth
            col, shape = build.recorded[n]
            lava[n] = {k: _read(m, build.processes[(n, 0)], k)[idx] for k, m in mons[n].items()}
            lava[n]["s"] = spikes[idx, col : col + math.prod(shape)].reshape(
                C_T, C_SAMPLES, *shape).astype(np.int64)
        stream = {n: np.swapaxes(session.get(p.stream).astype(np.int64), 0, 1)
                  for n, p in build.readouts.items()}
        features = {n: session.get(p.features).astype(np.float64)
                    for n, p in build.readouts.items()}
    return RunC(net=net, lava=lava, sims=simulate_paths(net, inputs), stream=stream,
                features=features, n_networks=2)


def test_run_c_uses_every_project_process(run_c: RunC) -> None:
    from export.lava import to_lava

    procs = {p for _, p in to_lava(run_c.net).custom_processes()}
    assert procs == {"BiasInjection", "TokenLinear", "SpikeAttention", "CurrentMaxPool",
                     "HostReadout"}
    delays = {(e.src, e.dst): e.delay for e in run_c.net.edges}
    assert delays[("skip", "out")] == 2  # the residual path is delayed in Lava


@pytest.mark.parametrize("path", PATHS)
def test_run_c_simulator_equals_project_processes_in_lava(run_c: RunC, path: str) -> None:
    _assert_sim_equals_lava(run_c, path)
    sim = run_c.sims[path]
    for name, a in run_c.stream.items():
        layer = run_c.net.layer(name)
        lead = (-1, *([1] * (len(layer.in_shape) - 1)))
        x = a * C_SCALE + np.asarray(layer.input_bias).reshape(lead)  # exact: 2⁻⁷ scale
        _assert_equal(f"simulate ({path}) {name} stream", x, sim.stream[name])
    # The regimes the project's processes feed: overflow (attention << 14 into a LIF with u
    # memory), saturation, ties, clipped host mantissas; and every LIF spikes.
    assert sim.overflow_u["la"] > 0 and sum(sim.saturations_v.values()) > 0
    assert sim.host_clipped["img"] > 0 and sum(sim.ties.values()) > 0
    assert all(st["s"].any() for st in run_c.lava.values())


@pytest.mark.parametrize("path", PATHS)
def test_run_c_readout_features_against_float64(run_c: RunC, path: str) -> None:
    for name, a in run_c.stream.items():
        want = readout(a, run_c.net.layer(name))  # float64 decode, the test's own
        assert want.shape == (C_SAMPLES, 5) and np.abs(want).max() > 0.1
        np.testing.assert_allclose(run_c.features[name], want, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(run_c.sims[path].features[name], want, rtol=1e-12,
                                   atol=1e-12)
