"""The four training stages (research/spikeclip_digest.md §4–§7), as functions.

1. `align_text`: the spiking text tower regresses frozen teacher text features of a prompt
   corpus, loss mean(1 − cos).
2. `align_image`: the spiking image tower regresses frozen teacher image features of a dataset's
   train split, loss mean(1 − cos); student input = the teacher-preprocessed image resized
   (bilinear, align_corners=False, no antialias) to the student's img_size.
3. `finetune_teacher`: the teacher's image tower is trained with CE on
   `logit_scale · normalize(teacher_image) @ W.T`, W = the class matrix of the (frozen)
   spiking text tower.
4. `finetune`: the spiking image tower is trained with the dual loss
   `CE(s, y) + kl_weight · τ² · Σ_batch KL(softmax(t/τ) ‖ softmax(s/τ))` (sum over the batch,
   paper: kl_weight = 1, τ = 1, logit_scale = 1, i.e. raw cosine logits), with s, t =
   `logit_scale ·` cosine logits of student and (fine-tuned, frozen) teacher against the same W.
   Optional gradient-angle gate (`angle_gate` > 0): step on CE alone when the angle between the
   CE and KL gradients is ≤ angle_gate degrees, else skip the step (KL only gates).

Every stage selects its weights on the validation split (never test) and returns a
`StageResult`; teacher features come from the feature cache.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from spikeclip.errors import UsageError
from spikeclip.model import SpikeCLIP
from spikeclip.training import feature_cache
from spikeclip.training.data import Indexed, Splits
from spikeclip.training.loop import LoopConfig, LoopResult, train_loop
from spikeclip.training.teachers import Teacher


@dataclass(frozen=True, kw_only=True)
class StageResult:
    """`loop` = the loop's result (history, best epoch); `metrics` = final validation metrics
    of the selected weights."""

    stage: str
    loop: LoopResult
    metrics: dict[str, float]


class StageInputError(UsageError):
    """Inputs a stage cannot use (mismatched dims, vocabularies, empty corpora)."""


def cosine_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean over the batch of 1 − cos(pred_b, target_b); `[B, D]` each."""
    return (1.0 - F.cosine_similarity(pred, target, dim=-1, eps=1e-8)).mean()


def student_input(images: torch.Tensor, img_size: int) -> torch.Tensor:
    """Resize `[B, C, H, W]` to `[B, C, img_size, img_size]` (bilinear, no antialias, as the
    paper code's `F.interpolate`); identity when the size already matches."""
    if images.shape[-1] == img_size and images.shape[-2] == img_size:
        return images
    return F.interpolate(images, size=(img_size, img_size), mode="bilinear", align_corners=False)


def prompt_ids(teacher: Teacher, class_names: Sequence[str], templates: Sequence[str],
               text_len: int) -> torch.Tensor:
    """Token ids `[C, K, text_len]` of every `template.format(class)` (teacher tokenizer)."""
    texts = [t.format(c) for c in class_names for t in templates]
    ids = teacher.tokenize(texts, text_len)
    return ids.view(len(class_names), len(templates), text_len)


@torch.no_grad()
def spiking_class_matrix(model: SpikeCLIP, ids: torch.Tensor) -> torch.Tensor:
    """The spiking text tower's class matrix `[C, out_dim]` (eval mode, paper rule: mean of
    normalized prompt features, not re-normalized)."""
    was = model.training
    model.eval()
    matrix = model.class_matrix(ids)
    model.train(was)
    return matrix


@torch.no_grad()
def top1(model: SpikeCLIP, dataset: Dataset, class_matrix: torch.Tensor,
         batch_size: int = 256) -> float:
    """Top-1 accuracy (fraction) of `model` on `(image, label)` items, eval mode."""
    return _top1(model, dataset, batch_size, lambda images: model.predict(
        student_input(images, model.config.img_size), class_matrix))


@torch.no_grad()
def teacher_top1(teacher: Teacher, dataset: Dataset, class_matrix: torch.Tensor,
                 batch_size: int = 256) -> float:
    """Top-1 (fraction) of the teacher's image tower against `class_matrix [C, D]`."""
    return _top1(teacher, dataset, batch_size, lambda images: (
        F.normalize(teacher.encode_image(images), dim=-1) @ class_matrix.T).argmax(-1))


