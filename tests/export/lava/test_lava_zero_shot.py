"""The whole zero-shot classification of the default model in Lava: the text tower (netx) on
every class prompt, the image tower on two digits, and the logits from Lava's features equal the
simulator's exactly.

References: the simulator (`hardware.simulate`, its own implementation of the fixed-point rules)
for spikes and features; the float64 torch composition of `SpikeCLIP.class_matrix` / `logits`
(normalize, mean over templates, dot product) for the class matrix and logits.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _paths import DEFAULT_MODEL

from export.lava.netx import export_text_tower, netx_chain
from export.lava.netx_drive import simulate_text
from export.lava.runner import run_lava, to_lava
from export.lava.zero_shot import check_zero_shot, class_matrix, host_features, logits
from export.nir import to_nir
from hardware.quantize.image import quantize
from hardware.simulate.engine import simulate
from spikeclip import checkpoint
from spikeclip.evaluate import prompt_ids
from spikeclip.training import model_data
from spikeclip.training.teachers import load_tokenizer

pytestmark = pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="default model not built")


@pytest.fixture(scope="module")
def default():
    ck = checkpoint.load(DEFAULT_MODEL)
    tokenize = load_tokenizer(ck.metadata["tokenizer"])
    ids = prompt_ids(tokenize, ck.class_names, ck.templates, ck.config.text_len).numpy()
    return ck, ids


def _torch_logits(image: np.ndarray, text: np.ndarray, classes: int) -> np.ndarray:
    t = F.normalize(torch.from_numpy(text).double(), dim=-1)
    matrix = torch.stack([c.mean(0) for c in t.split(len(text) // classes)])
    return (F.normalize(torch.from_numpy(image).double(), dim=-1) @ matrix.T).numpy()


def test_host_part_on_simulated_spikes_gives_the_simulators_text_features(default, tmp_path):
    ck, ids = default
    _, net, _ = export_text_tower(ck.model.text_encoder, tmp_path / "text.net")
    flat = ids.reshape(-1, ids.shape[-1])[:12]
    sim = simulate_text(net, flat)
    last = netx_chain(net)[-1].name
    assert last == "text_encoder.lif2"
    got = host_features(net, last, sim.spikes[last])
    assert got.shape == (12, ck.config.out_dim)
    assert np.array_equal(got, sim.feature)
    assert len({row.tobytes() for row in got}) == 12  # not vacuous: prompts differ


def test_class_matrix_and_logits_match_the_models_composition():
    rng = np.random.default_rng(0)
    text, image = rng.normal(size=(6, 5)), rng.normal(size=(4, 5))
    np.testing.assert_allclose(logits(image, class_matrix(text, 3)),
                               _torch_logits(image, text, 3), rtol=0, atol=1e-15)


@pytest.mark.lava
@pytest.mark.timeout(300)
def test_zero_shot_logits_from_lava_equal_the_simulators(default, tmp_path):
    ck, ids = default
    splits = model_data.model_splits("digits", metadata=ck.metadata, img_size=ck.config.img_size,
                                     root=tmp_path, seed=int(ck.metadata.get("split_seed", 0)))
    calib = model_data.first_images(splits.train, 32, ck.config.img_size)[0]
    images = model_data.first_images(splits.test, 2, ck.config.img_size)[0]
    network, _ = quantize(to_nir(ck.model.image_encoder), calib)
    lava = run_lava(to_lava(network), images)
    sim = simulate(network, images)
    (image_lava,) = lava.features.values()
    path, text_net, _ = export_text_tower(ck.model.text_encoder, tmp_path / "text.net")
    check = check_zero_shot(text_net, path, ids, image_lava, sim.feature)
    assert check.prompts == 80 and check.samples == 2  # 10 digits × 8 templates
    assert check.identical and check.text_spike_mismatches == 0
    assert check.max_abs_logit_diff == 0.0
    text_sim = simulate_text(text_net, ids.reshape(80, -1)).feature
    want = _torch_logits(sim.feature, text_sim, 10)
    np.testing.assert_allclose(logits(image_lava, class_matrix(text_sim, 10)), want,
                               rtol=0, atol=1e-12)
    assert check.predictions == tuple(int(p) for p in want.argmax(-1))
