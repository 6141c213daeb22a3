"""`hardware.fidelity.report`: the report's figures recomputed independently on the tiny model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _quant_helpers import active_tiny_encoder, tiny_images

from hardware.fidelity.report import fidelity
from hardware.ir import fixed
from hardware.lower.from_torch import graph_from_image_encoder
from hardware.quantize.image import QuantOptions, quantize_graph
from hardware.quantize.twin import run_twin
from hardware.simulate.engine import simulate


@pytest.fixture(scope="module")
def setup():
    enc = active_tiny_encoder()
    calib = tiny_images(16, seed=1)
    images = tiny_images(24, seed=3)
    cm = F.normalize(torch.randn(5, 12, generator=torch.Generator().manual_seed(4),
                                 dtype=torch.float64), dim=-1)
    with torch.no_grad():
        labels = (F.normalize(enc.double()(images), dim=-1) @ cm.T).argmax(-1)
    enc.float()
    return enc, calib, images, labels, cm


def test_report_figures(setup, tmp_path):
    enc, calib, images, labels, cm = setup
    net, _ = quantize_graph(graph_from_image_encoder(enc), calib)
    rep = fidelity(enc, net, images, labels, cm, batch_size=10,  # 3 batches: 10 + 10 + 4
                   noise_rel=0.0, noise_seeds=2)
    sim = simulate(net, images)
    sim_pred = (F.normalize(torch.from_numpy(sim.feature), dim=-1) @ cm.T).argmax(-1)
    assert rep.samples == 24
    assert rep.top1_float == 1.0  # labels are the float model's own predictions
    assert rep.top1_sim == pytest.approx(float((sim_pred == labels).double().mean()))
    assert rep.agreement_float_sim == rep.top1_sim
    assert rep.twin_sim_bit_exact and rep.agreement_twin_sim == 1.0
    assert rep.first_diverging_layer_twin is None
    for layer in rep.layers:
        assert layer.spikes_sim == int(sim.spike_counts[layer.name].sum())
        assert layer.twin_equals_sim and layer.spikes_twin == layer.spikes_sim
    # Totals over the three batches against the twin (float64, one run over all 24 images):
    # its spikes, and its ties (v exactly at the threshold; the attention LIFs carry Loihi's
    # 1-v-unit tie-break bias, so their simulated tie is the twin's v one below it). A
    # calibrated quantization never overflows, saturates, wraps or clips its host input.
    twin = run_twin(net, images, keep_states=True)
    ties = 0
    for name, v in twin.v.items():
        layer = net.layer(name)
        thr = int(fixed.threshold_v(layer.vth)) - (layer.meta["role"] == "attention")
        ties += int(np.count_nonzero(v.numpy() * 64 * layer.meta["scale"] == thr))
    assert rep.totals == {
        "spikes": int(sum(int(s.sum()) for s in twin.spikes.values())),
        "ties": ties,
        "overflow_u": 0, "saturations_v": 0, "int32_wraps": 0, "conv_wraps": 0,
        "host_clipped": 0,
    }
    assert rep.totals["spikes"] > 1000 and ties > 0
    assert rep.noise_floor_agreement == (1.0, 1.0)  # zero noise reproduces the float model
    rep.write(tmp_path)
    data = json.loads((tmp_path / "fidelity.json").read_text())
    assert data["top1_sim"] == rep.top1_sim and len(data["layers"]) == len(rep.layers)
    assert "twin == simulation bit for bit" in (tmp_path / "fidelity.md").read_text()


def test_coarse_quantization_is_visible(setup):
    enc, calib, images, labels, cm = setup
    fine, _ = quantize_graph(graph_from_image_encoder(enc), calib)
    coarse, _ = quantize_graph(graph_from_image_encoder(enc), calib,
                               options=QuantOptions(max_log2_scale=2))  # s ≤ 4: vth ≤ 4
    a = fidelity(enc, fine, images, labels, cm)
    b = fidelity(enc, coarse, images, labels, cm)
    assert b.first_diverging_layer is not None
    mean_agree = lambda r: np.mean([x.agreement_float_sim for x in r.layers])  # noqa: E731
    assert mean_agree(b) < mean_agree(a)
    assert b.cosine_float_sim_mean < a.cosine_float_sim_mean
    assert b.twin_sim_bit_exact  # the twin stays exact however coarse the grid
    assert len(a.noise_floor_agreement) == 3
    assert all(0.0 <= x <= 1.0 for x in a.noise_floor_agreement)
