"""Dataset splits (train / val / test) with class names and prompt templates.

Every dataset yields `(image, label)` with `image` a float tensor `[3, H, W]` produced by the
caller's transform (normally the teacher's preprocessing). The validation split is carved from
the training split with a fixed seed: model selection uses it, never the test split.

Offline dataset: sklearn's bundled digits (1,797 8×8 grey images, values 0..16), split
stratified. torchvision datasets are never downloaded; when files are missing,
`DatasetNotFoundError` says where to put them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Subset

from spikeclip.errors import UsageError
from spikeclip.training import prompts

Transform = Callable[[Any], torch.Tensor]

DIGITS_MEAN = 0.5  # digits pixels are scaled to [0, 1] then normalized with this mean/std
DIGITS_STD = 0.5


class DatasetNotFoundError(UsageError, FileNotFoundError):
    """A dataset's files are not on disk (the message says where they must go)."""


class UnknownDatasetError(UsageError):
    """A dataset name this module does not know."""


@dataclass(frozen=True, kw_only=True)
class Splits:
    """A dataset's three splits and its zero-shot vocabulary.

    `train`, `val`, `test` yield `(image [3, H, W] float32, label int)`; `class_names[i]` names
    label i; `templates` are `str.format` patterns with one `{}`; `transform_id` names the
    transform for feature-cache keys.
    """

    name: str
    train: Dataset
    val: Dataset
    test: Dataset
    class_names: tuple[str, ...]
    templates: tuple[str, ...]
    transform_id: str


class TensorImages(Dataset):
    """In-memory images `[N, 3, H, W]` float32 with integer labels `[N]`."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])


class Indexed(Dataset):
    """Wraps a dataset so items are `(image, label, index)`; index keys cached teacher features."""

    def __init__(self, base: Dataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        image, label = self.base[index]
        return image, int(label), index


def digits_images(img_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """sklearn digits as `[1797, 3, img_size, img_size]` float32 (bilinear upsampling of the
    8×8 images scaled to [0, 1], grey copied to 3 channels, normalized (x − 0.5)/0.5) and labels
    `[1797]` int64."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    grey = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    up = F.interpolate(grey, size=(img_size, img_size), mode="bilinear", align_corners=False)
    images = ((up - DIGITS_MEAN) / DIGITS_STD).expand(-1, 3, -1, -1).contiguous()
    return images, torch.as_tensor(bunch.target, dtype=torch.int64)


def stratified_split(
    labels: np.ndarray, fractions: tuple[float, float], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split indices into (train, val, test) per class: `fractions = (val, test)` of each class,
    rounded to nearest; each index array sorted. Deterministic in `seed`."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(round(fractions[1] * idx.size))
        n_val = int(round(fractions[0] * idx.size))
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test : n_test + n_val])
        parts[0].append(idx[n_test + n_val :])
    train, val, test = (np.sort(np.concatenate(p)) for p in parts)
    return train, val, test


def digits_splits(
    img_size: int, *, seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.25
) -> Splits:
    """sklearn digits, stratified train/val/test (fractions of each class), fixed `seed`."""
    images, labels = digits_images(img_size)
    tr, va, te = stratified_split(labels.numpy(), (val_fraction, test_fraction), seed)
    return Splits(
        name="digits",
        train=TensorImages(images[tr], labels[tr]),
        val=TensorImages(images[va], labels[va]),
        test=TensorImages(images[te], labels[te]),
        class_names=prompts.DIGITS_CLASSES,
        templates=prompts.TEMPLATES["digits"],
        transform_id=f"digits-bilinear{img_size}-norm0.5",
    )


def carve_val(train: Dataset, val_fraction: float, seed: int) -> tuple[Subset, Subset]:
    """Random (train, val) subsets of `train`, val = round(val_fraction · N), fixed `seed`."""
    n = len(train)  # type: ignore[arg-type]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = int(round(val_fraction * n))
    return Subset(train, sorted(perm[n_val:])), Subset(train, sorted(perm[:n_val]))


def _missing(name: str, root: Path, expected: str) -> DatasetNotFoundError:
    return DatasetNotFoundError(
        f"{name}: files not found under {root}; put {expected} there "
        "(nothing is downloaded: this machine has no dataset access)"
    )


def _tv(name: str, root: Path, expected: str, build: Callable[[], Dataset]) -> Dataset:
    """Build a torchvision dataset with download=False; missing files -> DatasetNotFoundError."""
    try:
        return build()
    except RuntimeError as err:  # torchvision's "Dataset not found or corrupted"
        raise _missing(name, root, expected) from err


