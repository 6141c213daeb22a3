"""Every stage runs a few steps with random-weight teachers built in the test and lowers its own
training loss on a fixed batch; the dual loss and the angle gate match hand computations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from _train_helpers import (
    fixed_batch,
    hf_teacher,
    open_clip_teacher,
    small_digits,
    student,
)

from spikeclip.training import prompts, stages
from spikeclip.training.loop import LoopConfig
from spikeclip.training.teachers import teacher_class_matrix


def _cfg(epochs: int, batch: int, lr: float) -> LoopConfig:
    return LoopConfig(epochs=epochs, batch_size=batch, lr=lr, progress=False, seed=3)


@pytest.mark.parametrize("kind", ["open_clip", "hf"])
def test_align_text_lowers_cosine_loss(tmp_path, kind):
    teacher = open_clip_teacher(tmp_path) if kind == "open_clip" else hf_teacher()
    model = student()
    assert stages.init_text_embeddings(model, teacher) == "pca"  # teacher width 32 > 8
    sentences = prompts.prompts_for(prompts.DIGITS_CLASSES, prompts.TEMPLATES["digits"])
    ids = teacher.tokenize(sentences[:32], model.config.text_len)
    with torch.no_grad():
        target = teacher.encode_text(teacher.tokenize(sentences[:32]))
        before = float(stages.cosine_loss(model.encode_text(ids), target))
    res = stages.align_text(model, teacher, sentences, cfg=_cfg(4, 16, 5e-3),
                            cache_dir=tmp_path / "cache")
    with torch.no_grad():
        after = float(stages.cosine_loss(model.encode_text(ids), target))
    assert res.loop.completed and len(res.loop.history) == 4
    assert after < before - 0.05, (before, after)


def test_align_image_lowers_cosine_loss(tmp_path):
    teacher = open_clip_teacher(tmp_path)
    model = student()
    splits = small_digits()
    images, _ = fixed_batch(splits.train)
    small = stages.student_input(images, model.config.img_size)
    with torch.no_grad():
        target = teacher.encode_image(images)
        model.eval()
        before = float(stages.cosine_loss(model.encode_image(small), target))
    ids = stages.prompt_ids(teacher, splits.class_names, splits.templates, model.config.text_len)
    res = stages.align_image(model, teacher, splits, cfg=_cfg(3, 16, 5e-3), class_ids=ids,
                             cache_dir=tmp_path / "cache")
    with torch.no_grad():
        model.eval()
        after = float(stages.cosine_loss(model.encode_image(small), target))
    assert set(res.metrics) == {"cos_loss", "top1"}
    assert after < before, (before, after)


def test_finetune_teacher_lowers_ce(tmp_path):
    teacher = hf_teacher()
    splits = small_digits()
    # class matrix of the teacher's text tower (an untrained student's would be degenerate)
    w = teacher_class_matrix(teacher, splits.class_names, splits.templates)
    images, labels = fixed_batch(splits.train)

    def ce() -> float:
        with torch.no_grad():
            logits = 10.0 * F.normalize(teacher.encode_image(images), dim=-1) @ w.T
            return float(F.cross_entropy(logits, labels))

    text_before = {k: v.clone() for k, v in teacher.model.text_model.state_dict().items()}
    before = ce()
    stages.finetune_teacher(teacher, splits, w, cfg=_cfg(3, 16, 1e-3), logit_scale=10.0)
    assert ce() < before
    # only the image tower trains
    for k, v in teacher.model.text_model.state_dict().items():
        assert torch.equal(v, text_before[k]), k


def test_finetune_dual_loss_lowers_loss(tmp_path):
    teacher = open_clip_teacher(tmp_path)
    model = student()
    splits = small_digits()
    w = teacher_class_matrix(teacher, splits.class_names, splits.templates)
    images, labels = fixed_batch(splits.train)
    with torch.no_grad():
        t_logits = 10.0 * F.normalize(teacher.encode_image(images), dim=-1) @ w.T

    def loss() -> float:
        with torch.no_grad():
            model.eval()
            s = 10.0 * model.logits(stages.student_input(images, model.config.img_size), w)
            ce, kl = stages.dual_loss(s, t_logits, labels)
            return float(ce + kl)

    text_before = {k: v.clone() for k, v in model.text_encoder.state_dict().items()}
    before = loss()
    stages.finetune(model, teacher, splits, w, cfg=_cfg(3, 16, 5e-3), logit_scale=10.0,
                    cache_dir=tmp_path / "cache")
    assert loss() < before
    for k, v in model.text_encoder.state_dict().items():
        assert torch.equal(v, text_before[k]), k


def test_dual_loss_matches_hand_values():
    # Two classes, one sample. student logits (0, ln 3): p_s = (1/4, 3/4);
    # teacher logits (ln 3, 0): p_t = (3/4, 1/4). CE(label 1) = -ln(3/4).
    # KL(p_t || p_s) = 3/4 ln(3) + 1/4 ln(1/3) = (1/2) ln 3. Weight 2 -> ln 3.
    s = torch.tensor([[0.0, math.log(3.0)]])
    t = torch.tensor([[math.log(3.0), 0.0]])
    ce, kl = stages.dual_loss(s, t, torch.tensor([1]), kl_weight=2.0)
    assert ce.item() == pytest.approx(-math.log(0.75), abs=1e-6)
    assert kl.item() == pytest.approx(math.log(3.0), abs=1e-6)
    # sum reduction: a batch of two identical rows doubles the KL term, CE stays (mean).
    ce2, kl2 = stages.dual_loss(s.repeat(2, 1), t.repeat(2, 1), torch.tensor([1, 1]))
    assert ce2.item() == pytest.approx(ce.item(), abs=1e-6)
    assert kl2.item() == pytest.approx(math.log(3.0), abs=1e-6)
    # temperature 2 with logits doubled gives the same distributions, KL scaled by 4
    _, kl_t = stages.dual_loss(2 * s, 2 * t, torch.tensor([1]), temperature=2.0)
    assert kl_t.item() == pytest.approx(4 * 0.5 * math.log(3.0), abs=1e-5)


def test_gradient_angle_hand_values():
    a = [torch.tensor([1.0, 0.0]), None]
    assert stages.gradient_angle(a, [torch.tensor([0.0, 2.0]), None]) == pytest.approx(90.0)
    assert stages.gradient_angle(a, [torch.tensor([-3.0, 0.0]), None]) == pytest.approx(180.0)
    # (1,0,|1) vs (1,0,|0): cos = 1/sqrt(2) -> 45 degrees
    b = [torch.tensor([1.0, 0.0]), torch.tensor([1.0])]
    assert stages.gradient_angle(b, [torch.tensor([1.0, 0.0]), None]) == pytest.approx(45.0)


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")
def test_angle_gate_skips_every_step_when_gate_is_tiny(tmp_path):
    # A 1e-9 degree gate accepts only exactly parallel CE/KL gradients: no step is taken,
    # so the image tower's parameters stay as they were (BN running stats aside).
    teacher = open_clip_teacher(tmp_path)
    model = student()
    splits = small_digits(32, 16)
    ids = stages.prompt_ids(teacher, splits.class_names, splits.templates, model.config.text_len)
    w = stages.spiking_class_matrix(model, ids)
    params_before = [p.detach().clone() for p in model.image_encoder.parameters()]
    stages.finetune(model, teacher, splits, w, cfg=_cfg(1, 16, 5e-2), angle_gate=1e-9)
    for p, q in zip(model.image_encoder.parameters(), params_before):
        assert torch.equal(p, q)
