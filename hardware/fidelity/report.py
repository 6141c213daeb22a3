"""Fidelity of the quantized image tower: float model vs fake-quant twin vs integer simulation.

For a batch of labelled images and a class matrix (computed once on the host from the float
text tower, DESIGN §3), :func:`fidelity` runs

- **float**: the model's image encoder as its BN-folded float64 graph (the float reference, spike
  rule ``>=``; :func:`hardware.lower.graph_run.run_graph`, features equal to the float64 model's
  to rounding);
- **twin**: the fake-quant twin of the network (:func:`hardware.quantize.twin.dequantize`, made
  once, run like :func:`hardware.quantize.twin.run_twin`: float64, ``>``);
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
import functools
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
from hardware.lower.float_graph import FHostInput, FloatGraph, FSynapse
from hardware.lower.from_torch import graph_from_image_encoder
from hardware.lower.graph_run import run_graph
from hardware.quantize.twin import dequantize
from hardware.simulate.engine import simulate
from spikeclip.atomic_io import write_text_atomic
from spikeclip.parallel import ordered_map, workers_for
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
    noise_floor_samples: int
    """The noise floor ran on the first ``noise_floor_samples`` images (0: not run)."""
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
            f"weight noise on the first {self.noise_floor_samples} of {self.samples} images: "
            + ", ".join(pct(a) for a in self.noise_floor_agreement),
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
    "The float figures (features, per-layer spikes, noise floor) come from the BN-folded float64 "
    "graph; its features equal the float64 model's to rounding.",
)


#: Samples the noise floor runs on by default: the first 64 (three float runs each; the figure is
#: context for the agreement, not a check, and 64 of 256 images cost a quarter of the time).
NOISE_SAMPLES = 64


@torch.no_grad()
def fidelity(
    image_encoder: nn.Module,
    network: LoihiNetwork,
    images: Tensor,
    labels: Tensor,
    class_matrix: Tensor | None,
    *,
    batch_size: int | None = None,
    noise_rel: float = 2.0**-8,
    noise_seeds: int = 3,
    noise_samples: int = NOISE_SAMPLES,
    workers: int | None = None,
) -> FidelityReport:
    """Compare float, twin and simulation on ``images [B, C, H, W]`` with ``labels [B]``.

    ``image_encoder``: the float `ImageEncoder` the network was quantized from (left unchanged;
    its BN-folded float64 graph is run: its features equal the float64 model's to rounding,
    ~4e-14 of 20 on the paper configuration). ``class_matrix`` ``[classes, out_dim]``; ``None``:
    the per-label means of the L2-normalized float features of ``images`` (said in a note).

    Noise floor (context for the agreement figure): the float model's prediction agreement with
    itself when every synaptic weight is multiplied by ``1 + noise_rel·N(0, 1)`` (default 2⁻⁸,
    about the relative step of an 8-bit weight), once per seed ``0 … noise_seeds − 1``, on the
    first ``noise_samples`` images (``FidelityReport.noise_floor_samples``).

    Streamed ``batch_size`` images at a time (default: planned from the memory estimate,
    :func:`hardware.fidelity.stream.plan_fidelity`) on ``workers`` processes (default: one per
    core, :mod:`spikeclip.parallel`); every figure is a count, a maximum or a per-sample value,
    so batch size and workers change memory and time, not the report.
    """
    enc = copy.deepcopy(image_encoder).double().eval()
    compare = ">" if getattr(enc.config, "strict_threshold", False) else ">="
    graph = graph_from_image_encoder(enc)
    n = int(images.shape[0])
    workers = workers_for(math.ceil(n / (batch_size or 1))) if workers is None else workers
    if batch_size is None:
        batch_size = plan_fidelity(graph, n, workers=workers).batch_size
    lifs = [ly.name for ly in network.layers if isinstance(ly, LIFLayer)]
    run = functools.partial(_compare_batch, graph, dequantize(network), network, compare, lifs,
                            images, batch_size)
    starts = range(0, n, batch_size)
    parts = list(bar(ordered_map(run, starts, workers=workers), total=len(starts),
                     desc="simulate: fidelity", unit="batch"))
    feats = {k: torch.cat([p["features"][k] for p in parts]) for k in ("float", "twin", "sim")}
    notes = NOTES + (TEXT_NOTE if class_matrix is not None else CLASS_MEANS_NOTE,)
    if class_matrix is None:
        class_matrix = _class_means(feats["float"], labels)
    p = {k: _logits(f, class_matrix).argmax(-1) for k, f in feats.items()}
    m = min(noise_samples, n)
    floor = _noise_floor(graph, images[:m], class_matrix, p["float"][:m], noise_rel,
                         noise_seeds, compare, batch_size, workers)
    y = labels.to(torch.int64)
    c = F.cosine_similarity(feats["float"], feats["sim"], dim=-1)
    layers = tuple(_layer(name, [part["layers"][name] for part in parts]) for name in lifs)
    totals: dict[str, int] = {}
    for part in parts:
        for k, v in part["totals"].items():
            totals[k] = totals.get(k, 0) + v
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
        twin_sim_bit_exact=bool(torch.equal(feats["twin"], feats["sim"])) and first_twin is None,
        first_diverging_layer=first, first_diverging_layer_twin=first_twin,
        totals=totals, noise_floor_rel=noise_rel, noise_floor_agreement=floor,
        noise_floor_samples=m if noise_seeds else 0, layers=layers, notes=notes,
    )


TEXT_NOTE = "The class matrix is computed once on the host from the float text tower."
CLASS_MEANS_NOTE = ("No class matrix given: each class's vector is the mean of the L2-normalized "
                    "float64 features of the test images of that label.")


def _class_means(features: Tensor, labels: Tensor) -> Tensor:
    """``[classes, out_dim]``: per label ``0 … max(labels)`` the mean normalized feature (a
    label without images: zeros, so its logit is 0 rather than NaN)."""
    f = F.normalize(features, dim=-1)
    return torch.stack([f[labels == c].mean(0) if bool((labels == c).any())
                        else f.new_zeros(f.shape[-1]) for c in range(int(labels.max()) + 1)])


def _compare_batch(graph, twin_graph, network, compare, lifs, images, batch_size,
                   start) -> dict[str, Any]:
    """The float graph, twin and simulation of ``images[start : start + batch_size]``: their
    features and the per-layer counts (small; a worker process returns them pickled)."""
    x = images[start:start + batch_size].to(torch.float64)
    ref = run_graph(graph, x, compare=compare, keep_states=True)
    twin = run_graph(twin_graph, x, compare=">", keep_states=True)
    sim = simulate(network, x, keep_states=True)
    layers = {}
    for n in lifs:
        s = sim.spikes[n]
        fl = ref.spikes[n].numpy().astype(bool).reshape(s.shape)
        tw = twin.spikes[n].numpy().astype(bool).reshape(s.shape)
        layers[n] = {"steps": s.size, "f": int(fl.sum()), "t": int(tw.sum()), "s": int(s.sum()),
                     "agree": int((fl == s).sum()), "neq": int((tw != s).sum()),
                     "ties": int(sim.ties[n]), "ovf": int(sim.overflow_u[n]),
                     "sat": int(sim.saturations_v[n])}
    return {"features": {"float": ref.features, "twin": twin.features,
                         "sim": torch.from_numpy(sim.feature)},
            "totals": {k: int(v) for k, v in sim.totals().items()}, "layers": layers}


def _layer(name: str, counts: list[dict[str, int]]) -> LayerFidelity:
    """One LIF layer's figures from its per-batch counts (``_compare_batch``)."""
    a = {k: sum(c[k] for c in counts) for k in counts[0]}
    return LayerFidelity(
        name=name, neuron_steps=a["steps"], spikes_float=a["f"], spikes_twin=a["t"],
        spikes_sim=a["s"], agreement_float_sim=a["agree"] / max(a["steps"], 1),
        twin_equals_sim=a["neq"] == 0, ties=a["ties"], overflow_u=a["ovf"],
        saturations_v=a["sat"],
    )


