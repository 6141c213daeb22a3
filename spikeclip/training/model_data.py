"""The images a trained checkpoint expects: its training teacher's preprocessing, at its size.

`spikeclip-train` feeds the student ``teacher.preprocess(image)`` resized (bilinear, no
antialias) to the model's ``img_size`` (:func:`spikeclip.training.stages.student_input`).
Evaluation and export rebuild that preprocessing from the checkpoint's metadata (the last
training stage's ``"teacher"`` spec, written by spikeclip-train):

- MiniLM teachers (``minilm``, ``minilm+conv``): CLIP-style resize/crop at the student's size,
  mean = std = 0.5 per channel;
- any other (CLIP) teacher, or none recorded: CLIP's mean/std at 224 px (the paper's
  ViT-B/16 teacher), then resized to ``img_size``.

sklearn's digits carry their own normalization (:func:`spikeclip.training.data.digits_images`)
and need none of this. One home for the rule: ``spikeclip-eval``, ``spikeclip-export --calib``
and ``spikeclip-energy --data`` all use :func:`model_splits`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from spikeclip.training import data
from spikeclip.training.stages import student_input
from spikeclip.training.teachers import clip_preprocess

PAPER_TEACHER_IMAGE = 224
"""Image side of the paper's teacher preprocessing (CLIP ViT-B/16), resized down for the student."""

MINILM_MEAN_STD = (0.5, 0.5, 0.5)
"""Per-channel mean and std of the MiniLM teachers' image preprocessing (at the student size)."""


def teacher_spec(metadata: Mapping[str, Any]) -> str | None:
    """The teacher spec of the checkpoint's last training stage (``metadata["stages"][-1]``)."""
    stages = metadata.get("stages")
    if isinstance(stages, list) and stages and isinstance(stages[-1], dict):
        spec = stages[-1].get("teacher")
        return spec if isinstance(spec, str) else None
    return None


def preprocessing(metadata: Mapping[str, Any], img_size: int) -> tuple[data.Transform, str]:
    """The checkpoint's image preprocessing (PIL image → ``[3, S, S]`` float32) and its id
    (for feature-cache keys); see the module doc for the rule."""
    spec = teacher_spec(metadata) or ""
    if spec.startswith("minilm"):
        return (clip_preprocess(img_size, MINILM_MEAN_STD, MINILM_MEAN_STD),
                f"{spec}-preprocess{img_size}")
    return clip_preprocess(PAPER_TEACHER_IMAGE), f"clip-preprocess{PAPER_TEACHER_IMAGE}"


def model_splits(
    name: str, *, metadata: Mapping[str, Any], img_size: int, root: str | Path = "data",
    seed: int = 0,
) -> data.Splits:
    """``name``'s splits as the checkpoint saw them in training: digits at ``img_size``, any
    other dataset the data layer knows through :func:`preprocessing` (images at the teacher's
    size; :func:`first_images` resizes them). Missing files raise
    :class:`~spikeclip.training.data.DatasetNotFoundError` naming where they must go."""
    if name == "digits":
        return data.load_splits("digits", img_size=img_size, seed=seed)
    transform, transform_id = preprocessing(metadata, img_size)
    return data.load_splits(name, root=root, transform=transform, transform_id=transform_id,
                            img_size=img_size, seed=seed)


def first_images(dataset: Dataset, limit: int, img_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``limit`` items of ``dataset`` as images ``[N, C, img_size, img_size]``
    float32 (resized like the student's training input) and labels ``[N]`` int64."""
    if isinstance(dataset, data.TensorImages):
        images, labels = dataset.images[:limit], dataset.labels[:limit]
    else:
        n = min(limit, len(dataset))  # type: ignore[arg-type]
        items = [dataset[i] for i in range(n)]
        if not items:
            return torch.empty(0, 3, img_size, img_size), torch.empty(0, dtype=torch.int64)
        images = torch.stack([x for x, _ in items])
        labels = torch.tensor([int(y) for _, y in items], dtype=torch.int64)
    return student_input(images.to(torch.float32), img_size), labels.to(torch.int64)
