"""`spikeclip.training.loop.train_loop` on a one-weight model: the resume state is read through
`spikeclip.safe_load` (a damaged or NaN state is a one-line `CheckpointError`, another stage's
state a usage error), and end-of-epoch resume saves follow `state_every_epochs`."""

from __future__ import annotations

import struct
import zipfile

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from spikeclip.errors import (
    EXIT_BAD_MODEL,
    EXIT_USAGE,
    CorruptCheckpoint,
    NonFiniteTensor,
    SpikeCLIPError,
)
from spikeclip.training import loop
from spikeclip.training.loop import STATE_FILE, LoopConfig, ResumeStateError, train_loop


def _run(workdir, *, stage="s", epochs=3, resume=False, **cfg):
    torch.manual_seed(0)
    model = nn.Linear(1, 1, bias=False)
    data = TensorDataset(torch.arange(8.0).unsqueeze(1))

    def step(batch):
        loss = (model(batch[0]) - 1.0).pow(2).mean()
        return loss, float(loss.detach())

    config = LoopConfig(epochs=epochs, batch_size=4, lr=0.01, progress=False, **cfg)
    result = train_loop(stage=stage, modules={"m": model}, params=list(model.parameters()),
                        dataset=data, step_fn=step, cfg=config, workdir=workdir, resume=resume)
    return model, result


def test_a_damaged_resume_state_is_refused_naming_the_file(tmp_path):
    _run(tmp_path, max_steps=3)  # stops in epoch 2 and leaves state.pt
    state = tmp_path / STATE_FILE
    with zipfile.ZipFile(state) as archive:
        record = next(i for i in archive.infolist() if "/data/" in i.filename)
    raw = bytearray(state.read_bytes())
    name_len, extra_len = struct.unpack_from("<HH", raw, record.header_offset + 26)
    raw[record.header_offset + 30 + name_len + extra_len] ^= 0xFF  # a tensor's first byte
    state.write_bytes(bytes(raw))
    with pytest.raises(CorruptCheckpoint, match=f"'{record.filename}' fails its CRC-32") as refused:
        _run(tmp_path, resume=True)
    assert refused.value.exit_code == EXIT_BAD_MODEL and refused.value.path == state


def test_a_nan_resume_state_is_refused_naming_the_tensor(tmp_path):
    _run(tmp_path, max_steps=3)
    state = torch.load(tmp_path / STATE_FILE, weights_only=True)
    state["modules"]["m"]["weight"].fill_(float("nan"))
    torch.save(state, tmp_path / STATE_FILE)
    with pytest.raises(NonFiniteTensor, match="tensor weight holds non-finite values"):
        _run(tmp_path, resume=True)


def test_another_stages_state_is_a_usage_error(tmp_path):
    _run(tmp_path, max_steps=3, stage="align-text")
    with pytest.raises(ResumeStateError, match="state of stage 'align-text', not 'finetune'") as e:
        _run(tmp_path, resume=True, stage="finetune")
    assert isinstance(e.value, SpikeCLIPError) and e.value.exit_code == EXIT_USAGE


def test_resumed_equals_uninterrupted(tmp_path):
    ref, full = _run(tmp_path / "ref")
    _run(tmp_path / "cut", max_steps=3)
    resumed, rest = _run(tmp_path / "cut", resume=True)
    assert torch.equal(resumed.weight, ref.weight)
    assert (rest.global_step, rest.steps_run) == (full.global_step, 6 - 3)


@pytest.mark.parametrize(("every", "saved_after"), [(1, [1, 2, 3, 4, 5]), (2, [2, 4, 5])])
def test_end_of_epoch_saves_follow_state_every_epochs(tmp_path, monkeypatch, every, saved_after):
    # Before: --state-every-epochs was accepted but state.pt was written after every epoch.
    saved = []
    monkeypatch.setattr(loop, "atomic_save", lambda obj, path: saved.append(dict(obj["position"])))
    _run(tmp_path, epochs=5, state_every_epochs=every)
    assert [p["epoch"] for p in saved] == saved_after  # the last epoch always
