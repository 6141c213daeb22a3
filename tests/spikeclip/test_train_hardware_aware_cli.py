"""`spikeclip-train finetune --hardware-aware` fine-tunes through the fake-quant twin."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from spikeclip import checkpoint
from spikeclip.cli_train import main

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "examples" / "spikeclip-digits.pt"


@pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="examples/spikeclip-digits.pt not built")
def test_hardware_aware_finetune_changes_image_tower_only(tmp_path: Path) -> None:
    out = tmp_path / "ha.pt"
    code = main([
        "finetune", "--hardware-aware", "--teacher", "minilm+conv", "--dataset", "digits",
        "--init", str(DEFAULT_MODEL), "--out", str(out), "--epochs", "1", "--max-steps", "2",
        "--batch-size", "16", "--lr", "1e-4", "--logit-scale", "50", "--no-progress",
    ])  # fmt: skip
    assert code == 0
    before, after = checkpoint.load(DEFAULT_MODEL), checkpoint.load(out)
    changed = [
        name for name, p in after.model.state_dict().items()
        if not torch.equal(p, before.model.state_dict()[name])
    ]  # fmt: skip
    assert changed and all(name.startswith("image_encoder.") for name in changed)
    assert after.metadata["stages"][-1]["command"] == "finetune --hardware-aware"
    assert after.metadata["tokenizer"] == before.metadata["tokenizer"]


def test_hardware_aware_needs_init(tmp_path: Path, capsys) -> None:
    code = main([
        "finetune", "--hardware-aware", "--teacher", "minilm+conv", "--dataset", "digits",
        "--config", "tiny", "--out", str(tmp_path / "x.pt"), "--no-progress",
    ])  # fmt: skip
    assert code == 1
    assert "--init" in capsys.readouterr().err
