"""`to_lava` on a text-tower network (tiny sizes): embedding injection → LIF → Dense → LIF →
Dense → host readout without a token mean, 8 streamed samples, against the simulator.

`hardware.quantize` has no text-tower path and `hardware.simulate` runs only ``conv2d`` host
inputs, so the network is built here with integer weights of the tiny text tower's sizes, and
the simulator runs its exact twin: an embedding lookup ``table[ids] + pos`` is a 1×1 conv2d
over one-hot images (channels ``[0, V)`` pick the token, ``[V, V + L)`` the position), whose
float sums equal the lookup's bit for bit (the other terms are exact zeros). The twin's first
LIF is laid out ``(D, 1, L)`` instead of ``(L·D,)``, so its spikes and fc1's columns are the
same up to that permutation.
"""

from __future__ import annotations

import numpy as np
import pytest

from export.lava import compare_to_sim, run_lava, to_lava
from hardware.layers import DenseLayer, HostInputLayer, LIFLayer, ReadoutLayer
from hardware.network import Edge, LoihiNetwork
from hardware.simulate import simulate
from spikeclip.config import SpikeCLIPConfig

CFG = SpikeCLIPConfig.tiny()
V, L, D = CFG.vocab_size, CFG.text_len, CFG.text_width
HID, OUT, T = CFG.text_hidden, CFG.out_dim, CFG.T
N_SAMPLES = 8
BIAS_EXP, BIAS_SCALE = 3, 64.0 * 16 / 2  # β = 64·s·x/τ with s = 16, τ = 2


def _params(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "table": rng.normal(0.3, 1.0, size=(V, D)),
        "pos": rng.normal(0.0, 0.3, size=(L, D)),
        "fc1": 2 * rng.integers(-20, 40, size=(HID, L * D)),  # mixed 8-bit grid: even
        "fc2": 2 * rng.integers(-30, 50, size=(OUT, HID)),
        "lif1_bias": rng.integers(-200, 400, size=HID),
        "time_weights": np.log([0.1, 0.2, 0.4, 0.8]),
        "out_bias": rng.normal(size=OUT),
    }


def _network(p: dict, *, one_hot_twin: bool) -> LoihiNetwork:
    if one_hot_twin:
        # weight[d, v] = table[v, d]; weight[d, V + l] = pos[l, d]; image [V + L, 1, L].
        weight = np.concatenate([p["table"].T, p["pos"].T], axis=1)[:, :, None, None]
        host = HostInputLayer(
            name="embed",
            op="conv2d",
            weight=weight,
            bias=np.zeros(D),
            in_shape=(V + L, 1, L),
            bias_scale=BIAS_SCALE,
            bias_exp=BIAS_EXP,
        )
        lif0_shape = (D, 1, L)
        # Column l·D + d of fc1 reads neuron (d, 0, l) of the twin's LIF: index d·L + l.
        order = (np.arange(D)[:, None] + D * np.arange(L)[None, :]).reshape(-1)
        fc1 = p["fc1"][:, order]
    else:
        host = HostInputLayer(
            name="embed",
            op="embedding",
            weight=p["table"],
            bias=p["pos"],
            in_shape=(L,),
            bias_scale=BIAS_SCALE,
            bias_exp=BIAS_EXP,
        )
        lif0_shape, fc1 = (L * D,), p["fc1"]
    lif = {"du": 4095, "dv": 2048, "vth": 16}
    layers = (
        host,
        LIFLayer(name="lif0", shape=lif0_shape, bias_exp=BIAS_EXP, **lif),
        DenseLayer(name="fc1", weights=fc1, in_shape=lif0_shape),
        LIFLayer(name="lif1", shape=(HID,), bias_mant=p["lif1_bias"], bias_exp=BIAS_EXP, **lif),
        DenseLayer(name="fc2", weights=p["fc2"]),
        ReadoutLayer(
            name="text_output",
            in_shape=(OUT,),
            time_weights=p["time_weights"],
            head_weight=np.eye(OUT),
            head_bias=np.zeros(OUT),
            input_scale=2 / 16,
            input_bias=p["out_bias"],
            token_axis=None,
        ),
    )
    chain = ("embed", "lif0", "fc1", "lif1", "fc2", "text_output")
    edges = tuple(Edge(src=a, dst=b) for a, b in zip(chain, chain[1:]))
    return LoihiNetwork(layers=layers, edges=edges, T=T)


@pytest.fixture(scope="module")
def runs():
    p = _params()
    ids = np.random.default_rng(1).integers(0, V, size=(N_SAMPLES, L))
    one_hot = np.zeros((N_SAMPLES, V + L, 1, L))
    b, pos = np.meshgrid(np.arange(N_SAMPLES), np.arange(L), indexing="ij")
    one_hot[b, ids, 0, pos] = 1.0
    one_hot[b, V + pos, 0, pos] = 1.0
    graph = to_lava(_network(p, one_hot_twin=False))
    twin = _network(p, one_hot_twin=True)
    return graph, run_lava(graph, ids), simulate(twin, one_hot, keep_states=True)


def test_plan_is_stock_for_neurons_and_synapses():
    graph = to_lava(_network(_params(), one_hot_twin=False))
    procs = {n.name: dict(n.processes) for n in graph.nodes.values()}
    assert procs == {
        "embed": {0: "BiasInjection"},
        "lif0": {0: "LIFReset"},
        "fc1": {0: "Dense"},
        "lif1": {0: "LIFReset"},
        "fc2": {0: "Dense"},
        "text_output": {0: "HostReadout"},
    }
    assert graph.timing.max_depth == 2


@pytest.mark.lava
def test_text_tower_streamed_equals_simulator(runs):
    graph, lava, sim = runs
    # lif0: the twin's (D, 1, L) layout → (L·D,) position-major.
    twin0 = np.asarray(sim.spikes["lif0"])[:, :, :, 0, :]  # [T, B, D, L]
    assert np.array_equal(lava.spikes["lif0"], np.swapaxes(twin0, 2, 3).reshape(T, N_SAMPLES, -1))
    assert np.array_equal(lava.spikes["lif1"], sim.spikes["lif1"])
    for name in ("lif0", "lif1"):  # both layers are active, neither saturated
        assert 0.02 < lava.spikes[name].mean() < 0.98, name
    cmp = compare_to_sim(lava, sim, graph.network)
    assert cmp.shape_mismatches == ("lif0",)  # the twin's layout, compared above
    assert dict(cmp.spike_mismatches) == {"lif1": 0}
    assert dict(cmp.stream_mismatches) == {"text_output": 0}
    np.testing.assert_allclose(
        lava.features["text_output"], sim.features["text_output"], rtol=0, atol=1e-12
    )
