"""`hardware.lower.from_netx`: lava-dl netx files imported exactly, against independent references.

References: integers derived by hand in the comments (a 2-layer dense file, a conv → flatten →
dense file, a slayer sum-pool block, all written here with h5py); netx's own
``optimize_weight_bits``; and lava-dl's ``netx.hdf5.Network`` running in Lava 0.10
(``Loihi2SimCfg(select_tag="fixed_pt")``: ``PyLifResetModelBitAcc``, ``PyDenseModelBitAcc``,
``PyConvModelFixed``) — the small files and Intel's PilotNet SNN
(``tests/fixtures/lava-dl/pilotnet_snn/network.net``) on four synthetic road frames, every
spike of every layer and the output voltage compared at the pipeline shift computed from the
graph (``hardware.ir.timing.Timing``).

How the inputs enter netx in Lava: netx's ``Input`` block never connects its ``inp`` port to
its neuron (``netx/blocks/process.py:Input``), so — as lava-dl's PilotNet tutorial does — a
``RingBuffer`` of integer frames drives ``net.in_layer.neuron.a_in`` (the tutorial sends frame
differences and sets ``du = −1`` at run time; with the file's ``du = 4095`` the frame itself
every step is the same drive). A file without an input neuron gets 0/1 spikes on ``net.inp``.
"""

from __future__ import annotations

import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from _netx import netx_block as _block
from _paths import TESTS

from export.lava.netx_reference import run_netx_reference
from hardware.ir.layers import ConvLayer, CurrentInputLayer, DenseLayer, LIFLayer, SpikeInputLayer
from hardware.ir.network import LoihiNetwork
from hardware.lower.from_netx import (
    NetxFileError,
    NetxUnsupportedError,
    encode_frames,
    load_netx,
    netx_metadata,
    netx_weight_format,
    static_currents,
)
from hardware.simulate.engine import simulate
from spikeclip.errors import ModelFileError, UnsupportedError, UsageError

PILOTNET = (
    TESTS / "fixtures" / "lava-dl" / "pilotnet_snn" / "network.net"
)


# ---------------------------------------------------------------------------------------------
# Writing small netx files (the layout lava-dl slayer's export_hdf5 writes).
# ---------------------------------------------------------------------------------------------


def _neuron(g, *, i_decay: int, v_decay: int, vth: int, kind: bytes = b"CUBA") -> None:
    n = g.create_group("neuron")
    n.create_dataset("type", data=kind)
    n.create_dataset("iDecay", data=i_decay)
    n.create_dataset("vDecay", data=v_decay)
    n.create_dataset("vThMant", data=vth)
    n.create_dataset("refDelay", data=1)
    n.create_dataset("gradedSpike", data=False)


def _write_dense_file(path: Path, t_sample: int = 4) -> Path:
    """input(2, neuron) → dense(3) → dense(1), the hand case of test_dense_file_by_hand."""
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        g = _block(layer, 0, "input", [2], weight=np.float32(1.0), bias=np.float32(0.0))
        _neuron(g, i_decay=4096, v_decay=2048, vth=10)
        g = _block(layer, 1, "dense", [3], weight=np.array([[3, -5], [-7, 1], [2, 9]], np.float32),
                   bias=np.array([1, 0, -1], np.float32), inFeatures=2, outFeatures=3)
        _neuron(g, i_decay=1024, v_decay=0, vth=8)
        g = _block(layer, 2, "dense", [1], weight=np.array([-3, 0, 5], np.float32), inFeatures=3,
                   outFeatures=1)
        _neuron(g, i_decay=4096, v_decay=4095, vth=4)
        sim = f.create_group("simulation")
        sim.create_dataset("Ts", data=1)
        sim.create_dataset("tSample", data=t_sample)
    return path


CONV_K = np.array(
    [
        [[[2, -4, 6], [-8, 10, 12]]],  # out channel 0 (one input channel, kH = 2, kW = 3)
        [[[1, 3, 5], [7, 9, 11]]],  # out channel 1
    ],
    np.float32,
)
DENSE_BITS = np.array([[1, 2, 4, 8, 16, 32, 64, 128]], np.float32)


