"""`SpikeCLIPConfig`: every architectural number of SpikeCLIP, and `LayerRecord` for `describe()`.

The `paper` preset is the official configuration (research/spikeclip_digest.md §2.1, §3):
32×32 RGB input, T = 4, embed 384, depth 4, 8 heads, MLP ratio 4, output 512, text length 20,
CLIP's 49,408-token vocabulary with 512-wide embeddings, text hidden width 2048.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from spikeclip.errors import ConfigError

NEURON_KINDS = ("lif", "ann")
"""`lif`: the spiking model. `ann`: the ANN twin (every LIF → ReLU, T = 1)."""

NUM_POOLS = 2
"""The tokenizer halves the resolution twice (after conv2 and conv3): img_size must divide by 4."""

MAX_T = 1024
"""Most time steps a config may have. The readout's initial weights ln(0.8·2^(t−T+1))
(`image_encoder.time_weight_init`) leave float64's range above T = 1075 (the old "math domain
error"); spiking transformers of this family use 1 to a few dozen steps."""

MAX_WIDTH = 1 << 16
"""Most channels of any layer (in_channels, tokenizer_channels, embed_dim, out_dim, text_width,
text_hidden): a 65,536 × 65,536 linear layer alone is 16 GiB of float32."""

MAX_DEPTH = 1024
"""Most transformer blocks."""

MAX_IMG_SIZE = 4096
"""Largest input side in pixels (4,096² RGB at T = 1 is already 192 MiB per image)."""

MAX_TEXT_LEN = 4096
"""Most tokens per prompt."""

MAX_VOCAB = 1 << 20
"""Largest token vocabulary (CLIP: 49,408; MiniLM: 30,522)."""

MAX_MLP_RATIO = 64
"""Largest MLP expansion (the paper: 4)."""

UPPER_BOUNDS: dict[str, int] = {
    "img_size": MAX_IMG_SIZE,
    "in_channels": MAX_WIDTH,
    "embed_dim": MAX_WIDTH,
    "depth": MAX_DEPTH,
    "mlp_ratio": MAX_MLP_RATIO,
    "T": MAX_T,
    "out_dim": MAX_WIDTH,
    "text_len": MAX_TEXT_LEN,
    "vocab_size": MAX_VOCAB,
    "text_width": MAX_WIDTH,
    "text_hidden": MAX_WIDTH,
}
"""Hard upper bound of each integer size field: a sanity bound on what the config may say, not
a promise that it fits this machine (`spikeclip.memory.check_memory` decides that, from an
estimate, before a model is built). num_heads is bounded by embed_dim (it must divide it)."""


