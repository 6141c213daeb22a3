"""Zero-shot evaluation of a SpikeCLIP model (research/spikeclip_digest.md §8).

Class matrix: prompts `template.format(name)` for every candidate name, tokenized to the model's
`text_len`, through the spiking text tower in eval mode (`SpikeCLIP.class_matrix`: mean of the
normalized prompt features, not re-normalized unless asked). Images: resized to the model's
`img_size` (bilinear, as in training), logits = normalize(image feature) · class matrix.

Top-1 = fraction of images whose arg-max is their label; top-k = fraction whose label is among
the k largest logits (k = min(5, number of candidates); ties broken by `torch.topk`). The
confusion matrix is `[num_classes, num_candidates]` int64: row = true label, column = arg-max
(columns past num_classes are distractors).

Arithmetic: the evaluation runs a float64 copy of the model (`EVAL_DTYPE`; the caller's model is
left as it is). In float32 the result depends on the machine: the default model has ~650
neuron-steps on the 450 digits test images whose membrane lies within 1e-7 of the threshold
(|H − θ| down to 4e-11 in float64, below float32's resolution of 6e-8 at θ = 1), so whether they
spike is decided by the rounding of the conv/GEMM sums, which changes with the kernel path (CPU
instruction set, oneDNN or ATen convolution, blocking): float32 gave 97.33 % or 97.11 % top-1
depending on the path. In float64 the smallest of those gaps is still ~1e5 times the rounding of
the sums (logits agree to 1e-16 across paths), so every spike and prediction is the same with any
thread count, batch size or kernel path, at about 2.5× the CPU time.
Exact ties (e.g. the attention LIF's integer-valued inputs) fire by the `>=` rule everywhere.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from spikeclip.errors import UsageError
from spikeclip.model import SpikeCLIP
from spikeclip.robustness import LabelSet
from spikeclip.training.stages import student_input

Tokenize = Callable[[Sequence[str], int], Tensor]
"""`fn(texts, length) -> ids [len(texts), length]` int64 (the tokenizer the model trained with)."""
TOP_K = 5
EVAL_DTYPE = torch.float64
"""Dtype of the evaluation arithmetic (see the module docstring: float32 is machine-dependent)."""


class EvaluationError(UsageError):
    """Inputs the evaluation cannot use (labels out of range, empty data, bad shapes)."""


@dataclass(frozen=True, kw_only=True)
class ZeroShotResult:
    """One zero-shot run. `confusion [num_classes, len(class_names)]` int64 counts
    (row = label, column = predicted candidate); `predictions [n]` int64, the arg-max candidate
    of each image in dataset order; `top1`, `topk` are fractions of `n` images;
    `k` = min(5, len(class_names))."""

    class_names: tuple[str, ...]
    num_classes: int
    n: int
    k: int
    correct_top1: int
    correct_topk: int
    confusion: Tensor
    predictions: Tensor

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


def in_dtype(model: SpikeCLIP, dtype: torch.dtype | None) -> SpikeCLIP:
    """`model` itself when `dtype` is None or already the dtype of all its floating-point
    parameters and buffers, else a converted deep copy (the caller's model is never changed)."""
    tensors = [*model.parameters(), *model.buffers()]
    if dtype is None or all(t.dtype == dtype for t in tensors if t.is_floating_point()):
        return model
    return copy.deepcopy(model).to(dtype)


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
                 templates: Sequence[str], *, renormalize: bool = False,
                 dtype: torch.dtype | None = None) -> Tensor:
    """Class matrix `[C, out_dim]` of the model's text tower (eval mode; mode restored), in
    `dtype` (None: the model's own dtype and arithmetic, as training and export use it; the
    evaluation passes `EVAL_DTYPE`). Raises `EvaluationError` when a token id is outside the
    model's vocabulary."""
    model = in_dtype(model, dtype)
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
              batch_size: int = 256, dtype: torch.dtype | None = EVAL_DTYPE) -> ZeroShotResult:
    """Zero-shot run of `model` (eval mode; mode restored) on `(image [C, H, W], label)` items
    against `matrix [len(class_names), out_dim]`; labels must lie in 0..num_classes−1
    (default: all candidates are classes). Images, matrix and model are taken to `dtype`
    (default float64: the result does not depend on threads, batch size or kernels; None: the
    model's dtype)."""
    model = in_dtype(model, dtype)
    work = next(model.parameters()).dtype
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
    all_preds: list[Tensor] = []
    was = model.training
    model.eval()
    try:
        for images, labels in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            labels = torch.as_tensor(labels, dtype=torch.int64)
            if int(labels.min()) < 0 or int(labels.max()) >= n_cls:
                raise EvaluationError(f"label {int(labels.max())} outside 0..{n_cls - 1} "
                                      f"({n_cls} class names)")
            x = student_input(images.to(work), model.config.img_size)
            logits = model.logits(x, matrix.to(work))
            preds = logits.argmax(dim=-1)
            all_preds.append(preds)
            confusion += confusion_matrix(labels, preds, n_cls, n_cand)
            hits1 += int((preds == labels).sum())
            hitsk += int(topk_hits(logits, labels, k).sum())
            n += int(labels.numel())
    finally:
        model.train(was)
    if n == 0:
        raise EvaluationError("the evaluation set is empty")
    return ZeroShotResult(class_names=tuple(class_names), num_classes=n_cls, n=n, k=k,
                          correct_top1=hits1, correct_topk=hitsk, confusion=confusion,
                          predictions=torch.cat(all_preds))


@dataclass(frozen=True, kw_only=True)
class LabelSetResult:
    """A robustness protocol's label set and the zero-shot result on it."""

    label_set: LabelSet
    result: ZeroShotResult

    def to_dict(self) -> dict:
        return {**self.label_set.to_dict(), **self.result.to_dict()}


def evaluate_label_set(model: SpikeCLIP, dataset: Dataset, tokenize: Tokenize,
                       label_set: LabelSet, templates: Sequence[str], *,
                       renormalize: bool = False, batch_size: int = 256,
                       dtype: torch.dtype | None = EVAL_DTYPE) -> LabelSetResult:
    """Class matrix of `label_set.class_names` (all candidates), then `zero_shot`, both in
    `dtype` (default float64, see the module docstring)."""
    model = in_dtype(model, dtype)
    matrix = class_matrix(model, tokenize, label_set.class_names, templates,
                          renormalize=renormalize, dtype=dtype)
    result = zero_shot(model, dataset, matrix, class_names=label_set.class_names,
                       num_classes=label_set.num_classes, batch_size=batch_size, dtype=dtype)
    return LabelSetResult(label_set=label_set, result=result)


def checkpoint_class_matrix(checkpoint: Any) -> torch.Tensor:
    """The float text tower's class matrix ``[K, out_dim]`` for a checkpoint
    (`spikeclip.checkpoint.Checkpoint`): its stored class names, templates and tokenizer spec
    (metadata ``"tokenizer"``); digits' classes and templates and the MiniLM tokenizer where the
    checkpoint stores none."""
    from spikeclip.training import prompts
    from spikeclip.training.teachers import load_tokenizer

    names = checkpoint.class_names or prompts.DIGITS_CLASSES
    templates = checkpoint.templates or prompts.TEMPLATES["digits"]
    spec = str(checkpoint.metadata.get("tokenizer", "minilm"))
    return class_matrix(checkpoint.model, load_tokenizer(spec), names, templates)
