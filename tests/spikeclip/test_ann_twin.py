"""ANN twin: same structure and parameter shapes, ReLU instead of LIF, T = 1."""

from __future__ import annotations

import pytest
import torch

from spikeclip.ann_twin import ann_twin_config, build_ann_twin, is_ann_twin
from spikeclip.config import SpikeCLIPConfig
from spikeclip.errors import ConfigError
from spikeclip.image_encoder import ImageEncoder
from spikeclip.model import SpikeCLIP
from spikeclip.neurons import ANNActivation, MultiStepLIF


def test_twin_has_the_spiking_structure_with_relu_and_T1():
    cfg = SpikeCLIPConfig.tiny()
    snn, ann = SpikeCLIP(cfg), build_ann_twin(cfg)
    assert is_ann_twin(ann) and not is_ann_twin(snn)
    assert ann.config.T == 1 and ann.config.neuron == "ann"
    snn_shapes = {k: v.shape for k, v in snn.state_dict().items()}
    ann_shapes = {k: v.shape for k, v in ann.state_dict().items()}
    assert snn_shapes.keys() == ann_shapes.keys()
    differ = {k for k in snn_shapes if snn_shapes[k] != ann_shapes[k]}
    assert differ == {"image_encoder.readout.weights", "text_encoder.readout.weights"}
    assert not any(isinstance(m, MultiStepLIF) for m in ann.modules())
    n_act = sum(isinstance(m, ANNActivation) for m in ann.modules())
    n_lif = sum(isinstance(m, MultiStepLIF) for m in snn.modules())
    assert n_act == n_lif == 4 + 7 * cfg.depth + 2
    assert [r.kind for r in ann.describe() if r.kind in ("lif", "relu")] == ["relu"] * n_act


def test_twin_is_non_spiking_and_trainable():
    torch.manual_seed(0)
    cfg = SpikeCLIPConfig.tiny()
    ann = build_ann_twin(cfg)
    images = torch.randn(3, 3, cfg.img_size, cfg.img_size)
    s = ann.image_encoder.tokenizer.lif0(torch.tensor([[-1.0, 0.5, 2.5]]))
    assert s.tolist() == [[0.0, 0.5, 2.5]]  # graded, not 0/1
    feats = ann.encode_image(images)
    assert feats.shape == (3, cfg.out_dim)
    (
        feats.sum() + ann.encode_text(torch.randint(0, cfg.vocab_size, (2, cfg.text_len))).sum()
    ).backward()
    assert all(p.grad is not None and p.grad.norm() > 0 for p in ann.parameters())


def test_twin_config_rules():
    paper = SpikeCLIPConfig.paper()
    twin = ann_twin_config(SpikeCLIPConfig(strict_threshold=True))
    assert (twin.T, twin.neuron, twin.strict_threshold, twin.embed_dim) == (1, "ann", False, 384)
    # image tower only: building the paper text tower (47 M parameters) would triple the cost
    assert sum(p.numel() for p in ImageEncoder(ann_twin_config(paper)).parameters()) == (
        9_513_396 - 3
    )  # one time weight instead of four
    with pytest.raises(ConfigError, match="needs T=1"):
        SpikeCLIPConfig(neuron="ann")
