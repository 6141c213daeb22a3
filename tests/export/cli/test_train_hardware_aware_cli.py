"""`spikeclip-train finetune --hardware-aware` fine-tunes through the fake-quant twin."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _paths import REPO

from export.cli.train import main
from spikeclip import checkpoint

DEFAULT_MODEL = REPO / "examples" / "spikeclip-digits.pt"


@pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="examples/spikeclip-digits.pt not built")
def test_hardware_aware_finetune_changes_image_tower_only(tmp_path: Path) -> None:
    out = tmp_path / "ha.pt"
    code = main([
        "finetune", "--hardware-aware", "--teacher", "minilm+conv", "--dataset", "digits",
        "--init", str(DEFAULT_MODEL), "--out", str(out), "--epochs", "1", "--max-steps", "2",
        "--batch-size", "16", "--lr", "1e-4", "--logit-scale", "50", "--no-progress",
        "--margin-weight", "0.5", "--margin", "0.1", "--agree-weight", "2",
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
    # the threshold is snapped with the weights: 2⁻¹⁹ above θ = 1 (the attention's as it was)
    assert after.config.v_threshold == 1 + 2**-19 and before.config.v_threshold == 1.0
    assert after.config.attn_v_threshold == before.config.attn_v_threshold
    # the saved float model holds the grid values: every BN-folded weight times s/(τ·2^e) of
    # the recorded plan is an integer (up to float32 storage)
    from hardware.lower.float_graph import FSynapse
    from hardware.lower.from_torch import graph_from_image_encoder
    from hardware.quantize.image import plan_quantization
    from hardware.quantize.plan import consumer_scale
    from spikeclip.training.data import digits_splits

    record = after.metadata["stages"][-1]
    assert record["grid_snap"] is True
    assert (record["margin_weight"], record["margin"], record["agree_weight"]) == (0.5, 0.1, 2.0)
    assert record["history"][-1]["margin_loss"] > 0  # the gap hinge ran (logged per epoch)
    graph = graph_from_image_encoder(after.model.image_encoder.double())
    plan, _ = plan_quantization(graph, digits_splits(16, seed=0).train.images[:256].double())
    assert dict(plan.scales) == record["scales"]
    for node in graph.nodes:
        if isinstance(node, FSynapse):
            s = consumer_scale(graph, plan, node.name)
            units = node.weight.detach() * s / (graph.tau * 2 ** plan.weight_exps.get(node.name, 0))
            assert float((units - units.round()).abs().max()) < 1e-3, node.name


def test_hardware_aware_needs_init(tmp_path: Path, capsys) -> None:
    code = main([
        "finetune", "--hardware-aware", "--teacher", "minilm+conv", "--dataset", "digits",
        "--config", "tiny", "--out", str(tmp_path / "x.pt"), "--no-progress",
    ])  # fmt: skip
    assert code == 2  # a usage error (spikeclip.errors)
    assert "--init" in capsys.readouterr().err
