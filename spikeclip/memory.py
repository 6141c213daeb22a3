"""How much memory a SpikeCLIP needs, from its config alone, and whether this machine has it.

`estimate_memory(config, batch=1)` returns a `MemoryEstimate`: the bytes of both towers' state
dicts (exact) and the activation bytes of one sample per tower (a documented estimate), so a
stage can size its batches: `batch = (available − parameter_bytes) // activation bytes per
sample`. `available_memory()` says what this process may still use; `check_memory(estimate,
what=...)` raises `InsufficientMemoryError` (exit 9) before anything is allocated.

Formulas (float32: 4 bytes per value; BatchNorm's `num_batches_tracked` counters are int64):

Parameters. Image tower, with c = (in_channels, tokenizer_channels…, embed_dim) = (c₀ … c₅),
D = embed_dim, H = D·mlp_ratio, O = out_dim, depth blocks:

    tokenizer   Σᵢ₌₀⁴ 9·cᵢ·cᵢ₊₁ (3×3 convs, no bias) + Σᵢ₌₀⁴ 4·cᵢ₊₁ (BN γ, β, mean, var)
    per block   attention 3·D² + 3·4D (q, k, v 1×1 convs without bias, their BNs)
                          + D² + D + 4D (proj conv with bias, its BN)
                MLP       D·H + H + 4H + H·D + D + 4D (fc1, BN, fc2, BN)
    head        T (readout time weights) + D·O + O
    counters    5 + 6·depth BatchNorms, 8 bytes each

Text tower, with V = vocab_size, W = text_width, L = text_len, F = text_hidden:
V·W + L·W (embeddings) + L·W·F + F (fc1) + F·O + O (fc2) + T (readout).

Activations per sample: every intermediate tensor one sample produces in a forward pass, over
all T steps: each op's output of the model's `describe()` records, T times for the per-step
ops, once for the per-sample ones (text embedding, time readout, head), plus the attention's
Kᵀ·V product (heads·d·d = D·d values per step and block). That is what autograd keeps for a
training step (LIF membrane states aside); an inference pass holds less at once. With
S = img_size², S₂ = S/4, N = S/16 tokens, d = head_dim:

    image   T·[3c₁S + 3c₂S + c₃(2S + 2S₂) + c₄(2S₂ + 2N) + 2DN        (tokenizer)
               + depth·(19DN + Dd + 3HN)                               (blocks)
               + D]                                                    (token mean)
            + D + O                                                    (readout, head)
    text    L·W + T·(L·W + 2F + O) + O

(the block term: attention in_lif DN, q/k/v conv+BN+LIF 9DN, core DN, attn_lif DN, proj conv+BN
2DN, residual add DN; MLP in_lif DN, fc1 conv+BN+LIF 3HN, fc2 conv+BN 2DN, residual add DN).
For the paper configuration that is 38,173,240 image-tower state-dict bytes and 69,608,960
image activation bytes per sample (T = 4).
"""

from __future__ import annotations

import resource
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import psutil

from spikeclip.config import SpikeCLIPConfig
from spikeclip.errors import InsufficientMemoryError

FLOAT_BYTES = 4
"""Bytes per float32 parameter or activation value."""

COUNTER_BYTES = 8
"""Bytes per BatchNorm `num_batches_tracked` counter (int64)."""

BN_PARAMS_PER_CHANNEL = 4
"""γ, β, running mean, running variance."""

UNLIMITED = 1 << 60
"""A cgroup or rlimit value at or above this means "no limit" (cgroup v1 writes 2⁶³ − 4096)."""

CGROUP_V2 = Path("/sys/fs/cgroup")
CGROUP_V1 = Path("/sys/fs/cgroup/memory")


