"""The text tower through the integer pipeline: lower_text → quantize_text → simulate == twin.

References: the torch `TextEncoder` itself (float64) for the lowering; hand-derived mantissas for
the embedding injection; the fake-quant twin (an independent float64 torch executor) for the
simulator, bit for bit.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from export.nir.exporter import to_nir
from hardware.ir import fixed
from hardware.ir.grid import weight_grid
from hardware.ir.layers import DenseLayer, HostInputLayer, LIFLayer, ReadoutLayer
from hardware.ir.network import Edge, LoihiNetwork
from hardware.lower.graph_run import run_graph
from hardware.lower.text import float_graph_from_text_nir, graph_from_text_encoder
from hardware.quantize.image import QuantizationRangeError
from hardware.quantize.text import quantize_text
from hardware.quantize.twin import run_twin
from hardware.simulate.engine import SimulationError, simulate
from hardware.simulate.host_input import host_injection_stats
from spikeclip.config import SpikeCLIPConfig
from spikeclip.text_encoder import TextEncoder

CFG = SpikeCLIPConfig.tiny()
P = "text_encoder"


def active_tiny_text_encoder(seed: int = 0) -> TextEncoder:
    """The tiny text encoder with fc1 drawn so that both LIF layers fire (about 20 %)."""
    torch.manual_seed(seed)
    enc = TextEncoder(CFG).eval()
    with torch.no_grad():
        enc.fc1.weight.normal_(0.05, 0.35)
        enc.fc1.bias.normal_(0.3, 0.3)
    return enc


def prompts(n: int, seed: int = 1) -> torch.Tensor:
    """``[n, text_len]`` int64 token ids."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, CFG.vocab_size, (n, CFG.text_len), generator=g)


@pytest.fixture(scope="module")
def quantized():
    enc = active_tiny_text_encoder()
    net, record = quantize_text(enc, prompts(16))
    return enc, net, record


def test_float_graph_equals_the_text_encoder():
    enc = active_tiny_text_encoder()
    ids = prompts(8)
    run = run_graph(graph_from_text_encoder(enc), ids, keep_states=True)
    with torch.no_grad():
        ref = copy.deepcopy(enc).double()(ids)
    assert torch.equal(run.features.detach(), ref)
    for name in (f"{P}.lif1", f"{P}.lif2"):
        rate = float(run.spikes[name].mean())
        assert 0.05 < rate < 0.6, (name, rate)


def test_nir_lowering_equals_module_lowering():
    enc = active_tiny_text_encoder()
    nir_graph = to_nir(enc, tower="text")
    tables = {"token_table": enc.token_embedding.weight,
              "position_table": enc.position_embedding.weight}
    g_nir = float_graph_from_text_nir(nir_graph, **tables)
    g_mod = graph_from_text_encoder(enc)
    assert [n.name for n in g_nir.nodes] == [n.name for n in g_mod.nodes]
    assert g_nir.edges == g_mod.edges and (g_nir.T, g_nir.tau) == (g_mod.T, g_mod.tau)
    ids = prompts(8)
    # NIR keeps the float32 parameters bit for bit: identical float64 runs.
    assert torch.equal(run_graph(g_nir, ids).features, run_graph(g_mod, ids).features.detach())
    net_nir, _ = quantize_text(nir_graph, prompts(16), **tables)
    net_mod, _ = quantize_text(enc, prompts(16))
    assert net_nir.edges == net_mod.edges
    assert all(x == y for x, y in zip(net_nir.layers, net_mod.layers, strict=True))


def test_quantized_structure_follows_the_mapping(quantized):
    enc, net, record = quantized
    host, lif1, fc1, lif2, fc2, out = net.layers
    assert isinstance(host, HostInputLayer) and host.op == "embedding"
    assert host.in_shape == (CFG.text_len,) and host.out_shape == (CFG.text_len, CFG.text_width)
    assert isinstance(lif1, LIFLayer) and lif1.shape == (CFG.text_len * CFG.text_width,)
    assert isinstance(fc1, DenseLayer) and isinstance(fc2, DenseLayer)
    assert isinstance(out, ReadoutLayer) and out.token_axis is None and out.in_shape == (12,)
    assert [(e.src, e.dst) for e in net.edges] == [
        (f"{P}.encode", f"{P}.lif1"), (f"{P}.lif1", f"{P}.fc1"), (f"{P}.fc1", f"{P}.lif2"),
        (f"{P}.lif2", f"{P}.fc2"), (f"{P}.fc2", f"{P}.output"),
    ]
    tau = 2.0
    for lif in (lif1, lif2):
        s = lif.meta["scale"]
        assert (lif.du, lif.dv, lif.vth) == (4095, 2048, int(s))  # θ = 1 ⇒ vth = s
        assert s == 2.0 ** round(np.log2(s))
    # lif1's bias is replaced per prompt: mantissa 0 at the host input's exponent.
    assert not lif1.bias_mant.any() and (lif1.bias_exp == host.bias_exp).all()
    assert host.bias_scale == 64 * lif1.meta["scale"] / tau
    # fc1's bias → lif2: β = 64·s·b/τ on the 2^e grid, e ≥ T − 1 = 3.
    s2 = lif2.meta["scale"]
    beta = enc.fc1.bias.detach().double().numpy() * 64 * s2 / tau
    e = int(lif2.bias_exp[0])
    assert e >= CFG.T - 1
    assert np.array_equal(lif2.bias_mant, np.floor(beta / 2**e + 0.5).astype(np.int64))
    # Weights: w = grid(W·s/(τ·2^e)), each within one grid step of the real value.
    for dense, lin, s in ((fc1, enc.fc1, s2), (fc2, enc.fc2, out.meta["scale"])):
        real = lin.weight.detach().double() * (s / (tau * 2**dense.weight_exp))
        assert np.array_equal(dense.weights, weight_grid(real, dense.sign_mode).numpy())
        assert np.abs(dense.weights - real.numpy()).max() <= 1.0  # mixed grid step 2
    assert out.input_scale == tau / out.meta["scale"]
    assert np.array_equal(out.input_bias, enc.fc2.bias.detach().double().numpy())
    assert record.exact and all(n.overflow_u == 0 and n.saturations_v == 0
                                for n in record.neurons)
    # The injection's rounding is counted in lif1's bias columns: half a step at most, each
    # value at its own exponent (≥ the floor bias_exp; the largest holds max |β| in 13 bits).
    rec1 = next(n for n in record.neurons if n.name == lif1.name)
    assert rec1.bias_max_abs > 0 and rec1.pct_bias_clipped == 0 and host.exp_per_value
    top = max(host.bias_exp, int(fixed.bias_exp_min_s13(rec1.bias_max_abs)))
    assert 0 < rec1.bias_max_abs_error <= 2 ** (top - 1)
    assert any(note.startswith(f"{P}.encode: embedding injected") for note in record.notes)


