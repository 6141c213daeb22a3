"""The text tower as a netx HDF5 network: netx's quantization policy by hand, file layout, netx
vs simulator.

The quantizer is the project's one text quantizer (`hardware.quantize.text.quantize_text`) with
netx's options (`export.lava.netx.NETX_OPTIONS`: static bounds, bias_exp = 6).

The Lava test loads the file with lava-dl's own ``netx.hdf5.Network`` (its reader, its blocks,
its ``optimize_weight_bits`` and ``LIFReset`` staggering) and runs 8 prompts through it; the
reference is ``hardware.simulate.engine`` (a separate implementation of the same fixed-point rules).
Timing: netx layer i sits at pipeline depth i, so logical step t of prompt k is Lava step
``k·T + t + i + 1`` (sink column ``k·T + t + i``); ``run_netx`` realigns by exactly that.
"""

from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest
import torch
from _paths import REPO

from export.lava import netx as nx
from export.lava.netx_drive import drive_mantissas, simulate_text
from export.lava.netx_run import run_netx
from hardware.quantize.image import QuantizationRangeError, StaticOptions
from hardware.quantize.text import quantize_text
from hardware.simulate.result import SimulationError
from spikeclip.config import SpikeCLIPConfig
from spikeclip.text_encoder import TextEncoder

LIF1, FC1, LIF2 = nx.NAMES["lif1"], nx.NAMES["fc1"], nx.NAMES["lif2"]


def quantize_netx(enc: TextEncoder, options: StaticOptions = nx.NETX_OPTIONS):
    return quantize_text(enc, options=options)
DEFAULT_MODEL = REPO / "examples" / "spikeclip-digits.pt"


def _hand_encoder(token_value: float, w1: float, b1: float) -> TextEncoder:
    """Tiny encoder (L·D = 48, H = 32, τ = 2, θ = 1) with constant tables and fc1."""
    enc = TextEncoder(SpikeCLIPConfig.tiny()).eval()
    with torch.no_grad():
        enc.token_embedding.weight.fill_(token_value)
        enc.position_embedding.weight.zero_()
        enc.fc1.weight.fill_(w1)
        enc.fc1.bias.fill_(b1)
    return enc


def test_scales_and_integers_by_hand():
    # Drive bound: s1·3.0/2 ≤ 4095 → s1 ≤ 2730 → s1 = 2048; drive = 2048·3/2 = 3072 wu.
    # fc1: w = 0.01·s/2 ≤ 254 never clips; Σ|w| + |b| = 48·20 + 614 < 65535 → s2 = 2^12 = 4096:
    # w = round_even(0.01·2048) = round(20.48) = 20; bias mant = ⌊0.3·2048 + ½⌋ = ⌊614.9⌋ = 614.
    net, rec = quantize_netx(_hand_encoder(3.0, 0.01, 0.3))
    assert rec.scale(LIF1) == 2048 and rec.scale(LIF2) == 4096
    assert (rec.neuron(LIF1).vth, rec.neuron(LIF2).vth) == (2048, 4096)
    assert rec.neuron(LIF1).bias_max_abs == 3072 * 64  # the worst-case drive, v-units
    assert rec.calibration_samples == 0 and rec.neuron(LIF2).bias_exp == 6
    lif1, fc1, lif2 = (net.layer(n) for n in (LIF1, FC1, LIF2))
    assert (lif1.du, lif1.dv, lif2.du, lif2.dv) == (4095, 2048, 4095, 2048)
    assert np.all(fc1.weights == 20) and fc1.weight_exp == 0
    assert np.all(lif2.bias_mant == 614) and np.all(lif2.bias_exp == 6)
    assert rec.synapse(FC1).max_row_abs_sum == 960
    # fc1's bias 0.3 → β = 0.3·64·4096/2 = 39321.6 v-units → 614 wu = 39296: error 25.6
    # (0.3 is stored as float32: 0.3000000119…, so 25.6016).
    assert rec.neuron(LIF2).bias_max_abs_error == pytest.approx(25.6, abs=1e-2)
    # Drive of token id 0: 3.0 + 0 → ⌊3.0·(64·2048/2)/64 + ½⌋ = 3072 wu at bias_exp 6.
    mant = drive_mantissas(net, np.zeros((2, 6), np.int64))
    assert mant.shape == (2, 48) and np.all(mant == 3072)