@dataclass(frozen=True, kw_only=True)
class MemoryEstimate:
    """Memory of one SpikeCLIP at float32, in bytes (see the module docstring for formulas).

    image_parameter_bytes / text_parameter_bytes: each tower's state dict (exact).
    image_activation_bytes / text_activation_bytes: one sample (one image; one prompt) through
        the tower over all T steps.
    batch: the samples per tower that `total_bytes` counts.
    """

    image_parameter_bytes: int
    text_parameter_bytes: int
    image_activation_bytes: int
    text_activation_bytes: int
    batch: int = 1

    @property
    def parameter_bytes(self) -> int:
        """Both towers' state dicts."""
        return self.image_parameter_bytes + self.text_parameter_bytes

    @property
    def activation_bytes_per_sample(self) -> int:
        """One image and one prompt through their towers."""
        return self.image_activation_bytes + self.text_activation_bytes

    @property
    def total_bytes(self) -> int:
        """Parameters plus `batch` samples of activations in both towers."""
        return self.parameter_bytes + self.batch * self.activation_bytes_per_sample


@dataclass(frozen=True, kw_only=True)
class AvailableMemory:
    """Bytes this process may still allocate: the smallest of the limits that apply.

    system: psutil's available memory (free + reclaimable page cache) of the machine.
    cgroup: this process's memory cgroup limit minus its current usage, or None if unlimited.
    address_space: `RLIMIT_AS` (ulimit -v) minus this process's virtual size, or None.
    """

    system: int
    cgroup: int | None = None
    address_space: int | None = None

    @property
    def bytes(self) -> int:
        """The binding limit."""
        return min(v for v in (self.system, self.cgroup, self.address_space) if v is not None)

    @property
    def source(self) -> str:
        """Which limit binds, in words."""
        if self.address_space is not None and self.address_space == self.bytes:
            return "address-space limit (ulimit -v)"
        if self.cgroup is not None and self.cgroup == self.bytes:
            return "memory cgroup limit"
        return "available system memory"


TOWERS = ("image", "text")
"""The towers whose activations `estimate_memory` can count."""


def estimate_memory(
    config: SpikeCLIPConfig, batch: int = 1, *, towers: Collection[str] = TOWERS
) -> MemoryEstimate:
    """The `MemoryEstimate` of a SpikeCLIP built from `config`, counting `batch` samples (≥ 0)
    through each of `towers` (a training stage that runs one tower passes only that one: the
    other's activation bytes are then 0; the parameters of both are always counted)."""
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 0:
        raise ValueError(f"batch must be an int >= 0, got {batch!r}")
    unknown = set(towers) - set(TOWERS)
    if unknown:
        raise ValueError(f"towers must be among {TOWERS}, got {sorted(unknown)}")
    return MemoryEstimate(
        image_parameter_bytes=_image_parameter_bytes(config),
        text_parameter_bytes=_text_parameter_bytes(config),
        image_activation_bytes=FLOAT_BYTES * _image_activation_values(config)
        if "image" in towers else 0,
        text_activation_bytes=FLOAT_BYTES * _text_activation_values(config)
        if "text" in towers else 0,
        batch=batch,
    )


def available_memory() -> AvailableMemory:
    """What this process may still allocate now (see `AvailableMemory`)."""
    return AvailableMemory(
        system=int(psutil.virtual_memory().available),
        cgroup=_cgroup_headroom(),
        address_space=_address_space_headroom(),
    )


def check_memory(
    estimate: MemoryEstimate, *, what: str, available: AvailableMemory | None = None
) -> None:
    """Raise `InsufficientMemoryError` (exit 9) if `estimate.total_bytes` exceeds what is
    available; `what` starts the message (e.g. the file and the stage)."""
    available = available if available is not None else available_memory()
    if estimate.total_bytes <= available.bytes:
        return
    samples = _samples(estimate)
    raise InsufficientMemoryError(
        f"{what}: needs about {format_bytes(estimate.total_bytes)} at float32 "
        f"({format_bytes(estimate.parameter_bytes)} of parameters + "
        f"{format_bytes(estimate.batch * estimate.activation_bytes_per_sample)} of activations "
        f"for {samples}), but only {format_bytes(available.bytes)} is available "
        f"({available.source}); refused before allocating"
    )


