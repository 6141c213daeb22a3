"""Measure the digits model: teacher and SpikeCLIP test top-1, firing rates per layer, the
quantized network's fidelity (float vs integer simulation, validation and test splits), time.

Run by examples/train_digits.sh after training; writes a JSON report (see `--out`). Every number
is recomputed from the files: the checkpoints (loaded with spikeclip.checkpoint.load), the
teacher towers, and the digits test split (stratified, seed 0) upsampled to the model's input.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from spikeclip import checkpoint, evaluate, robustness
from spikeclip.model import SpikeCLIP
from spikeclip.neurons import MultiStepLIF
from spikeclip.training import data, stages
from spikeclip.training.io import atomic_write_json
from spikeclip.training.teachers import (
    Teacher,
    load_teacher,
    load_tokenizer,
    teacher_class_matrix,
)


def digits_test(img_size: int) -> data.Splits:
    """The digits splits the training used (split seed 0)."""
    return data.digits_splits(img_size, seed=0)


def model_class_matrix(model: SpikeCLIP, meta: dict, names, templates) -> torch.Tensor:
    """Class matrix `[C, out_dim]` from the checkpoint's own tokenizer spec and prompts."""
    tokenize = load_tokenizer(meta["tokenizer"])
    ids = tokenize([t.format(c) for c in names for t in templates], model.config.text_len)
    return stages.spiking_class_matrix(model, ids.view(len(names), len(templates), -1))


def test_top1(path: str | Path) -> float:
    """Test top-1 (fraction) of a checkpoint on the digits test split: `spikeclip-eval`'s base
    protocol (spikeclip.evaluate, float64 arithmetic, so the figure is the same on any machine)."""
    ck = checkpoint.load(path)
    splits = digits_test(ck.config.img_size)
    tokenize = load_tokenizer(ck.metadata["tokenizer"])
    return evaluate.evaluate_label_set(ck.model, splits.test, tokenize,
                                       robustness.base_set(ck.class_names),
                                       ck.templates).result.top1


@torch.no_grad()
def firing_rates(model: SpikeCLIP, images: torch.Tensor, ids: torch.Tensor) -> dict[str, float]:
    """Mean spikes per neuron per time step of every LIF layer (image tower on `images`,
    text tower on prompt ids `[N, L]`)."""
    rates: dict[str, list[float]] = {}
    hooks = []
    for name, mod in model.named_modules():
        if isinstance(mod, MultiStepLIF):
            hooks.append(mod.register_forward_hook(
                lambda m, inp, out, n=name: rates.setdefault(n, []).append(
                    (float(out.sum()), out.numel()))))
    model.eval()
    model.encode_image(images)
    model.encode_text(ids)
    for h in hooks:
        h.remove()
    return {n: round(sum(s for s, _ in v) / sum(c for _, c in v), 4) for n, v in rates.items()}


def loihi_fidelity(ck: checkpoint.Checkpoint, splits: data.Splits) -> dict[str, dict]:
    """Float model vs its quantized integer simulation (hardware.fidelity.report; calibration: the
    first 256 training images) on the validation and test splits: top-1 of each, prediction
    agreement."""
    from export.nir import to_nir
    from hardware.fidelity.report import fidelity
    from hardware.quantize.image import quantize
    from spikeclip.evaluate import checkpoint_class_matrix

    net, _ = quantize(to_nir(ck.model.image_encoder), splits.train.images[:256])
    w = checkpoint_class_matrix(ck)
    out = {}
    for name in ("val", "test"):
        split = getattr(splits, name)
        r = fidelity(ck.model.image_encoder, net, split.images, split.labels, w, noise_seeds=0)
        out[name] = {"top1_float": round(r.top1_float, 4), "top1_sim": round(r.top1_sim, 4),
                     "agreement_float_sim": round(r.agreement_float_sim, 4),
                     "twin_sim_bit_exact": r.twin_sim_bit_exact}
    return out


def offdiag_mean(w: torch.Tensor) -> float:
    """Mean cosine between different class vectors (rows of `w [C, D]`)."""
    u = torch.nn.functional.normalize(w, dim=-1)
    cos = u @ u.T
    c = cos.shape[0]
    return round(float((cos.sum() - cos.diagonal().sum()) / (c * (c - 1))), 4)


def teacher_top1(teacher: Teacher, splits: data.Splits, w: torch.Tensor) -> float:
    return stages.teacher_top1(teacher, splits.test, w)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", required=True, help="work folder of train_digits.sh")
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--train-seconds", type=int, default=0)
    a = p.parse_args(argv)
    work = Path(a.work)
    final = checkpoint.load(a.model)
    cfg = final.config
    splits = digits_test(cfg.img_size)
    teacher = load_teacher("minilm+conv", image_size=cfg.img_size,
                           weights=work / "teacher-clip.pt")
    w_minilm = teacher_class_matrix(teacher, splits.class_names, splits.templates)
    w_spike = model_class_matrix(final.model, dict(final.metadata), final.class_names,
                                 final.templates)
    task = load_teacher("minilm+conv", image_size=cfg.img_size, weights=work / "teacher-task.pt")
    ids = load_tokenizer("minilm")([t.format(c) for c in splits.class_names
                                    for t in splits.templates], cfg.text_len)
    report = {
        "config": cfg.to_dict(),
        "test_images": len(splits.test),
        "teacher_zero_shot_test_top1": teacher_top1(teacher, splits, w_minilm),
        "minilm_class_cosine_offdiag_mean": offdiag_mean(w_minilm),
        "spiking_class_cosine_offdiag_mean": offdiag_mean(w_spike),
        "teacher_task_ft_test_top1": teacher_top1(task, splits, w_spike),
        "spikeclip_test_top1_after_alignment": test_top1(work / "aligned.pt"),
        "spikeclip_test_top1_after_dual_loss": test_top1(work / "finetune.pt"),
        "spikeclip_test_top1_after_hardware_aware": test_top1(a.model),
        "loihi_fidelity": loihi_fidelity(final, splits),
        "firing_rates": firing_rates(final.model, splits.test.images, ids),
        "train_seconds_total": a.train_seconds,
        "stage_seconds": {s["command"]: s["seconds"] for s in final.metadata["stages"]},
        "threads": int(os.environ.get("OMP_NUM_THREADS", "0") or 0),
        "file_bytes": Path(a.model).stat().st_size,
        "parameters": {"image_encoder": sum(p.numel() for p in
                                            final.model.image_encoder.parameters()),
                       "text_encoder": sum(p.numel() for p in
                                           final.model.text_encoder.parameters())},
    }
    atomic_write_json(report, a.out)
    print(json.dumps({k: v for k, v in report.items() if k != "config"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
