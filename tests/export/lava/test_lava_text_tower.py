"""`to_lava` on the real quantized tiny text tower: embedding injection → LIFReset → Dense →
LIFReset → Dense → host readout without a token mean, 8 prompts streamed one every T steps,
against the bit-accurate simulator (each LIF's spikes after the depth shift, the readout's
integer stream exactly), and streaming equals running a prompt alone.

The network comes from `hardware.quantize.text.quantize_text` on an active tiny `TextEncoder`
(both LIF layers fire); the simulator runs the same ``embedding`` host rule
(`hardware.simulate.host_input`) and `export.lava.graph.host_bias_mantissas` is Lava's own encoding;
both are checked against the test's float64 rounding and readout decode
(`tests/hardware/_design_int64.py`).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _design_int64 import host_mantissa, readout

from export.lava import compare_to_sim, run_lava, to_lava
from export.lava.graph import host_bias_mantissas
from hardware.quantize.text import quantize_text
from hardware.simulate.engine import simulate
from spikeclip.config import SpikeCLIPConfig
from spikeclip.text_encoder import TextEncoder

CFG = SpikeCLIPConfig.tiny()
T = CFG.T
N_SAMPLES = 8
P = "text_encoder"


def _quantized_text_tower():
    torch.manual_seed(0)
    enc = TextEncoder(CFG).eval()
    with torch.no_grad():  # make both LIF layers fire (random init leaves lif2 nearly silent)
        enc.fc1.weight.normal_(0.05, 0.35)
        enc.fc1.bias.normal_(0.3, 0.3)
    calib = torch.randint(0, CFG.vocab_size, (16, CFG.text_len),
                          generator=torch.Generator().manual_seed(1))
    net, _ = quantize_text(enc, calib)
    return net


@pytest.fixture(scope="module")
def network():
    return _quantized_text_tower()


@pytest.fixture(scope="module")
def ids():
    return np.random.default_rng(5).integers(0, CFG.vocab_size, size=(N_SAMPLES, CFG.text_len))


def test_plan_is_stock_for_neurons_and_synapses(network):
    graph = to_lava(network)
    procs = {n.name: dict(n.processes) for n in graph.nodes.values()}
    assert procs == {
        f"{P}.encode": {0: "BiasInjection"},
        f"{P}.lif1": {0: "LIFReset"},
        f"{P}.fc1": {0: "Dense"},
        f"{P}.lif2": {0: "LIFReset"},
        f"{P}.fc2": {0: "Dense"},
        f"{P}.output": {0: "HostReadout"},
    }
    assert graph.timing.max_depth == 2


def test_lava_host_encoding_against_float64_rounding(network, ids):
    # The test's own reading: token table row + position table in float64, times bias_scale,
    # a 13-bit mantissa at bias_exp rounded half up and saturated (tests/hardware/_design_int64).
    host = network.layer(f"{P}.encode")
    want, _ = host_mantissa(host, ids)
    lava_mant = host_bias_mantissas(host, ids)
    assert lava_mant.shape == (N_SAMPLES, CFG.text_len, CFG.text_width)
    assert np.array_equal(lava_mant, want)
    assert len(np.unique(lava_mant)) > 50  # real, varied injected values


@pytest.fixture(scope="module")
def streamed(network, ids):
    return run_lava(to_lava(network), ids)


@pytest.mark.lava
@pytest.mark.timeout(180)  # Lava runs through LavaSession: a hang fails by name
def test_text_tower_streamed_equals_simulator(network, ids, streamed):
    lava = streamed
    # Depths from the graph: the injection reaches lif1 in its own step, each Dense adds 1.
    timing = to_lava(network).timing
    assert {n: timing.depth[f"{P}.{n}"] for n in ("lif1", "lif2", "output")} == {
        "lif1": 0, "lif2": 1, "output": 2,
    }
    assert lava.n_samples == N_SAMPLES and lava.n_steps == N_SAMPLES * T + 2
    sim = simulate(network, ids, keep_states=True)
    for name in (f"{P}.lif1", f"{P}.lif2"):
        assert np.array_equal(lava.spikes[name], sim.spikes[name]), name
        assert 0.05 < lava.spikes[name].mean() < 0.6, name  # both layers active
        # Not vacuous: one sample off, the rasters differ.
        assert np.count_nonzero(lava.spikes[name][:, 1:] != sim.spikes[name][:, :-1]) > 0
    cmp = compare_to_sim(lava, sim, network)
    assert cmp.shape_mismatches == () and cmp.missing == ()
    assert dict(cmp.spike_mismatches) == {f"{P}.lif1": 0, f"{P}.lif2": 0}
    assert dict(cmp.stream_mismatches) == {f"{P}.output": 0}
    # Features against an independent float64 decode of Lava's integer stream (the simulator
    # and the Lava readout share one decode, so their agreement alone would prove nothing).
    name = f"{P}.output"
    want = readout(lava.stream[name], network.layer(name))
    np.testing.assert_allclose(lava.features[name], want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sim.features[name], want, rtol=1e-12, atol=1e-12)


@pytest.mark.lava
@pytest.mark.timeout(180)  # Lava runs through LavaSession: a hang fails by name
def test_streaming_equals_running_a_prompt_alone(network, ids, streamed):
    k = 5
    alone = run_lava(to_lava(network), ids[k : k + 1])
    for name, s in alone.spikes.items():
        assert np.array_equal(s[:, 0], streamed.spikes[name][:, k]), name
    name = f"{P}.output"
    assert np.array_equal(alone.stream[name][:, 0], streamed.stream[name][:, k])
    assert np.array_equal(alone.features[name][0], streamed.features[name][k])