def _write_conv_file(path: Path) -> Path:
    """input(1, 3, 4; no neuron) → conv(2, k 2×3, stride (1, 2), pad (0, 1)) → flatten →
    dense(1), the hand case of test_conv_file_by_hand."""
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        _block(layer, 0, "input", [1, 3, 4])
        g = _block(layer, 1, "conv", [2, 2, 2], weight=CONV_K, bias=np.array([1, -2], np.float32),
                   stride=[1, 2], padding=[0, 1], dilation=[1, 1], groups=1, inChannels=1,
                   outChannels=2, kernelSize=[2, 3])
        _neuron(g, i_decay=4096, v_decay=0, vth=20)
        _block(layer, 2, "flatten", [8, 1, 1])
        g = _block(layer, 3, "dense", [1], weight=DENSE_BITS, inFeatures=8, outFeatures=1)
        _neuron(g, i_decay=4096, v_decay=4095, vth=131071)
        f.create_group("simulation").create_dataset("tSample", data=2)
    return path


CONV_SPIKES = np.array([[1, 0, 1, 1], [0, 1, 0, 1], [1, 1, 0, 0]], np.int8)  # (H 3, W 4)


# ---------------------------------------------------------------------------------------------
# Hand-derived cases.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reference", [False, True], ids=["fast", "int64"])
def test_dense_file_by_hand(tmp_path, reference):
    net = load_netx(_write_dense_file(tmp_path / "dense.net"))
    assert [(ly.KIND, ly.name) for ly in net.layers] == [
        ("current_input", "input"), ("lif", "input0"), ("dense", "dense1.syn"),
        ("lif", "dense1"), ("dense", "dense2.syn"), ("lif", "dense2")]
    assert net.T == 4 and netx_metadata(net).T_from == "/simulation/tSample"
    # netx's optimize_weight_bits on [[3, -5], [-7, 1], [2, 9]] (mixed, some odd):
    #   scale = min(127/9, 128/7) = 14.1 → s = ⌊log2 14.1⌋ + 1 = 4; n = 0 − 1 = −1
    #   → num_weight_bits = 8 − 4 + 1 = 5, weight_exp = −4, weights << 4.
    d1 = net.layer("dense1.syn")
    assert (d1.num_weight_bits, d1.weight_exp, d1.sign_mode) == (5, -4, "mixed")
    assert d1.weights.tolist() == [[48, -80], [-112, 16], [32, 144]]
    # [−3, 0, 5]: scale = min(127/5, 128/3) = 25.4 → s = 4 + 1 = 5; n = −1 → 8 − 5 + 1 = 4.
    d2 = net.layer("dense2.syn")
    assert (d2.num_weight_bits, d2.weight_exp, d2.weights.tolist()) == (4, -5, [[-96, 0, 160]])
    lif1 = net.layer("dense1")
    assert (lif1.du, lif1.dv, lif1.vth) == (1023, 0, 8)  # du = iDecay − 1
    assert lif1.bias_mant.tolist() == [1, 0, -1] and set(lif1.bias_exp.tolist()) == {6}

    # Input currents [7, 12] wu every step. input0 (du 4095: u = 64a; dv 2048; vth 10 → 640):
    #   n0: u 448: t0 v 448; t1 224 + 448 = 672 > 640 spike; t2 448; t3 672 spike
    #   n1: u 768 > 640: spikes every step.  → s0 = [0,1], [1,1], [0,1], [1,1]
    # dense1 a = W·s0: t0,t2 [−5, 1, 9]; t1,t3 [−2, −6, 11] (the shifted weights >> 4).
    # dense1 LIF (du 1023: u ← trunc0(u·3072/4096) + 64a; dv 0; β = [64, 0, −64]; thr 512):
    #   n0: u −320, −240−128 = −368, −276−320 = −596, −447−128 = −575
    #       v −256, −560, −1092, −1603
    #   n1: u 64, 48−384 = −336, −252+64 = −188, −141−384 = −525;  v 64, −272, −460, −985
    #   n2: u 576, 432+704 = 1136, 852+576 = 1428, 1071+704 = 1775
    #       v 576−64 = 512 (== thr: a tie, no spike), 512+1136−64 = 1584 spike → 0,
    #         1428−64 = 1364 spike → 0, 1775−64 = 1711 spike → 0
    # dense2 a = 5·s1[2] = 0, 5, 5, 5; its LIF (du 4095, dv 4095: trunc0(v/4096) = 0 for
    #   |v| < 4096; vth 4 → 256): v 0, 320 spike, 320 spike, 320 spike.
    res = simulate(net, static_currents(np.array([[7, 12]]), 4), keep_states=True,
                   reference=reference)
    assert res.spikes["input0"][:, 0].astype(int).tolist() == [[0, 1], [1, 1], [0, 1], [1, 1]]
    assert res.u["dense1"][:, 0].tolist() == [
        [-320, 64, 576], [-368, -336, 1136], [-596, -188, 1428], [-575, -525, 1775]]
    assert res.v["dense1"][:, 0].tolist() == [
        [-256, 64, 512], [-560, -272, 0], [-1092, -460, 0], [-1603, -985, 0]]
    assert res.ties["dense1"] == 1
    assert res.spikes["dense2"][:, 0, 0].astype(int).tolist() == [0, 1, 1, 1]


