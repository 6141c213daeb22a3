"""Measure a trained SpikeCLIP model on its dataset: teacher and SpikeCLIP test top-1 per stage,
firing rates per layer, the label-set protocols, the quantized network's fidelity (float vs
fake-quant twin vs integer simulation), and how long each part took.

Run by examples/train_digits.sh after training (`--dataset digits`), and on the Fashion-MNIST
model (`--dataset fashion-mnist`, examples/README.md); writes a JSON report (`--out`). Every
number is recomputed from the files: the checkpoints (spikeclip.checkpoint.load), the teacher
towers in the training work folder, and the dataset's splits as training made them (split seed
0). SpikeCLIP figures use the float64 evaluation (spikeclip.evaluate), so they do not depend on
the machine. Test images are streamed in batches (`--batch-size` for the float model, `--chunk`
images per fidelity call), never held as `[T, B, ...]` activity all at once.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm import tqdm

from export.nir import to_nir
from hardware.fidelity.report import FidelityReport, fidelity
from hardware.quantize.image import quantize
from spikeclip import checkpoint, evaluate, robustness
from spikeclip.evaluate import Tokenize
from spikeclip.model import SpikeCLIP
from spikeclip.neurons import MultiStepLIF
from spikeclip.training import data, model_data, stages
from spikeclip.training.io import atomic_write_json
from spikeclip.training.stages import student_input
from spikeclip.training.teachers import (
    Teacher,
    load_teacher,
    load_tokenizer,
    teacher_class_matrix,
)

CALIBRATION_IMAGES = 256
"""Training images the quantizer calibrates on (as `spikeclip-export` does)."""
SUBSET = 1000
"""The fixed test subset (the first SUBSET test images) tests/spikeclip/test_fashion_model.py
recomputes; recorded as `subset_<SUBSET>` when the test split is at least that large."""


class Parts:
    """Wall-clock and CPU seconds per named part of the report (`with parts("name"): ...`)."""

    def __init__(self) -> None:
        self.seconds: dict[str, dict[str, float]] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        took = {"wall": round(time.perf_counter() - wall, 1),
                "cpu": round(time.process_time() - cpu, 1)}
        self.seconds[name] = took
        print(f"[{name}] {took['wall']} s wall, {took['cpu']} s CPU", flush=True)


def load_data(dataset: str, ck: checkpoint.Checkpoint, root: str, limit: int | None
              ) -> data.Splits:
    """The splits the checkpoint trained on (split seed 0); the test split cut to its first
    `limit` images when given (timing runs)."""
    splits = model_data.model_splits(dataset, metadata=dict(ck.metadata),
                                     img_size=ck.config.img_size, root=root, seed=0)
    if limit is None or limit >= len(splits.test):  # type: ignore[arg-type]
        return splits
    images, labels = model_data.first_images(splits.test, limit, ck.config.img_size)
    return data.Splits(name=splits.name, train=splits.train, val=splits.val,
                       test=data.TensorImages(images, labels), class_names=splits.class_names,
                       templates=splits.templates, transform_id=splits.transform_id)


def model_class_matrix(model: SpikeCLIP, meta: dict, names, templates) -> torch.Tensor:
    """Class matrix `[C, out_dim]` from the checkpoint's own tokenizer spec and prompts."""
    tokenize = load_tokenizer(meta["tokenizer"])
    ids = tokenize([t.format(c) for c in names for t in templates], model.config.text_len)
    return stages.spiking_class_matrix(model, ids.view(len(names), len(templates), -1))


def test_top1(path: str | Path, test: Dataset, batch_size: int) -> float:
    """Test top-1 (fraction) of a checkpoint: `spikeclip-eval`'s base protocol
    (spikeclip.evaluate, float64 arithmetic, so the figure is the same on any machine and any
    batch size)."""
    ck = checkpoint.load(path)
    tokenize = load_tokenizer(ck.metadata["tokenizer"])
    return evaluate.evaluate_label_set(ck.model, test, tokenize,
                                       robustness.base_set(ck.class_names),
                                       ck.templates, batch_size=batch_size).result.top1


@contextmanager
def lif_counts(model: torch.nn.Module) -> Iterator[dict[str, list[float]]]:
    """Spike sums and neuron-step counts `{layer: [spikes, neuron_steps]}` of every LIF layer of
    `model` for the forward passes run inside the block."""
    counts: dict[str, list[float]] = {}

    def hook(name: str) -> Callable:
        def add(_m, _inp, out) -> None:
            c = counts.setdefault(name, [0.0, 0])
            c[0] += float(out.sum())
            c[1] += out.numel()
        return add

    hooks = [m.register_forward_hook(hook(n)) for n, m in model.named_modules()
             if isinstance(m, MultiStepLIF)]
    try:
        yield counts
    finally:
        for h in hooks:
            h.remove()


