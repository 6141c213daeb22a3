"""Partition-table report: Markdown and JSON content, ranges, failures, atomic writes."""

from __future__ import annotations

import json

from hardware.ir.layers import LIFLayer
from hardware.ir.network import LoihiNetwork
from hardware.lower.topology import STRUCTURE_ONLY, image_tower_structure
from hardware.mapping.mapper import map_network
from hardware.mapping.profiles import load_target
from hardware.mapping.report import neuron_lower_bound_chips, render_markdown, write_report
from spikeclip.config import SpikeCLIPConfig


def test_report_files_carry_the_table_ranges_and_the_structure_only_label(tmp_path) -> None:
    net = image_tower_structure(SpikeCLIPConfig.tiny())
    target = load_target("loihi2")
    mapping = map_network(net, target)
    md, js = write_report(mapping, target, tmp_path, stem="m", title="tiny", note=STRUCTURE_ONLY)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.md"]  # no temp files left
    text = md.read_text()
    assert "structure only (placeholder weights)" in text
    assert "| layer | kind | placement | AxonIn | Neurons | Synapses |" in text
    assert "Chips needed:" in text and "not verified against Loihi 2 silicon" in text
    for key in ("core_model.neurons_per_core", "core.max_delay", "timing.host_round_trip_s"):
        assert f"| {key} |" in text  # every target number is listed with its source
    data = json.loads(js.read_text())
    assert data["note"] == STRUCTURE_ONLY and data["format_version"] == 1
    opt = data["scenarios"]["optimistic"]
    assert opt["cores"] == sum(g["cores"] for g in opt["groups"])
    assert data["chips_range"] == list(mapping.chips_range())
    assert {p["placement"] for p in data["placement"]} == {
        "neurocore",
        "neurocore-L2",
        "embedded",
        "host",
    }
    # the totals row shows the optimistic core count in bold
    assert f"**{opt['cores']:,}**" in text


def test_report_states_a_range_and_the_neuron_lower_bound() -> None:
    # 6000 neurons: 1 core (8192/core) – 2 cores (4096/core); by neurons alone 1 chip each.
    net = LoihiNetwork(
        T=1, layers=(LIFLayer(name="n", shape=(6000,), du=0, dv=0, vth=1),), edges=()
    )
    target = load_target("loihi2")
    mapping = map_network(net, target)
    assert neuron_lower_bound_chips(mapping) == {"optimistic": 1, "pessimistic": 1}
    text = render_markdown(mapping, target, title="t")
    assert "| cores | 1 | 2 |" in text
    assert "**Chips needed: 1.**" in text