@pytest.mark.parametrize("reference", [False, True], ids=["fast", "int64"])
def test_conv_file_by_hand(tmp_path, reference):
    net = load_netx(_write_conv_file(tmp_path / "conv.net"))
    src, conv, lif = net.layer("input"), net.layer("conv1.syn"), net.layer("conv1")
    assert isinstance(src, SpikeInputLayer) and src.shape == (1, 3, 4)
    assert isinstance(conv, ConvLayer) and conv.stride == (1, 2) and conv.padding == (0, 1)
    # Weights in [−8, 12], some odd: s = min(⌊log2 127/12⌋, ⌊log2 128/8⌋) + 1 = 3 + 1 = 4,
    # n = −1 → num_weight_bits 5, weight_exp −4; the effective weights are the file's.
    assert (conv.num_weight_bits, conv.weight_exp) == (5, -4)
    assert np.array_equal(conv.effective_weights, CONV_K.astype(np.int64))
    assert lif.bias_mant[:, 0, 0].tolist() == [1, -2]  # per channel
    # Spikes x (H 3 × W 4), zero padding of one column each side, stride (1, 2): windows
    # cover rows (y, y+1) and columns (2·xo − 1 … 2·xo + 1).
    #   k0 = [[2, −4, 6], [−8, 10, 12]]:
    #     (0,0): [0,1,0]·[2,−4,6] + [0,0,1]·[−8,10,12] = −4 + 12 = 8
    #     (0,1): [0,1,1]·… = 2, [1,0,1]·… = 4 → 6
    #     (1,0): [0,0,1] → 6, [0,1,1] → 22 → 28      (1,1): [1,0,1] → 8, [1,0,0] → −8 → 0
    #   k1 = [[1, 3, 5], [7, 9, 11]]: (0,0) 3 + 11 = 14; (0,1) 8 + 18 = 26;
    #     (1,0) 5 + 20 = 25; (1,1) 6 + 7 = 13
    a = [[[8, 6], [28, 0]], [[14, 26], [25, 13]]]
    # LIF (du 4095, dv 0, β = 64·[1, −2], thr 20·64 = 1280), the same spikes in both steps:
    #   t0 v: ch0 [[576, 448], [1856, 64]] → spike (1,0); ch1 [[768, 1536], [1472, 704]] → (0,1),
    #   (1,0).  t1 v: ch0 [[1152, 896], [1856 → spike, 128]]; ch1 [[1536, 1536], [1472, 1408]]
    #   → all four spike.
    # dense (weights 2^j on the C-order flattening c·4 + y·2 + x; excitatory, s = 0, n = 0 →
    # 8 bits, exponent 0): t0 spikes at 2, 5, 6 → 4 + 32 + 64 = 100; t1 at 2, 4…7 → 244.
    raster = np.broadcast_to(CONV_SPIKES, (2, 1, 1, 3, 4))
    res = simulate(net, raster, keep_states=True, reference=reference)
    assert (res.u["conv1"][0, 0] // 64).tolist() == a
    assert res.spikes["conv1"][:, 0].astype(int).tolist() == [
        [[[0, 0], [1, 0]], [[0, 1], [1, 0]]], [[[0, 0], [1, 0]], [[1, 1], [1, 1]]]]
    assert res.v["conv1"][1, 0].tolist() == [[[1152, 896], [0, 128]], [[0, 0], [0, 0]]]
    assert (res.u["dense3"][:, 0, 0] // 64).tolist() == [100, 244]


def test_slayer_sum_pool_block_by_hand(tmp_path):
    path = tmp_path / "pool.net"
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        _block(layer, 0, "input", [2, 4, 4])
        g = _block(layer, 1, "pool", [2, 2, 2], weight=np.full((1, 1, 2, 2), 3.0, np.float32),
                   kernelSize=[2, 2], stride=[2, 2], padding=[0, 0], dilation=[1, 1])
        _neuron(g, i_decay=4096, v_decay=0, vth=131071)
    net = load_netx(path, steps=1)
    pool = net.layer("pool1.syn")
    assert pool.groups == 2 and pool.out_shape == (2, 2, 2)
    # 3 is odd and excitatory: s = ⌊log2 255/3⌋ = 6, n = 0 → 8 − 6 = 2 bits, exponent −6.
    assert (pool.num_weight_bits, pool.weight_exp, pool.sign_mode) == (2, -6, "excitatory")
    x = np.zeros((1, 1, 2, 4, 4), np.int8)
    x[0, 0, 0] = [[1, 1, 0, 0], [1, 0, 0, 1], [0, 0, 1, 1], [0, 0, 1, 1]]
    x[0, 0, 1, 3, 3] = 1
    # 2×2 sums × 3: ch0 [[3·3, 3·1], [0, 3·4]] = [[9, 3], [0, 12]]; ch1 only (1,1): 3.
    res = simulate(net, x, keep_states=True)
    assert (res.u["pool1"][0, 0] // 64).tolist() == [[[9, 3], [0, 12]], [[0, 0], [0, 3]]]


def test_weight_format_equals_netx_optimize_weight_bits():
    from lava.lib.dl.netx.utils import optimize_weight_bits

    rng = np.random.default_rng(7)
    cases = [np.array([[-256, 254]]), np.array([[-1, 0]]), np.array([[-3, -5]]),
             np.array([[1]]), np.array([[128, 64]]), np.array([[-64, 127]])]
    for _ in range(300):
        lo, hi = sorted(rng.integers(-256, 256, 2))
        mult = 1 << int(rng.integers(0, 5))
        cases.append((rng.integers(lo, hi + 1, (4, 6)) // mult) * mult)
    checked = 0
    for w in cases:
        if not w.any():
            continue
        try:
            ours = netx_weight_format(w, clip=True)
        except NetxUnsupportedError:
            continue  # beyond Loihi's 8-bit range: netx would shift by a negative count
        with np.errstate(divide="ignore"):  # netx divides by a zero max for w ≤ 0
            theirs_w, nwb, exp, mode = optimize_weight_bits(w.copy())
        assert np.array_equal(ours.weights, theirs_w), w
        assert (ours.num_weight_bits, ours.weight_exp) == (nwb, exp), w
        assert ours.sign_mode == mode.name.lower(), w
        checked += 1
    assert checked > 250


# ---------------------------------------------------------------------------------------------
# Typed refusals and file errors.
# ---------------------------------------------------------------------------------------------


def test_missing_and_corrupt_files_are_model_file_errors(tmp_path):
    with pytest.raises(NetxFileError) as err:
        load_netx(tmp_path / "absent.net")
    assert err.value.exit_code == 3 and isinstance(err.value, ModelFileError)
    junk = tmp_path / "junk.net"
    junk.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(200)))
    with pytest.raises(NetxFileError, match="unreadable HDF5"):
        load_netx(junk)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("x", data=1)
    with pytest.raises(NetxFileError, match="no /layer group"):
        load_netx(other)
    broken = _write_dense_file(tmp_path / "broken.net")
    with h5py.File(broken, "r+") as f:
        del f["layer/1/weight"]
    with pytest.raises(NetxFileError, match="block 1: missing 'weight'"):
        load_netx(broken)
    no_t = _write_conv_file(tmp_path / "no_t.net")
    with h5py.File(no_t, "r+") as f:
        del f["simulation"]
    with pytest.raises(UsageError, match="tSample"):
        load_netx(no_t)
    assert load_netx(no_t, steps=3).T == 3


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda f: f["layer/1/neuron/type"].__setitem__((), b"SDNN"), "block 1 .*sigma-delta"),
        (lambda f: f["layer/2/neuron/type"].__setitem__((), b"RF"), "block 2 .*resonate"),
        (lambda f: f["layer/1/type"].__setitem__(0, b"dense_rec"), "block 1 .*recurrent"),
        (lambda f: f["layer/2"].create_dataset("delay", data=np.array([0, 2, 1])),
         "block 2 .*delay"),
        (lambda f: f["layer/1/neuron/iDecay"].__setitem__((), 0), "block 1 .*du = -1"),
        (lambda f: f["layer/1/neuron/vDecay"].__setitem__((), 4096), "block 1 .*vDecay 4096"),
        (lambda f: f.__delitem__("layer/2/neuron"), "block 2 .*no neuron"),
    ],
)
def test_unsupported_blocks_exit_4_naming_the_block(tmp_path, mutate, match):
    path = _write_dense_file(tmp_path / "x.net")
    with h5py.File(path, "r+") as f:
        mutate(f)
    with pytest.raises(NetxUnsupportedError, match=match) as err:
        load_netx(path)
    assert err.value.exit_code == 4 and isinstance(err.value, UnsupportedError)