def _samples(estimate: MemoryEstimate) -> str:
    """What the activation bytes of `estimate` are for, in words."""
    ran = [name for name, n in (("image", estimate.image_activation_bytes),
                                ("prompt", estimate.text_activation_bytes)) if n]
    if not ran:
        return "no samples"
    if estimate.batch == 1:
        return " and ".join(f"one {name}" for name in ran)
    return f"{estimate.batch} " + " and ".join(f"{name}s" for name in ran)


def format_bytes(n: int) -> str:
    """`n` bytes in binary units with three significant digits, e.g. '1.50 GiB'."""
    value, unit = float(n), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if value < 1024 or unit == "EiB":
            break
        value /= 1024
    return f"{int(value)} B" if unit == "B" else f"{value:.3g} {unit}"


# ----------------------------------------------------------------------------- formulas


def _channels(cfg: SpikeCLIPConfig) -> tuple[int, ...]:
    return (cfg.in_channels, *cfg.tokenizer_channels, cfg.embed_dim)


def _image_parameter_bytes(cfg: SpikeCLIPConfig) -> int:
    c = _channels(cfg)
    d, h, o = cfg.embed_dim, cfg.mlp_hidden, cfg.out_dim
    bn = BN_PARAMS_PER_CHANNEL
    tokenizer = sum(9 * c[i] * c[i + 1] + bn * c[i + 1] for i in range(5))
    attention = 3 * (d * d + bn * d) + (d * d + d) + bn * d
    mlp = (d * h + h + bn * h) + (h * d + d + bn * d)
    head = cfg.T + d * o + o
    floats = tokenizer + cfg.depth * (attention + mlp) + head
    batchnorms = 5 + 6 * cfg.depth
    return FLOAT_BYTES * floats + COUNTER_BYTES * batchnorms


def _text_parameter_bytes(cfg: SpikeCLIPConfig) -> int:
    flat = cfg.text_len * cfg.text_width
    floats = (
        cfg.vocab_size * cfg.text_width
        + flat
        + flat * cfg.text_hidden
        + cfg.text_hidden
        + cfg.text_hidden * cfg.out_dim
        + cfg.out_dim
        + cfg.T
    )
    return FLOAT_BYTES * floats


def _image_activation_values(cfg: SpikeCLIPConfig) -> int:
    c = _channels(cfg)
    s = cfg.img_size**2
    s2 = (cfg.img_size // 2) ** 2
    n = cfg.num_tokens
    d, h = cfg.embed_dim, cfg.mlp_hidden
    tokenizer = (
        3 * c[1] * s + 3 * c[2] * s + c[3] * (2 * s + 2 * s2) + c[4] * (2 * s2 + 2 * n) + 2 * d * n
    )
    block = 19 * d * n + d * cfg.head_dim + 3 * h * n
    per_step = tokenizer + cfg.depth * block + d
    return cfg.T * per_step + d + cfg.out_dim


def _text_activation_values(cfg: SpikeCLIPConfig) -> int:
    flat = cfg.text_len * cfg.text_width
    return flat + cfg.T * (flat + 2 * cfg.text_hidden + cfg.out_dim) + cfg.out_dim


# ----------------------------------------------------------------------------- limits


def _read_int(path: Path) -> int | None:
    """An integer file of the cgroup tree, or None if absent, unreadable or "max"."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cgroup_headroom() -> int | None:
    """cgroup v2 `memory.max − memory.current`, else v1 `limit_in_bytes − usage_in_bytes`."""
    for limit_file, usage_file in (
        (CGROUP_V2 / "memory.max", CGROUP_V2 / "memory.current"),
        (CGROUP_V1 / "memory.limit_in_bytes", CGROUP_V1 / "memory.usage_in_bytes"),
    ):
        limit = _read_int(limit_file)
        if limit is None or limit >= UNLIMITED:
            continue
        usage = _read_int(usage_file) or 0
        return max(limit - usage, 0)
    return None


def _address_space_headroom() -> int | None:
    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY or soft >= UNLIMITED:
        return None
    return max(soft - int(psutil.Process().memory_info().vms), 0)
