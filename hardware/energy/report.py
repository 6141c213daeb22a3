"""The energy report: per-layer table, totals and SNN/ANN ratios per preset, with assumptions.

All numbers in the report are **per sample** (a layer's totals ÷ its B samples; all T steps
included). Energies are in pJ in JSON and in readable units (pJ … mJ) in Markdown. Every report
carries an assumptions block (energy_digest §7.C) and gives SNN/ANN ratios as a range over the
presets that price the ANN, never one headline number.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from hardware.energy.counts import COUNT_FIELDS, LayerCounts
from hardware.energy.deployment import CHIP_LINK, HOST_LINK, DeploymentEnergy
from hardware.energy.presets import (
    PRESETS,
    Preset,
    ann_energy_pj,
    ann_traffic,
    snn_energy_pj,
    snn_traffic,
)

FORMAT = "spikeclip-energy-report"
FORMAT_VERSION = 1
#: The literature's formula (energy_digest §2), reproduced for comparison only.
LIT_E_MAC_PJ, LIT_E_AC_PJ = 4.6, 0.9

TABLE_FIELDS = (
    "ann_macs",
    "snn_dense_ops",
    "sop_exact",
    "sop_rate",
    "dense_macs",
    "neuron_updates",
    "spikes_out",
)

CAVEAT = (
    "Counts are exact; prices are not. Once memory and data movement are counted, SNNs beat "
    "equal-capacity quantized ANNs only at low activity (Dampfhoffer et al. 2023: 0.15-1.38 "
    "spikes/synapse/inference; Yan et al. 2024: < 5.7 % spike rate at T=5)."
)


def default_assumptions(
    *,
    steps: int,
    samples: int,
    activity: str,
    order: str,
    dense_runs: int,
    hops: float = 0.0,
) -> dict[str, str]:
    """The assumptions block (energy_digest §7.C); callers may add or override entries."""
    first = "once per sample (hoisted: static image, host)" if dense_runs == 1 else "every step"
    return {
        "time steps T": str(steps),
        "samples behind the counts": str(samples),
        "activity source": activity,
        "counts per": "sample (totals / B; all T steps included; never / T)",
        "first layer (conv0) and head": f"dense MACs, run {first}",
        "BatchNorm": "folded into the preceding weights and biases (no separate ops)",
        "bias": "bias adds listed separately; not priced",
        "residual stream": "real-valued adds, not counted (membrane shortcut)",
        "attention": f"order {order} (q_ktv = Q(KᵀV), qkt_v = (QKᵀ)V); spike×spike = "
        "AND-popcount, spike×integer = nnz·fan-out; not a Loihi synapse (runs embedded) but "
        "priced as synops in Loihi presets",
        "synaptic ops": "exact per-edge fan-out (conv borders, stride, groups); zero weights "
        "not skipped; integer multi-spikes count k events",
        "neuron updates": "every neuron every step; Loihi 'active' = spiked this step",
        "MAC convention": "1 MAC = 1 multiply-accumulate (FLOPs = 2 MACs)",
        "ANN baseline": "ANN twin (LIF → ReLU, T = 1), same precision as the preset prices it",
        "text tower": "class matrix precomputed on the host once; not counted per image",
        "off-chip": "conv0, max-pool, readout/head and logits on host/embedded (not priced in "
        "Loihi presets)",
        "routing": f"mean hops per spike = {hops:g}",
        "static power": "not included",
        "hardware": "not bit-verified on Loihi 2 silicon; Loihi 2 prices are a Loihi 1 proxy",
        "caveat": CAVEAT,
    }


@dataclass(frozen=True, kw_only=True)
class PresetTotal:
    """Totals of one preset, per sample, in pJ; ``ann_pj`` None where the preset has no ANN."""

    preset: str
    snn_pj: float
    ann_pj: float | None

    @property
    def ratio(self) -> float | None:
        """SNN energy / ANN energy (None without an ANN price)."""
        return self.snn_pj / self.ann_pj if self.ann_pj else None


@dataclass(frozen=True, kw_only=True)
class EnergyReport:
    """Everything the Markdown, JSON and plots show (per sample); ``deployment``: the data
    movement of each mapping scenario (empty without a mapping), priced with the spike and hop
    energies of ``deployment_preset``."""

    title: str
    layers: tuple[LayerCounts, ...]
    presets: tuple[Preset, ...]
    assumptions: Mapping[str, str]
    ann_onnx_macs: int | None = None
    deployment: tuple[DeploymentEnergy, ...] = ()
    deployment_preset: str = ""

    def layer_energy_pj(self, layer: LayerCounts, preset: Preset) -> tuple[float, float | None]:
        """(SNN, ANN) energy of one layer per sample in pJ."""
        ann = ann_energy_pj(layer, preset)
        return (
            snn_energy_pj(layer, preset) / layer.samples,
            None if ann is None else ann / layer.samples,
        )

    def totals(self) -> list[PresetTotal]:
        """Per-preset totals over all layers."""
        out = []
        for p in self.presets:
            pairs = [self.layer_energy_pj(layer, p) for layer in self.layers]
            anns = [a for _, a in pairs]
            ann = None if any(a is None for a in anns) else sum(anns)
            out.append(PresetTotal(preset=p.name, snn_pj=sum(s for s, _ in pairs), ann_pj=ann))
        return out

    def ratio_range(self) -> tuple[float, float] | None:
        """(min, max) SNN/ANN energy ratio over presets that price the ANN."""
        ratios = [t.ratio for t in self.totals() if t.ratio is not None]
        return (min(ratios), max(ratios)) if ratios else None

    def count_totals(self) -> dict[str, float]:
        """Per-sample sums of every count field (and sop_rate)."""
        return {
            f: sum(layer.per_sample(f) for layer in self.layers)
            for f in (*COUNT_FIELDS, "sop_rate")
        }

    def literature_pj(self) -> float:
        """The literature's estimate: 4.6 pJ · first-layer MACs (once) + 0.9 pJ · Σ fr·T·FLOPs."""
        first = sum(
            layer.per_sample("ann_macs") for layer in self.layers if layer.in_kind == "dense"
        )
        return LIT_E_MAC_PJ * first + LIT_E_AC_PJ * self.count_totals()["sop_rate"]