def test_zero_delays_and_conv_beyond_8_bits(tmp_path):
    path = _write_dense_file(tmp_path / "d0.net")
    with h5py.File(path, "r+") as f:
        f["layer/2"].create_dataset("delay", data=np.zeros(3))
    load_netx(path)  # all-zero delays are plain synapses
    wide = _write_conv_file(tmp_path / "wide.net")
    with h5py.File(wide, "r+") as f:
        f["layer/1/weight"][0, 0, 0, 0] = 300.0
    with pytest.raises(NetxUnsupportedError, match="block 1 .*8-bit range"):
        load_netx(wide)


def test_conv_weight_exp_and_current_input_schema():
    from hardware.ir.layers import NetworkValidationError
    from hardware.ir.network import Edge
    from hardware.simulate.engine import SimulationError

    w = np.array([[[[16, -32]]]])
    conv = ConvLayer(name="c", weights=w, in_shape=(1, 1, 2), weight_exp=-4)
    assert conv.effective_weights.tolist() == [[[[1, -2]]]]
    assert ConvLayer(name="c", weights=w, in_shape=(1, 1, 2), weight_exp=2
                     ).effective_weights.tolist() == [[[[64, -128]]]]
    with pytest.raises(NetworkValidationError, match="multiples of 32"):
        ConvLayer(name="c", weights=w, in_shape=(1, 1, 2), weight_exp=-5)
    net = LoihiNetwork(
        layers=(CurrentInputLayer(name="in", shape=(2,)),
                LIFLayer(name="lif", shape=(2,), du=4095, dv=0, vth=100)),
        edges=(Edge(src="in", dst="lif"),), T=2)
    # u = 64·a each step (du 4095); v accumulates (dv 0): a = [3, −2] → v 192, 384 / −128, −256
    res = simulate(net, np.array([[[3, -2]], [[3, -2]]]), keep_states=True)
    assert res.v["lif"][:, 0].tolist() == [[192, -128], [384, -256]]
    for bad, match in ((np.full((2, 1, 2), 0.5), "integers"), (np.zeros((3, 1, 2)), "T=2"),
                       (np.full((2, 1, 2), 1 << 23), "24-bit")):
        with pytest.raises(SimulationError, match=match):
            simulate(net, bad)


