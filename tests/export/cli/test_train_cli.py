"""`spikeclip-train` runs the four stages in sequence (tiny open_clip teacher, digits, 1 epoch
each), passing checkpoints and the teacher tower between them; errors are one line with the
error's own exit code (2 missing data, 9 a --config this machine cannot hold)."""

from __future__ import annotations

import json

import torch
import torch.nn.functional as F
from _train_helpers import open_clip_teacher, register_open_clip, student_config

from export.cli.train import main
from spikeclip import checkpoint
from spikeclip.errors import EXIT_MEMORY
from spikeclip.training import data
from spikeclip.training.teachers import TOWER_FORMAT


def test_four_stages_chain(tmp_path):
    spec = register_open_clip(tmp_path)
    cfg_file = tmp_path / "student.json"
    cfg_file.write_text(json.dumps({**student_config().to_dict(), "img_size": 16}))
    c = ["--teacher", spec, "--dataset", "digits", "--no-progress", "--epochs", "1",
         "--batch-size", "256", "--cache-dir", str(tmp_path / "cache")]
    assert main(["align-text", *c, "--config", str(cfg_file), "--out", str(tmp_path / "t.pt")]) == 0
    assert main(["align-image", *c, "--init", str(tmp_path / "t.pt"),
                 "--out", str(tmp_path / "a.pt")]) == 0
    assert main(["finetune-teacher", *c, "--init", str(tmp_path / "a.pt"), "--lr", "1e-3",
                 "--out", str(tmp_path / "tower.pt")]) == 0
    tower = torch.load(tmp_path / "tower.pt", weights_only=True)
    assert tower["format"] == TOWER_FORMAT and tower["teacher"] == spec
    assert main(["finetune", *c, "--init", str(tmp_path / "a.pt"), "--teacher-weights",
                 str(tmp_path / "tower.pt"), "--kl-weight", "0.5",
                 "--out", str(tmp_path / "f.pt")]) == 0
    ck = checkpoint.load(tmp_path / "f.pt")
    assert [s["command"] for s in ck.metadata["stages"]] == ["align-text", "align-image",
                                                              "finetune"]
    assert ck.metadata["stages"][-1]["val"]["top1"] == _val_top1(ck, tmp_path)
    log = json.loads((tmp_path / "f.pt.work" / "log.json").read_text())
    assert len(log) == 1 and log[0]["stage"] == "finetune"


@torch.no_grad()
def _val_top1(ck: checkpoint.Checkpoint, tmp_path) -> float:
    """The saved model's zero-shot top-1 on the digits validation split (split seed 0, the
    CLI's default), counted here: class vector = mean over templates of the normalized
    spiking-text features of each prompt (teacher tokenizer), prediction = argmax of the
    normalized image feature against them."""
    model = ck.model.eval()
    names, templates = ck.class_names, ck.templates
    ids = open_clip_teacher(tmp_path).tokenize(
        [t.format(c) for c in names for t in templates], model.config.text_len)
    text = F.normalize(model.encode_text(ids), dim=-1)
    classes = text.view(len(names), len(templates), -1).mean(dim=1)
    val = data.digits_splits(model.config.img_size, seed=0).val
    images = torch.stack([val[i][0] for i in range(len(val))])
    labels = torch.tensor([val[i][1] for i in range(len(val))])
    pred = (F.normalize(model.encode_image(images), dim=-1) @ classes.T).argmax(dim=-1)
    assert len(labels) > 100
    return int((pred == labels).sum()) / len(labels)


def test_missing_dataset_is_one_line_exit_2(tmp_path, capsys):
    spec = register_open_clip(tmp_path)
    rc = main(["align-image", "--teacher", spec, "--dataset", "cifar10", "--data-root",
               str(tmp_path), "--out", str(tmp_path / "x.pt"), "--config", "tiny"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "cifar-10-batches-py" in err


def test_a_config_this_machine_cannot_hold_exits_9_before_building(tmp_path, capsys, monkeypatch):
    # Before: `--config big.json` built the model at once (6.3 PiB of weights and activations
    # here), allocating until memory ran out. Building it now fails the test instead.
    from export.cli import train as cli_train

    def built(*_args, **_kwargs):
        raise AssertionError("the model was built before its memory was checked")

    monkeypatch.setattr(cli_train, "SpikeCLIP", built)
    big = tmp_path / "big.json"
    big.write_text(json.dumps({**student_config().to_dict(), "embed_dim": 1 << 16,
                               "depth": 1024, "num_heads": 2}))
    out = tmp_path / "m.pt"
    rc = main(["align-image", "--teacher", "minilm", "--dataset", "digits", "--config",
               str(big), "--batch-size", "8", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == EXIT_MEMORY, err
    assert "\n" not in err and f"--config {big}: align-image at --batch-size 8: needs about" in err
    assert "of activations for 8 images" in err and "refused before allocating" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.json"]
