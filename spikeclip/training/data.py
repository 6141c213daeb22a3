"""Dataset splits (train / val / test) with class names and prompt templates.

Every dataset yields `(image, label)` with `image` a float tensor `[3, H, W]` produced by the
caller's transform (normally the teacher's preprocessing). The validation split is carved from
the training split with a fixed seed: model selection uses it, never the test split.

Offline datasets: sklearn's bundled digits (1,797 8×8 grey images, values 0..16), split
stratified; Fashion-MNIST (70,000 28×28 grey images) from its idx files, which Debian's
`dataset-fashion-mnist` package installs (`FASHION_MNIST_SYSTEM_DIR`) or any folder holds.
torchvision datasets are never downloaded; when files are missing, `DatasetNotFoundError` says
where to put them (or which package to install).
"""

from __future__ import annotations

import gzip
import zlib
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


class DatasetFormatError(UsageError):
    """A dataset file exists but is not what its name says (truncated, wrong format)."""


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


FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's `dataset-fashion-mnist` package puts the four idx `.gz` files."""

FASHION_MNIST_INSTALL = "apt-get update && apt-get install -y dataset-fashion-mnist"
"""The command (as root) that installs Fashion-MNIST offline-readable on Debian/Ubuntu."""

FASHION_MNIST_MEAN = 0.5  # pixels 0..255 are scaled to [0, 1], then (x − 0.5)/0.5, as digits
FASHION_MNIST_STD = 0.5
FASHION_MNIST_SIDE = 28  # the dataset's image side (pixels)
FASHION_MNIST_VAL_FRACTION = 1 / 12  # of each class of the 60,000 training images: 500 × 10

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """An idx file (LeCun's MNIST format; `.gz` is decompressed) as an array of its shape.

    Format: 2 zero bytes, a type byte (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D
    float32, 0x0E float64), a byte with the number of dimensions d, d big-endian uint32 sizes,
    then the values, big-endian, row-major. Raises `DatasetFormatError` on anything else.
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise DatasetFormatError(f"{path}: not a readable gzip file ({err})") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES or raw[3] == 0:
        raise DatasetFormatError(f"{path}: not an idx file (header {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetFormatError(f"{path}: idx header cut short ({len(raw)} bytes)")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise DatasetFormatError(f"{path}: {len(raw)} bytes, expected {expected} for an idx "
                                 f"array {shape} of {dtype.name}")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte",
}
"""The four idx files (each may also be stored gzipped, with `.gz` appended)."""


def fashion_mnist_dirs(root: str | Path | None) -> list[Path]:
    """Folders searched for the idx files, in order: `root/FashionMNIST/raw` (torchvision's
    layout), `root/fashion-mnist`, `root` itself, then `FASHION_MNIST_SYSTEM_DIR`."""
    dirs = []
    if root is not None:
        r = Path(root)
        dirs += [r / "FashionMNIST" / "raw", r / "fashion-mnist", r]
    return [*dirs, FASHION_MNIST_SYSTEM_DIR]


def _idx_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def find_fashion_mnist(root: str | Path | None = None) -> dict[str, Path]:
    """Paths of the four idx files from the first folder of `fashion_mnist_dirs(root)` that
    holds all four (each plain or `.gz`); `DatasetNotFoundError` naming the install command
    when none does."""
    searched = fashion_mnist_dirs(root)
    for folder in searched:
        found = {k: _idx_file(folder, stem) for k, stem in FASHION_MNIST_FILES.items()}
        if all(p is not None for p in found.values()):
            return {k: p for k, p in found.items() if p is not None}
    names = ", ".join(f"{s}[.gz]" for s in FASHION_MNIST_FILES.values())
    raise DatasetNotFoundError(
        f"fashion-mnist: idx files not found in {', '.join(str(d) for d in searched)}; install "
        f"them with `{FASHION_MNIST_INSTALL}` (as root; Debian's package, no download by this "
        f"tool) or put {names} in one of those folders (e.g. DATA/FashionMNIST/raw/ with "
        "--data-root DATA)"
    )


def _fashion_arrays(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx(images_path), read_idx(labels_path)
    side = FASHION_MNIST_SIDE
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (side, side):
        raise DatasetFormatError(f"{images_path}: expected uint8 images [N, {side}, {side}], "
                                 f"found {images.dtype} {list(images.shape)}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DatasetFormatError(f"{labels_path}: expected {images.shape[0]} labels, found "
                                 f"{list(labels.shape)}")
    n_classes = len(prompts.FASHION_MNIST_CLASSES)
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise DatasetFormatError(f"{labels_path}: labels outside 0..{n_classes - 1}")
    return images, labels.astype(np.int64)


def fit_grey(images: np.ndarray, img_size: int) -> torch.Tensor:
    """uint8 grey images `[N, h, w]` (0 = black background) → float32 `[N, 1, img_size,
    img_size]` in [0, 1]: zero-padded symmetrically (extra row/column at the bottom/right)
    when `img_size` ≥ h and w (28 → 32 pads 2 on each side, no resampling), else resized
    bilinearly with antialiasing."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(torch.float32).div_(255.0).unsqueeze(1)
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if img_size >= h and img_size >= w:
        top, left = (img_size - h) // 2, (img_size - w) // 2
        return F.pad(x, (left, img_size - w - left, top, img_size - h - top))
    return F.interpolate(x, size=(img_size, img_size), mode="bilinear", align_corners=False,
                         antialias=True)