# ---------------------------------------------------------------------------------------------
# PilotNet SNN: structure (fast) and bit-exactness against netx in Lava (slow).
# ---------------------------------------------------------------------------------------------

# Lava num_weight_bits per layer, derived by hand in tests/hardware/test_loihi2_resources.py
# from the weight ranges (all even; mantissa w/2 in the smallest signed width).
PILOTNET_BITS = {"conv1.syn": 5, "conv2.syn": 4, "conv3.syn": 4, "conv4.syn": 4, "conv5.syn": 4,
                 "dense7.syn": 3, "dense8.syn": 4, "dense9.syn": 5, "dense10.syn": 6}


def test_pilotnet_structure(tmp_path):
    net = load_netx(PILOTNET)
    meta = netx_metadata(net)
    lifs = [ly for ly in net.layers if isinstance(ly, LIFLayer)]
    assert [ly.name for ly in lifs] == ["input0", "conv1", "conv2", "conv3", "conv4", "conv5",
                                        "dense7", "dense8", "dense9", "dense10"]
    assert [net.depth(ly.name) for ly in lifs] == list(range(10))
    assert [ly.shape for ly in lifs[:6]] == [(3, 66, 200), (24, 32, 99), (36, 15, 49),
                                             (48, 7, 24), (64, 4, 22), (64, 2, 20)]
    assert isinstance(net.layer("input"), CurrentInputLayer)
    assert (meta.T, meta.input_shape, meta.output) == (16, (3, 66, 200), "dense10")
    assert meta.transform == {"weight": 40.0, "bias": 36.0}
    conv4 = net.layer("conv4.syn")
    assert (conv4.stride, conv4.padding) == ((2, 1), (1, 0))
    for name, bits in PILOTNET_BITS.items():
        assert net.layer(name).num_weight_bits == bits, name
    assert all(ly.meta["clipped"] == 0 and ly.meta["truncated"] == 0
               for ly in net.layers if isinstance(ly, DenseLayer | ConvLayer))
    # every conv's effective weights are the file's integers
    with h5py.File(PILOTNET, "r") as f:
        for i in range(1, 6):
            assert np.array_equal(net.layer(f"conv{i}.syn").effective_weights,
                                  f[f"layer/{i}/weight"][()].astype(np.int64))
    # the saved network round-trips (ConvLayer.weight_exp, CurrentInputLayer)
    assert LoihiNetwork.load(net.save(tmp_path / "net.npz")) == net


