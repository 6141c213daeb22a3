"""`--calib DATASET` (spikeclip-export) and `--data DATASET` (spikeclip-energy) for datasets other
than the bundled digits: read from --data-root with the checkpoint's preprocessing, or exit 2
naming where the files must go (and leave nothing behind)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _fake_datasets import CLIP_MEAN, CLIP_STD, COLOURS, expected_pixels, fake_imagenet

from export.cli import energy as cli_energy
from export.cli import export as cli
from export.cli.exit_codes import EXIT_USAGE
from export.cli.stages import ExportContext, ExportOptions, stage_data
from spikeclip import SpikeCLIP, SpikeCLIPConfig, load, save

EXPORT = shutil.which("spikeclip-export", path=str(Path(sys.executable).parent))


@pytest.fixture(scope="module")
def imagenet_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fake_imagenet(tmp_path_factory.mktemp("datasets") / "imagenet")


def _tiny(path: Path, metadata: dict) -> Path:
    torch.manual_seed(0)
    return save(path, SpikeCLIP(SpikeCLIPConfig.tiny()), metadata=metadata)


def _images_by_hand(labels: torch.Tensor, mean, std) -> torch.Tensor:
    """Constant images ``[N, 3, 16, 16]`` of each label's colour, preprocessed by hand."""
    colours = list(COLOURS.values())
    rows = [torch.tensor(expected_pixels(colours[int(y)], mean, std)) for y in labels]
    return torch.stack(rows)[:, :, None, None].expand(-1, -1, 16, 16)


@pytest.mark.parametrize(
    ("teacher", "mean", "std"),
    [
        (None, CLIP_MEAN, CLIP_STD),  # no teacher recorded: CLIP preprocessing (paper teacher)
        ("open_clip:ViT-B-16@openai", CLIP_MEAN, CLIP_STD),
        ("minilm+conv", (0.5,) * 3, (0.5,) * 3),  # MiniLM teachers: mean = std = 0.5
    ],
)
def test_stage_data_uses_the_checkpoints_preprocessing(
    tmp_path: Path, imagenet_root: Path, teacher, mean, std
) -> None:
    meta = {"dataset": "imagenet"}
    if teacher:
        meta["stages"] = [{"command": "finetune", "teacher": teacher, "dataset": "imagenet"}]
    ckpt = load(_tiny(tmp_path / "m.pt", meta))
    options = ExportOptions(model_path=tmp_path / "m.pt", target="sim", out=tmp_path / "o",
                            data_root=imagenet_root, samples=3)
    ctx = ExportContext(options=options, folder=tmp_path, checkpoint=ckpt)
    stage_data(ctx)
    # val/ is the test split, in ImageFolder order: 2 of class 0, then class 1
    assert ctx.data.labels.tolist() == [0, 0, 1]
    assert ctx.data.images.shape == (3, 3, 16, 16) and ctx.data.images.dtype == torch.float32
    torch.testing.assert_close(ctx.data.images, _images_by_hand(ctx.data.labels, mean, std),
                               rtol=0, atol=1e-5)
    # calibration: the carved training split (3 per class, 10 % → 1 image held out for val)
    assert ctx.data.calib.shape == (5, 3, 16, 16)
    assert ctx.data.class_names == ("red square", "blue square")


def test_export_calib_with_a_torchvision_layout_dataset(tmp_path: Path, imagenet_root: Path,
                                                        capsys) -> None:
    ckpt = _tiny(tmp_path / "m.pt", {})
    out = tmp_path / "o"
    code = cli.main([str(ckpt), "--target", "sim", "--calib", "imagenet", "--data-root",
                     str(imagenet_root), "--samples", "4", "--out", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    fidelity = json.loads((out / "fidelity.json").read_text())
    assert fidelity["samples"] == 4
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["options"]["calib"] == "imagenet"
    assert manifest["options"]["data_root"] == str(imagenet_root)


def test_export_calib_missing_dataset_exits_2_naming_the_place(tmp_path: Path) -> None:
    ckpt = _tiny(tmp_path / "m.pt", {"dataset": "digits"})
    assert EXPORT is not None
    done = subprocess.run([EXPORT, str(ckpt), "--target", "sim", "--calib", "cifar10", "--out",
                           "o"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == EXIT_USAGE, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr  # one line, no traceback
    assert str(tmp_path / "data") in done.stderr and "cifar-10-batches-py" in done.stderr
    assert not (tmp_path / "o").exists()


def test_energy_data_with_a_torchvision_layout_dataset(tmp_path: Path,
                                                       imagenet_root: Path) -> None:
    """Spikes counted per LIF equal an independent simulation of the written network on the
    hand-preprocessed images (no teacher recorded: CLIP preprocessing)."""
    from hardware.ir.network import LoihiNetwork
    from hardware.simulate.engine import simulate

    ckpt = _tiny(tmp_path / "m.pt", {})
    out = tmp_path / "report"
    assert cli_energy.main([str(ckpt), "--out", str(out), "--data", "imagenet", "--data-root",
                            str(imagenet_root), "--samples", "4", "--no-onnx", "--preset",
                            "int8-45nm"]) == 0
    data = json.loads((out / "energy.json").read_text())
    assert "imagenet" in data["assumptions"]["activity source"]
    images = _images_by_hand(torch.tensor([0, 0, 1, 1]), CLIP_MEAN, CLIP_STD)
    sim = simulate(LoihiNetwork.load(out / "network.npz"), images)
    layers = {row["name"]: row for row in data["layers"]}
    checked = 0
    for name, counts in sim.spike_counts.items():
        if name.endswith("qkv_lif"):
            q, k, v = (layers[name.replace("qkv_lif", f"{p}_lif")]["spikes_out"] for p in "qkv")
            assert q + k + v == pytest.approx(counts.sum() / 4, abs=1e-9)
        else:
            assert layers[name]["spikes_out"] == pytest.approx(counts.sum() / 4, abs=1e-9)
        checked += 1
    assert checked >= 10


def test_energy_missing_dataset_exits_2_and_leaves_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    ckpt = _tiny(tmp_path / "m.pt", {})
    monkeypatch.chdir(tmp_path)
    assert cli_energy.main([str(ckpt), "--out", "rep", "--data", "cifar10"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("spikeclip-energy:") and len(err.strip().splitlines()) == 1
    assert str(tmp_path / "data") in err and "cifar-10-batches-py" in err
    assert not (tmp_path / "rep").exists()