def test_simulator_equals_twin_bit_exactly(quantized):
    _, net, _ = quantized
    ids = prompts(12, seed=7)
    sim = simulate(net, ids, keep_states=True)
    ref = simulate(net, ids, keep_states=True, reference=True)
    twin = run_twin(net, ids, keep_states=True)
    for ly in net.layers:
        if not isinstance(ly, LIFLayer):
            continue
        s = ly.meta["scale"]
        spikes = twin.spikes[ly.name].numpy().astype(bool)
        assert np.array_equal(sim.spikes[ly.name], spikes), ly.name
        assert np.array_equal(ref.spikes[ly.name], spikes), ly.name
        assert np.array_equal(sim.v[ly.name], twin.v[ly.name].numpy() * 64 * s), ly.name
        assert 0.05 < spikes.mean() < 0.6, ly.name  # both layers active
    name = f"{P}.output"
    np.testing.assert_array_equal(sim.stream[name], twin.stream[name].numpy())
    np.testing.assert_allclose(sim.features[name], twin.features.numpy(), rtol=0, atol=1e-12)


def _hand_network(T: int = 1) -> LoihiNetwork:
    """ids [B, 2] → embedding (V = 4, D = 1), bias_scale 128 (s = 4, τ = 2), bias_exp 3 → LIF."""
    host = HostInputLayer(
        name="embed", op="embedding", weight=[[0.5], [-0.30], [1.0], [300.0]],
        bias=[[0.0], [0.0625]], in_shape=(2,), bias_scale=128.0, bias_exp=3,
    )
    lif = LIFLayer(name="lif", shape=(2,), du=4095, dv=2048, vth=fixed.VTH_MAX, bias_exp=3,
                   meta={"scale": 4.0})
    return LoihiNetwork(layers=(host, lif), edges=(Edge(src="embed", dst="lif"),), T=T)


def test_embedding_injection_rounding_by_hand():
    ids = np.array([[0, 2], [1, 3]])
    # x = table[id] + pos; β = 128·x; mant = clip(floor(β/8 + ½), ±4096); v₀ = mant << 3:
    #   0.5          → β = 64      → 8.0    → mant 8    → 64
    #   1.0 + 1/16   → β = 136     → 17.0   → mant 17   → 136
    #   −0.30        → β = −38.4   → −4.8   → mant −5   → −40   (rounded: error 1.6 v-units)
    #   300 + 1/16   → β = 38408   → 4801   → clipped to 4095 → 32760 (one host clip)
    for reference in (False, True):
        sim = simulate(_hand_network(), ids, keep_states=True, reference=reference)
        assert sim.v["lif"][0].tolist() == [[64, 136], [-40, 32760]]
        assert sim.host_clipped["embed"] == 1
    stats = host_injection_stats(_hand_network().layer("embed"), ids)
    assert stats["max_abs_beta"] == 38408 and stats["max_abs_error"] == 38408 - 32760
    assert (stats["pct_rounded"], stats["pct_clipped"]) == (25.0, 25.0)  # −38.4; 38408
    # The twin injects the same grid values x̂ = (mant << 3)/128: v̂ = x̂/τ, 64·s·v̂ = 128·x̂.
    twin = run_twin(_hand_network(), ids, keep_states=True)
    assert (twin.v["lif"][0].numpy() * 64 * 4).tolist() == [[64, 136], [-40, 32760]]


def test_bad_inputs_raise():
    net = _hand_network()
    with pytest.raises(SimulationError, match="embed"):
        simulate(net, np.array([[0, 4]]))  # id outside the vocabulary
    with pytest.raises(SimulationError, match="integer token ids"):
        simulate(net, np.zeros((1, 2)))
    enc = active_tiny_text_encoder()
    with pytest.raises(QuantizationRangeError, match="token ids"):
        quantize_text(enc, prompts(4).double())
    with pytest.raises(QuantizationRangeError, match="position_table"):
        quantize_text(to_nir(enc, tower="text"), prompts(4))