def torchvision_splits(
    name: str, root: str | Path, transform: Transform, transform_id: str, *,
    seed: int = 42, val_fraction: float = 0.1,
) -> Splits:
    """Splits of a torchvision dataset under `root` (never downloaded).

    Official test splits are the test splits; val is carved from train (`val_fraction`,
    `seed`), except Flowers102, which has an official val split, and Caltech101, which has no
    split: 20% test by `seed`, then val from the rest. Flowers102 uses train for training (the
    paper code swapped train and test).
    """
    from torchvision import datasets as tvd

    root = Path(root)
    tf = transform
    if name in ("cifar10", "cifar100"):
        cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
        folder = "cifar-10-batches-py" if name == "cifar10" else "cifar-100-python"
        full = _tv(name, root, f"{folder}/ (the python version)",
                   lambda: cls(str(root), train=True, transform=tf))
        test = cls(str(root), train=False, transform=tf)
        names = prompts.CIFAR10_CLASSES if name == "cifar10" else tuple(
            prompts.readable_name(c) for c in full.classes)
        if name == "cifar10" and tuple(full.classes) != prompts.CIFAR10_CLASSES:
            raise UnknownDatasetError(f"cifar10 under {root}: unexpected class list {full.classes}")
        train, val = carve_val(full, val_fraction, seed)
    elif name == "stl10":
        full = _tv(name, root, "stl10_binary/", lambda: tvd.STL10(str(root), split="train",
                                                                  transform=tf))
        test = tvd.STL10(str(root), split="test", transform=tf)
        names = tuple(prompts.readable_name(c) for c in full.classes)
        train, val = carve_val(full, val_fraction, seed)
    elif name == "flowers102":
        train = _tv(name, root, "flowers-102/ (jpg/, imagelabels.mat, setid.mat)",
                    lambda: tvd.Flowers102(str(root), split="train", transform=tf))
        val = tvd.Flowers102(str(root), split="val", transform=tf)
        test = tvd.Flowers102(str(root), split="test", transform=tf)
        names = tuple(prompts.readable_name(c) for c in train.classes)
    elif name == "oxford_pets":
        full = _tv(name, root, "oxford-iiit-pet/ (images/, annotations/)",
                   lambda: tvd.OxfordIIITPet(str(root), split="trainval", transform=tf))
        test = tvd.OxfordIIITPet(str(root), split="test", transform=tf)
        names = tuple(prompts.readable_name(c) for c in full.classes)
        train, val = carve_val(full, val_fraction, seed)
    elif name == "caltech101":
        full = _tv(name, root, "caltech101/101_ObjectCategories/",
                   lambda: tvd.Caltech101(str(root), target_type="category", transform=tf))
        rest, test = carve_val(full, 0.2, seed)
        train, val = carve_val(rest, val_fraction, seed + 1)
        names = tuple(prompts.readable_name(c) for c in full.categories)
    elif name == "imagenet":
        train_dir, val_dir = root / "train", root / "val"
        if not train_dir.is_dir() or not val_dir.is_dir():
            raise _missing(name, root, "train/<wnid>/*.JPEG and val/<wnid>/*.JPEG folders")
        full = tvd.ImageFolder(str(train_dir), transform=tf)
        test = tvd.ImageFolder(str(val_dir), transform=tf)
        names = _imagenet_names(root, tuple(full.classes))
        train, val = carve_val(full, val_fraction, seed)
    else:
        raise UnknownDatasetError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    if len(names) != len(set(names)):
        raise UnknownDatasetError(f"{name}: class names are not unique after cleaning")
    return Splits(name=name, train=train, val=val, test=test, class_names=names,
                  templates=prompts.TEMPLATES[name], transform_id=transform_id)


def _imagenet_names(root: Path, wnids: tuple[str, ...]) -> tuple[str, ...]:
    """Readable ImageNet class names from `root/classes.txt` (lines `wnid<TAB>name`), else the
    folder names themselves."""
    table = root / "classes.txt"
    if not table.is_file():
        return wnids
    mapping = dict(line.split("\t", 1) for line in table.read_text().splitlines() if "\t" in line)
    return tuple(mapping.get(w, w).strip() for w in wnids)


DATASETS = ("digits", "cifar10", "cifar100", "stl10", "flowers102", "oxford_pets",
            "caltech101", "imagenet")


def load_splits(
    name: str, *, root: str | Path = "data", transform: Transform | None = None,
    transform_id: str = "", img_size: int = 32, seed: int = 0,
) -> Splits:
    """Dispatch: `digits` (images at `img_size`, no transform needed) or a torchvision dataset
    (needs `transform`, normally the teacher's preprocessing, and its `transform_id`)."""
    if name == "digits":
        return digits_splits(img_size, seed=seed)
    if name not in DATASETS:
        raise UnknownDatasetError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    if transform is None:
        raise ValueError(f"{name}: a transform (the teacher's preprocessing) is required")
    return torchvision_splits(name, root, transform, transform_id, seed=seed)