def _road_frames(n: int) -> np.ndarray:
    """``n`` synthetic road images in [0, 1], ``[n, 3, 66, 200]``: sky gradient, grey road
    trapezoid bending by a per-frame curvature, white lane marks, a little seeded noise."""
    rng = np.random.default_rng(24)
    h, w = 66, 200
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    frames = []
    for k in range(n):
        bend = (k - (n - 1) / 2) * 0.9
        depth = np.clip((y - 20) / (h - 20), 0, 1)  # 0 at the horizon, 1 at the bottom
        centre = w / 2 + bend * 30 * (1 - depth) ** 2
        half = 8 + 80 * depth
        road = (y >= 20) & (np.abs(x - centre) < half)
        lane = road & (np.abs(np.abs(x - centre) - 0.6 * half) < 1 + depth)
        img = np.empty((3, h, w))
        sky = 0.55 + 0.4 * (1 - y / 20)
        img[:] = np.where(y < 20, sky, 0.3 + 0.15 * np.sin(x / 9 + k))
        img[:, road] = 0.45
        img[:, lane] = 0.95
        img[2] += np.where(y < 20, 0.2, 0.0)
        img += rng.normal(0, 0.03, img.shape)
        frames.append(np.clip(img, 0, 1))
    return np.stack(frames)