def _noise_floor(graph, images, class_matrix, reference, rel, seeds, compare, batch_size,
                 workers) -> tuple[float, ...]:
    """Per seed, the fraction of ``images`` whose noisy-float prediction equals ``reference``."""
    runs = [(seed, start) for seed in range(seeds) for start in range(0, len(images), batch_size)]
    run = functools.partial(_noisy_batch, graph, images, class_matrix, rel, compare, batch_size)
    try:
        preds = list(ordered_map(run, runs, workers=min(workers, max(1, len(runs)))))
    finally:
        _NOISY.clear()  # the noisy copy made here when workers == 1
    per_seed = [torch.cat([p for (s, _), p in zip(runs, preds, strict=True) if s == seed])
                for seed in range(seeds)]
    return tuple(float((q == reference).double().mean()) for q in per_seed)


def _noisy_batch(graph, images, class_matrix, rel, compare, batch_size, run) -> Tensor:
    """Float-graph predictions of ``images[start : start + batch_size]`` (``run = (seed,
    start)``) with every synapse weight scaled by ``1 + rel·N(0, 1)`` drawn from ``seed``."""
    seed, start = run
    x = images[start:start + batch_size].to(torch.float64)
    return _logits(run_graph(_noisy_graph(graph, rel, seed), x, compare=compare).features,
                   class_matrix).argmax(-1)


def _noisy_graph(graph: FloatGraph, rel: float, seed: int) -> FloatGraph:
    """``graph`` with every synapse weight scaled by ``1 + rel·N(0, 1)`` drawn from ``seed``;
    the last one made in this process is kept (a worker runs a seed's batches one after another:
    drawing the paper model's 9.5 M weights costs ~0.25 s, a batch ~1 s)."""
    key = (id(graph), rel, seed)
    if _NOISY.get("key") != key:
        gen = torch.Generator().manual_seed(seed)
        noisy = {
            n.name: dataclasses.replace(
                n, weight=n.weight * (1 + rel * torch.randn(n.weight.shape, generator=gen,
                                                            dtype=n.weight.dtype)))
            for n in graph.nodes if isinstance(n, FSynapse | FHostInput)
        }
        _NOISY.update(key=key, graph=graph.replace(noisy), ref=graph)
    return _NOISY["graph"]


#: The last noisy graph of this process: ``key``, ``graph``, and ``ref`` (keeps ``id`` unique).
_NOISY: dict[str, Any] = {}
