"""Teacher features cached on disk, keyed by teacher (name + weight fingerprint), dataset, split
and transform.

A cache file `<cache_dir>/<key>.pt` holds `{"key": {...}, "features": [N, D] float32}`, row i
= the teacher feature of item i of the split (items in dataset order). Teachers are frozen in
the stages that read the cache, so features are valid as long as the key matches; the key
includes the teacher's weight fingerprint, so a fine-tuned teacher never reads stale features.

Cache files are read by `spikeclip.safe_load` (weights_only, CRC-32 of every zip record, finite
features). A cache file that fails those checks (truncated, flipped bytes, NaN, refused pickle,
wrong layout) is a cache miss, not an error: the table is recomputed and the file replaced, with
a `FeatureCacheWarning` naming the file and the reason (a cache is derived data; the training
run it serves must not fail on it).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from spikeclip.errors import CheckpointError
from spikeclip.safe_load import check_finite, read_torch_file
from spikeclip.training.io import atomic_save
from spikeclip.training.teachers import Teacher, text_features


class FeatureCacheWarning(UserWarning):
    """A cached feature table could not be used and is being recomputed (file and reason)."""


def cache_key(*, teacher: Teacher, dataset: str, split: str, transform: str, n: int) -> dict:
    """The fields that identify one cached feature table."""
    return {"teacher": teacher.name, "weights": teacher.fingerprint(), "dataset": dataset,
            "split": split, "transform": transform, "n": n}


def _path(cache_dir: str | Path, key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    return Path(cache_dir) / f"{key['dataset']}-{key['split']}-{digest}.pt"


def cached(cache_dir: str | Path | None, key: dict,
           compute: Callable[[], torch.Tensor]) -> torch.Tensor:
    """Load the table for `key`, or compute it, store it atomically and return it.
    `cache_dir=None` disables the cache (always computes)."""
    if cache_dir is None:
        return compute()
    path = _path(cache_dir, key)
    if path.is_file():
        found = _read(path, key)
        if found is not None:
            return found
    feats = compute().float().contiguous()
    atomic_save({"key": key, "features": feats}, path)
    return feats


def _read(path: Path, key: dict) -> torch.Tensor | None:
    """The table stored at `path` for `key`, or None (another key's table, or an unusable file:
    then a `FeatureCacheWarning` says why; the caller recomputes and replaces it)."""
    try:
        blob = read_torch_file(path)
        features = blob.get("features") if isinstance(blob, dict) else None
        if isinstance(features, torch.Tensor):
            check_finite({"features": features}, path)
    except CheckpointError as err:
        warnings.warn(FeatureCacheWarning(f"{err}; recomputing it"), stacklevel=3)
        return None
    if blob.get("key") != key:
        return None
    if (not isinstance(features, torch.Tensor) or features.dtype != torch.float32
            or features.ndim != 2 or features.shape[0] != key["n"]):
        shown = list(features.shape) if isinstance(features, torch.Tensor) else type(features)
        warnings.warn(FeatureCacheWarning(
            f"{path}: features are not a float32 [{key['n']}, D] table (found {shown}); "
            "recomputing it"), stacklevel=3)
        return None
    return features


@torch.no_grad()
def image_features(teacher: Teacher, dataset: Dataset, *, name: str, split: str, transform: str,
                   cache_dir: str | Path | None, batch_size: int = 128,
                   num_workers: int = 0) -> torch.Tensor:
    """Teacher image features `[len(dataset), D]` float32 for items `(image, label)` in order."""
    key = cache_key(teacher=teacher, dataset=name, split=split, transform=transform,
                    n=len(dataset))  # type: ignore[arg-type]

    def compute() -> torch.Tensor:
        was_training = teacher.training
        teacher.eval()
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False,
                            num_workers=num_workers)
        out = [teacher.encode_image(images).float() for images, _ in loader]
        teacher.train(was_training)
        return torch.cat(out)

    return cached(cache_dir, key, compute)


def corpus_features(teacher: Teacher, sentences: Sequence[str], *, name: str,
                    cache_dir: str | Path | None) -> torch.Tensor:
    """Teacher text features `[len(sentences), D]` float32; the corpus hash is the split name."""
    digest = hashlib.sha256("\n".join(sentences).encode()).hexdigest()[:16]
    key = cache_key(teacher=teacher, dataset=name, split=f"text-{digest}",
                    transform=f"tokenize{teacher.context_length}", n=len(sentences))
    return cached(cache_dir, key, lambda: text_features(teacher, sentences))