def rates(counts: dict[str, list[float]]) -> dict[str, float]:
    """Mean spikes per neuron per time step from `lif_counts`."""
    return {n: round(s / c, 4) for n, (s, c) in counts.items()}


@torch.no_grad()
def image_pass(model: SpikeCLIP, test: Dataset, batch_size: int
               ) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """The float64 evaluation's image features `[N, out_dim]` float64 (batches of
    `batch_size`; the figures do not depend on it), labels `[N]` int64, and the image tower's
    firing rates on these images."""
    m = evaluate.in_dtype(model, evaluate.EVAL_DTYPE).eval()
    feats, labels = [], []
    with lif_counts(m) as counts:
        for x, y in tqdm(DataLoader(test, batch_size=batch_size, shuffle=False),
                         desc="float64 image features", unit="batch"):
            feats.append(m.encode_image(student_input(x.to(evaluate.EVAL_DTYPE),
                                                      m.config.img_size)))
            labels.append(torch.as_tensor(y, dtype=torch.int64))
    return torch.cat(feats), torch.cat(labels), rates(counts)


@torch.no_grad()
def text_rates(model: SpikeCLIP, ids: torch.Tensor) -> dict[str, float]:
    """The text tower's firing rates on prompt ids `[N, L]` (float64 copy)."""
    m = evaluate.in_dtype(model, evaluate.EVAL_DTYPE).eval()
    with lif_counts(m) as counts:
        m.encode_text(ids)
    return rates(counts)


def score(features: torch.Tensor, labels: torch.Tensor, matrix: torch.Tensor,
          label_set: robustness.LabelSet) -> evaluate.ZeroShotResult:
    """`evaluate.zero_shot`'s result from precomputed image features `[N, D]` (logits =
    normalize(features) · matrix, as SpikeCLIP.logits), so one image pass serves every label
    set."""
    logits = F.normalize(features, dim=-1) @ matrix.to(features.dtype).T
    preds = logits.argmax(dim=-1)
    n_cand = len(label_set.class_names)
    k = min(evaluate.TOP_K, n_cand)
    return evaluate.ZeroShotResult(
        class_names=label_set.class_names, num_classes=label_set.num_classes,
        n=int(labels.numel()), k=k, correct_top1=int((preds == labels).sum()),
        correct_topk=int(evaluate.topk_hits(logits, labels, k).sum()),
        confusion=evaluate.confusion_matrix(labels, preds, label_set.num_classes, n_cand),
        predictions=preds)


def protocols(ck: checkpoint.Checkpoint, dataset: str, features: torch.Tensor,
              labels: torch.Tensor, tokenize: Tokenize) -> list[evaluate.LabelSetResult]:
    """The paper's label-set protocols (base; replaced and expanded for seeds 42–44, the tables
    of spikeclip.robustness for `dataset`) on the float64 features."""
    sets = robustness.label_sets(ck.class_names, robustness.PROTOCOLS,
                                 seeds=robustness.PAPER_SEEDS,
                                 synonyms=robustness.SYNONYMS[dataset],
                                 pool=robustness.DISTRACTORS[dataset])
    out = []
    for ls in sets:
        w = evaluate.class_matrix(ck.model, tokenize, ls.class_names, ck.templates,
                                  dtype=evaluate.EVAL_DTYPE)
        out.append(evaluate.LabelSetResult(label_set=ls, result=score(features, labels, w, ls)))
    return out


FRACTIONS = ("top1_float", "top1_twin", "top1_sim", "agreement_float_sim", "agreement_twin_sim",
             "agreement_float_twin")
"""The `FidelityReport` fractions `merge` combines."""


def protocol_summary(results: Sequence[evaluate.LabelSetResult]) -> dict[str, dict[str, float]]:
    """Per protocol: runs, mean and population standard deviation (over seeds) of top-1, and the
    range of top-k."""
    out = {}
    for protocol in dict.fromkeys(r.label_set.protocol for r in results):
        rs = [r.result for r in results if r.label_set.protocol == protocol]
        t1 = [r.top1 for r in rs]
        out[protocol] = {"runs": len(rs), "top1_mean": statistics.fmean(t1),
                         "top1_std": statistics.pstdev(t1),
                         "topk_min": min(r.topk for r in rs), "topk_max": max(r.topk for r in rs)}
    return out


