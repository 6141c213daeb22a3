"""Operation counts streamed over batches equal the counts of one batch of every sample.

Reference: `hardware.energy.activity.count_model` on the spikes of one simulation of all images
(what the export's energy stage computed before it streamed), field by field, ``sop_rate``
(a float made from whole-run rates, with a ``min`` for attention) included.
"""

from __future__ import annotations

import pytest
from _quant_helpers import active_tiny_model, tiny_images

from export.nir import to_nir
from hardware.energy.activity import count_model, spikes_from_simulator
from hardware.energy.pipeline import image_specs
from hardware.energy.stream import count_simulated
from hardware.quantize.image import quantize
from hardware.simulate.engine import simulate


@pytest.fixture(scope="module")
def model_and_network():
    model = active_tiny_model()
    network, _ = quantize(to_nir(model.image_encoder), tiny_images(8, seed=2))
    return model, network


@pytest.mark.parametrize(("order", "workers"), [("q_ktv", 1), ("qkt_v", 1), ("q_ktv", 2)])
def test_streamed_counts_equal_one_batch(model_and_network, order, workers):
    model, network = model_and_network
    images = tiny_images(7, seed=5).float()
    specs = image_specs(model)
    sim = simulate(network, images, keep_states=True)
    spikes = spikes_from_simulator(sim.spikes, specs)  # names: image_encoder.…
    want = count_model(specs, spikes, samples=7, steps=network.T, order=order)
    got = count_simulated(network, images, specs, batch_size=3, order=order,  # 3 + 3 + 1
                          workers=workers)
    assert [c.name for c in got] == [c.name for c in want]
    for g, w in zip(got, want, strict=True):
        assert g == w, g.name
    attention = [c for c in got if c.op == "attention"]
    assert attention and all(c.sop_rate > 0 and c.samples == 7 for c in attention)
