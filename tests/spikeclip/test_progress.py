"""Progress bars draw on a terminal only, and never under ``--quiet`` or `progress.quiet`.

Reference: what reaches a stand-in stderr (a StringIO that says it is, or is not, a terminal)
while the calibration loops and the export CLI run.
"""

from __future__ import annotations

import io

import pytest
import torch
from _quant_helpers import active_tiny_encoder, tiny_images

from export.cli import export as cli
from export.cli.stages import Stage
from hardware.lower.from_torch import graph_from_image_encoder
from hardware.quantize.calibrate import float_stats
from spikeclip import progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _calibrate() -> None:
    graph = graph_from_image_encoder(active_tiny_encoder())
    float_stats(graph, tiny_images(6), batch_size=2)


@pytest.mark.parametrize(("stream", "quiet", "drawn"), [
    (_Terminal, False, True), (_Terminal, True, False), (io.StringIO, False, False)])
def test_calibration_bar_only_on_a_terminal_and_not_quiet(monkeypatch, stream, quiet, drawn):
    err = stream()
    monkeypatch.setattr("sys.stderr", err)
    with progress.quiet(quiet):
        _calibrate()
    text = err.getvalue()
    assert ("quantize: float run" in text) is drawn
    if drawn:
        assert "0/3" in text  # 6 images in batches of 2
    else:
        assert text == ""
    assert progress.enabled() is (stream is _Terminal)  # quiet() restored the setting


def test_export_quiet_turns_every_stage_bar_off(monkeypatch, tmp_path):
    seen: list[bool] = []

    def stage(ctx) -> str:
        seen.append(progress.enabled())
        for _ in progress.bar(range(3), desc="stage-bar"):
            pass
        return "done"

    monkeypatch.setattr(cli, "STAGES", (Stage("fake", "fake", stage, frozenset({"nir"})),))
    model = tmp_path / "m.pt"
    torch.save({}, model)
    for quiet in (False, True):
        err = _Terminal()
        monkeypatch.setattr("sys.stderr", err)
        args = [str(model), "--target", "nir", "--out", str(tmp_path / f"o{quiet}")]
        assert cli.main(args + (["--quiet"] if quiet else [])) == 0
        assert ("stage-bar" in err.getvalue()) is not quiet
    assert seen == [True, False]