def build_report(
    layers: Sequence[LayerCounts],
    *,
    assumptions: Mapping[str, str],
    presets: Sequence[str] | None = None,
    title: str = "Energy report",
    ann_onnx_macs: int | None = None,
    hops: float = 0.0,
    deployment: Sequence[DeploymentEnergy] = (),
    deployment_preset: str = "",
) -> EnergyReport:
    """Bundle counts, presets (default: all, in `PRESETS` order) and assumptions; ``hops``:
    mean mesh hops per spike for the Loihi presets (from a mapping; 0 without one)."""
    chosen = tuple(
        replace(PRESETS[name], hops=hops) if PRESETS[name].rule == "loihi" else PRESETS[name]
        for name in (presets or PRESETS)
    )
    return EnergyReport(
        title=title,
        layers=tuple(layers),
        presets=chosen,
        assumptions=dict(assumptions),
        ann_onnx_macs=ann_onnx_macs,
        deployment=tuple(deployment),
        deployment_preset=deployment_preset,
    )


def format_energy(pj: float | None) -> str:
    """``pj`` picojoules in the largest unit (pJ, nJ, µJ, mJ, J) that keeps it ≥ 1."""
    if pj is None:
        return "n/a"
    for unit, scale in (("J", 1e12), ("mJ", 1e9), ("µJ", 1e6), ("nJ", 1e3)):
        if abs(pj) >= scale:
            return f"{pj / scale:.4g} {unit}"
    return f"{pj:.4g} pJ"


def _num(x: float | None) -> str:
    if x is None:
        return "n/a"
    if float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.2f}"


