"""SpikeCLIP: zero-shot rule (hand-derived), shapes, gradients through every parameter."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from spikeclip.config import SpikeCLIPConfig
from spikeclip.errors import ModelInputError
from spikeclip.model import SpikeCLIP
from spikeclip.neurons import MultiStepLIF


def _fixed(rows):
    table = torch.tensor(rows, dtype=torch.float32)
    return lambda ids: table[ids[:, 0]]  # "feature" of a prompt = row picked by its first id


def test_class_matrix_and_logits_follow_the_paper_rule():
    # prompt features: class 0: (3,4,0), (0,0,5) → normalized (.6,.8,0), (0,0,1) → mean (.3,.4,.5)
    # class 1: (0,2,0) → (0,1,0);  class 2: (−1,0,0) and (−2,0,0) → (−1,0,0) both → (−1,0,0)
    cfg = dataclasses.replace(SpikeCLIPConfig.tiny(), out_dim=3)
    model = SpikeCLIP(cfg)
    model.encode_text = _fixed([[3, 4, 0], [0, 0, 5], [0, 2, 0], [-1, 0, 0], [-2, 0, 0]])
    L = cfg.text_len
    groups = [
        torch.tensor([[0] * L, [1] * L]),
        torch.tensor([[2] * L]),
        torch.tensor([[3] * L, [4] * L]),
    ]
    cm = model.class_matrix(groups)
    torch.testing.assert_close(cm, torch.tensor([[0.3, 0.4, 0.5], [0, 1, 0], [-1, 0, 0]]))
    # not re-normalized (paper utils.labels_candidates); with renormalize: (.3,.4,.5)/√.5
    norm = 0.5**0.5
    torch.testing.assert_close(
        model.class_matrix(groups, renormalize=True)[0], torch.tensor([0.3, 0.4, 0.5]) / norm
    )
    # images: (0,3,4) → (0,.6,.8);  (−5,0,0) → (−1,0,0)
    model.encode_image = lambda x: torch.tensor([[0.0, 3.0, 4.0], [-5.0, 0.0, 0.0]])
    logits = model.logits(torch.zeros(2), cm)
    # row 0: (.3·0 + .4·.6 + .5·.8, .6, 0) = (.64, .6, 0); row 1: (−.3, 0, 1)
    torch.testing.assert_close(logits, torch.tensor([[0.64, 0.6, 0.0], [-0.3, 0.0, 1.0]]))
    assert model.predict(torch.zeros(2), cm).tolist() == [0, 2]


def test_zero_shot_end_to_end_three_classes():
    torch.manual_seed(0)
    cfg = SpikeCLIPConfig.tiny()
    model = SpikeCLIP(cfg).eval()
    ids = torch.randint(0, cfg.vocab_size, (3, 2, cfg.text_len))  # 3 classes × 2 templates
    images = torch.randn(4, 3, cfg.img_size, cfg.img_size)
    with torch.no_grad():
        cm = model.class_matrix(ids)
        assert cm.shape == (3, cfg.out_dim)
        assert torch.equal(cm, model.class_matrix(list(ids)))
        logits = model.logits(images, cm)
        assert logits.shape == (4, 3)
        assert torch.equal(model.predict(images, cm), logits.argmax(-1))
        assert torch.equal(model(images, cm), logits)
    with pytest.raises(ModelInputError, match="class matrix must be"):
        model.logits(images, cm[:, :-1])
    with pytest.raises(ModelInputError, match="class_matrix expects"):
        model.class_matrix(ids[0])


@pytest.mark.parametrize("T", [1, 4, 6])
def test_tower_shapes(T):
    cfg = dataclasses.replace(SpikeCLIPConfig.tiny(), T=T)
    model = SpikeCLIP(cfg)
    assert model.encode_image(torch.randn(2, 3, cfg.img_size, cfg.img_size)).shape == (2, 12)
    assert model.encode_text(torch.randint(0, cfg.vocab_size, (3, cfg.text_len))).shape == (3, 12)


def test_one_backward_reaches_every_parameter():
    # At init the attention LIF (input 0.125·Q(KᵀV) with ~4 % Q/K/V rates) and the text lif2
    # stay silent, which leaves proj/fc2 weights without gradient. Shift every BN output and the
    # text fc1 output by +1 so that every LIF layer fires, then check all gradients.
    torch.manual_seed(0)
    cfg = SpikeCLIPConfig.tiny()
    model = SpikeCLIP(cfg)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm1d | nn.BatchNorm2d):
                mod.bias.fill_(1.0)
        model.text_encoder.fc1.bias.fill_(1.0)
    rates: dict[str, float] = {}
    for name, mod in model.named_modules():
        if isinstance(mod, MultiStepLIF):
            mod.register_forward_hook(
                lambda _m, _i, out, n=name: rates.__setitem__(n, float(out.detach().mean()))
            )
    images = torch.randn(4, 3, cfg.img_size, cfg.img_size)
    ids = torch.randint(0, cfg.vocab_size, (4, cfg.text_len))
    loss = model.encode_image(images).sum() + model.encode_text(ids).sum()
    loss.backward()
    assert len(rates) == 4 + 7 * cfg.depth + 2 and min(rates.values()) > 0.0, rates
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or p.grad.norm() == 0]
    assert no_grad == []


def test_describe_names_both_towers():
    model = SpikeCLIP(SpikeCLIPConfig.tiny())
    recs = model.describe()
    assert recs[0].inputs == ("image",) and recs[0].name == "image_encoder.tokenizer.conv0"
    text = [r for r in recs if r.name.startswith("text_encoder.")]
    assert text[0].inputs == ("token_ids",)
    for r in recs:
        if r.is_module:
            model.get_submodule(r.name)
