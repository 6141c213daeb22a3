"""`hardware.quantize.grid_snap.snap_to_grid`: the float model takes the integer network's grid
values."""

from __future__ import annotations

import torch
from _quant_helpers import active_tiny_encoder, tiny_images

from hardware.ir.layers import ReadoutLayer
from hardware.lower.float_graph import FLIF, FHostInput, FReadout, FSynapse
from hardware.lower.from_torch import graph_from_image_encoder, synapse_modules
from hardware.lower.graph_run import run_graph
from hardware.quantize.grid_snap import snap_to_grid
from hardware.quantize.image import plan_quantization, quantize_graph
from hardware.quantize.twin import fake_quantize, run_twin


def _snapped():
    enc = active_tiny_encoder(seed=2)
    calib = tiny_images(48, seed=3)
    before = graph_from_image_encoder(enc)
    plan, _ = plan_quantization(before, calib)
    net_before, _ = quantize_graph(before, calib)
    assert snap_to_grid(enc, plan) == len(synapse_modules(enc))
    return enc, calib, before, plan, net_before


def test_every_synapse_node_has_its_modules():
    enc = active_tiny_encoder()
    syn = {n.name for n in graph_from_image_encoder(enc).nodes if isinstance(n, FSynapse)}
    assert set(synapse_modules(enc)) == syn
    assert len(synapse_modules(enc)["image_encoder.blocks.1.attn.qkv_conv"]) == 3


def test_snapped_graph_holds_the_twin_values():
    enc, _, before, plan, _ = _snapped()
    after = graph_from_image_encoder(enc)
    twin = fake_quantize(before, plan)
    changed = 0
    for node in after.nodes:
        want = twin.node(node.name)
        if isinstance(node, FSynapse):
            # float32 storage of Ŵ/g: within a few ulp of the grid value, never half a step
            torch.testing.assert_close(node.weight, want.weight, rtol=3e-7, atol=0.0)
            changed += int(not torch.equal(node.weight, before.node(node.name).weight))
        elif isinstance(node, FLIF) and node.role != "attention":
            torch.testing.assert_close(node.bias, want.bias, rtol=0.0, atol=2e-6)
    assert changed == len(synapse_modules(enc))
    # the residual stream's last branch (blocks.1.mlp.fc2) feeds only the float readout: the
    # readout's bias moves by exactly what the in-LIFs' snapped biases moved
    rb = lambda g: next(n for n in g.nodes if isinstance(n, FReadout)).bias  # noqa: E731
    last_in = "image_encoder.blocks.1.mlp.in_lif"
    moved = (after.node(last_in).bias - before.node(last_in).bias)[:, 0, 0]
    torch.testing.assert_close(rb(after) - rb(before), moved, rtol=0.0, atol=2e-6)


def test_requantizing_a_snapped_encoder_gives_the_same_integers():
    enc, calib, before, plan, net_before = _snapped()
    plan_after, _ = plan_quantization(graph_from_image_encoder(enc), calib)
    assert plan_after == plan
    net_after, _ = quantize_graph(graph_from_image_encoder(enc), calib)
    pairs = list(zip(net_before.layers, net_after.layers, strict=True))
    assert all(a == b for a, b in pairs if not isinstance(a, ReadoutLayer))


def test_snapped_float_model_spikes_like_the_integer_network():
    # With the host input rounded as the twin rounds it, the snapped float graph under Loihi's
    # strict rule is the twin up to float32 storage: every spike of every layer is the same.
    # Before snapping the same comparison differs in thousands of neuron-steps.
    enc, calib, before, plan, _ = _snapped()
    net, _ = quantize_graph(graph_from_image_encoder(enc), calib)
    x = tiny_images(32, seed=9)
    twin = run_twin(net, x, keep_states=True)
    host = next(n.name for n in before.nodes if isinstance(n, FHostInput))
    host_twin = {host: fake_quantize(before, plan).node(host)}

    def mismatches(graph) -> int:
        run = run_graph(graph.replace(host_twin), x, compare=">", keep_states=True)
        return sum(int((run.spikes[k].reshape(t.shape) != t).sum()) for k, t in twin.spikes.items())

    assert mismatches(graph_from_image_encoder(enc)) == 0
    assert mismatches(before) > 1000