def _counts_table(rep: EnergyReport) -> list[str]:
    head = ["layer", "op", "in", "fr_in", "fr_out", *TABLE_FIELDS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for layer in rep.layers:
        fr_in = f"{layer.fr_in:.4f}" if layer.in_elements else ""
        fr_out = f"{layer.fr_out:.4f}" if layer.neuron_updates else ""
        op = layer.op + (f" ({layer.order})" if layer.order else "")
        cells = [layer.name, op, layer.in_kind, fr_in, fr_out]
        cells += [_num(layer.per_sample(f)) for f in TABLE_FIELDS]
        lines.append("| " + " | ".join(cells) + " |")
    tot = rep.count_totals()
    lines.append("| **total** | | | | | " + " | ".join(_num(tot[f]) for f in TABLE_FIELDS) + " |")
    return lines


def _energy_table(rep: EnergyReport) -> list[str]:
    head = ["layer", *(p.name for p in rep.presets)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for layer in rep.layers:
        cells = [format_energy(rep.layer_energy_pj(layer, p)[0]) for p in rep.presets]
        lines.append("| " + " | ".join([layer.name, *cells]) + " |")
    return lines


def _deployment_share(rep: EnergyReport, d: DeploymentEnergy, end: int) -> float:
    """Data movement's share of (neurocore SNN energy of the deployment preset + movement)."""
    snn = next((t.snn_pj for t in rep.totals() if t.preset == rep.deployment_preset), 0.0)
    moved = d.total_pj(end)
    return moved / (snn + moved) if snn + moved else 0.0


def _deployment(rep: EnergyReport) -> list[str]:
    """The multi-chip data-movement section (empty without a mapping)."""
    if not rep.deployment:
        return []
    out = [
        "## Multi-chip deployment: data movement per sample",
        "",
        f"Spike and hop energies of `{rep.deployment_preset}`; chip-to-chip links "
        f"{CHIP_LINK.low:g}–{CHIP_LINK.high:g} {CHIP_LINK.unit}, host link "
        f"{HOST_LINK.low:g}–{HOST_LINK.high:g} {HOST_LINK.unit} (sources below). Host and "
        "embedded traffic: every element every step (an upper bound).",
        "",
        "| scenario | chips | mean hops | routed messages | chip-crossing bits | host bits | "
        "embedded bits | routing | chip links | host link | embedded | share of total |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for d in rep.deployment:
        lo, hi = _deployment_share(rep, d, 0), _deployment_share(rep, d, 1)
        out.append(
            f"| {d.scenario} | {d.chips} | {d.mean_hops:.2f} | {_num(d.messages)} | "
            f"{_num(d.crossing_bits)} | {_num(d.host_bits)} | {_num(d.embedded_bits)} | "
            f"{format_energy(d.routing_pj)} | {format_energy(d.crossing_pj[0])}–"
            f"{format_energy(d.crossing_pj[1])} | {format_energy(d.host_pj[0])}–"
            f"{format_energy(d.host_pj[1])} | {format_energy(d.embedded_pj)} | "
            f"{100 * lo:.1f}–{100 * hi:.1f} % |"
        )
    out += ["", f"- chip links: {CHIP_LINK.source}", f"- host link: {HOST_LINK.source}", ""]
    return out


def to_markdown(rep: EnergyReport) -> str:
    """The report as Markdown (energies per sample, in readable units)."""
    tot = rep.count_totals()
    out = [f"# {rep.title}", "", "## Assumptions", ""]
    out += [f"- **{k}**: {v}" for k, v in rep.assumptions.items()]
    out += ["", "## Presets", ""]
    out += [f"- `{p.name}` ({p.rule}{'; ' + p.label if p.label else ''}): {p.source}"
            for p in rep.presets]  # fmt: skip
    out += [
        "",
        "## Totals per sample",
        "",
        "| preset | SNN | ANN twin | SNN/ANN |",
        "|---|---|---|---|",
    ]
    for t in rep.totals():
        ratio = "n/a" if t.ratio is None else f"{t.ratio:.3g}"
        snn, ann = format_energy(t.snn_pj), format_energy(t.ann_pj)
        out.append(f"| {t.preset} | {snn} | {ann} | {ratio} |")
    rr = rep.ratio_range()
    out += ["", "SNN/ANN energy ratio over presets that price the ANN: "
            + ("n/a" if rr is None else f"{rr[0]:.3g} to {rr[1]:.3g}")]  # fmt: skip
    sop_ratio = tot["sop_exact"] / tot["sop_rate"] if tot["sop_rate"] else float("nan")
    out += [
        f"Literature formula (4.6 pJ·first layer + 0.9 pJ·fr·T·FLOPs; comparison only): "
        f"{format_energy(rep.literature_pj())}; exact/rate SOP ratio {sop_ratio:.4f}.",
    ]
    if rep.ann_onnx_macs is not None:
        out.append(f"ANN twin MACs counted from its ONNX file: {rep.ann_onnx_macs:,}.")
    out += ["", *_deployment(rep)]
    out += ["## Counts per layer (per sample)", "", *_counts_table(rep)]
    out += ["", "## SNN energy per layer (per sample)", "", *_energy_table(rep), ""]
    return "\n".join(out)


def to_json(rep: EnergyReport) -> dict:
    """The report as plain JSON-ready data (energies in pJ per sample)."""
    layers = []
    for layer in rep.layers:
        row = {"name": layer.name, "op": layer.op, "in_kind": layer.in_kind,
               "order": layer.order, "fr_in": layer.fr_in, "fr_out": layer.fr_out,
               "dense_runs": layer.dense_runs}  # fmt: skip
        row.update({f: layer.per_sample(f) for f in (*COUNT_FIELDS, "sop_rate")})
        mem = PRESETS["memory-lemaire"]
        row["memory_bytes"] = {
            side: {k: v / layer.samples for k, v in dataclasses.asdict(fn(layer, mem)).items()}
            for side, fn in (("snn", snn_traffic), ("ann", ann_traffic))
        }
        row["energy_pj"] = {
            p.name: dict(zip(("snn", "ann"), rep.layer_energy_pj(layer, p), strict=True))
            for p in rep.presets
        }
        layers.append(row)
    rr = rep.ratio_range()
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "title": rep.title,
        "units": {
            "counts": "per sample",
            "energy": "pJ per sample",
            "memory_bytes": "bytes per sample (memory-lemaire widths: int8 weights and "
            "activations, int32 state)",
        },
        "assumptions": dict(rep.assumptions),
        "presets": [
            {"name": p.name, "rule": p.rule, "source": p.source, "label": p.label}
            for p in rep.presets
        ],  # fmt: skip
        "totals": {
            "counts": rep.count_totals(),
            "energy_pj": {
                t.preset: {"snn": t.snn_pj, "ann": t.ann_pj, "ratio": t.ratio} for t in rep.totals()
            },  # fmt: skip
            "ratio_range": None if rr is None else list(rr),
            "literature_pj": rep.literature_pj(),
            "ann_onnx_macs": rep.ann_onnx_macs,
        },
        "deployment": {
            "preset": rep.deployment_preset,
            "chip_link_pj_per_bit": [CHIP_LINK.low, CHIP_LINK.high],
            "host_link_pj_per_bit": [HOST_LINK.low, HOST_LINK.high],
            "scenarios": [dataclasses.asdict(d) for d in rep.deployment],
        },
        "layers": layers,
    }
