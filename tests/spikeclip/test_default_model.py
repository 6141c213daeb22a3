"""The committed default model (examples/spikeclip-digits.pt): loads with the project's loader,
its test top-1 recomputed from the digits images is ≥ 90% and matches examples/README.md within
0.5 pp; its config is the `digits` preset (the paper's architecture, smaller numbers)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from spikeclip import checkpoint
from spikeclip.training import data, presets, stages
from spikeclip.training.teachers import load_tokenizer

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "examples" / "spikeclip-digits.pt"
README = ROOT / "examples" / "README.md"
README_LINE = re.compile(r"SpikeCLIP test top-1 of the committed model[^0-9]*([0-9.]+)\s*%")


@pytest.fixture(scope="module")
def ck() -> checkpoint.Checkpoint:
    return checkpoint.load(MODEL)


def test_file_is_small_and_config_is_the_digits_preset(ck):
    assert MODEL.stat().st_size <= 25 * 2**20
    assert ck.config == presets.digits()
    assert ck.config.T == 4 and ck.config.img_size == 16
    assert ck.metadata["tokenizer"] == "minilm"
    assert [s["command"] for s in ck.metadata["stages"]] == [
        "align-text", "align-image", "finetune", "finetune --hardware-aware"]
    assert ck.metadata["stages"][-1]["grid_snap"] is True


def test_test_accuracy_recomputed_from_images_matches_readme(ck):
    splits = data.digits_splits(ck.config.img_size, seed=0)
    tokenize = load_tokenizer(ck.metadata["tokenizer"])
    names, templates = ck.class_names, ck.templates
    ids = tokenize([t.format(c) for c in names for t in templates], ck.config.text_len)
    w = stages.spiking_class_matrix(ck.model, ids.view(len(names), len(templates), -1))
    acc = 100.0 * stages.top1(ck.model, splits.test, w)
    assert len(splits.test) == 450
    match = README_LINE.search(README.read_text())
    assert match is not None, "README line with the dual-loss test top-1 is missing"
    assert acc >= 90.0
    assert abs(acc - float(match.group(1))) <= 0.5, (acc, match.group(1))
