"""`hardware.quantize.grid_snap.snap_to_grid`: the float model takes the integer network's grid
values."""

from __future__ import annotations

import dataclasses

import torch
from _quant_helpers import active_tiny_encoder, active_tiny_model, tiny_images

from hardware.ir.layers import ReadoutLayer
from hardware.lower.float_graph import FLIF, FHostInput, FReadout, FSynapse
from hardware.lower.from_torch import graph_from_image_encoder, synapse_modules
from hardware.lower.graph_run import run_graph
from hardware.quantize.grid_snap import snap_threshold, snap_to_grid
from hardware.quantize.image import plan_quantization, quantize_graph
from hardware.quantize.plan import vth_mantissa
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


def test_vth_mantissa_accepts_a_threshold_less_than_one_v_unit_above_the_grid():
    assert vth_mantissa(1.0, 512) == 512
    assert vth_mantissa(1 + 2**-19, 4096) == 4096  # 64·4096·2⁻¹⁹ = ½ v-unit above
    assert vth_mantissa(1 + 2**-18, 4096) is None  # a whole v-unit: another threshold
    assert vth_mantissa(0.999, 512) is None and vth_mantissa(1.01, 512) is None
    assert vth_mantissa(1.0, 2**17) is None  # above VTH_MAX


def test_snapped_threshold_makes_the_float_rule_fire_where_loihi_does():
    # The float model's own rule (H ≥ θ) against the twin (Loihi's v > 64·vth), with the host
    # input rounded as the twin rounds it. On the grid many states sit exactly on θ; at θ = 1
    # the float side of such a tie is decided by float32 storage noise, at the snapped θ it
    # never fires there, as Loihi does not.
    model = active_tiny_model(seed=2)
    calib, x = tiny_images(48, seed=3), tiny_images(32, seed=9)
    graph = graph_from_image_encoder(model.image_encoder)
    plan, _ = plan_quantization(graph, calib)
    snap_to_grid(model.image_encoder, plan)
    snapped = snap_threshold(model)
    assert snapped.config.v_threshold == 1 + 2**-19 and model.config.v_threshold == 1.0
    assert snapped.config.attn_v_threshold == model.config.attn_v_threshold
    net, _ = quantize_graph(graph_from_image_encoder(snapped.image_encoder), calib)
    net_at_1, _ = quantize_graph(graph_from_image_encoder(model.image_encoder), calib)
    no_meta = lambda n: [dataclasses.replace(ly, meta={}) for ly in n.layers]  # noqa: E731
    assert no_meta(net) == no_meta(net_at_1)  # the same integers (meta records θ)
    twin = run_twin(net, x, keep_states=True)
    host = next(n.name for n in graph.nodes if isinstance(n, FHostInput))
    host_twin = {host: fake_quantize(graph, plan).node(host)}

    def mismatches(enc) -> int:
        g = graph_from_image_encoder(enc).replace(host_twin)
        run = run_graph(g, x, compare=">=", keep_states=True)
        return sum(int((run.spikes[k].reshape(t.shape) != t).sum()) for k, t in twin.spikes.items())

    assert mismatches(snapped.image_encoder) == 0
    assert mismatches(model.image_encoder) > 0