def _grey_dataset(grey: torch.Tensor, labels: np.ndarray) -> TensorImages:
    """`TensorImages` whose images are `grey [N, 1, S, S]` (consumed: normalized in place)
    expanded (a view, no copy) to the model's 3 channels."""
    norm = grey.sub_(FASHION_MNIST_MEAN).div_(FASHION_MNIST_STD)  # in place: grey is ours
    return TensorImages(norm.expand(-1, 3, -1, -1), torch.from_numpy(labels))


def fashion_mnist_splits(
    img_size: int, *, root: str | Path | None = None, seed: int = 0,
    val_fraction: float = FASHION_MNIST_VAL_FRACTION,
) -> Splits:
    """Fashion-MNIST: the official 10,000 test images as test; val = `val_fraction` of each
    class of the 60,000 training images (stratified, fixed `seed`; default 500 per class), the
    rest train. Images `[3, img_size, img_size]` float32: [0, 1], padded or resized
    (`fit_grey`), (x − 0.5)/0.5, grey copied to 3 channels (an expanded view)."""
    files = find_fashion_mnist(root)
    tr_img, tr_lab = _fashion_arrays(files["train_images"], files["train_labels"])
    te_img, te_lab = _fashion_arrays(files["test_images"], files["test_labels"])
    tr, va, _ = stratified_split(tr_lab, (val_fraction, 0.0), seed)
    how = "pad" if img_size >= FASHION_MNIST_SIDE else "resize"
    return Splits(
        name="fashion-mnist",
        train=_grey_dataset(fit_grey(tr_img[tr], img_size), tr_lab[tr]),
        val=_grey_dataset(fit_grey(tr_img[va], img_size), tr_lab[va]),
        test=_grey_dataset(fit_grey(te_img, img_size), te_lab),
        class_names=prompts.FASHION_MNIST_CLASSES,
        templates=prompts.TEMPLATES["fashion-mnist"],
        transform_id=f"fashion-mnist-{how}{img_size}-norm0.5",
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


@dataclass(frozen=True, kw_only=True)
class _Torchvision:
    """How to read one torchvision dataset: class `cls` of `torchvision.datasets`, what must be
    under the root (`expected`, for the missing-files message), the keyword arguments of its
    training split (`train`), official test split (`test`; None: carve 20% by seed) and
    official val split (`val`; None: carve `val_fraction` of train), and the attribute holding
    its class names."""

    cls: str
    expected: str
    train: dict[str, Any]
    test: dict[str, Any] | None
    val: dict[str, Any] | None = None
    names: str = "classes"


_TORCHVISION = {
    "cifar10": _Torchvision(cls="CIFAR10", expected="cifar-10-batches-py/ (the python version)",
                            train={"train": True}, test={"train": False}),
    "cifar100": _Torchvision(cls="CIFAR100", expected="cifar-100-python/ (the python version)",
                             train={"train": True}, test={"train": False}),
    "stl10": _Torchvision(cls="STL10", expected="stl10_binary/", train={"split": "train"},
                          test={"split": "test"}),
    "flowers102": _Torchvision(cls="Flowers102",
                               expected="flowers-102/ (jpg/, imagelabels.mat, setid.mat)",
                               train={"split": "train"}, val={"split": "val"},
                               test={"split": "test"}),
    "oxford_pets": _Torchvision(cls="OxfordIIITPet",
                                expected="oxford-iiit-pet/ (images/, annotations/)",
                                train={"split": "trainval"}, test={"split": "test"}),
    "caltech101": _Torchvision(cls="Caltech101", expected="caltech101/101_ObjectCategories/",
                               train={"target_type": "category"}, test=None,
                               names="categories"),
}  # fmt: skip
"""The torchvision datasets read through `_Torchvision` (imagenet is two image folders)."""

CALTECH101_TEST_FRACTION = 0.2
"""Caltech101 has no official split: this fraction (by seed) is its test split."""


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
    if name == "imagenet":
        train, val, test, names = _imagenet(tvd, root, transform, val_fraction, seed)
    elif name in _TORCHVISION:
        spec = _TORCHVISION[name]
        train, val, test, full = _torchvision(tvd, name, spec, root, transform, val_fraction, seed)
        names = tuple(prompts.readable_name(c) for c in getattr(full, spec.names))
        if name == "cifar10":
            if tuple(full.classes) != prompts.CIFAR10_CLASSES:
                raise UnknownDatasetError(
                    f"cifar10 under {root}: unexpected class list {full.classes}")
            names = prompts.CIFAR10_CLASSES
    else:
        raise UnknownDatasetError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    if len(names) != len(set(names)):
        raise UnknownDatasetError(f"{name}: class names are not unique after cleaning")
    return Splits(name=name, train=train, val=val, test=test, class_names=names,
                  templates=prompts.TEMPLATES[name], transform_id=transform_id)


def _torchvision(tvd: Any, name: str, spec: _Torchvision, root: Path, tf: Transform,
                 val_fraction: float, seed: int) -> tuple[Dataset, Dataset, Dataset, Any]:
    """(train, val, test, the dataset whose class names count) of `spec` under `root`."""
    make = getattr(tvd, spec.cls)
    full = _tv(name, root, spec.expected, lambda: make(str(root), transform=tf, **spec.train))
    if spec.val is not None and spec.test is not None:
        return (full, make(str(root), transform=tf, **spec.val),
                make(str(root), transform=tf, **spec.test), full)
    if spec.test is None:
        rest, test = carve_val(full, CALTECH101_TEST_FRACTION, seed)
        train, val = carve_val(rest, val_fraction, seed + 1)
        return train, val, test, full
    test = make(str(root), transform=tf, **spec.test)
    train, val = carve_val(full, val_fraction, seed)
    return train, val, test, full


def _imagenet(tvd: Any, root: Path, tf: Transform, val_fraction: float,
              seed: int) -> tuple[Dataset, Dataset, Dataset, tuple[str, ...]]:
    """ImageNet as `root/train/<wnid>/` and `root/val/<wnid>/` folders (val is the test split)."""
    train_dir, val_dir = root / "train", root / "val"
    if not train_dir.is_dir() or not val_dir.is_dir():
        raise _missing("imagenet", root, "train/<wnid>/*.JPEG and val/<wnid>/*.JPEG folders")
    full = tvd.ImageFolder(str(train_dir), transform=tf)
    test = tvd.ImageFolder(str(val_dir), transform=tf)
    train, val = carve_val(full, val_fraction, seed)
    return train, val, test, _imagenet_names(root, tuple(full.classes))


def _imagenet_names(root: Path, wnids: tuple[str, ...]) -> tuple[str, ...]:
    """Readable ImageNet class names from `root/classes.txt` (lines `wnid<TAB>name`), else the
    folder names themselves."""
    table = root / "classes.txt"
    if not table.is_file():
        return wnids
    mapping = dict(line.split("\t", 1) for line in table.read_text().splitlines() if "\t" in line)
    return tuple(mapping.get(w, w).strip() for w in wnids)


DATASETS = ("digits", "fashion-mnist", "cifar10", "cifar100", "stl10", "flowers102", "oxford_pets",
            "caltech101", "imagenet")


def load_splits(
    name: str, *, root: str | Path = "data", transform: Transform | None = None,
    transform_id: str = "", img_size: int = 32, seed: int = 0,
) -> Splits:
    """Dispatch: `digits` or `fashion-mnist` (images at `img_size` with their own fixed
    normalization; `transform` is not used; fashion-mnist searches `root`, then the Debian
    package's folder) or a torchvision dataset (needs `transform`, normally the teacher's
    preprocessing, and its `transform_id`)."""
    if name == "digits":
        return digits_splits(img_size, seed=seed)
    if name == "fashion-mnist":
        return fashion_mnist_splits(img_size, root=root, seed=seed)
    if name not in DATASETS:
        raise UnknownDatasetError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    if transform is None:
        raise ValueError(f"{name}: a transform (the teacher's preprocessing) is required")
    return torchvision_splits(name, root, transform, transform_id, seed=seed)
