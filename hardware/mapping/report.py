"""Mapping report in the shape of Intel's partition table: Markdown and JSON.

Per core group (one row): AxonIn (presynaptic neurons of all incoming edges), Neurons,
Synapses (dense-equivalent connections), worst-core synaptic memory (bits or 64-bit words),
delay bits, the split (channel slices × tiles), Cores, worst-core utilization % per resource of
the core's model (Intel's columns on Loihi 2) and the binding resource; then totals (cores,
chips) per scenario, so Loihi 2 results read as ranges. Also the lower bounds and how far the
mapping is from them, "what runs where" (with what a target without graded spikes moves off
the neurocores), where the chip mapping differs from the Lava graph, latency, host↔chip
traffic, failures, assumptions and every target number with its source.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hardware.mapping.intel_tables import CompilerTable, side_by_side
from hardware.mapping.profiles import TargetProfile
from hardware.mapping.records import GroupMapping, Mapping, ScenarioMapping
from hardware.mapping.serialize import summary_dict
from spikeclip.atomic_io import write_text_atomic

REPORT_FORMAT_VERSION = 1
BIT_ACCURACY_NOTE = (
    "Bit-accurate here means bit-exact to Lava 0.10's CPU fixed-point models "
    "(Loihi-1-style); not verified against Loihi 2 silicon (lava#322, lava#829)."
)


def _int(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"


def _range(lo: int | None, hi: int | None) -> str:
    """`lo` alone when equal, `lo – hi` otherwise; None prints as 'does not fit'."""
    if hi is None:
        return f"{_int(lo)} – does not fit"
    return _int(lo) if lo == hi else f"{_int(lo)} – {_int(hi)}"


def _seconds(s: float) -> str:
    if s >= 1.0:
        return f"{s:.3g} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} µs"


def neuron_lower_bound_chips(mapping: Mapping) -> dict[str, int]:
    """Chips needed by LIF + relay compartments alone (no synapses, axons, repeaters)."""
    out = {}
    for bound, s in mapping.scenarios.items():
        neurons = sum(g.neurons for g in s.groups if g.kind != "repeater")
        out[bound] = math.ceil(neurons / (s.limits.neurons * s.limits.cores_per_chip))
    return out


def _cores_by_kind(s: ScenarioMapping) -> dict[str, int]:
    out: dict[str, int] = {}
    for g in s.groups:
        out[g.kind] = out.get(g.kind, 0) + g.cores
    return out


_RESOURCE_LABELS = {
    "neurons": "Neurons",
    "input_axons": "AxonIn",
    "output_axons": "AxonOut",
    "memory_bits": "SynMem",
    "neuron_groups": "NeuronGr",
    "axon_in": "AxonIn",
    "syn_mem_words": "SynMem",
    "axon_map": "AxonMap",
    "axon_mem": "AxonMem",
}
"""Column labels of the per-core resources (Intel's partition-table names)."""


def _memory(g: GroupMapping) -> str:
    """Worst-core synaptic memory with its unit."""
    if "memory_bits" in g.demand:
        return f"{int(g.demand['memory_bits']):,} bits"
    return f"{int(g.demand.get('syn_mem_words', 0)):,} words"


def _partition_table(s: ScenarioMapping) -> list[str]:
    resources = list(s.groups[0].utilization) if s.groups else []
    head = (
        "| layer | kind | placement | AxonIn | Neurons | Synapses | SynMem/core | "
        "delay bits | split C×Ty×Tx | Cores | "
        + " | ".join(f"{_RESOURCE_LABELS.get(r, r)}%" for r in resources)
        + " | binding |"
    )
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for g in s.groups:
        util = " | ".join(f"{100 * g.utilization[r]:.1f}" for r in resources)
        rows.append(
            f"| {g.name} | {g.kind} | {g.placement} | {_int(g.input_axons)} | {_int(g.neurons)} "
            f"| {_int(g.synapses)} | {_memory(g)} | {g.max_delay_bits} | "
            f"{g.split.channel_groups}×{g.split.tiles_y}×{g.split.tiles_x} | {_int(g.cores)} | "
            f"{util} | {g.binding} |"
        )
    total_syn = sum(g.synapses for g in s.groups)
    rows.append(
        f"| **total** | | | {_int(sum(g.input_axons for g in s.groups))} | "
        f"{_int(sum(g.neurons for g in s.groups))} | {_int(total_syn)} | | | | "
        f"**{_int(s.cores)}** | " + " | ".join("" for _ in resources) + f" | {s.binding} |"
    )
    return rows


def _cell(mapping: Mapping, bound: str, fn: Callable[[ScenarioMapping], str]) -> str:
    if bound in mapping.scenarios:
        return fn(mapping.scenarios[bound])
    return "does not fit (see below)"


def _by_count(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v:,}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


def _ratio(s: ScenarioMapping) -> str:
    if s.lower is None or not s.lower.cores:
        return "—"
    return f"{s.cores / s.lower.cores:.2f}× ({_int(s.lower.cores)} cores, {s.lower.binding})"


def _residual(s: ScenarioMapping) -> str:
    other = "replicas" if s.residual == "accumulators" else "accumulators"
    alt = "" if s.other_residual_cores is None else f" ({other}: {s.other_residual_cores:,})"
    return s.residual + alt


def _summary_rows(mapping: Mapping) -> list[tuple[str, Callable[[ScenarioMapping], str]]]:
    lower = neuron_lower_bound_chips(mapping)
    return [
        ("cores", lambda s: _int(s.cores)),
        ("chips", lambda s: _int(s.chips)),
        ("cores / lower bound", _ratio),
        ("shared sums (residual stream)", _residual),
        ("chip pipeline depth (steps)", lambda s: _int(s.depth)),
        ("binding resource (most cores)", lambda s: s.binding),
        ("cores per binding resource", lambda s: _by_count(dict(s.cores_by_binding))),
        ("chips by compartment count alone", lambda s: _int(lower[s.bound])),
        (
            "cores by group kind",
            lambda s: ", ".join(f"{k}: {v:,}" for k, v in _cores_by_kind(s).items()),
        ),
        (
            "largest groups (cores)",
            lambda s: ", ".join(
                f"{g.name} {g.cores:,}" for g in sorted(s.groups, key=lambda g: -g.cores)[:4]
            ),
        ),
        ("edges crossing chips", lambda s: _int(s.interchip_edges)),
        ("time per step", lambda s: _seconds(s.latency.step_s)),
        ("time per image (T + depth steps)", lambda s: _seconds(s.latency.image_s)),
        ("images/s streaming", lambda s: f"{s.latency.images_per_s:.3g}"),
    ]


def _summary(mapping: Mapping) -> list[str]:
    bounds = list(mapping.scenarios) + [b for b in mapping.failures if b not in mapping.scenarios]
    lines = ["## Summary", "", "| | " + " | ".join(bounds) + " |", "|---|" + "---|" * len(bounds)]
    for label, fn in _summary_rows(mapping):
        lines.append(f"| {label} | " + " | ".join(_cell(mapping, b, fn) for b in bounds) + " |")
    lo, hi = mapping.chips_range()
    return lines + ["", f"**Chips needed: {_range(lo, hi)}.**", ""]


def _lower_bounds(mapping: Mapping) -> list[str]:
    """Each bound per scenario: the demand, the per-core limit, the cores it forces."""
    lines = [
        "## Lower bounds",
        "",
        "What any mapping onto these cores needs (`hardware/mapping/bounds.py`): every on-core "
        "neuron, every on-core synapse layer stored once at its weight width, every "
        "presynaptic neuron entering one core.",
        "",
        "| scenario | resource | demand | per core | cores | mapped cores / bound |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for bound, s in mapping.scenarios.items():
        if s.lower is None:
            continue
        for b in s.lower.bounds:
            ratio = f"{s.cores / b.cores:.2f}" if b.cores else "—"
            lines.append(
                f"| {bound} | {b.resource} | {_int(b.demand)} {b.unit} | {_int(b.per_core)} | "
                f"{_int(b.cores)} | {ratio} |"
            )
    return lines + [""]


def _percent(error: float | None) -> str:
    return "—" if error is None else f"{100 * error:+.0f} %"


def compiler_lines(mapping: Mapping, table: CompilerTable) -> list[str]:
    """Intel's compiler next to this mapper, per layer and in total (every scenario's cores;
    the error is the pessimistic scenario's, which models Intel's 2022 compiler)."""
    bounds = list(mapping.scenarios)
    rows = {b: side_by_side(table, s) for b, s in mapping.scenarios.items()}
    ref = "pessimistic" if "pessimistic" in rows else bounds[0]
    lines = [
        f"## Next to Intel's compiler ({table.network})",
        "",
        f"Intel's cores: {table.source}. Error: this mapper's `{ref}` scenario against Intel's.",
        "",
        "| layer | group | Intel's compiler | " + " | ".join(bounds) + " | error |",
        "|---|---|---:|" + "---:|" * len(bounds) + "---:|",
    ]
    for k, r in enumerate(rows[ref]):
        ours = " | ".join(_int(rows[b][k].ours) for b in bounds)
        lines.append(f"| {r.label} | {r.group} | {r.intel} | {ours} | {_percent(r.error)} |")
    total = mapping.scenarios[ref].cores
    cores = " | ".join(f"**{_int(mapping.scenarios[b].cores)}**" for b in bounds)
    error = _percent((total - table.total_cores) / table.total_cores)
    lines.append(f"| **total** | | **{table.total_cores}** | {cores} | {error} |")
    return lines + [""]


def compiler_dict(mapping: Mapping, table: CompilerTable) -> dict[str, Any]:
    """The JSON form of `compiler_lines`: per layer Intel's cores and each scenario's."""
    rows = {b: side_by_side(table, s) for b, s in mapping.scenarios.items()}
    return {
        "table": table.name,
        "source": table.source,
        "total_intel": table.total_cores,
        "rows": [
            {"label": r.label, "intel": r.intel, **{b: rows[b][k].ours for b in rows}}
            for k, r in enumerate(next(iter(rows.values())))
        ],
    }


def _offloaded(mapping: Mapping) -> list[str]:
    if not mapping.offloaded:
        return []
    lines = [
        "Moved off the neurocores (this target has no graded spikes: no current may leave or "
        "enter a neurocore):",
        "",
        "| layer | runs on | why | serves |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {o.layer} | {o.placement} | {o.reason} | {o.category} |" for o in mapping.offloaded
    ]
    return lines + [""]


def _placement(mapping: Mapping) -> list[str]:
    lines = [
        "## What runs where",
        "",
        "| placement | ops / image | % ops | neurons | % neurons |",
        "|---|---|---|---|---|",
    ]
    for p in mapping.placement:
        lines.append(
            f"| {p.placement} | {_int(p.ops)} | {100 * p.op_fraction:.2f} | {_int(p.neurons)} | "
            f"{100 * p.neuron_fraction:.2f} |"
        )
    return (
        lines
        + [
            "",
            "Ops are dense-equivalent (every connection every step, synapse replicas counted); "
            "relay compartments (graded currents to max-pool/readout) count as `neurocore-L2`.",
            "",
        ]
        + _offloaded(mapping)
    )


def _differences(mapping: Mapping) -> list[str]:
    """Where the chip mapping and the Lava graph / simulator differ (same integers)."""
    lines = ["## Chip mapping vs the Lava graph and the simulator", ""]
    for bound, s in mapping.scenarios.items():
        if s.residual == "accumulators":
            acc = sum(1 for g in s.groups if g.kind == "accumulator")
            lines.append(
                f"- {bound}: sums of synapse layers that several populations receive (the "
                f"residual stream) are materialized once on chip by {acc} graded accumulators, "
                "each aligned with the next by a synaptic delay on its one-to-one input; the "
                "Lava graph and the simulator sum every branch at each consumer (delayed "
                "per-consumer copies). Same integer currents; the chip pipeline is "
                f"{s.depth - mapping.depth} steps deeper ({s.depth} vs {mapping.depth})."
            )
        else:
            lines.append(
                f"- {bound}: each population stores every synapse layer it sums, delayed on chip "
                "by per-synapse delays (delay bits priced per weight); the Lava graph delays "
                "with its own processes (one copy per distinct delay)."
            )
    if any(g.kind == "relay" for s in mapping.scenarios.values() for g in s.groups):
        lines.append(
            "- Currents for off-neurocore ops (max-pool, readout) leave the chip through relay "
            "compartments (graded spikes); in Lava the ops' processes take the synapses' output "
            "ports directly."
        )
    if mapping.offloaded:
        lines.append(
            "- Layers listed under 'What runs where' as moved run on the x86 cores or the host "
            "here; the Lava graph runs every layer as a CPU process anyway."
        )
    return lines + [""]


def _latency(mapping: Mapping) -> list[str]:
    lines = [
        "## Latency",
        "",
        f"Assumed spike rate {mapping.spike_rate:g} per neuron per step (latency only).",
        "",
        "| | " + " | ".join(mapping.scenarios) + " |",
        "|---|" + "---|" * len(mapping.scenarios),
    ]
    for label, attr in (
        ("neurocore (slowest core + barrier + hops)", "neurocore_s"),
        ("embedded x86 (attention, max-pool)", "embedded_s"),
        ("host (round trips + link)", "host_s"),
        ("per step", "step_s"),
        ("per image", "image_s"),
    ):
        vals = " | ".join(_seconds(getattr(s.latency, attr)) for s in mapping.scenarios.values())
        lines.append(f"| {label} | {vals} |")
    return lines + [""]


def _traffic(mapping: Mapping) -> list[str]:
    t = mapping.traffic
    lines = ["## Off-neurocore traffic per image", "", "| path | category | bits / image |"]
    lines.append("|---|---|---|")
    lines += [f"| host ↔ chip | {cat} | {_int(bits)} |" for cat, bits in t.host_bits.items()]
    lines += [
        f"| neurocore ↔ embedded x86 | {cat} | {_int(bits)} |"
        for cat, bits in t.embedded_bits.items()
    ]
    return lines + [
        "",
        f"Per step: {t.host_round_trips_per_step} host exchange(s), "
        f"{t.embedded_round_trips_per_step} neurocore → x86 → neurocore round trip(s).",
        "",
    ]


def _tail(mapping: Mapping, target: TargetProfile) -> list[str]:
    """Partition tables, failures, assumptions and every target number with its source."""
    lines: list[str] = []
    for bound, s in mapping.scenarios.items():
        lines += [f"## Partition table ({bound})", ""] + _partition_table(s) + [""]
    if mapping.failures:
        lines += ["## Design rules that failed", ""]
        lines += [f"- {bound}: {err}" for bound, err in mapping.failures.items()] + [""]
    lines += ["## Assumptions", ""] + [f"- {a}" for a in mapping.assumptions] + [""]
    lines += [
        "## Target numbers and sources",
        "",
        "| key | low | high | unit | source |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {key} | {q.low} | {q.high} | {q.unit} | {q.source} |"
        for key, q in target.quantities.items()
    ]
    return lines


def render_markdown(
    mapping: Mapping, target: TargetProfile, *, title: str, note: str | None = None,
    table: CompilerTable | None = None,
) -> str:  # fmt: skip
    """The report as Markdown (`note`, e.g. "structure only (placeholder weights)", on top;
    given Intel's compiler `table` for this network, the side-by-side after the summary)."""
    lines = [f"# {title}", ""]
    if note:
        lines += [f"> **{note}**", ""]
    lines += [
        f"> {BIT_ACCURACY_NOTE}",
        "",
        f"Target `{mapping.target}` (generation `{mapping.generation}`); T = {mapping.T} steps, "
        f"pipeline depth {mapping.depth} steps.",
        "",
    ]
    lines += _summary(mapping)
    if table is not None and mapping.scenarios:
        lines += compiler_lines(mapping, table)
    lines += _lower_bounds(mapping) + _placement(mapping)
    lines += _differences(mapping) + _latency(mapping) + _traffic(mapping)
    lines += _tail(mapping, target)
    return "\n".join(lines) + "\n"


def report_dict(
    mapping: Mapping, *, title: str, note: str | None = None, table: CompilerTable | None = None
) -> dict[str, Any]:
    """The JSON form: `summary_dict` plus title, note, chips lower bound and format version
    (and ``intel_compiler``, the side-by-side, given a compiler `table`)."""
    data = summary_dict(mapping)
    data.update(
        format_version=REPORT_FORMAT_VERSION,
        title=title,
        note=note,
        bit_accuracy=BIT_ACCURACY_NOTE,
        chips_by_neurons_alone=neuron_lower_bound_chips(mapping),
    )
    if table is not None and mapping.scenarios:
        data["intel_compiler"] = compiler_dict(mapping, table)
    return data


def write_report(
    mapping: Mapping,
    target: TargetProfile,
    out_dir: str | os.PathLike,
    *,
    stem: str = "mapping",
    title: str = "Mapping report",
    note: str | None = None,
    table: CompilerTable | None = None,
) -> tuple[Path, Path]:
    """Write `<stem>.md` and `<stem>.json` into `out_dir` atomically; returns both paths.
    Given Intel's compiler `table` for the network, both carry the side-by-side."""
    out = Path(out_dir)
    md, js = out / f"{stem}.md", out / f"{stem}.json"
    write_text_atomic(md, render_markdown(mapping, target, title=title, note=note, table=table))
    data = report_dict(mapping, title=title, note=note, table=table)
    write_text_atomic(js, json.dumps(data, indent=1) + "\n")
    return md, js