def merge(reports: Sequence[FidelityReport]) -> dict[str, Any]:
    """One record for fidelity runs on consecutive chunks of a split: counts summed (each
    fraction × its chunk's samples is an integer); `twin_sim_bit_exact`: in every chunk every
    spike and every feature (hence every logit) of the twin equals the simulator's; `sim_rates`:
    the simulator's spikes per neuron-step per LIF layer."""
    n = sum(r.samples for r in reports)

    def count(field: str) -> int:
        return sum(round(getattr(r, field) * r.samples) for r in reports)

    totals: dict[str, int] = {}
    for r in reports:
        for k, v in r.totals.items():
            totals[k] = totals.get(k, 0) + v
    spikes = {ly.name: [0, 0] for ly in reports[0].layers}
    for r in reports:
        for ly in r.layers:
            spikes[ly.name][0] += ly.spikes_sim
            spikes[ly.name][1] += ly.neuron_steps
    return {
        "samples": n,
        **{f: count(f) / n for f in FRACTIONS},
        "correct": {e: count(f"top1_{e}") for e in ("float", "twin", "sim")},
        "twin_sim_bit_exact": all(r.twin_sim_bit_exact for r in reports),
        "cosine_float_sim_min": min(r.cosine_float_sim_min for r in reports),
        "first_diverging_layer": next((r.first_diverging_layer for r in reports
                                       if r.first_diverging_layer), None),
        "simulator_totals": totals,
        "sim_rates": {k: round(s / c, 4) for k, (s, c) in spikes.items()},
    }


