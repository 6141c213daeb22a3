"""The export's Lava stage estimates its peak memory from the quantized network before any Lava
process starts: too little memory is exit 9 naming the stage and the estimate, Lava never runs
and no output folder is left."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from _quant_helpers import active_tiny_model

from export.cli import export as cli
from export.cli import stages
from export.lava import memory, runner
from export.lava.graph import to_lava
from spikeclip import SpikeCLIP, SpikeCLIPConfig, save
from spikeclip.checkpoint import load
from spikeclip.errors import EXIT_MEMORY
from spikeclip.memory import AvailableMemory, format_bytes


def test_lava_stage_exits_9_before_starting_lava(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.manual_seed(0)
    model = save(tmp_path / "tiny.pt", SpikeCLIP(SpikeCLIPConfig.tiny()),
                 metadata={"dataset": "digits"})
    started: list[object] = []
    monkeypatch.setattr(runner, "run_lava", lambda *a, **k: started.append(a))
    monkeypatch.setattr(runner.LavaSession, "run", lambda self: started.append(self))
    # 64 MiB: below the estimate's runtime base (512 MiB), above what the other stages plan
    monkeypatch.setattr(memory, "available_memory", lambda: AvailableMemory(system=64 << 20))
    monkeypatch.setattr(stages, "CALIBRATION_IMAGES", 16)
    out = tmp_path / "o"
    code = cli.main([str(model), "--target", "loihi", "--samples", "4", "--run-lava", "2",
                     "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == EXIT_MEMORY == 9, err
    assert started == []
    assert re.search(r"tiny\.pt: stage lava: the Lava run needs about 5\d\d MiB \(\d+ Lava "
                     r"processes, [0-9.]+ KiB of arrays for 2 sample\(s\)\), but only 64 MiB is "
                     r"available", err), err
    assert not out.exists()


class _Stop(Exception):
    """Raised by the stubbed Lava run: the stage got past its memory check."""


def test_the_report_states_the_estimate_and_what_is_available(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save(tmp_path / "m.pt", active_tiny_model())
    folder = tmp_path / "out"
    folder.mkdir()
    opts = stages.ExportOptions(model_path=path, target="loihi", out=folder, run_lava=3)
    ctx = stages.ExportContext(options=opts, folder=folder, checkpoint=load(path))
    images = torch.randn(20, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    ctx.data = stages.EvalData(name="random", calib=images[:16], images=images[16:],
                               labels=torch.arange(4) % 3, class_names=("a", "b", "c"),
                               templates=("{}",))
    stages.stage_nir(ctx)
    stages.stage_quantize(ctx)

    def stop(*_a, **_k):
        raise _Stop

    monkeypatch.setattr(runner, "run_lava", stop)
    monkeypatch.setattr(memory, "available_memory", lambda: AvailableMemory(system=3 << 30))
    with pytest.raises(_Stop):
        stages.stage_lava(ctx)
    want = memory.estimate_lava_memory(to_lava(ctx.network), 3).total_bytes
    assert (1 << 29) < want < (1 << 30)  # the 512 MiB base + a tiny network's arrays
    assert f"- Lava stage: estimated peak {format_bytes(want)}, available 3 GiB" in (
        ctx.summary_lines)
