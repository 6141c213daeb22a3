"""Small datasets in torchvision's on-disk layouts, built by the tests (nothing is downloaded).

``fake_imagenet`` writes the layout `spikeclip.training.data` reads for ``imagenet``
(``train/<wnid>/*.png``, ``val/<wnid>/*.png`` for torchvision's ImageFolder, ``classes.txt``
with ``wnid<TAB>name``). Every image of a class is one constant RGB colour, so its preprocessed
pixels are known by hand: resizing and cropping a constant image leaves it constant, and
normalization gives ``(colour / 255 − mean) / std`` per channel.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

COLOURS = {"n00000001": (255, 0, 0), "n00000002": (0, 128, 255)}
NAMES = {"n00000001": "red square", "n00000002": "blue square"}
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP's published preprocessing
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def fake_imagenet(root: Path, *, train_per_class: int = 3, val_per_class: int = 2,
                  size: tuple[int, int] = (20, 12)) -> Path:
    """Write the two-class fake ImageNet under ``root``; returns ``root``."""
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for wnid, colour in COLOURS.items():
            folder = root / split / wnid
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                Image.new("RGB", size, colour).save(folder / f"{wnid}_{i}.png")
    (root / "classes.txt").write_text("".join(f"{w}\t{n}\n" for w, n in NAMES.items()))
    return root


def expected_pixels(colour: tuple[int, int, int], mean, std) -> list[float]:
    """Per-channel value of a constant ``colour`` image after ToTensor and Normalize."""
    return [(c / 255.0 - m) / s for c, m, s in zip(colour, mean, std)]
