"""`spikeclip-energy` on a tiny checkpoint: a structure-only report, clearly labelled."""

from __future__ import annotations

import json

from export.cli.energy import main
from spikeclip.checkpoint import save
from spikeclip.config import SpikeCLIPConfig
from spikeclip.model import SpikeCLIP


def test_structure_only_report_for_tiny_checkpoint(tmp_path, capsys) -> None:
    ckpt = save(tmp_path / "tiny.pt", SpikeCLIP(SpikeCLIPConfig.tiny()))
    out = tmp_path / "report"
    assert main([str(ckpt), "--out", str(out), "--preset", "paper-45nm"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["ann_twin.onnx", "energy.json", "energy.md", "energy_firing_rate.png",
                     "energy_per_layer.png", "manifest.json"]  # fmt: skip
    assert json.loads((out / "manifest.json").read_text())["format"] == "spikeclip-energy"
    data = json.loads((out / "energy.json").read_text())
    assert "structure only" in data["assumptions"]["activity source"]
    assert "STRUCTURE ONLY" in (out / "energy.md").read_text()
    # tiny twin: 433,344 layer MACs (hand count in test_onnx_export) + 16 readout MACs
    assert data["totals"]["ann_onnx_macs"] == 433_360
    assert data["totals"]["counts"]["ann_macs"] == 433_344
    # dense upper bound, T = 4: 4·364,416 synaptic ops (test_energy_structure)
    assert data["totals"]["counts"]["sop_exact"] == 4 * 364_416
    assert [p["name"] for p in data["presets"]] == ["paper-45nm"]


def test_bad_checkpoint_exits_3_with_one_line(tmp_path, capsys) -> None:
    # the error's own code (spikeclip.errors: 3 = the model file), not a generic 1
    assert main([str(tmp_path / "missing.pt"), "--out", str(tmp_path / "o")]) == 3
    assert list(tmp_path.iterdir()) == []  # no (empty) output folder left behind
    err = capsys.readouterr().err.strip()
    assert err.startswith("spikeclip-energy:") and "missing.pt" in err and "\n" not in err
    assert not (tmp_path / "o").exists()


def test_measured_report_counts_the_simulators_spikes(tmp_path) -> None:
    """With --data, spikes_out per LIF equals an independent run of the written network."""
    import numpy as np
    import torch

    from hardware.ir.network import LoihiNetwork
    from hardware.simulate.engine import simulate
    from spikeclip.training.data import digits_splits

    torch.manual_seed(1)
    ckpt = save(tmp_path / "tiny.pt", SpikeCLIP(SpikeCLIPConfig.tiny()))
    out = tmp_path / "report"
    assert main([str(ckpt), "--out", str(out), "--data", "digits", "--samples", "8",
                 "--no-onnx", "--preset", "int8-45nm"]) == 0  # fmt: skip
    data = json.loads((out / "energy.json").read_text())
    assert "structure only" not in data["assumptions"]["activity source"]
    images = digits_splits(SpikeCLIPConfig.tiny().img_size).test.images[:8]
    sim = simulate(LoihiNetwork.load(out / "network.npz"), images)
    layers = {row["name"]: row for row in data["layers"]}
    checked = 0
    for name, counts in sim.spike_counts.items():
        if name.endswith("qkv_lif"):  # split into q/k/v rows in the report
            q, k, v = (layers[name.replace("qkv_lif", f"{p}_lif")]["spikes_out"] for p in "qkv")
            assert q + k + v == counts.sum() / 8
        else:
            assert layers[name]["spikes_out"] == counts.sum() / 8
        checked += 1
    assert checked >= 10 and np.isclose(data["totals"]["counts"]["ann_macs"], 433_344)
