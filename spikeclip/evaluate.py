"""Zero-shot evaluation of a SpikeCLIP model (research/spikeclip_digest.md §8).

Class matrix: prompts `template.format(name)` for every candidate name, tokenized to the model's
`text_len`, through the spiking text tower in eval mode (`SpikeCLIP.class_matrix`: mean of the
normalized prompt features, not re-normalized unless asked). Images: resized to the model's
`img_size` (bilinear, as in training), logits = normalize(image feature) · class matrix.

Top-1 = fraction of images whose arg-max is their label; top-k = fraction whose label is among
the k largest logits (k = min(5, number of candidates); ties broken by `torch.topk`). The
confusion matrix is `[num_classes, num_candidates]` int64: row = true label, column = arg-max
(columns past num_classes are distractors).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from spikeclip.errors import SpikeCLIPError
from spikeclip.model import SpikeCLIP
from spikeclip.robustness import LabelSet
from spikeclip.training.stages import student_input

Tokenize = Callable[[Sequence[str], int], Tensor]
"""`fn(texts, length) -> ids [len(texts), length]` int64 (the tokenizer the model trained with)."""
TOP_K = 5


class EvaluationError(SpikeCLIPError, ValueError):
    """Inputs the evaluation cannot use (labels out of range, empty data, bad shapes)."""


@dataclass(frozen=True, kw_only=True)
class ZeroShotResult:
    """One zero-shot run. `confusion [num_classes, len(class_names)]` int64 counts
    (row = label, column = predicted candidate); `top1`, `topk` are fractions of `n` images;
    `k` = min(5, len(class_names))."""

    class_names: tuple[str, ...]
    num_classes: int
    n: int
    k: int
    correct_top1: int
    correct_topk: int
    confusion: Tensor

    @property
    def top1(self) -> float:
        return self.correct_top1 / self.n

    @property
    def topk(self) -> float:
        return self.correct_topk / self.n

    def per_class_accuracy(self) -> Tensor:
        """`[num_classes]` float64: diagonal / row sums (NaN for a label with no image)."""
        rows = self.confusion.sum(dim=1).to(torch.float64)
        diag = self.confusion[:, : self.num_classes].diagonal().to(torch.float64)
        return diag / rows

    def to_dict(self) -> dict:
        """JSON-ready record (accuracies, counts, confusion as nested lists)."""
        return {"n": self.n, "k": self.k, "top1": self.top1, f"top{self.k}": self.topk,
                "correct_top1": self.correct_top1, f"correct_top{self.k}": self.correct_topk,
                "class_names": list(self.class_names), "num_classes": self.num_classes,
                "confusion": self.confusion.tolist()}


def prompt_ids(tokenize: Tokenize, class_names: Sequence[str], templates: Sequence[str],
               text_len: int) -> Tensor:
    """Token ids `[C, K, text_len]` int64 of `templates[k].format(class_names[c])`."""
    if not templates or any(t.count("{}") != 1 for t in templates):
        raise EvaluationError(f"templates must each contain one '{{}}': {list(templates)}")
    texts = [t.format(c) for c in class_names for t in templates]
    ids = tokenize(texts, text_len)
    if ids.shape != (len(texts), text_len):
        raise EvaluationError(f"tokenizer returned {list(ids.shape)}, expected "
                              f"[{len(texts)}, {text_len}]")
    return ids.view(len(class_names), len(templates), text_len)


@torch.no_grad()
def class_matrix(model: SpikeCLIP, tokenize: Tokenize, class_names: Sequence[str],
                 templates: Sequence[str], *, renormalize: bool = False) -> Tensor:
    """Class matrix `[C, out_dim]` of the model's text tower (eval mode; mode restored).
    Raises `EvaluationError` when a token id is outside the model's vocabulary."""
    ids = prompt_ids(tokenize, class_names, templates, model.config.text_len)
    if int(ids.max()) >= model.config.vocab_size or int(ids.min()) < 0:
        raise EvaluationError(f"token ids span {int(ids.min())}..{int(ids.max())}, outside the "
                              f"model's vocab_size {model.config.vocab_size}: wrong tokenizer?")
    was = model.training
    model.eval()
    try:
        return model.class_matrix(ids, renormalize=renormalize)
    finally:
        model.train(was)