def test_clipping_bounds_the_scale():
    # One fc1 weight of 1.0 among 48·32 = 1536: it clips when 1.0·s/2 > 254 (s ≥ 512), i.e.
    # 1/1536 = 0.065% > max_clip_fraction 0.01% → s2 = 256 (w = 128: no clip).
    enc = _hand_encoder(1.0, 0.001, 0.0)
    with torch.no_grad():
        enc.fc1.weight[3, 5] = 1.0
    net, rec = quantize_netx(enc)
    assert rec.scale(LIF2) == 256 and rec.synapse(FC1).pct_clipped == 0.0
    assert net.layer(FC1).weights[3, 5] == 128
    _, loose = quantize_netx(enc, StaticOptions(bias_exp=6, max_clip_fraction=1e-3))
    assert loose.scale(LIF2) == 4096
    assert loose.synapse(FC1).pct_clipped == pytest.approx(100 / 1536)


def test_no_scale_fits_names_the_layer():
    # Drive at the smallest scale s = 1: 1e5·1/2 = 50,000 wu > 4095 (13-bit mantissa at
    # bias_exp 6, in whole wu): netx's static bound cannot hold this embedding table.
    with pytest.raises(QuantizationRangeError, match=r"text_encoder.lif1.*drive 50000 wu > 4095"):
        quantize_netx(_hand_encoder(1e5, 0.01, 0.3))


def test_hdf5_layout(tmp_path):
    path, net, rec = nx.export_text_tower(_hand_encoder(3.0, 0.01, 0.3), tmp_path / "text.net")
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == nx.FORMAT_NAME and f.attrs["T"] == 4
        # s1 = 2048, τ = 2: drive mantissa = round(e · 1024); layer scales s1, s2.
        assert f.attrs["drive_wu_per_unit"] == 1024
        assert f["layer/0"].attrs["scale"] == 2048 and f["layer/1"].attrs["scale"] == 4096
        l0, l1 = f["layer/0"], f["layer/1"]
        assert l0["type"][0] == b"input" and list(l0["shape"][()]) == [48]
        assert l1["type"][0] == b"dense" and list(l1["shape"][()]) == [32]
        # netx: du = iDecay − 1 → 4096 for du = 4095; dv = vDecay; vth = vThMant.
        assert l0["neuron/iDecay"][()] == 4096 and l0["neuron/vDecay"][()] == 2048
        assert l0["neuron/vThMant"][()] == 2048 and l1["neuron/vThMant"][()] == 4096
        assert np.all(l1["weight"][()] == 20) and l1["weight"].shape == (32, 48)
        assert np.all(l1["bias"][()] == 614)
    assert nx.netx_layer_names(path) == (LIF1, LIF2)
    assert not list(tmp_path.glob(".*.tmp"))


def test_not_netx_compatible_is_a_typed_error(tmp_path):
    net, _ = quantize_netx(_hand_encoder(1.0, 0.01, 0.3))
    lif2 = net.layer(LIF2)
    bad = dataclasses.replace(lif2, bias_mant=np.asarray(lif2.bias_mant) * 2, bias_exp=5)
    layers = tuple(bad if ly.name == LIF2 else ly for ly in net.layers)
    broken = dataclasses.replace(net, layers=layers)
    with pytest.raises(nx.NetxExportError, match="bias_exp must be 6"):
        nx.write_netx(broken, tmp_path / "x.net")
    with pytest.raises(SimulationError, match="token ids"):
        drive_mantissas(net, np.full((1, 6), 50))


# ---------------------------------------------------------------------------------------------
# netx in Lava vs the simulator, 8 prompts.
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def text_net():
    torch.manual_seed(0)
    enc = TextEncoder(SpikeCLIPConfig.tiny()).eval()
    with torch.no_grad():
        enc.fc1.weight.mul_(8)  # LIF2 fires ~15% of neuron-steps (random init: ~0%)
    net, _ = quantize_netx(enc)
    ids = torch.randint(0, 50, (8, 6), generator=torch.Generator().manual_seed(1)).numpy()
    return net, ids