@dataclass(frozen=True, kw_only=True)
class SpikeCLIPConfig:
    """Architecture of the SpikeCLIP image and text encoders (defaults = the paper's).

    Image tower: input [B, in_channels, img_size, img_size] repeated T times; tokenizer convs
    in_channels → tokenizer_channels[0] → … → tokenizer_channels[3] → embed_dim; depth blocks of
    spiking self-attention (num_heads heads, scale attn_scale, attention-LIF threshold
    attn_v_threshold) and an MLP of width embed_dim·mlp_ratio; head embed_dim → out_dim.
    Text tower: token ids [B, text_len] over vocab_size tokens, embeddings of width text_width,
    then text_len·text_width → text_hidden → out_dim.
    Neurons: LIF with time constant tau (steps), threshold v_threshold (membrane units), sigmoid
    surrogate slope surrogate_alpha; strict_threshold=True fires on `H > θ` (Loihi's rule)
    instead of `H ≥ θ`. neuron="ann" builds the ANN twin (ReLU instead of LIF; needs T = 1).
    """

    img_size: int = 32
    in_channels: int = 3
    embed_dim: int = 384
    depth: int = 4
    num_heads: int = 8
    mlp_ratio: int = 4
    T: int = 4
    out_dim: int = 512
    tokenizer_channels: tuple[int, int, int, int] = (48, 96, 192, 384)
    text_len: int = 20
    vocab_size: int = 49408
    text_width: int = 512
    text_hidden: int = 2048
    attn_scale: float = 0.125
    v_threshold: float = 1.0
    attn_v_threshold: float = 0.5
    tau: float = 2.0
    surrogate_alpha: float = 4.0
    strict_threshold: bool = False
    neuron: str = "lif"

    @classmethod
    def paper(cls) -> SpikeCLIPConfig:
        """The official configuration (9,513,396 image-encoder parameters)."""
        return cls()

    @classmethod
    def tiny(cls) -> SpikeCLIPConfig:
        """A small configuration with the paper's structure; a forward/backward takes ms on CPU."""
        return cls(
            img_size=16,
            embed_dim=16,
            depth=2,
            num_heads=2,
            mlp_ratio=2,
            out_dim=12,
            tokenizer_channels=(4, 8, 8, 16),
            text_len=6,
            vocab_size=50,
            text_width=8,
            text_hidden=32,
        )

    def __post_init__(self) -> None:
        if isinstance(self.tokenizer_channels, list):
            object.__setattr__(self, "tokenizer_channels", tuple(self.tokenizer_channels))
        for f in dataclasses.fields(self):
            _check_type(f.name, getattr(self, f.name), f.type)
        for name in (
            "img_size",
            "in_channels",
            "embed_dim",
            "depth",
            "num_heads",
            "mlp_ratio",
            "T",
            "out_dim",
            "text_len",
            "vocab_size",
            "text_width",
            "text_hidden",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"config.{name} must be >= 1, got {getattr(self, name)}")
        for name, bound in UPPER_BOUNDS.items():
            if getattr(self, name) > bound:
                raise ConfigError(
                    f"config.{name} must be <= {bound:,} (this toolchain's bound), "
                    f"got {getattr(self, name):,}"
                )
        if len(self.tokenizer_channels) != 4 or min(self.tokenizer_channels) < 1:
            raise ConfigError(
                f"config.tokenizer_channels must be 4 positive ints, got {self.tokenizer_channels}"
            )
        if max(self.tokenizer_channels) > MAX_WIDTH:
            raise ConfigError(
                f"config.tokenizer_channels must each be <= {MAX_WIDTH:,} (this toolchain's "
                f"bound), got {self.tokenizer_channels}"
            )
        for name in ("attn_scale", "v_threshold", "attn_v_threshold", "tau", "surrogate_alpha"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"config.{name} must be finite and > 0, got {value}")
        if self.embed_dim % self.num_heads:
            raise ConfigError(
                f"config.embed_dim={self.embed_dim} is not divisible by num_heads={self.num_heads}"
            )
        if self.img_size % (2**NUM_POOLS):
            raise ConfigError(f"config.img_size={self.img_size} must be divisible by 4")
        if self.neuron not in NEURON_KINDS:
            raise ConfigError(f"config.neuron must be one of {NEURON_KINDS}, got {self.neuron!r}")
        if self.neuron == "ann" and self.T != 1:
            raise ConfigError(f"config.neuron='ann' (the ANN twin) needs T=1, got T={self.T}")

    @property
    def head_dim(self) -> int:
        """Channels per attention head (48 in the paper)."""
        return self.embed_dim // self.num_heads

    @property
    def mlp_hidden(self) -> int:
        """Hidden width of the block MLP (1536 in the paper)."""
        return self.embed_dim * self.mlp_ratio

    @property
    def grid_size(self) -> int:
        """Token-grid side after the tokenizer's two max-pools (8 in the paper: 64 tokens)."""
        return self.img_size // (2**NUM_POOLS)

    @property
    def num_tokens(self) -> int:
        """Tokens per image (N = 64 in the paper)."""
        return self.grid_size**2

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of builtins (tuples become lists) for checkpoints and JSON."""
        out = dataclasses.asdict(self)
        out["tokenizer_channels"] = list(self.tokenizer_channels)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SpikeCLIPConfig:
        """Inverse of `to_dict`; missing keys take the paper defaults, unknown keys raise."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"config must be a mapping, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(map(str, unknown))}")
        return cls(**dict(data))


def _check_type(name: str, value: Any, annotation: str) -> None:
    """Raise `ConfigError` unless `value` fits the (string) annotation of field `name`."""
    if annotation == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif annotation == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif annotation == "bool":
        ok = isinstance(value, bool)
    elif annotation == "str":
        ok = isinstance(value, str)
    else:  # tokenizer_channels
        ok = isinstance(value, tuple) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        )
    if not ok:
        raise ConfigError(f"config.{name} must be {annotation}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class LayerRecord:
    """One step of a module's computation, as `describe()` reports it for export.

    name: dotted path; for `is_module` records it is the submodule path below the describing
        root (`root.get_submodule(name)` returns it; `name + ".weight"` is a state-dict key);
        otherwise a functional op (residual add, attention core, token mean) inside its parent.
    kind: op type, e.g. "conv2d", "batchnorm2d", "maxpool2d", "lif", "relu", "conv1d",
        "batchnorm1d", "spiking_attention", "add", "token_mean", "time_readout", "linear",
        "embedding", "repeat".
    inputs: names of the records whose outputs feed this one (summed if several, except for
        "spiking_attention", which takes (q, k, v)); "input" is the describing root's input.
    in_shape / out_shape: per time step, without the batch axis, e.g. (C, H, W) or (C, N).
    attrs: op parameters (thresholds, kernel sizes, scale, ...), builtins only.
    """

    name: str
    kind: str
    inputs: tuple[str, ...]
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    is_module: bool = True
    attrs: Mapping[str, Any] = field(default_factory=dict)
