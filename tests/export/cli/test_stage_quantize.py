"""The export's quantize stage lowers the model.nir it wrote (the file is the contract between
stages) and stops with exit 9, before writing anything, when one calibration batch cannot fit.

Reference: quantizing ``to_nir(model.image_encoder)`` directly (what the stage did before it
read the file back); the file-based network must equal it bit for bit.
"""

from __future__ import annotations

import pytest
import torch
from _quant_helpers import tiny_images

import hardware.quantize.calibrate as calibrate
from export.cli.stages import EvalData, ExportContext, ExportOptions, stage_nir, stage_quantize
from export.nir import to_nir, write_nir
from hardware.quantize.image import quantize
from spikeclip import checkpoint
from spikeclip.config import SpikeCLIPConfig
from spikeclip.errors import InsufficientMemoryError
from spikeclip.memory import AvailableMemory
from spikeclip.model import SpikeCLIP


def _active_model(seed: int) -> SpikeCLIP:
    """The tiny SpikeCLIP with BN statistics drawn so that every image LIF fires."""
    torch.manual_seed(seed)
    model = SpikeCLIP(SpikeCLIPConfig.tiny())
    with torch.no_grad():
        for m in model.image_encoder.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(1.5, 3.0)
                m.bias.normal_(0.3, 0.5)
    return model.eval()


def _context(tmp_path) -> ExportContext:
    path = checkpoint.save(tmp_path / "model.pt", _active_model(0))
    folder = tmp_path / "out"
    folder.mkdir()
    opts = ExportOptions(model_path=path, target="sim", out=folder)
    ctx = ExportContext(options=opts, folder=folder, checkpoint=checkpoint.load(path))
    calib = tiny_images(16, seed=2).float()
    ctx.data = EvalData(name="random", calib=calib, images=calib[:2],
                        labels=torch.zeros(2, dtype=torch.int64), class_names=("a",),
                        templates=("{}",))
    return ctx


def test_the_network_from_model_nir_equals_the_one_from_the_model(tmp_path):
    ctx = _context(tmp_path)
    stage_nir(ctx)
    stage_quantize(ctx)
    ref, rec = quantize(to_nir(ctx.checkpoint.model.image_encoder), ctx.data.calib)
    assert ctx.network == ref
    assert ctx.quant_record.to_dict() == rec.to_dict()
    ref.save(tmp_path / "ref.npz")
    assert (ctx.folder / "network.npz").read_bytes() == (tmp_path / "ref.npz").read_bytes()


def test_the_stage_quantizes_the_file_not_the_checkpoint(tmp_path):
    ctx = _context(tmp_path)
    stage_nir(ctx)
    other = _active_model(1)  # same config, other weights, written over model.nir
    write_nir(to_nir(other, tower="both"), ctx.folder / "model.nir")
    stage_quantize(ctx)
    from_file, _ = quantize(to_nir(other.image_encoder), ctx.data.calib)
    from_checkpoint, _ = quantize(to_nir(ctx.checkpoint.model.image_encoder), ctx.data.calib)
    assert ctx.network == from_file
    assert not ctx.network == from_checkpoint


def test_no_memory_for_one_batch_is_exit_9_before_any_file(tmp_path, monkeypatch):
    ctx = _context(tmp_path)
    stage_nir(ctx)
    monkeypatch.setattr(calibrate, "available_memory", lambda: AvailableMemory(system=1000))
    with pytest.raises(InsufficientMemoryError, match="only 1000 B is available") as err:
        stage_quantize(ctx)
    assert err.value.exit_code == 9
    assert not (ctx.folder / "network.npz").exists()
