"""Fidelity of the quantized image tower: float model vs fake-quant twin vs integer simulation.

For a batch of labelled images and a class matrix (computed once on the host from the float
text tower, DESIGN §3), :func:`fidelity` runs

- **float**: the model's image encoder in float64 (the float reference, spike rule ``>=``);
- **twin**: :func:`hardware.quantize.twin.run_twin` of the network (float64, dequantized, ``>``);
- **sim**: :func:`hardware.simulate.engine.simulate` of the network (integers),

and reports zero-shot top-1 of each, prediction agreement, feature cosine, per-layer spike
agreement (float vs sim, per neuron-step, from the BN-folded float graph with the network's
layer names), the first layer where spikes diverge, whether twin and simulation agree bit for bit,
and the simulator's tie/overflow/saturation counters. ``python -m hardware.fidelity.report MODEL.pt
--out DIR`` runs it on the default model's digits test split and writes ``fidelity.json|md``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hardware.fidelity.stream import plan_fidelity
from hardware.ir.layers import LIFLayer
from hardware.ir.network import LoihiNetwork
from hardware.lower.float_graph import FHostInput, FSynapse
from hardware.lower.from_torch import graph_from_image_encoder
from hardware.lower.graph_run import run_graph
from hardware.quantize.twin import run_twin
from hardware.simulate.engine import simulate
from spikeclip.atomic_io import write_text_atomic
from spikeclip.batching import batches
from spikeclip.progress import bar


@dataclass(frozen=True, kw_only=True)
class LayerFidelity:
    """Per LIF layer, totals over all samples, steps and neurons: spike counts of each engine,
    the fraction of neuron-steps where float and simulated spikes agree, whether the twin's
    spikes equal the simulation's, and the simulator's counters."""

    name: str
    neuron_steps: int
    spikes_float: int
    spikes_twin: int
    spikes_sim: int
    agreement_float_sim: float
    twin_equals_sim: bool
    ties: int
    overflow_u: int
    saturations_v: int


@dataclass(frozen=True, kw_only=True)
class FidelityReport:
    """Whole-run figures (fractions in 0…1; cosines of unnormalized features)."""

    samples: int
    top1_float: float
    top1_twin: float
    top1_sim: float
    agreement_float_sim: float
    agreement_twin_sim: float
    agreement_float_twin: float
    cosine_float_sim_mean: float
    cosine_float_sim_min: float
    twin_sim_bit_exact: bool
    first_diverging_layer: str | None
    first_diverging_layer_twin: str | None
    totals: dict[str, int]
    noise_floor_rel: float
    noise_floor_agreement: tuple[float, ...]
    layers: tuple[LayerFidelity, ...]
    notes: tuple[str, ...] = field(default=())
    lava: dict[str, Any] | None = None
    """Lava vs simulator on the first samples, added by the export's Lava stage
    (`export.cli.checks.lava_verdict`: ran, samples, identical, max_abs_feature_diff, mismatch
    counts; or ran False with a reason); ``None`` when no Lava stage ran."""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["layers"] = [asdict(x) for x in self.layers]
        out["noise_floor_agreement"] = list(self.noise_floor_agreement)
        out["notes"] = list(self.notes)
        out["lava"] = None if self.lava is None else dict(self.lava)
        return out

    def to_markdown(self) -> str:
        pct = lambda x: f"{100 * x:.2f}%"  # noqa: E731
        lines = [
            f"# Fidelity: float vs fake-quant twin vs integer simulation ({self.samples} images)",
            "",
            "| | float | twin | simulation |",
            "|---|---:|---:|---:|",
            f"| top-1 | {pct(self.top1_float)} | {pct(self.top1_twin)} | {pct(self.top1_sim)} |",
            "",
            f"- prediction agreement float↔sim: {pct(self.agreement_float_sim)}, "
            f"twin↔sim: {pct(self.agreement_twin_sim)}, float↔twin: "
            f"{pct(self.agreement_float_twin)}",
            f"- feature cosine float↔sim: mean {self.cosine_float_sim_mean:.5f}, "
            f"min {self.cosine_float_sim_min:.5f}",
            f"- noise floor: float↔float agreement with {self.noise_floor_rel:.2g} relative "
            "weight noise: " + ", ".join(pct(a) for a in self.noise_floor_agreement),
            f"- twin == simulation bit for bit (spikes, features): {self.twin_sim_bit_exact}",
            f"- first layer where float and simulated spikes differ: "
            f"{self.first_diverging_layer or 'none'}; twin vs sim: "
            f"{self.first_diverging_layer_twin or 'none'}",
            "- simulator counters: " + ", ".join(f"{k} {v}" for k, v in self.totals.items()),
            f"- Lava vs simulator: {_lava_text(self.lava)}",
            "",
            "| layer | neuron-steps | spikes float | spikes twin | spikes sim | agree float↔sim "
            "| twin = sim | ties | overflows | saturations |",
            "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|",
        ]
        for x in self.layers:
            lines.append(
                f"| {x.name} | {x.neuron_steps} | {x.spikes_float} | {x.spikes_twin} | "
                f"{x.spikes_sim} | {100 * x.agreement_float_sim:.3f}% | {x.twin_equals_sim} | "
                f"{x.ties} | {x.overflow_u} | {x.saturations_v} |"
            )
        if self.notes:
            lines += ["", "## Notes", ""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def write(self, directory: str | Path, stem: str = "fidelity") -> Path:
        """Write ``stem.json`` and ``stem.md`` atomically into ``directory``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        write_text_atomic(d / f"{stem}.json", json.dumps(self.to_dict(), indent=1))
        write_text_atomic(d / f"{stem}.md", self.to_markdown())
        return d / f"{stem}.json"


