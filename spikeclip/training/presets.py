"""Named model configurations for `spikeclip-train --config NAME`.

`digits` is the project's default model (examples/spikeclip-digits.pt): the paper's architecture
with smaller numbers, chosen to be quick to simulate in fixed point and in Lava:
16×16 input (digits are 8×8, upsampled), tokenizer channels 4-8-16-32, embed 32 (16 tokens),
one block with 2 heads of 16, MLP ratio 4, T = 4, output 384 (= the MiniLM teacher's dimension).
41,288 image-tower parameters; a training step on 64 images costs ~0.11 s of one CPU core
(8-16-32-64 / embed 64 cost 0.29 s for no gain on digits).
Text tower: MiniLM's full WordPiece vocabulary (30,522 ids, so any prompt the teacher tokenizer
makes is valid) with 16-wide embeddings (initialized from MiniLM's 384-wide table by PCA),
16 tokens, hidden 256. A small width, not a pruned vocabulary: the checkpoint stays small
(30,522 × 16 floats ≈ 2 MB) without an id-mapping table that every consumer would need.
"""

from __future__ import annotations

import json
from pathlib import Path

from spikeclip.config import SpikeCLIPConfig
from spikeclip.errors import ConfigError


def digits() -> SpikeCLIPConfig:
    """The default (digits) model configuration described in the module docstring."""
    return SpikeCLIPConfig(
        img_size=16, in_channels=3, embed_dim=32, depth=1, num_heads=2, mlp_ratio=4, T=4,
        out_dim=384, tokenizer_channels=(4, 8, 16, 32), text_len=16, vocab_size=30522,
        text_width=16, text_hidden=256,
    )


def fashion() -> SpikeCLIPConfig:
    """The Fashion-MNIST model (examples/train_fashion.sh): the images' own 28×28 (7×7 = 49
    tokens), tokenizer channels 8-16-32-64, embed 64, two blocks of 4 heads of 16, MLP ratio 4,
    T = 4, output 384 (MiniLM); the digits model's text tower. 187,980 image-tower parameters;
    a training step on 64 images costs ~1 s of one CPU core (examples/README.md)."""
    return SpikeCLIPConfig(
        img_size=28, in_channels=3, embed_dim=64, depth=2, num_heads=4, mlp_ratio=4, T=4,
        out_dim=384, tokenizer_channels=(8, 16, 32, 64), text_len=16, vocab_size=30522,
        text_width=16, text_hidden=256,
    )


PRESETS = {"paper": SpikeCLIPConfig.paper, "tiny": SpikeCLIPConfig.tiny, "digits": digits,
           "fashion": fashion}


def resolve(name_or_path: str) -> SpikeCLIPConfig:
    """A preset name (`paper`, `tiny`, `digits`, `fashion`) or a JSON file of
    `SpikeCLIPConfig` fields."""
    if name_or_path in PRESETS:
        return PRESETS[name_or_path]()
    path = Path(name_or_path)
    if not path.is_file():
        raise ConfigError(f"--config {name_or_path!r}: not a preset ({', '.join(PRESETS)}) "
                          "nor a JSON file")
    return SpikeCLIPConfig.from_dict(json.loads(path.read_text()))
