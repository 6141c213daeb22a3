"""`hardware.quantize.image`: the DESIGN §4–§5 mapping on hand-made graphs and on the tiny model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _quant_helpers import active_tiny_encoder, tiny_images

from export.nir.exporter import to_nir
from hardware.ir import fixed
from hardware.ir.layers import AttentionLayer, HostInputLayer, LIFLayer, ReadoutLayer
from hardware.ir.network import LoihiNetwork
from hardware.lower.float_graph import FLIF, FHostInput, FloatGraph, FSynapse
from hardware.lower.from_nir import float_graph_from_nir
from hardware.lower.from_torch import graph_from_image_encoder
from hardware.quantize.image import QuantizationRangeError, QuantOptions, quantize, quantize_graph


def _two_layer_graph(
    w: torch.Tensor, b: torch.Tensor, host_scale: float = 1.0, kind: str = "token_linear"
) -> FloatGraph:
    """image (1, 1, 2) → host 1×1 conv (×host_scale) → lif0 (1, 1, 2) → synapse w → lif1."""
    one = torch.ones(1, 1, 1, 1, dtype=torch.float64) * host_scale
    c_out = w.shape[0]
    nodes = (
        FHostInput(
            name="host",
            weight=one,
            bias=torch.zeros(1, dtype=torch.float64),
            in_shape=(1, 1, 2),
            out_shape=(1, 1, 2),
        ),
        FLIF(
            name="lif0",
            shape=(1, 1, 2),
            theta=1.0,
            tau=2.0,
            bias=torch.zeros(1, 1, 2, dtype=torch.float64),
        ),
        FSynapse(
            name="fc",
            kind=kind,
            weight=w if kind == "token_linear" else w[:, :, None, None],
            in_shape=(1, 1, 2),
            out_shape=(c_out, 1, 2),
        ),
        FLIF(
            name="lif1",
            shape=(c_out, 1, 2),
            theta=1.0,
            tau=2.0,
            bias=b.view(-1, 1, 1).expand(c_out, 1, 2),
        ),
    )
    edges = (("host", "lif0"), ("lif0", "fc"), ("fc", "lif1"))
    return FloatGraph(nodes=nodes, edges=edges, T=4, tau=2.0, input_shape=(1, 1, 2))


def test_mapping_by_hand():
    # A 1×1 conv (no weight exponent), W = [1.0, −0.3, 0.01]ᵀ, b = [0.7, −0.2, 0].
    # Largest power-of-two s with no clipping of
    # W·s/τ in [−256, 254]: s = 256 (1.0·256/2 = 128; s = 512 gives 256 > 254).
    # Weights: 2·round(W·s/(2τ)) = 2·round([64, −19.2, 0.64]) = [128, −38, 2].
    # Biases: β = 64·s·b/τ = 8192·b = [5734.4, −1638.4, 0] v-units, bias_exp = T − 1 = 3 (they
    # fit 13 bits there): mant = ⌊β/8 + ½⌋ = [717, −205, 0] → β̂ = [5736, −1640, 0].
    # vth = θ·s = 256; du = 4095, dv = 4096/τ = 2048.
    w = torch.tensor([[1.0], [-0.3], [0.01]], dtype=torch.float64)
    b = torch.tensor([0.7, -0.2, 0.0], dtype=torch.float64)
    calib = torch.full((4, 1, 1, 2), 1.5, dtype=torch.float64)
    net, rec = quantize_graph(_two_layer_graph(w, b, kind="conv"), calib)
    fc, lif1 = net.layer("fc"), net.layer("lif1")
    assert fc.weights[:, 0, 0, 0].tolist() == [128, -38, 2]
    assert rec.synapses[0].weight_exp == 0 and fc.sign_mode == "mixed"
    assert (lif1.vth, lif1.du, lif1.dv) == (256, 4095, 2048)
    assert np.unique(lif1.bias_exp).tolist() == [3]
    assert lif1.bias_mant[:, 0, 0].tolist() == [717, -205, 0]
    assert rec.scale("lif1") == 256.0
    syn = rec.synapses[0]
    assert syn.pct_clipped == 0.0 and syn.max_abs_weight == 128
    # Host: x = 1.5 on both pixels; lif0 scale: the host β = 64·s·x/τ·margin(2) must fit
    # 13 bits at exp 7 (524,160): s = 2048 gives 196,608 → fits; 4096 is the cap (2¹²) and
    # gives 393,216 → also fits, so s = 4096. Each value takes its own exponent from the floor
    # T − 1 = 3: β = 64·4096·1.5/2 = 196,608 needs 6 (5 holds only 131,040), mant 3072.
    host, lif0 = net.layer("host"), net.layer("lif0")
    assert isinstance(host, HostInputLayer)
    assert rec.scale("lif0") == 4096.0 and host.bias_exp == 3 and host.exp_per_value
    assert host.bias_scale == 64 * 4096 / 2
    assert np.all(lif0.bias_mant == 0) and np.all(lif0.bias_exp == 3)
    mant, exp, _ = fixed.host_bias_encode(np.array([1.5]) * host.bias_scale, 3, True)
    assert (mant.tolist(), exp.tolist()) == ([3072], [6])


def test_clipping_tolerance_and_range_error():
    # A conv (no weight exponent in Lava) with one weight of 20.0 among small ones: no clipping
    # needs s ≤ 16 (20·16/2 = 160 ≤ 254; s = 32 gives 320); allowing 1/3 of the weights to
    # clip lets s grow to the cap 2¹².
    w = torch.tensor([[20.0], [0.1], [0.1]], dtype=torch.float64)
    b = torch.zeros(3, dtype=torch.float64)
    calib = torch.ones(2, 1, 1, 2, dtype=torch.float64)
    _, rec = quantize_graph(_two_layer_graph(w, b, kind="conv"), calib)
    assert rec.scale("lif1") == 16.0
    _, rec = quantize_graph(_two_layer_graph(w, b, kind="conv"), calib,
                            options=QuantOptions(max_clip_fraction=0.34))
    assert rec.scale("lif1") == 4096.0
    assert rec.synapses[0].pct_clipped == pytest.approx(100 / 3)
    # A bias of 1e5 needs β = 64·s·b/τ ≥ 3.2e6 > 524,160 even at s = 1: typed error.
    with pytest.raises(QuantizationRangeError, match="'lif1'.*bias"):
        quantize_graph(_two_layer_graph(w, torch.tensor([1e5, 0, 0]).double()), calib)


def test_token_linear_weight_exponent():
    # Token-linear layers may use weight_exp e ≥ 0 (w·2^e wu) instead of forcing a small s:
    # s = 4096 needs 20·4096/2 = 40960 = 2^e·w with w ≤ 254: e = 7 gives 320 (clips), so
    # s = 2048, e = 7 (mixed signs: grid step 2): w = 2·round(20·2048/(2·128·2)) = 160;
    # ±0.1 → 2·round(±0.4) = 0.
    w = torch.tensor([[20.0], [-0.1], [0.1]], dtype=torch.float64)
    calib = torch.ones(2, 1, 1, 2, dtype=torch.float64)
    net, rec = quantize_graph(_two_layer_graph(w, torch.zeros(3, dtype=torch.float64)), calib)
    fc = net.layer("fc")
    assert rec.scale("lif1") == 2048.0 and fc.weight_exp == 7
    assert fc.weights[:, 0].tolist() == [160, 0, 0]
    assert rec.synapses[0].weight_exp == 7
    assert rec.synapses[0].pct_rounded_to_zero == pytest.approx(200 / 3)


@pytest.fixture(scope="module")
def tiny_quantized():
    enc = active_tiny_encoder()
    net, rec = quantize(to_nir(enc), tiny_images(16, seed=1))
    return enc, net, rec


def test_tiny_residual_stream_shares_one_scale(tiny_quantized):
    _, net, rec = tiny_quantized
    stream = [
        ly.name
        for ly in net.layers
        if ly.name.endswith(("in_lif",)) or isinstance(ly, ReadoutLayer)
    ]
    branches = [
        n for n in (ly.name for ly in net.layers) if n.endswith(("conv4", "proj_conv", "fc2_conv"))
    ]
    assert len(stream) == 5 and len(branches) == 5  # 2 blocks × 2 in-LIFs + readout; 1 + 2·2
    scales = {rec.scale(n) for n in stream + branches}
    assert len(scales) == 1
    (s,) = scales
    assert net.layer("image_encoder.output").input_scale == 2.0 / s
    for name in stream[:-1]:
        assert net.layer(name).vth == s


def test_tiny_attention_rule(tiny_quantized):
    _, net, rec = tiny_quantized
    atts = [ly for ly in net.layers if isinstance(ly, AttentionLayer)]
    assert len(atts) == 2
    for att in atts:
        (edge,) = net.out_edges(att.name)
        lif = net.layer(edge.dst)
        assert isinstance(lif, LIFLayer)
        assert lif.vth == 8 and rec.scale(lif.name) == 16.0
        assert np.all(lif.bias_mant == 1) and np.all(lif.bias_exp == 0)
        assert att.placement == "embedded"


def test_tiny_record_limits_and_files(tiny_quantized, tmp_path):
    _, net, rec = tiny_quantized
    assert rec.exact and rec.T == 4
    for n in rec.neurons:
        assert n.observed_max_abs_a <= fixed.A_MAX_NO_WRAP
        assert n.margin_a >= 1.0 and n.overflow_u == 0 and n.saturations_v == 0
        if n.role == "lif":
            assert n.bias_exp >= rec.T - 1 and n.vth == n.scale
    for s in rec.synapses:
        assert s.max_row_abs_sum < 1 << 24
    rec.write(tmp_path)
    data = json.loads((tmp_path / "quantization.json").read_text())
    assert len(data["neurons"]) == len(rec.neurons)
    assert "| image_encoder.tokenizer.lif1 |" in (tmp_path / "quantization.md").read_text()
    path = net.save(tmp_path / "net.npz")
    assert LoihiNetwork.load(path) == net


def test_nir_and_torch_lowerings_give_the_same_network(tiny_quantized):
    enc, net, _ = tiny_quantized
    via_torch, _ = quantize_graph(graph_from_image_encoder(enc), tiny_images(16, seed=1))
    for a, b in zip(net.layers, via_torch.layers):
        assert a.name == b.name
        if hasattr(a, "weights"):
            assert np.array_equal(a.weights, b.weights), a.name
        if isinstance(a, LIFLayer):
            assert np.array_equal(a.bias_mant, b.bias_mant) and a.vth == b.vth, a.name
    assert net.edges == via_torch.edges


def test_lower_nir_refuses_unknown_nodes():
    import nir

    from hardware.lower.float_graph import FloatGraphError

    g = to_nir(active_tiny_encoder())
    nodes = dict(g.nodes)
    nodes["image_encoder.tokenizer.lif1"] = nir.Threshold(threshold=np.ones((8, 16, 16)))
    bad = nir.NIRGraph(nodes=nodes, edges=g.edges, metadata=g.metadata, type_check=False)
    with pytest.raises(FloatGraphError, match="tokenizer.lif1"):
        float_graph_from_nir(bad)