def topk_hits(logits: Tensor, labels: Tensor, k: int) -> Tensor:
    """`[B]` bool: label b is among the k largest of `logits[b]` (`[B, C]`)."""
    return (logits.topk(k, dim=-1).indices == labels[:, None]).any(dim=-1)


def confusion_matrix(labels: Tensor, preds: Tensor, num_classes: int, num_candidates: int
                     ) -> Tensor:
    """`[num_classes, num_candidates]` int64, entry (i, j) = #{b : labels[b] = i, preds[b] = j}."""
    flat = labels.to(torch.int64) * num_candidates + preds.to(torch.int64)
    counts = torch.bincount(flat, minlength=num_classes * num_candidates)
    return counts.view(num_classes, num_candidates)


@torch.no_grad()
def zero_shot(model: SpikeCLIP, dataset: Dataset, matrix: Tensor, *,
              class_names: Sequence[str], num_classes: int | None = None,
              batch_size: int = 256) -> ZeroShotResult:
    """Zero-shot run of `model` (eval mode; mode restored) on `(image [C, H, W], label)` items
    against `matrix [len(class_names), out_dim]`; labels must lie in 0..num_classes−1
    (default: all candidates are classes)."""
    n_cand = len(class_names)
    n_cls = n_cand if num_classes is None else num_classes
    if matrix.ndim != 2 or matrix.shape[0] != n_cand:
        raise EvaluationError(f"class matrix {list(matrix.shape)} does not have one row per "
                              f"candidate name ({n_cand})")
    if not 1 <= n_cls <= n_cand:
        raise EvaluationError(f"num_classes {n_cls} must be in 1..{n_cand}")
    k = min(TOP_K, n_cand)
    confusion = torch.zeros(n_cls, n_cand, dtype=torch.int64)
    hits1 = hitsk = n = 0
    was = model.training
    model.eval()
    try:
        for images, labels in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            labels = torch.as_tensor(labels, dtype=torch.int64)
            if int(labels.min()) < 0 or int(labels.max()) >= n_cls:
                raise EvaluationError(f"label {int(labels.max())} outside 0..{n_cls - 1} "
                                      f"({n_cls} class names)")
            logits = model.logits(student_input(images, model.config.img_size), matrix)
            preds = logits.argmax(dim=-1)
            confusion += confusion_matrix(labels, preds, n_cls, n_cand)
            hits1 += int((preds == labels).sum())
            hitsk += int(topk_hits(logits, labels, k).sum())
            n += int(labels.numel())
    finally:
        model.train(was)
    if n == 0:
        raise EvaluationError("the evaluation set is empty")
    return ZeroShotResult(class_names=tuple(class_names), num_classes=n_cls, n=n, k=k,
                          correct_top1=hits1, correct_topk=hitsk, confusion=confusion)


@dataclass(frozen=True, kw_only=True)
class LabelSetResult:
    """A robustness protocol's label set and the zero-shot result on it."""

    label_set: LabelSet
    result: ZeroShotResult

    def to_dict(self) -> dict:
        return {**self.label_set.to_dict(), **self.result.to_dict()}


def evaluate_label_set(model: SpikeCLIP, dataset: Dataset, tokenize: Tokenize,
                       label_set: LabelSet, templates: Sequence[str], *,
                       renormalize: bool = False, batch_size: int = 256) -> LabelSetResult:
    """Class matrix of `label_set.class_names` (all candidates), then `zero_shot`."""
    matrix = class_matrix(model, tokenize, label_set.class_names, templates,
                          renormalize=renormalize)
    result = zero_shot(model, dataset, matrix, class_names=label_set.class_names,
                       num_classes=label_set.num_classes, batch_size=batch_size)
    return LabelSetResult(label_set=label_set, result=result)