def loihi_fidelity(ck: checkpoint.Checkpoint, splits: data.Splits, names: Sequence[str],
                   chunk: int, batch: int, parts: Parts) -> dict[str, dict]:
    """Float model vs its quantized integer simulation (hardware.fidelity.report; calibration:
    the first 256 training images) on each split in `names`, `chunk` images per fidelity call
    run `batch` at a time;
    for the test split also `subset_<SUBSET>` (its first SUBSET images) when it is that large."""
    with parts("quantize"):
        calib, _ = model_data.first_images(splits.train, CALIBRATION_IMAGES, ck.config.img_size)
        net, _ = quantize(to_nir(ck.model.image_encoder), calib)
        w = evaluate.checkpoint_class_matrix(ck)
    out = {}
    for name in names:
        split = getattr(splits, name)
        with parts(f"fidelity_{name}"):
            reports = []
            for start in tqdm(range(0, len(split), chunk), desc=f"fidelity {name}",
                              unit=f"×{chunk} images"):
                x, y = model_data.first_images(Subset(split, range(start, min(start + chunk,
                                                                            len(split)))),
                                               chunk, ck.config.img_size)
                reports.append(fidelity(ck.model.image_encoder, net, x, y, w, noise_seeds=0,
                                        batch_size=batch))
        out[name] = merge(reports)
        if name == "test" and len(split) >= SUBSET and SUBSET % chunk == 0:
            out[f"test_subset_{SUBSET}"] = merge(reports[: SUBSET // chunk])
    return out


def offdiag_mean(w: torch.Tensor) -> float:
    """Mean cosine between different class vectors (rows of `w [C, D]`)."""
    u = torch.nn.functional.normalize(w, dim=-1)
    cos = u @ u.T
    c = cos.shape[0]
    return round(float((cos.sum() - cos.diagonal().sum()) / (c * (c - 1))), 4)


def teachers(work: Path, splits: data.Splits, final: checkpoint.Checkpoint) -> dict[str, float]:
    """Teacher zero-shot (CNN tower vs MiniLM's class matrix) and task-fine-tuned (vs the
    spiking text tower's) test top-1, and the class vectors' mean off-diagonal cosine."""
    size = final.config.img_size
    teacher: Teacher = load_teacher("minilm+conv", image_size=size,
                                    weights=work / "teacher-clip.pt")
    w_minilm = teacher_class_matrix(teacher, splits.class_names, splits.templates)
    w_spike = model_class_matrix(final.model, dict(final.metadata), final.class_names,
                                 final.templates)
    task = load_teacher("minilm+conv", image_size=size, weights=work / "teacher-task.pt")
    return {
        "teacher_zero_shot_test_top1": stages.teacher_top1(teacher, splits.test, w_minilm),
        "minilm_class_cosine_offdiag_mean": offdiag_mean(w_minilm),
        "spiking_class_cosine_offdiag_mean": offdiag_mean(w_spike),
        "teacher_task_ft_test_top1": stages.teacher_top1(task, splits.test, w_spike),
    }


def spikeclip_part(a: argparse.Namespace, final: checkpoint.Checkpoint, splits: data.Splits,
                   parts: Parts) -> dict[str, Any]:
    """SpikeCLIP test top-1 after each stage, the final model's label-set protocols, firing
    rates and the fixed-subset figure, all in float64."""
    work = Path(a.work)
    out: dict[str, Any] = {}
    with parts("eval_aligned"):
        out["spikeclip_test_top1_after_alignment"] = test_top1(work / "aligned.pt", splits.test,
                                                                a.batch_size)
    with parts("eval_dual_loss"):
        out["spikeclip_test_top1_after_dual_loss"] = test_top1(work / "finetune.pt", splits.test,
                                                                a.batch_size)
    tokenize = load_tokenizer(final.metadata["tokenizer"])
    with parts("eval_final_and_rates"):
        feats, labels, image_rates = image_pass(final.model, splits.test, a.batch_size)
        ids = tokenize([t.format(c) for c in splits.class_names for t in splits.templates],
                       final.config.text_len)
        out["firing_rates"] = {**image_rates, **text_rates(final.model, ids)}
    with parts("label_set_protocols"):
        results = protocols(final, a.dataset, feats, labels, tokenize)
    base = results[0].result
    out["spikeclip_test_top1_after_hardware_aware"] = base.top1
    out["label_set_summary"] = protocol_summary(results)
    out["label_set_protocols"] = [{k: v for k, v in r.to_dict().items() if k != "confusion"}
                                  for r in results]
    if base.n >= SUBSET:
        hits = int((base.predictions[:SUBSET] == labels[:SUBSET]).sum())
        out[f"subset_{SUBSET}"] = {"images": f"the first {SUBSET} of the test split",
                                   "correct_float_eval": hits, "top1_float_eval": hits / SUBSET}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="digits", choices=("digits", "fashion-mnist"))
    p.add_argument("--data-root", default="data", help="dataset folder (fashion-mnist: then "
                   "Debian's /usr/share/datasets/fashion-mnist)")
    p.add_argument("--work", required=True, help="work folder of the training script")
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--train-seconds", type=int, default=0)
    p.add_argument("--fidelity-splits", nargs="+", default=["test"], choices=("val", "test"))
    p.add_argument("--chunk", type=int, default=500, help="images per fidelity call")
    p.add_argument("--batch-size", type=int, default=64, help="images per float64 batch "
                   "(fashion: 1.5 GB peak at 64, 2.5 GB at 256, and 35 %% less CPU)")
    p.add_argument("--fidelity-batch", type=int, default=32, help="images per fidelity batch "
                   "(fashion: 2.4 GB peak at 32, 5.7 GB at 128, and 25 %% less CPU)")
    p.add_argument("--limit", type=int, help="only the first N test images (timing runs)")
    a = p.parse_args(argv)
    parts = Parts()
    final = checkpoint.load(a.model)
    with parts("load_data"):
        splits = load_data(a.dataset, final, a.data_root, a.limit)
    with parts("teachers"):
        teacher_figures = teachers(Path(a.work), splits, final)
    report = {
        "dataset": a.dataset,
        "config": final.config.to_dict(),
        "test_images": len(splits.test),
        **teacher_figures,
        **spikeclip_part(a, final, splits, parts),
        "loihi_fidelity": loihi_fidelity(final, splits, a.fidelity_splits, a.chunk,
                                         a.fidelity_batch, parts),
        "train_seconds_total": a.train_seconds,
        "stage_seconds": {s["command"]: s["seconds"] for s in final.metadata["stages"]},
        "threads": int(os.environ.get("OMP_NUM_THREADS", "0") or 0),
        "file_bytes": Path(a.model).stat().st_size,
        "parameters": {"image_encoder": sum(p.numel() for p in
                                            final.model.image_encoder.parameters()),
                       "text_encoder": sum(p.numel() for p in
                                           final.model.text_encoder.parameters())},
        "report_seconds": parts.seconds,
    }
    sim_subset = report["loihi_fidelity"].pop(f"test_subset_{SUBSET}", None)
    if sim_subset is not None:
        report[f"subset_{SUBSET}"].update(sim_subset)
    atomic_write_json(report, a.out)
    print(json.dumps({k: v for k, v in report.items()
                      if k not in ("config", "label_set_protocols")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