@pytest.mark.lava
@pytest.mark.timeout(180)  # Lava runs through LavaSession: a hang fails by name
def test_netx_loads_our_parameters(text_net, tmp_path):
    from lava.lib.dl.netx.hdf5 import Network

    net, _ = text_net
    path = nx.write_netx(net, tmp_path / "text.net")
    lava_net = Network(net_config=str(path), reset_interval=4)
    n1 = lava_net.layers[1].neuron
    assert int(n1.du.init) == 4095 and int(n1.dv.init) == 2048
    assert int(n1.vth.init) == net.layer(LIF2).vth
    assert np.array_equal(n1.bias_mant.init, net.layer(LIF2).bias_mant)
    assert np.all(np.asarray(n1.bias_exp.init) == 6)
    # netx re-encodes the weights (w << k, weight_exp = −k); the effective wu are unchanged.
    syn = lava_net.layers[1].synapse
    exp = int(syn.proc_params["weight_exp"])
    assert np.array_equal(np.asarray(syn.weights.init) * 2.0**exp, net.layer(FC1).weights)
    # LIFReset offsets staggered by layer: depth + 1.
    assert lava_net.layers[0].neuron.proc_params["reset_offset"] == 1
    assert n1.proc_params["reset_offset"] == 2


@pytest.mark.lava
@pytest.mark.timeout(180)  # Lava runs through LavaSession: a hang fails by name
def test_netx_spikes_equal_simulator(text_net, tmp_path):
    net, ids = text_net
    path = nx.write_netx(net, tmp_path / "text.net")
    res = run_netx(path, drive_mantissas(net, ids), net.T)
    sim = simulate_text(net, ids)
    assert res.n_steps == 8 * 4 + 1
    for name in (LIF1, LIF2):
        got, want = res.spikes[name], np.asarray(sim.spikes[name])
        assert got.shape == want.shape == (4, 8, net.layer(name).shape[0])
        assert np.array_equal(got, want), f"{name}: {np.count_nonzero(got != want)} differ"
    s2 = res.spikes[LIF2]
    # Not vacuous: LIF2 fires, not everywhere, and differently across prompts and steps.
    assert 0.05 < s2.mean() < 0.5
    assert len({s2[:, k].tobytes() for k in range(8)}) == 8
    assert len({s2[t].tobytes() for t in range(4)}) == 4


@pytest.mark.lava
@pytest.mark.timeout(180)  # Lava runs through LavaSession: a hang fails by name
@pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="examples/spikeclip-digits.pt not built")
def test_default_model_prompts_netx_equal_simulator(tmp_path):
    from spikeclip import checkpoint
    from spikeclip.training.teachers import load_tokenizer

    ck = checkpoint.load(DEFAULT_MODEL)
    tokenize = load_tokenizer(ck.metadata["tokenizer"])
    prompts = [t.format(c) for c in ck.class_names[:8] for t in ck.templates[:1]]
    ids = tokenize(prompts, ck.config.text_len).numpy()
    assert ids.shape == (8, ck.config.text_len)
    path, net, _ = nx.export_text_tower(ck.model.text_encoder, tmp_path / "text.net")
    res = run_netx(path, drive_mantissas(net, ids), net.T)
    sim = simulate_text(net, ids)
    for name in (LIF1, LIF2):
        got, want = res.spikes[name], np.asarray(sim.spikes[name])
        assert np.array_equal(got, want), f"{name}: {np.count_nonzero(got != want)} differ"
        assert 0 < got.mean() < 1


@pytest.mark.lava
@pytest.mark.timeout(180)  # Lava runs through LavaSession: a hang fails by name
def test_run_netx_rejects_a_drive_of_the_wrong_width(text_net, tmp_path):
    net, ids = text_net
    path = nx.write_netx(net, tmp_path / "text.net")
    with pytest.raises(nx.NetxExportError, match=r"drive must be \[B, 48\]"):
        run_netx(path, drive_mantissas(net, ids)[:, :47], net.T)