@pytest.mark.lava
@pytest.mark.timeout(300)
def test_small_files_equal_netx_in_lava(tmp_path):
    # dense file: graded currents into the input neuron, two samples streamed
    path = _write_dense_file(tmp_path / "dense.net")
    net = load_netx(path)
    x = np.stack([static_currents(np.array([[7, 12]]), 4)[:, 0],
                  static_currents(np.array([[-3, 15]]), 4)[:, 0]], axis=1)
    run = run_netx_reference(path, net, x)
    sim = simulate(net, x, keep_states=True)
    assert set(run.spikes) == {"input0", "dense1", "dense2"}
    for name, s in run.spikes.items():
        assert np.array_equal(s, sim.spikes[name]), name
    assert np.array_equal(run.v_out, sim.v["dense2"])
    assert sum(int(s.sum()) for s in sim.spikes.values()) > 10
    # conv file: spikes into net.inp (no input neuron: netx's offsets start one step early)
    path = _write_conv_file(tmp_path / "conv.net")
    net = load_netx(path)
    raster = np.random.default_rng(3).integers(0, 2, (2, 3, 1, 3, 4)).astype(np.int8)
    run = run_netx_reference(path, net, raster)  # netx reset_offset=1: see the module doc
    sim = simulate(net, raster, keep_states=True)
    assert set(run.spikes) == {"conv1", "dense3"}
    for name, s in run.spikes.items():
        assert np.array_equal(s, sim.spikes[name]), name
    assert np.array_equal(run.v_out, sim.v["dense3"])
    assert int(sim.spikes["conv1"].sum()) > 3


@pytest.mark.lava
@pytest.mark.timeout(300)
def test_export_lava_stage_runs_imported_networks(tmp_path):
    """The project's own Lava lowering (export.lava) of imported networks: a current input
    (RingBuffer → LIF a_in) and a conv with weight_exp (Lava Conv gets the effective weights)."""
    from export.lava.graph import to_lava
    from export.lava.runner import compare_to_sim, run_lava

    net = load_netx(_write_dense_file(tmp_path / "dense.net"))
    x = np.stack([static_currents(np.array([[7, 12]]), 4)[:, 0],
                  static_currents(np.array([[-3, 15]]), 4)[:, 0]], axis=1)
    graph = to_lava(net)
    assert graph.nodes["input"].processes[0] == "RingBuffer" and not graph.custom_processes()
    cmp = compare_to_sim(run_lava(graph, x), simulate(net, x, keep_states=True), net)
    assert cmp.equal and set(cmp.spike_mismatches) == {"input0", "dense1", "dense2"}
    net = load_netx(_write_conv_file(tmp_path / "conv.net"))
    raster = np.random.default_rng(3).integers(0, 2, (2, 3, 1, 3, 4)).astype(np.int8)
    cmp = compare_to_sim(run_lava(to_lava(net), raster), simulate(net, raster, keep_states=True))
    assert cmp.equal and set(cmp.spike_mismatches) == {"conv1", "dense3"}


@pytest.mark.lava
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_pilotnet_snn_simulator_equals_netx_in_lava(capsys):
    """Intel's PilotNet SNN, 4 road frames × 16 steps: every spike of all 10 layers and the
    output voltage (the steering readout) equal netx in Lava; prints the wall time per frame."""
    net = load_netx(PILOTNET)
    meta = netx_metadata(net)
    frames = encode_frames(_road_frames(4), meta.transform)  # ints in −4 … 76
    assert frames.min() >= -4 and frames.max() <= 76
    x = static_currents(frames, net.T)
    run = run_netx_reference(PILOTNET, net, x)
    sim = simulate(net, x, keep_states=True)
    start = time.perf_counter()
    simulate(net, x)
    sim_wall = time.perf_counter() - start
    compared = 0
    lava, v_out = run.spikes, run.v_out
    assert len(lava) == 10
    for name, s in lava.items():
        ref = sim.spikes[name]
        assert s.shape == ref.shape, name
        assert np.array_equal(s, ref), f"{name}: {int(np.count_nonzero(s != ref))} spikes differ"
        compared += s.size
    assert np.array_equal(v_out, sim.v[meta.output])
    counts = {n: int(s.sum()) for n, s in sim.spikes.items()}
    assert all(counts[n] > 0 for n in list(counts)[:-1]), counts  # every hidden layer fires
    assert np.count_nonzero(v_out) > 0
    with capsys.disabled():
        print(f"\nPilotNet SNN, 4 frames: {compared} neuron-steps in {len(lava)} layers equal "
              f"({sum(counts.values())} spikes); Lava run {run.run_s / 4:.2f} s/frame, "
              f"simulator {sim_wall / 4:.3f} s/frame, ratio {run.run_s / sim_wall:.0f}×")
