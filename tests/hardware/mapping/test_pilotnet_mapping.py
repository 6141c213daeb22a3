"""Intel's PilotNet SNN, imported from its netx file and mapped onto Loihi 2, against the cores
Intel's own compiler gave it (a regression test of the whole mapper, not of the core model).

Reference: the per-layer table Intel's compiler printed for this network in lava-dl's
``pilotnet_snn/benchmark.ipynb`` (tests/fixtures/lava-dl/README.md), typed here from the
README: netx block index -> cores. Tolerance (issue 23): every layer within ±20 %, the total
within ±10 % of 74.
"""

from __future__ import annotations

import json
import re

from _paths import PILOTNET_NET

from hardware.lower.from_netx import load_netx
from hardware.mapping.intel_tables import load_compiler_table, side_by_side
from hardware.mapping.mapper import map_network
from hardware.mapping.plots import write_plots
from hardware.mapping.profiles import load_target
from hardware.mapping.report import write_report

INTEL_CORES = {10: 1, 9: 1, 8: 1, 7: 12, 5: 2, 4: 3, 3: 3, 2: 13, 1: 25, 0: 13}
INTEL_TOTAL = 74


def _cores_by_block(scenario) -> dict[int, int]:
    return {int(re.search(r"\d+$", g.name).group()): g.cores for g in scenario.groups}


def test_pilotnet_snn_maps_like_intels_compiler_per_layer_and_in_total() -> None:
    mapping = map_network(load_netx(PILOTNET_NET), load_target("loihi2"))
    # The pessimistic bound is Intel's 2022 compiler (its cost database and split rule).
    pess = mapping.scenarios["pessimistic"]
    ours = _cores_by_block(pess)
    assert set(ours) == set(INTEL_CORES)
    for block, intel in INTEL_CORES.items():
        assert abs(ours[block] - intel) <= 0.2 * intel, (block, ours[block], intel)
    assert abs(pess.cores - INTEL_TOTAL) <= 0.1 * INTEL_TOTAL
    assert pess.chips == 1
    # The optimistic bound (a better compiler, 8,192 neurons, 16,000 words) needs fewer cores.
    assert mapping.scenarios["optimistic"].cores < pess.cores


def test_side_by_side_table_reads_intels_rows_from_the_package_data() -> None:
    mapping = map_network(load_netx(PILOTNET_NET), load_target("loihi2"))
    table = load_compiler_table()
    rows = side_by_side(table, mapping.scenarios["pessimistic"])
    assert {r.label: r.intel for r in rows}["dense → 100"] == 12
    assert table.total_cores == INTEL_TOTAL and sum(r.intel for r in rows) == INTEL_TOTAL
    assert all(r.ours is not None for r in rows)


def _report_rows(text: str) -> dict[str, list[str]]:
    """The side-by-side section's rows: label -> cells after the label."""
    section = text.split("## Next to Intel's compiler", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split("|") for line in section.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows[1:]}


def test_report_prints_intels_table_side_by_side_and_the_plot_is_written(tmp_path) -> None:
    mapping = map_network(load_netx(PILOTNET_NET), load_target("loihi2"))
    table = load_compiler_table()
    md, js = write_report(mapping, load_target("loihi2"), tmp_path, title="p", table=table)
    rows = _report_rows(md.read_text())
    # Columns: group, Intel, optimistic, pessimistic, error; labels as Intel printed them.
    by_block = {int(re.search(r"\d+$", cells[0]).group()): cells for cells in
                (rows[label] for label in rows if label != "**total**")}  # fmt: skip
    assert {b: int(c[1]) for b, c in by_block.items()} == INTEL_CORES
    for block, cells in by_block.items():
        assert abs(int(cells[3]) - INTEL_CORES[block]) <= 0.2 * INTEL_CORES[block]
    assert rows["**total**"][1] == f"**{INTEL_TOTAL}**"
    data = json.loads(js.read_text())["intel_compiler"]
    assert data["total_intel"] == INTEL_TOTAL
    assert sorted(r["intel"] for r in data["rows"]) == sorted(INTEL_CORES.values())
    paths = write_plots(mapping, tmp_path, stem="p", title="p", table=table)
    assert [p.name for p in paths] == ["p_cores.png", "p_vs_intel.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)


def test_report_without_a_compiler_table_has_no_side_by_side(tmp_path) -> None:
    mapping = map_network(load_netx(PILOTNET_NET), load_target("loihi2"))
    md, js = write_report(mapping, load_target("loihi2"), tmp_path, title="p")
    assert "Next to Intel's compiler" not in md.read_text()
    assert "intel_compiler" not in json.loads(js.read_text())