def _lava_text(lava: dict[str, Any] | None) -> str:
    """One line for the Lava verdict (see `FidelityReport.lava`)."""
    if lava is None:
        return "not run (no Lava stage)"
    if not lava.get("ran"):
        return f"not run ({lava.get('reason', 'skipped')})"
    if lava.get("identical"):
        return (f"identical on {lava['samples']} samples (every spike and readout stream; "
                f"max |Δ feature| {lava['max_abs_feature_diff']:.1e})")
    return (f"DIFFERS on {lava['samples']} samples ({lava.get('spike_mismatches')} neuron-steps, "
            f"{lava.get('stream_mismatches')} stream entries)")


def _logits(features: Tensor, class_matrix: Tensor) -> Tensor:
    return F.normalize(features, dim=-1) @ class_matrix.to(features.dtype).T


NOTES = (
    "Bit-accurate = bit-exact to Lava 0.10's CPU fixed-point models (PyLifModelBitAcc, "
    "PyDenseModelBitAcc); not verified against Loihi silicon (lava#322, lava#829).",
    "The class matrix is computed once on the host from the float text tower.",
    "Float per-layer spikes come from the BN-folded float64 graph; its features equal the "
    "model's to float64 rounding.",
)


@torch.no_grad()
def fidelity(
    image_encoder: nn.Module,
    network: LoihiNetwork,
    images: Tensor,
    labels: Tensor,
    class_matrix: Tensor,
    *,
    batch_size: int | None = None,
    noise_rel: float = 2.0**-8,
    noise_seeds: int = 3,
) -> FidelityReport:
    """Compare float, twin and simulation on ``images [B, C, H, W]`` with ``labels [B]``.

    ``image_encoder``: the float `ImageEncoder` the network was quantized from (left unchanged;
    a float64 copy is run). ``class_matrix`` ``[classes, out_dim]``.

    Noise floor (context for the agreement figure): the float model's prediction agreement with
    itself when every synaptic weight is multiplied by ``1 + noise_rel·N(0, 1)`` (default 2⁻⁸,
    about the relative step of an 8-bit weight), once per seed ``0 … noise_seeds − 1``.

    Streamed ``batch_size`` images at a time (default: planned from the memory estimate,
    :func:`hardware.fidelity.stream.plan_fidelity`); every figure is a count, a maximum or a
    per-sample value, so the batch size changes memory and time, not the report.
    """
    enc = copy.deepcopy(image_encoder).double().eval()
    compare = ">" if getattr(enc.config, "strict_threshold", False) else ">="
    graph = graph_from_image_encoder(enc)
    if batch_size is None:
        batch_size = plan_fidelity(graph, int(images.shape[0])).batch_size
    lifs = [ly.name for ly in network.layers if isinstance(ly, LIFLayer)]
    acc: dict[str, dict[str, int]] = {
        n: dict.fromkeys(("steps", "f", "t", "s", "agree", "neq"), 0) for n in lifs
    }
    preds = {"float": [], "twin": [], "sim": []}
    cos: list[Tensor] = []
    totals: dict[str, int] = {}
    feats_equal = True
    steps = bar(batches(images, batch_size), total=math.ceil(len(images) / batch_size),
                desc="simulate: fidelity", unit="batch")
    for x in (b.to(torch.float64) for b in steps):
        f_float = enc(x)
        ref = run_graph(graph, x, compare=compare, keep_states=True)
        twin = run_twin(network, x, keep_states=True)
        sim = simulate(network, x, keep_states=True)
        f_sim = torch.from_numpy(sim.feature)
        feats_equal &= bool(torch.equal(twin.features, f_sim))
        for key, f in (("float", f_float), ("twin", twin.features), ("sim", f_sim)):
            preds[key].append(_logits(f, class_matrix).argmax(-1))
        cos.append(F.cosine_similarity(f_float, f_sim, dim=-1))
        for k, v in sim.totals().items():
            totals[k] = totals.get(k, 0) + v
        for n in lifs:
            s = sim.spikes[n]
            fl = ref.spikes[n].numpy().astype(bool).reshape(s.shape)
            tw = twin.spikes[n].numpy().astype(bool).reshape(s.shape)
            a = acc[n]
            a["steps"] += s.size
            a["f"] += int(fl.sum())
            a["t"] += int(tw.sum())
            a["s"] += int(s.sum())
            a["agree"] += int((fl == s).sum())
            a["neq"] += int((tw != s).sum())
            a["ties"] = a.get("ties", 0) + sim.ties[n]
            a["ovf"] = a.get("ovf", 0) + sim.overflow_u[n]
            a["sat"] = a.get("sat", 0) + sim.saturations_v[n]
        del f_float, ref, twin, sim  # before the next batch's runs allocate
    p = {k: torch.cat(v) for k, v in preds.items()}
    floor = tuple(
        float((_noisy_predictions(graph, images, class_matrix, noise_rel, seed, compare,
                                  batch_size) == p["float"]).double().mean())
        for seed in range(noise_seeds)
    )
    y = labels.to(torch.int64)
    c = torch.cat(cos)
    layers = tuple(
        LayerFidelity(
            name=n, neuron_steps=a["steps"], spikes_float=a["f"], spikes_twin=a["t"],
            spikes_sim=a["s"], agreement_float_sim=a["agree"] / max(a["steps"], 1),
            twin_equals_sim=a["neq"] == 0, ties=a["ties"], overflow_u=a["ovf"],
            saturations_v=a["sat"],
        )
        for n, a in acc.items()
    )
    first = next((x.name for x in layers if x.agreement_float_sim < 1.0), None)
    first_twin = next((x.name for x in layers if not x.twin_equals_sim), None)
    mean = lambda t: float(t.double().mean()) if t.numel() else math.nan  # noqa: E731
    return FidelityReport(
        samples=int(y.numel()),
        top1_float=mean(p["float"] == y), top1_twin=mean(p["twin"] == y),
        top1_sim=mean(p["sim"] == y),
        agreement_float_sim=mean(p["float"] == p["sim"]),
        agreement_twin_sim=mean(p["twin"] == p["sim"]),
        agreement_float_twin=mean(p["float"] == p["twin"]),
        cosine_float_sim_mean=mean(c), cosine_float_sim_min=float(c.min()),
        twin_sim_bit_exact=feats_equal and first_twin is None,
        first_diverging_layer=first, first_diverging_layer_twin=first_twin,
        totals=totals, noise_floor_rel=noise_rel, noise_floor_agreement=floor, layers=layers,
        notes=NOTES,
    )


def _noisy_predictions(graph, images, class_matrix, rel, seed, compare, batch_size) -> Tensor:
    """Float-graph predictions with every synapse weight scaled by ``1 + rel·N(0, 1)``."""
    gen = torch.Generator().manual_seed(seed)
    noisy = {
        n.name: dataclasses.replace(
            n, weight=n.weight * (1 + rel * torch.randn(n.weight.shape, generator=gen,
                                                        dtype=n.weight.dtype)))
        for n in graph.nodes if isinstance(n, FSynapse | FHostInput)
    }
    g = graph.replace(noisy)
    out = []
    for x in (b.to(torch.float64) for b in batches(images, batch_size)):
        out.append(_logits(run_graph(g, x, compare=compare).features, class_matrix).argmax(-1))
    return torch.cat(out)