def _top1(module: nn.Module, dataset: Dataset, batch_size: int,
          predict: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """Fraction of `(image, label)` items whose `predict(images)` is the label, with `module`
    in eval mode (its mode is restored after)."""
    was = module.training
    module.eval()
    correct = total = 0
    for images, labels in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        correct += int((predict(images) == labels).sum())
        total += int(labels.numel())
    module.train(was)
    return correct / max(total, 1)


def _split_corpus(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = min(max(int(round(val_fraction * n)), 1), n - 1) if n > 1 else 0
    return sorted(perm[n_val:]), sorted(perm[:n_val])


def align_text(
    model: SpikeCLIP, teacher: Teacher, sentences: Sequence[str], *, cfg: LoopConfig,
    corpus_name: str = "corpus", val_fraction: float = 0.1, cache_dir: str | Path | None = None,
    workdir: str | Path | None = None, resume: bool = False,
) -> StageResult:
    """Stage 1: train `model.text_encoder` so its features point like the teacher's on
    `sentences` (a held-out `val_fraction` selects the epoch)."""
    if len(sentences) < 2:
        raise StageInputError("align-text: the prompt corpus needs at least 2 sentences")
    if teacher.embed_dim != model.config.out_dim:
        raise StageInputError(f"align-text: teacher dim {teacher.embed_dim} != model out_dim "
                              f"{model.config.out_dim}")
    if teacher.vocab_size > model.config.vocab_size:
        raise StageInputError(f"align-text: teacher vocabulary {teacher.vocab_size} exceeds the "
                              f"model's vocab_size {model.config.vocab_size}")
    ids = teacher.tokenize(list(sentences), model.config.text_len)
    targets = feature_cache.corpus_features(teacher, list(sentences), name=corpus_name,
                                            cache_dir=cache_dir)
    tr, va = _split_corpus(len(sentences), val_fraction, cfg.seed)
    train_set = TensorDataset(ids[tr], targets[tr])
    val_ids, val_t = ids[va], targets[va]

    def step(batch: tuple) -> tuple[torch.Tensor, float]:
        loss = cosine_loss(model.encode_text(batch[0]), batch[1])
        return loss, float(loss.detach())

    @torch.no_grad()
    def evaluate() -> dict[str, float]:
        model.eval()
        return {"cos_loss": float(cosine_loss(model.encode_text(val_ids), val_t))}

    result = train_loop(stage="align-text", modules={"model": model},
                        params=list(model.text_encoder.parameters()), dataset=train_set,
                        step_fn=step, cfg=cfg, evaluate=evaluate, score_key="cos_loss",
                        higher_is_better=False, workdir=workdir, resume=resume)
    return StageResult(stage="align-text", loop=result, metrics=evaluate())


def _image_targets(teacher: Teacher, splits: Splits, cache_dir: str | Path | None,
                   batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    kw = {"name": splits.name, "transform": splits.transform_id, "cache_dir": cache_dir,
          "batch_size": batch_size}
    return (feature_cache.image_features(teacher, splits.train, split="train", **kw),
            feature_cache.image_features(teacher, splits.val, split="val", **kw))


@torch.no_grad()
def _val_cos_loss(model: SpikeCLIP, dataset: Dataset, targets: torch.Tensor,
                  batch_size: int) -> float:
    model.eval()
    total, n = 0.0, 0
    for images, _, idx in DataLoader(Indexed(dataset), batch_size=batch_size, shuffle=False):
        f = model.encode_image(student_input(images, model.config.img_size))
        total += float(cosine_loss(f, targets[idx])) * len(idx)
        n += len(idx)
    return total / max(n, 1)


def align_image(
    model: SpikeCLIP, teacher: Teacher, splits: Splits, *, cfg: LoopConfig,
    class_ids: torch.Tensor | None = None, select: str = "cos_loss",
    cache_dir: str | Path | None = None, workdir: str | Path | None = None, resume: bool = False,
) -> StageResult:
    """Stage 2: train `model.image_encoder` to match the teacher's image features on
    `splits.train`. `class_ids [C, K, L]` (prompt ids) adds zero-shot val top-1 with the
    model's own text tower; `select` = "cos_loss" (lower is better) or "top1"."""
    if teacher.embed_dim != model.config.out_dim:
        raise StageInputError(f"align-image: teacher dim {teacher.embed_dim} != model out_dim "
                              f"{model.config.out_dim}")
    if select == "top1" and class_ids is None:
        raise StageInputError("align-image: select='top1' needs class_ids")
    train_t, val_t = _image_targets(teacher, splits, cache_dir, 2 * cfg.batch_size)
    size = model.config.img_size

    def step(batch: tuple) -> tuple[torch.Tensor, float]:
        images, _, idx = batch
        loss = cosine_loss(model.encode_image(student_input(images, size)), train_t[idx])
        return loss, float(loss.detach())

    def evaluate() -> dict[str, float]:
        out = {"cos_loss": _val_cos_loss(model, splits.val, val_t, 2 * cfg.batch_size)}
        if class_ids is not None:
            out["top1"] = top1(model, splits.val, spiking_class_matrix(model, class_ids))
        return out

    result = train_loop(stage="align-image", modules={"model": model},
                        params=list(model.image_encoder.parameters()),
                        dataset=Indexed(splits.train), step_fn=step, cfg=cfg, evaluate=evaluate,
                        score_key=select, higher_is_better=(select == "top1"),
                        workdir=workdir, resume=resume)
    return StageResult(stage="align-image", loop=result, metrics=evaluate())


def finetune_teacher(
    teacher: Teacher, splits: Splits, class_matrix: torch.Tensor, *, cfg: LoopConfig,
    logit_scale: float = 1.0, workdir: str | Path | None = None, resume: bool = False,
) -> StageResult:
    """Stage 3: train `teacher.image_module()` with CE on
    `logit_scale · normalize(teacher_image) @ class_matrix.T` (`class_matrix [C, D]`, frozen;
    paper: the spiking text tower's, logit_scale 1). Selected on val top-1."""
    if class_matrix.shape[1] != teacher.embed_dim:
        raise StageInputError(f"finetune-teacher: class matrix dim {class_matrix.shape[1]} != "
                              f"teacher dim {teacher.embed_dim}")
    tower = teacher.image_module()
    teacher.eval()
    w = class_matrix.detach()

    def step(batch: tuple) -> tuple[torch.Tensor, float]:
        images, labels = batch
        logits = logit_scale * F.normalize(teacher.encode_image(images), dim=-1) @ w.T
        loss = F.cross_entropy(logits, labels)
        return loss, float(loss.detach())

    def evaluate() -> dict[str, float]:
        return {"top1": teacher_top1(teacher, splits.val, w)}

    result = train_loop(stage="finetune-teacher", modules={"tower": tower},
                        params=list(tower.parameters()), dataset=splits.train, step_fn=step,
                        cfg=cfg, evaluate=evaluate, score_key="top1", workdir=workdir,
                        resume=resume)
    tower.eval()
    return StageResult(stage="finetune-teacher", loop=result, metrics=evaluate())


def dual_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
              *, kl_weight: float = 1.0, temperature: float = 1.0
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """(CE mean over the batch, kl_weight · τ² · KL(p_t ‖ p_s) summed over batch and classes),
    p = softmax(logits / τ). Paper: kl_weight 1, τ 1."""
    ce = F.cross_entropy(student_logits, labels)
    log_ps = F.log_softmax(student_logits / temperature, dim=-1)
    pt = F.softmax(teacher_logits / temperature, dim=-1)
    kl = F.kl_div(log_ps, pt, reduction="sum")
    return ce, kl_weight * temperature**2 * kl


def gradient_angle(a: Sequence[torch.Tensor | None], b: Sequence[torch.Tensor | None]) -> float:
    """Angle in degrees between two gradients given per parameter (None = zero)."""
    dot = na = nb = 0.0
    for x, y in zip(a, b):
        if x is not None:
            na += float((x * x).sum())
        if y is not None:
            nb += float((y * y).sum())
        if x is not None and y is not None:
            dot += float((x * y).sum())
    if na == 0.0 or nb == 0.0:
        return 90.0
    return math.degrees(math.acos(max(-1.0, min(1.0, dot / math.sqrt(na * nb)))))


def finetune(
    model: SpikeCLIP, teacher: Teacher, splits: Splits, class_matrix: torch.Tensor, *,
    cfg: LoopConfig, kl_weight: float = 1.0, temperature: float = 1.0, logit_scale: float = 1.0,
    angle_gate: float | None = None, cache_dir: str | Path | None = None,
    workdir: str | Path | None = None, resume: bool = False,
) -> StageResult:
    """Stage 4: dual-loss fine-tuning of `model.image_encoder` (text tower frozen);
    `class_matrix [C, out_dim]` from the spiking text tower; selected on val top-1."""
    if class_matrix.shape[1] != model.config.out_dim or teacher.embed_dim != model.config.out_dim:
        raise StageInputError(f"finetune: class matrix {list(class_matrix.shape)} / teacher dim "
                              f"{teacher.embed_dim} do not match out_dim {model.config.out_dim}")
    w = class_matrix.detach()
    train_t = feature_cache.image_features(
        teacher, splits.train, name=splits.name, split="train", transform=splits.transform_id,
        cache_dir=cache_dir, batch_size=2 * cfg.batch_size)
    teacher_logits_all = logit_scale * F.normalize(train_t, dim=-1) @ w.T
    params = list(model.image_encoder.parameters())
    size = model.config.img_size

    def step(batch: tuple) -> tuple[torch.Tensor | None, float]:
        images, labels, idx = batch
        s = logit_scale * model.logits(student_input(images, size), w)
        ce, kl = dual_loss(s, teacher_logits_all[idx], labels, kl_weight=kl_weight,
                           temperature=temperature)
        value = float((ce + kl).detach())
        if angle_gate is None or angle_gate <= 0:
            return ce + kl, value
        g_ce = torch.autograd.grad(ce, params, retain_graph=True, allow_unused=True)
        g_kl = torch.autograd.grad(kl, params, retain_graph=True, allow_unused=True)
        return (ce if gradient_angle(g_ce, g_kl) <= angle_gate else None), value

    def evaluate() -> dict[str, float]:
        return {"top1": top1(model, splits.val, w)}

    result = train_loop(stage="finetune", modules={"model": model}, params=params,
                        dataset=Indexed(splits.train), step_fn=step, cfg=cfg, evaluate=evaluate,
                        score_key="top1", workdir=workdir, resume=resume)
    return StageResult(stage="finetune", loop=result, metrics=evaluate())


def init_text_embeddings(model: SpikeCLIP, teacher: Teacher) -> str:
    """Initialize the spiking text tower's token table from the teacher's `[V, E]` table:
    copied when E = text_width, else projected on the top text_width principal components and
    scaled to unit standard deviation. Rows beyond the teacher's V keep their init. Returns
    "copy" or "pca"."""
    table = teacher.token_embedding().detach().float()
    cfg = model.config
    if table.shape[0] > cfg.vocab_size:
        raise StageInputError(f"teacher vocabulary {table.shape[0]} > model vocab_size "
                              f"{cfg.vocab_size}")
    if table.shape[1] == cfg.text_width:
        mode, new = "copy", table
    elif table.shape[1] > cfg.text_width:
        centered = table - table.mean(0, keepdim=True)
        _, _, v = torch.linalg.svd(centered, full_matrices=False)
        new = centered @ v[: cfg.text_width].T
        mode, new = "pca", new / new.std().clamp_min(1e-12)
    else:
        raise StageInputError(f"teacher embedding width {table.shape[1]} < text_width "
                              f"{cfg.text_width}")
    full = model.text_encoder.token_embedding.weight.detach().clone()
    full[: table.shape[0]] = new
    model.text_encoder.init_embeddings(full)
    return mode


def freeze(module: nn.Module) -> nn.Module:
    """requires_grad False on every parameter (returns the module)."""
    for p in module.parameters():
        p.requires_grad_(False)
    return module
