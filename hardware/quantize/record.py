"""`QuantRecord`: what the quantizer did to every layer, and how close each came to its limits.

Units: weights in wu (one integer of the synaptic sum ``a``), biases/states in v-units (one
integer of u or v; 1 wu = 64 v-units). Percentages are of the layer's weights (or neurons).
``margin_*`` = limit / observed maximum on the calibration data (∞ when nothing was observed);
a margin below 1 would be an overflow and is refused by the quantizer.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from spikeclip.atomic_io import write_text_atomic


@dataclass(frozen=True, kw_only=True)
class SynapseQuant:
    """One synapse layer (conv or token-linear): scale s (its consumers'), the weight format,
    % of weights clipped at the 8-bit range, % of non-zero float weights rounded to 0, the
    largest |w| and the largest Σ|w| over one output (bounds the exact-GEMM check, < 2²⁴)."""

    name: str
    kind: str
    scale: float
    sign_mode: str
    num_weight_bits: int
    weight_exp: int
    n_weights: int
    pct_clipped: float
    pct_rounded_to_zero: float
    max_abs_weight: int
    max_row_abs_sum: int


@dataclass(frozen=True, kw_only=True)
class NeuronQuant:
    """One LIF layer (or the host readout, role ``readout``) and its observed ranges."""

    name: str
    role: str
    scale: float
    theta: float
    vth: int
    du: int
    dv: int
    bias_exp: int
    bias_max_abs: float
    pct_bias_clipped: float
    bias_max_abs_error: float
    observed_max_abs_a: int
    observed_max_abs_u: int
    observed_max_abs_v: int
    limit_a: int
    limit_v: int
    margin_a: float
    margin_v: float
    overflow_u: int
    saturations_v: int
    ties: int


@dataclass(frozen=True, kw_only=True)
class QuantRecord:
    """Per-layer record of one quantization run (see module doc); ``exact`` says whether the
    conditions of DESIGN §4 hold (T ≤ 7, biases on the 2^(T−1) grid) so twin == simulation."""

    T: int
    tau: float
    calibration_samples: int
    options: dict[str, Any]
    exact: bool
    synapses: tuple[SynapseQuant, ...]
    neurons: tuple[NeuronQuant, ...]
    notes: tuple[str, ...] = ()

    def scale(self, name: str) -> float:
        """Scale of the neuron (or synapse) ``name``."""
        for rec in (*self.neurons, *self.synapses):
            if rec.name == name:
                return rec.scale
        raise KeyError(f"QuantRecord has no layer {name!r}")

    def neuron(self, name: str) -> NeuronQuant:
        """The record of the LIF (or readout) ``name``."""
        for rec in self.neurons:
            if rec.name == name:
                return rec
        raise KeyError(f"QuantRecord has no neuron layer {name!r}")

    def synapse(self, name: str) -> SynapseQuant:
        """The record of the synapse ``name``."""
        for rec in self.synapses:
            if rec.name == name:
                return rec
        raise KeyError(f"QuantRecord has no synapse {name!r}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["synapses"] = [asdict(s) for s in self.synapses]
        out["neurons"] = [_finite(asdict(n)) for n in self.neurons]
        out["notes"] = list(self.notes)
        return out

    def to_markdown(self) -> str:
        lines = [
            f"# Quantization record (T = {self.T}, τ = {self.tau}, "
            f"{self.calibration_samples} calibration samples, exact twin: {self.exact})",
            "",
            "## Synapses",
            "",
            "| layer | kind | s | sign | bits | weight_exp | % clipped | % → 0 | max |w| "
            "| max Σ|w| |",
            "|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
        ]
        for s in self.synapses:
            lines.append(
                f"| {s.name} | {s.kind} | {s.scale:g} | {s.sign_mode} | {s.num_weight_bits} | "
                f"{s.weight_exp} | {s.pct_clipped:.3f} | {s.pct_rounded_to_zero:.2f} | "
                f"{s.max_abs_weight} | {s.max_row_abs_sum} |"
            )
        lines += [
            "",
            "## Neurons (observed on calibration data; limits |a| ≤ 131071 wu, |v| ≤ 2²³−1)",
            "",
            "| layer | role | s | vth | bias_exp | max |β| | % β clipped | max |a| | margin a "
            "| max |v| | margin v | overflows | saturations | ties |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for n in self.neurons:
            lines.append(
                f"| {n.name} | {n.role} | {n.scale:g} | {n.vth} | {n.bias_exp} | "
                f"{n.bias_max_abs:g} | {n.pct_bias_clipped:.2f} | {n.observed_max_abs_a} | "
                f"{n.margin_a:.1f} | {n.observed_max_abs_v} | {n.margin_v:.1f} | "
                f"{n.overflow_u} | {n.saturations_v} | {n.ties} |"
            )
        if self.notes:
            lines += ["", "## Notes", ""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def write(self, directory: str | os.PathLike, stem: str = "quantization") -> Path:
        """Write ``stem.json`` and ``stem.md`` atomically; returns the JSON path."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        write_text_atomic(d / f"{stem}.json", json.dumps(self.to_dict(), indent=1))
        write_text_atomic(d / f"{stem}.md", self.to_markdown())
        return d / f"{stem}.json"


def _finite(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}
