"""`spikeclip-energy` on a tiny checkpoint: a structure-only report, clearly labelled."""

from __future__ import annotations

import json

from hardware.cli_energy import main
from spikeclip.checkpoint import save
from spikeclip.config import SpikeCLIPConfig
from spikeclip.model import SpikeCLIP


def test_structure_only_report_for_tiny_checkpoint(tmp_path, capsys) -> None:
    ckpt = save(tmp_path / "tiny.pt", SpikeCLIP(SpikeCLIPConfig.tiny()))
    out = tmp_path / "report"
    assert main([str(ckpt), "--out", str(out), "--preset", "paper-45nm"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["ann_twin.onnx", "energy.json", "energy.md", "energy_firing_rate.png",
                     "energy_per_layer.png"]  # fmt: skip
    data = json.loads((out / "energy.json").read_text())
    assert "structure only" in data["assumptions"]["activity source"]
    assert "STRUCTURE ONLY" in (out / "energy.md").read_text()
    # tiny twin: 433,344 layer MACs (hand count in test_onnx_export) + 16 readout MACs
    assert data["totals"]["ann_onnx_macs"] == 433_360
    assert data["totals"]["counts"]["ann_macs"] == 433_344
    # dense upper bound, T = 4: 4·364,416 synaptic ops (test_energy_structure)
    assert data["totals"]["counts"]["sop_exact"] == 4 * 364_416
    assert [p["name"] for p in data["presets"]] == ["paper-45nm"]


def test_bad_checkpoint_exits_1_with_one_line(tmp_path, capsys) -> None:
    assert main([str(tmp_path / "missing.pt"), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("spikeclip-energy:") and "missing.pt" in err and "\n" not in err
