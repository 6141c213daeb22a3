"""Price rules by hand, and the Markdown/JSON/PNG report built from hand-made counts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hardware.energy.counts import dense_counts, lif_counts, linear_counts
from hardware.energy.errors import UnknownPresetError
from hardware.energy.files import write_report
from hardware.energy.presets import (
    PRESETS,
    ann_energy_pj,
    get_preset,
    snn_energy_pj,
    sram_pj_per_byte,
)
from hardware.energy.report import build_report, default_assumptions, to_json, to_markdown


def _case5(samples: int = 1) -> list:
    """energy_digest §7.E case 5: dense 4→3, LIF(3) with 5 spikes per sample, 3→2; T=4."""
    raster = np.zeros((4, samples, 3), dtype=np.int64)
    raster[0, :, 0] = raster[1, :, 1] = raster[2, :, 0] = raster[2, :, 2] = raster[3, :, 1] = 1
    fc1 = dense_counts(name="fc1", op="linear", macs_per_run=12, in_numel=4, out_numel=3,
                       weights=12, samples=samples, steps=4, runs_per_sample=1)  # fmt: skip
    return [fc1, lif_counts(name="lif", spikes=raster),
            linear_counts(name="fc2", x=raster, out_features=2)]  # fmt: skip


def test_sram_curve_and_memory_rule_by_hand() -> None:
    assert sram_pj_per_byte(8 * 1024) == pytest.approx(10 / 4)
    assert sram_pj_per_byte(20 * 1024) == pytest.approx(15 / 4)  # halfway 8 KB→32 KB
    assert sram_pj_per_byte(10 * 1024 * 1024) == pytest.approx(100 / 4)  # clamped
    mem = PRESETS["memory-lemaire"]
    # case 1 layer: Linear 4→3, 3 input spikes → 9 synaptic events, 12 int8 weights
    x = np.array([[[1, 0, 1, 0]], [[0, 0, 0, 1]]])
    c = linear_counts(name="fc", x=x, out_features=3)
    c_w = 12 / 8192 * 10 / 4  # pJ per byte of a 12-byte buffer (linear from (0, 0))
    assert snn_energy_pj(c, mem) == pytest.approx(9 * 0.1 + 9 * c_w)  # add + weight read each
    c_a = 4 / 8192 * 10 / 4  # activation buffer: max(4, 3) bytes
    assert ann_energy_pj(c, mem) == pytest.approx(12 * 3.2 + 12 * c_w + (4 + 3) * c_a)


def test_unknown_preset_is_named() -> None:
    with pytest.raises(UnknownPresetError, match="'fp64'"):
        get_preset("fp64")
    assert all(p.source for p in PRESETS.values())
    assert "PROXY" in PRESETS["loihi2-proxy"].source


def test_totals_and_ratio_range_by_hand() -> None:
    rep = build_report(_case5(samples=2), presets=["paper-45nm", "int8-45nm", "loihi1-table2"],
                       assumptions={"time steps T": "4"})  # fmt: skip
    tot = {t.preset: t for t in rep.totals()}
    # per sample (B = 2 identical samples): paper SNN 12·4.6 + 10·0.9 = 64.2, ANN 18·4.6 = 82.8
    assert tot["paper-45nm"].snn_pj == pytest.approx(64.2)
    assert tot["paper-45nm"].ann_pj == pytest.approx(82.8)
    # int8: SNN 12·0.23 + 10·0.03 = 3.06; ANN 18·0.23 = 4.14
    assert tot["int8-45nm"].snn_pj == pytest.approx(3.06)
    assert tot["loihi1-table2"].snn_pj == pytest.approx(1013.5)
    assert tot["loihi1-table2"].ann_pj is None and tot["loihi1-table2"].ratio is None
    assert rep.ratio_range() == pytest.approx((3.06 / 4.14, 64.2 / 82.8))
    # literature: 4.6·12 (first layer once) + 0.9·fr·T·FLOPs (= 10 for a linear layer)
    assert rep.literature_pj() == pytest.approx(64.2)
    assert rep.count_totals()["neuron_updates"] == 12


def test_markdown_json_and_pngs(tmp_path) -> None:
    assumptions = default_assumptions(steps=4, samples=1, activity="hand raster",
                                      order="q_ktv", dense_runs=1)  # fmt: skip
    rep = build_report(_case5(), assumptions=assumptions, title="case 5", ann_onnx_macs=18)
    md = to_markdown(rep)
    for key in assumptions:
        assert f"**{key}**" in md
    for p in PRESETS.values():
        assert p.source in md
    assert "| **total** |" in md
    data = json.loads(json.dumps(to_json(rep), allow_nan=False))
    assert data["totals"]["energy_pj"]["paper-45nm"]["snn"] == pytest.approx(64.2)
    assert data["layers"][2]["sop_exact"] == 10
    # fc2 moves one int8 weight per synaptic event (10); the LIF reads+writes 4-byte state on
    # each of its 12 updates (96) and writes 5 spike bytes; the ANN fc2 reads its 6 weights once.
    assert data["layers"][2]["memory_bytes"]["snn"]["weights"] == 10
    assert data["layers"][1]["memory_bytes"]["snn"] == {
        "weights": 0,
        "state": 96,
        "spikes": 5,
        "activations": 0,
    }
    assert data["layers"][2]["memory_bytes"]["ann"]["weights"] == 6
    assert data["totals"]["ann_onnx_macs"] == 18
    paths = write_report(rep, tmp_path / "out")
    assert sorted(p.name for p in paths) == [
        "energy.json",
        "energy.md",
        "energy_firing_rate.png",
        "energy_per_layer.png",
    ]
    for p in paths:
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(x.name for x in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths)
