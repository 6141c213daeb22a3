"""Resume: a run stopped at step k and resumed ends with the same weights (within 1e-6) and the
same per-epoch log as an uninterrupted run; the same through `spikeclip-train`."""

from __future__ import annotations

import json

import torch
from _train_helpers import (
    open_clip_teacher,
    register_open_clip,
    small_digits,
    student,
    student_config,
)

from export.cli.train import main
from spikeclip import checkpoint
from spikeclip.errors import EXIT_INCOMPLETE
from spikeclip.training import stages
from spikeclip.training.loop import EpochBatches, LoopConfig
from spikeclip.training.teachers import teacher_class_matrix


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) if a[k].numel() else 0.0
               for k in a)


def test_epoch_batches_are_a_function_of_seed_and_epoch():
    b = EpochBatches(10, 4, seed=7)
    first = b.indices(1)
    assert [len(x) for x in first] == [4, 4, 2]
    assert sorted(i for x in first for i in x) == list(range(10))
    assert EpochBatches(10, 4, seed=7).indices(1) == first  # no hidden state
    assert b.indices(2) != first
    assert [len(x) for x in EpochBatches(10, 4, seed=7, drop_last=True).indices(1)] == [4, 4]
    # ranks split one permutation without overlap (the hook a DDP launcher will use)
    r0 = EpochBatches(10, 4, seed=7, rank=0, world=2).indices(3)
    r1 = EpochBatches(10, 4, seed=7, rank=1, world=2).indices(3)
    assert sorted(i for x in r0 + r1 for i in x) == list(range(10))


def test_finetune_interrupted_and_resumed_matches_uninterrupted(tmp_path):
    teacher = open_clip_teacher(tmp_path)
    splits = small_digits(96, 32)  # 6 steps per epoch at batch 16
    w = teacher_class_matrix(teacher, splits.class_names, splits.templates)

    def run(workdir, max_steps=None, resume=False):
        model = student(seed=1)
        cfg = LoopConfig(epochs=3, batch_size=16, lr=5e-3, seed=5, progress=False,
                         max_steps=max_steps, save_every=4)
        res = stages.finetune(model, teacher, splits, w, cfg=cfg, logit_scale=10.0,
                              cache_dir=tmp_path / "cache", workdir=workdir, resume=resume)
        return model, res.loop

    ref_model, ref = run(tmp_path / "ref")
    _, part = run(tmp_path / "cut", max_steps=9)  # stops in epoch 2, at its 4th step
    assert not part.completed and part.global_step == 9 and len(part.history) == 1
    resumed_model, full = run(tmp_path / "cut", resume=True)
    assert full.completed and full.global_step == ref.global_step == 18
    assert full.steps_run == 9  # continued from step 9, did not start over
    assert _max_diff(resumed_model.state_dict(), ref_model.state_dict()) <= 1e-6
    assert [h["val_top1"] for h in full.history] == [h["val_top1"] for h in ref.history]
    assert full.best_epoch == ref.best_epoch
    log = json.loads((tmp_path / "cut" / "log.json").read_text())
    assert [e["epoch"] for e in log] == [1, 2, 3]
    assert all({"train_loss", "val_top1", "lr", "samples_per_s"} <= set(e) for e in log)


def test_cli_align_text_resume_matches_uninterrupted(tmp_path):
    spec = register_open_clip(tmp_path)
    cfg_file = tmp_path / "student.json"
    cfg_file.write_text(json.dumps(student_config().to_dict()))
    common = ["align-text", "--teacher", spec, "--dataset", "digits", "--config",
              str(cfg_file), "--epochs", "3", "--batch-size", "16", "--no-progress",
              "--cache-dir", str(tmp_path / "cache"), "--seed", "4", "--init-embeddings"]
    assert main([*common, "--out", str(tmp_path / "ref.pt")]) == 0
    cut = ["--out", str(tmp_path / "cut.pt")]
    # 5 steps per epoch: --max-steps 7 stops in epoch 2
    assert main([*common, *cut, "--max-steps", "7"]) == EXIT_INCOMPLETE
    assert not (tmp_path / "cut.pt").exists()
    state = torch.load(tmp_path / "cut.pt.work" / "state.pt", weights_only=True)
    assert state["position"]["global_step"] == 7 and state["position"]["step_in_epoch"] == 2
    assert main([*common, *cut, "--resume"]) == 0
    ref = checkpoint.load(tmp_path / "ref.pt")
    got = checkpoint.load(tmp_path / "cut.pt")
    assert _max_diff(got.model.state_dict(), ref.model.state_dict()) <= 1e-6
    assert got.class_names == ("zero", "one", "two", "three", "four", "five", "six", "seven",
                               "eight", "nine")
    assert got.metadata["tokenizer"] == spec
    assert got.metadata["stages"][-1]["command"] == "align-text"
