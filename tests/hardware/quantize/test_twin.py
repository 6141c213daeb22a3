"""The fake-quant twin: bit-exact against the integer simulator; the attention tie-break rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _quant_helpers import active_tiny_encoder, tiny_images
from _sim_paths import PATHS, simulate_path

from hardware.ir.layers import AttentionLayer, LIFLayer, SpikeInputLayer
from hardware.ir.network import Edge, LoihiNetwork
from hardware.lower.from_torch import graph_from_image_encoder
from hardware.lower.graph_run import run_graph
from hardware.quantize.image import plan_quantization, quantize_graph
from hardware.quantize.twin import fake_quantize, run_twin
from hardware.simulate.engine import simulate
from spikeclip.neurons import lif_sequence


@pytest.fixture(scope="module")
def tiny():
    enc = active_tiny_encoder()
    graph = graph_from_image_encoder(enc)
    calib = tiny_images(16, seed=1)
    net, record = quantize_graph(graph, calib)
    images = tiny_images(12, seed=2)  # held out from calibration
    return enc, graph, net, record, images


@pytest.mark.parametrize("path", PATHS)
def test_simulation_equals_twin_bit_for_bit(tiny, path):
    # Both simulator paths (the fast one, asserted not to fall back, and reference=True) on
    # every layer kind of the tower: host input, conv, max-pool, token linear, attention, readout.
    _, _, net, record, images = tiny
    assert record.exact
    kinds = {ly.KIND for ly in net.layers}
    assert {"conv", "attention", "maxpool", "token_linear", "readout", "host_input"} <= kinds
    sim = simulate_path(net, images, path)
    twin = run_twin(net, images, keep_states=True)
    assert sum(int(s.sum()) for s in sim.spikes.values()) > 1000  # the network is active
    for name, spikes in sim.spikes.items():
        layer = net.layer(name)
        assert np.array_equal(
            twin.spikes[name].numpy().astype(bool).reshape(spikes.shape), spikes
        ), name
        v_twin = twin.v[name].numpy().reshape(spikes.shape) * 64 * layer.meta["scale"]
        v_sim = sim.v[name]
        if layer.meta["role"] == "attention":  # Loihi keeps the 1-v-unit tie-break bias
            v_sim = v_sim - (v_sim > 0)
        assert np.array_equal(v_sim, v_twin), name
    assert np.array_equal(sim.feature, twin.features.numpy())
    assert sim.totals()["ties"] > 0  # ties happened, and both sides broke them alike


def test_strict_float_model_has_no_tie_break_and_stays_exact():
    # A model trained with Loihi's own ">" needs no attention tie-break bias (bias 0, vth 8).
    enc = active_tiny_encoder(strict=True)
    net, _ = quantize_graph(graph_from_image_encoder(enc), tiny_images(16, seed=1))
    atts = [ly for ly in net.layers if ly.meta.get("role") == "attention"]
    assert atts and all(np.all(ly.bias_mant == 0) and ly.vth == 8 for ly in atts)
    images = tiny_images(8, seed=2)
    sim, twin = simulate(net, images, keep_states=True), run_twin(net, images, keep_states=True)
    for name, spikes in sim.spikes.items():
        v_twin = twin.v[name].numpy().reshape(spikes.shape) * 64 * net.layer(name).meta["scale"]
        assert np.array_equal(sim.v[name], v_twin), name
    with torch.no_grad():
        float_twin = run_graph(graph_from_image_encoder(enc.double()), images, compare=">")
        assert torch.allclose(float_twin.features, enc(images), atol=1e-12)


def test_fake_quant_graph_equals_dequantized_network(tiny):
    _, graph, net, _, images = tiny
    plan, _ = plan_quantization(graph, tiny_images(16, seed=1))
    with torch.no_grad():
        fq = run_graph(fake_quantize(graph, plan), images, compare=">", keep_states=True)
    twin = run_twin(net, images, keep_states=True)
    for name, s in twin.spikes.items():
        assert torch.equal(fq.spikes[name].reshape(s.shape), s), name
    assert torch.equal(fq.features, twin.features)


def test_straight_through_twin_has_gradients(tiny):
    enc, graph, _, _, images = tiny
    plan, _ = plan_quantization(graph, tiny_images(16, seed=1))
    enc.zero_grad()
    g = graph_from_image_encoder(enc)
    out = run_graph(fake_quantize(g, plan, ste=True), images[:4], compare=">")
    out.features.square().sum().backward()
    assert enc.tokenizer.conv1.weight.grad.abs().sum() > 0
    assert enc.blocks[0].mlp.fc2_bn.bias.grad.abs().sum() > 0


def test_attention_tie_break_bias_equals_float_ge():
    # Float model: H = V + (0.125·P − V)/2, spike if H ≥ 0.5. Loihi: a = P, vth = 8 (512 in
    # v-units), bias 1 v-unit: v > 512 ⇔ H ≥ 0.5 (plan_review §A3). Without the bias the exact
    # ties (e.g. P = 8 at t = 0: H = 0.5, v = 512) do not fire.
    rng = np.random.default_rng(0)
    T, B, C, N, heads = 4, 16, 8, 12, 2
    raster = (rng.random((T, B, 3 * C, N)) < 0.35).astype(np.int8)

    def net(bias_mant: int) -> LoihiNetwork:
        return LoihiNetwork(
            layers=(
                SpikeInputLayer(name="in", shape=(3 * C, N)),
                AttentionLayer(name="att", channels=C, tokens=N, heads=heads),
                LIFLayer(name="lif", shape=(C, N), du=4095, dv=2048, vth=8, bias_mant=bias_mant),
            ),
            edges=(Edge(src="in", dst="att"), Edge(src="att", dst="lif")),
            T=T,
        )

    # Independent float64 reference: (QKᵀ)V order per head, the project's LIF with ≥.
    x = torch.from_numpy(raster).double().reshape(T, B, 3, heads, C // heads, N)
    q, k, v = x.unbind(2)
    p = (q.transpose(-1, -2) @ k) @ v.transpose(-1, -2)  # [T, B, heads, N, d] = (QKᵀ)V
    y = 0.125 * p.transpose(-1, -2).reshape(T, B, C, N)
    want, _ = lif_sequence(y, tau=2.0, v_threshold=0.5)
    got = simulate(net(1), raster, keep_states=True).spikes["lif"]
    assert np.array_equal(got, want.numpy().astype(bool))
    plain = simulate(net(0), raster)
    assert plain.ties["lif"] > 0
    assert plain.spike_counts["lif"].sum() < int(want.sum())


def test_hardware_aware_finetuning_recovers_quantization_loss():
    # Coarse quantization (s ≤ 8) loses fidelity; training through the straight-through twin
    # (agreement term: twin features ↔ float features) must bring the *re-quantized, simulated*
    # network's features closer to the float model's. snap=False: the training alone (the final
    # snap onto the grid has its own tests, test_grid_snap.py).
    import torch.nn.functional as F

    from hardware.quantize.hardware_aware import HardwareAwareOptions, finetune_hardware_aware
    from hardware.quantize.image import QuantOptions
    from spikeclip.training.data import TensorImages

    class Holder(torch.nn.Module):
        def __init__(self, enc):
            super().__init__()
            self.image_encoder = enc

    enc = active_tiny_encoder(seed=3)
    x = tiny_images(64, seed=5).float()
    test_x = tiny_images(32, seed=6)
    cm = F.normalize(torch.randn(5, 12, generator=torch.Generator().manual_seed(4),
                                 dtype=torch.float64), dim=-1)
    with torch.no_grad():
        y = (F.normalize(enc.double()(x.double()), dim=-1) @ cm.T).argmax(-1)
    enc.float()
    qopts = QuantOptions(max_log2_scale=3)

    def sim_cosine() -> float:
        net, _ = quantize_graph(graph_from_image_encoder(enc), x[:64], options=qopts)
        f = torch.from_numpy(simulate(net, test_x).feature)
        with torch.no_grad():
            f_float = enc.double()(test_x)
        enc.float()
        return float(F.cosine_similarity(f, f_float, dim=-1).mean())

    before = sim_cosine()
    res = finetune_hardware_aware(
        Holder(enc), TensorImages(x, y), cm,
        options=HardwareAwareOptions(epochs=3, lr=3e-4, batch_size=32, calibration_samples=64,
                                     ce_weight=0.0, anchor_weight=0.0, quant=qopts,
                                     snap=False),
    )
    after = sim_cosine()
    assert res.history[-1]["agree_loss"] < res.history[0]["agree_loss"]
    assert after > before + 0.5 * (1 - before)  # at least half of the gap closed
