"""`export.lava.to_lava` on the quantized `tiny` SpikeCLIP image tower, run in Lava.

Acceptance (issue #11): for 8 streamed samples every LIF's Lava spikes equal the bit-accurate
simulator's (logical time) after the depth shift, and the readout equals it; streaming (reset by
LIFReset, no Var.set) equals running a sample alone from zero state. One streamed Lava run and
one single-sample run per module (fixtures).
"""

from __future__ import annotations

import numpy as np
import pytest
from _design_int64 import readout
from _quant_helpers import active_tiny_encoder, tiny_images

from export.lava import compare_to_sim, run_lava, to_lava
from hardware.ir.layers import LIFLayer
from hardware.simulate.engine import simulate

N_SAMPLES = 8
ALONE = 5  # the sample rerun alone (it streams after five others)


@pytest.fixture(scope="module")
def network():
    from hardware.lower.from_torch import graph_from_image_encoder
    from hardware.quantize.image import quantize_graph

    net, _ = quantize_graph(graph_from_image_encoder(active_tiny_encoder()), tiny_images(16))
    return net


@pytest.fixture(scope="module")
def graph(network):
    return to_lava(network)


@pytest.fixture(scope="module")
def images():
    return tiny_images(N_SAMPLES, seed=5).numpy()


@pytest.fixture(scope="module")
def streamed(graph, images):
    return run_lava(graph, images)


@pytest.fixture(scope="module")
def sim(graph, images):
    return simulate(graph.network, images, keep_states=True)


def _lifs(net) -> list[str]:
    return [ly.name for ly in net.layers if isinstance(ly, LIFLayer)]


def test_plan_uses_stock_lif_reset_and_stock_synapses(graph):
    T = graph.network.T
    for node in graph.nodes.values():
        if node.kind == "lif":
            assert dict(node.processes) == {0: "LIFReset"}
            assert node.reset_offset == node.depth + 1
        if node.kind in ("conv", "dense"):  # stock at delay 0; a delayed conv: DelayConv
            assert node.processes[0] in ("Conv", "Dense"), node
            assert node.stock or set(node.processes.values()) == {"Conv", "DelayConv"}, node
    kinds = {n.kind: n for n in graph.nodes.values()}
    assert kinds["attention"].placement == "embedded"
    assert kinds["maxpool"].placement == "embedded"
    assert kinds["readout"].placement == "host"
    assert kinds["host_input"].placement == "host"
    # What a Loihi hardware run would lack (only CPU models): the project's own processes.
    assert {p for _, p in graph.custom_processes()} == {
        "BiasInjection",
        "CurrentMaxPool",
        "DelayConv",
        "TokenLinear",
        "SpikeAttention",
        "HostReadout",
    }
    assert T == 4


def test_delays_computed_where_residual_paths_meet(graph):
    net = graph.network
    assert net.misaligned() == ()
    p = "image_encoder."
    # Depths (each synapse or attention adds 1; LIFs and max-pools 0): conv4 3, block-0
    # proj_conv 6, fc2 8; block-1 in_lif 9, mlp.in_lif 12, output 14. A current edge arrives
    # at depth(src) + 1 + delay, so delay = depth(dst) − depth(src) − 1:
    # conv4 → b0.mlp.in_lif 7−3−1 = 3; conv4 → b1.attn.in_lif 9−3−1 = 5; conv4 → output
    # 14−3−1 = 10; b0.proj → b1.attn.in_lif 9−6−1 = 2; b0.fc2 → output 14−8−1 = 5.
    delays = {(e.src, e.dst): e.delay for e in net.edges}
    assert delays[(p + "tokenizer.conv4", p + "blocks.0.mlp.in_lif")] == 3
    assert delays[(p + "tokenizer.conv4", p + "blocks.1.attn.in_lif")] == 5
    assert delays[(p + "tokenizer.conv4", p + "output")] == 10
    assert delays[(p + "blocks.0.attn.proj_conv", p + "blocks.1.attn.in_lif")] == 2
    assert delays[(p + "blocks.0.mlp.fc2_conv", p + "output")] == 5
    assert delays[(p + "tokenizer.conv4", p + "blocks.0.attn.in_lif")] == 0
    # One replica per distinct delay: conv4 feeds delays {0, 3, 5, 8, 10}.
    assert dict(graph.nodes[p + "tokenizer.conv4"].processes) == {
        0: "Conv",
        3: "DelayConv",
        5: "DelayConv",
        8: "DelayConv",
        10: "DelayConv",
    }
    assert graph.timing.max_depth == 14


@pytest.mark.lava
@pytest.mark.timeout(180)  # Lava runs through LavaSession: a hang fails by name
def test_streamed_spikes_equal_simulator_after_depth_shift(graph, streamed, sim):
    assert streamed.n_samples == N_SAMPLES and streamed.n_steps == N_SAMPLES * 4 + 14
    cmp = compare_to_sim(streamed, sim, graph.network)
    assert cmp.missing == ()
    assert dict(cmp.spike_mismatches) == dict.fromkeys(_lifs(graph.network), 0)
    # The comparison is not vacuous: most layers spike, and a one-step misalignment differs.
    active = [n for n in _lifs(graph.network) if sim.spikes[n].any()]
    assert len(active) >= len(_lifs(graph.network)) - 2
    shifted = sum(
        int(np.count_nonzero(streamed.spikes[n][1:] != sim.spikes[n][:-1])) for n in active
    )
    assert shifted > 0


@pytest.mark.lava
@pytest.mark.timeout(180)  # Lava runs through LavaSession: a hang fails by name
def test_streamed_readout_equals_simulator(graph, streamed, sim):
    cmp = compare_to_sim(streamed, sim, graph.network)
    assert dict(cmp.stream_mismatches) == {"image_encoder.output": 0}  # integer currents
    # Features: the Lava readout and the simulator share one decode (hardware.ir.readout), so
    # their agreement proves nothing about it; both must equal an independent float64 decode
    # (numpy, its own order of operations) of Lava's integer stream.
    name = "image_encoder.output"
    want = readout(streamed.stream[name], graph.network.layer(name))
    assert want.shape == (N_SAMPLES, 12) and np.abs(want).max() > 0.1
    np.testing.assert_allclose(streamed.features[name], want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sim.features[name], want, rtol=1e-12, atol=1e-12)
    assert cmp.equal  # the verdict the CLI reports


@pytest.mark.lava
@pytest.mark.timeout(180)  # Lava runs through LavaSession: a hang fails by name
def test_streaming_equals_running_a_sample_alone(graph, images, streamed):
    alone = run_lava(graph, images[ALONE : ALONE + 1])
    assert alone.n_samples == 1
    for name, s in alone.spikes.items():
        assert np.array_equal(s[:, 0], streamed.spikes[name][:, ALONE]), name
    for name, a in alone.stream.items():
        assert np.array_equal(a[:, 0], streamed.stream[name][:, ALONE])
        assert np.array_equal(alone.features[name][0], streamed.features[name][ALONE])
