"""Import checkpoints trained with the paper's official code (Lvchangze/SpikeCLIP `model.py`).

The official code saves either a timm `CheckpointSaver` dict (`state_dict`, `epoch`, `arch`,
`optimizer`, `version`, maybe `metric`/`args`; `model_best.pth.tar`) or a raw state dict, of one
tower: `Vision_Encoder` (keys `patch_embed.block0_conv.weight`, `block.N.attn.q_conv.weight`,
`proj.weight`, `weights_tensor`, …) or `Language_Encoder` (`fc1`, `fc2`,
`clip_embedding.{token,position}_embedding.weight`, `weights_tensor`). This module maps those keys
onto `SpikeCLIP`'s, infers the `SpikeCLIPConfig` from the tensor shapes, and refuses whatever
does not fit with the first mismatched keys.

Key map (official → ours; image keys under `image_encoder.`, text keys under `text_encoder.`):

    patch_embed.block{i}_conv / _bn          → tokenizer.conv{i} / bn{i}          (i = 0…4)
    block.N.attn.{q,k,v,proj}_{conv,bn}      → blocks.N.attn.{q,k,v,proj}_{conv,bn}
    block.N.mlp.mlp{1,2}_{conv,bn}           → blocks.N.mlp.fc{1,2}_{conv,bn}
    proj                                     → head
    weights_tensor [1, T, 1]                 → readout.weights [T]
    fc1, fc2                                 → fc1, fc2
    clip_embedding.token_embedding           → token_embedding
    clip_embedding.position_embedding [P, W] → position_embedding [text_len, W] (rows 0…text_len-1,
                                               the only ones the official forward reads)
    clip_embedding.position_ids              → dropped (checked to be 0, 1, 2, …)

The official `Language_Encoder` output width equals its embedding width (`clip_dim`), and the
official code has no `num_heads` or image size in any tensor: the caller gives them (or an
`args` namespace stored by timm does). Without them, 32×32 is assumed (it changes no weight) and
8 heads only when the file's configuration is exactly the paper's, each noted; any other
configuration without a head count is refused (`ConversionOptionRequired`, exit 2), since a
wrong count silently changes the image features. A tower absent from the input is a
placeholder of minimal size (noted), since a `SpikeCLIP` holds both. Files are read by
`spikeclip.safe_load` (the project's one safe loader) and every tensor must be finite.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from spikeclip.config import SpikeCLIPConfig
from spikeclip.errors import (
    ConfigError,
    ConversionOptionRequired,
    InvalidCheckpointContent,
    NotACheckpoint,
    StateDictMismatch,
    UsageError,
)
from spikeclip.memory import check_memory, estimate_memory
from spikeclip.model import SpikeCLIP
from spikeclip.safe_load import FORMAT_NAME, check_finite, read_torch_file

IMAGE_MARKER = "patch_embed.block0_conv.weight"
"""A key only the official `Vision_Encoder` has."""

TEXT_MARKERS = ("fc1.weight", "clip_embedding.token_embedding.weight")
"""Keys the official `Language_Encoder` has (both)."""

PAPER_NUM_HEADS = 8
"""Heads every official training script passes (`--num_heads 8`; the constructor default is 12)."""

PAPER_IMG_SIZE = 32
"""Input side every official script resizes to (digest §2.1); no tensor records it."""

MAX_LISTED = 3
"""How many offending keys an error message names per kind (missing, unexpected, shape)."""

MAX_LISTED_HEADS = 8
"""How many fitting head counts a `ConversionOptionRequired` message names."""

PAPER_IMAGE_FIELDS = ("in_channels", "tokenizer_channels", "embed_dim", "depth", "mlp_ratio",
                      "out_dim", "T")
"""The image-tower fields an official file's shapes give; when all equal the paper's, its 8 heads
are assumed (every official script passes `--num_heads 8` with that configuration)."""

_IMAGE_RULES: tuple[tuple[str, str], ...] = (
    (r"patch_embed\.block([0-4])_conv\.(weight)", r"tokenizer.conv\1.\2"),
    (r"patch_embed\.block([0-4])_bn\.(\w+)", r"tokenizer.bn\1.\2"),
    (r"block\.(\d+)\.attn\.(q|k|v|proj)_(conv|bn)\.(\w+)", r"blocks.\1.attn.\2_\3.\4"),
    (r"block\.(\d+)\.mlp\.mlp([12])_(conv|bn)\.(\w+)", r"blocks.\1.mlp.fc\2_\3.\4"),
    (r"proj\.(weight|bias)", r"head.\1"),
    (r"weights_tensor", r"readout.weights"),
)
_TEXT_RULES: tuple[tuple[str, str], ...] = (
    (r"fc([12])\.(weight|bias)", r"fc\1.\2"),
    (r"clip_embedding\.token_embedding\.weight", r"token_embedding.weight"),
    (r"clip_embedding\.position_embedding\.weight", r"position_embedding.weight"),
    (r"weights_tensor", r"readout.weights"),
)
_TEXT_DROPPED = "clip_embedding.position_ids"
_BN_COUNTER = ".num_batches_tracked"

_IMAGE_LIF_RULES: tuple[tuple[str, str | Callable[[re.Match[str]], str]], ...] = (
    (r"patch_embed\.block([1-4])_lif", lambda m: f"tokenizer.lif{int(m.group(1)) - 1}"),
    (r"block\.(\d+)\.attn\.proj_lif", r"blocks.\1.attn.in_lif"),
    (r"block\.(\d+)\.attn\.(q|k|v|attn)_lif", r"blocks.\1.attn.\2_lif"),
    (r"block\.(\d+)\.mlp\.mlp1_lif", r"blocks.\1.mlp.in_lif"),
    (r"block\.(\d+)\.mlp\.mlp2_lif", r"blocks.\1.mlp.fc1_lif"),
)
_TEXT_LIF_RULES: tuple[tuple[str, str], ...] = (
    (r"mlp_lif1", "lif1"),
    (r"mlp_lif2", "lif2"),
)


class NotOfficialCheckpoint(NotACheckpoint):
    """The file loads, but holds neither an official image nor an official text encoder."""


class OfficialLayoutMismatch(StateDictMismatch):
    """An official checkpoint whose keys or shapes do not fit the architecture they imply."""


class OfficialConversionNotice(UserWarning):
    """Emitted when a file was recognized as an official checkpoint and converted on load."""


@dataclass(frozen=True, kw_only=True)
class OfficialTower:
    """One tower read from an official file.

    tower: "image" (`Vision_Encoder`) or "text" (`Language_Encoder`).
    layout: "checkpoint_saver" (timm dict with `state_dict`) or "state_dict" (raw).
    state_dict: official key → tensor (a `module.` prefix of DataParallel/DDP already removed).
    meta: the saver's scalar entries (epoch, arch, version, metric as float, num_heads from a
        stored `args` namespace), builtins only.
    """

    path: Path
    tower: str
    layout: str
    state_dict: Mapping[str, Tensor]
    meta: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class Conversion:
    """A converted model: `model` (eval mode), its `config`, and one-line `notes` on what was
    assumed or left out (heads, image size, placeholder tower, dropped entries)."""

    model: SpikeCLIP
    config: SpikeCLIPConfig
    notes: tuple[str, ...]
    sources: Mapping[str, str]


# ----------------------------------------------------------------------------- reading


def split_layout(payload: Any, path: str | Path) -> tuple[str, dict[str, Tensor], dict[str, Any]]:
    """(layout, state dict, meta) of a loaded payload: timm saver dict or raw state dict.

    A `module.` prefix on every key (DataParallel/DDP) is removed. Raises NotOfficialCheckpoint.
    """
    if not isinstance(payload, Mapping) or not payload:
        raise NotOfficialCheckpoint(
            path, f"holds a {type(payload).__name__}, not a state dict or a timm checkpoint dict"
        )
    if payload.get("format") == FORMAT_NAME:
        raise NotOfficialCheckpoint(path, "already a SpikeCLIP model.pt: nothing to convert")
    meta: dict[str, Any] = {}
    if isinstance(payload.get("state_dict"), Mapping):
        layout, state = "checkpoint_saver", payload["state_dict"]
        for key in ("epoch", "arch", "version"):
            if isinstance(payload.get(key), int | str):
                meta[key] = payload[key]
        metric = payload.get("metric")
        if isinstance(metric, int | float) or (isinstance(metric, Tensor) and metric.numel() == 1):
            meta["metric"] = float(metric)
        args = payload.get("args")
        heads = getattr(args, "num_heads", None) if args is not None else None
        if isinstance(args, Mapping):
            heads = args.get("num_heads")
        if isinstance(heads, int) and not isinstance(heads, bool):
            meta["num_heads"] = heads
    else:
        layout, state = "state_dict", payload
    bad = [k for k, v in state.items() if not (isinstance(k, str) and isinstance(v, Tensor))]
    if bad or not state:
        where = "'state_dict'" if layout == "checkpoint_saver" else "the file"
        raise NotOfficialCheckpoint(
            path,
            f"{where} is not a state dict (str → tensor); top-level keys: "
            f"{_listing(list(map(str, payload)))}",
        )
    state = dict(state)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return layout, state, meta


def detect_tower(state: Mapping[str, Tensor], path: str | Path) -> str:
    """The tower ("image" or "text") from the official marker keys, else NotOfficialCheckpoint."""
    image = IMAGE_MARKER in state
    text = all(k in state for k in TEXT_MARKERS)
    if image and text:
        raise NotOfficialCheckpoint(path, "holds both official image and text keys in one dict")
    if image:
        return "image"
    if text:
        return "text"
    keys = list(state)
    if "embeddings.block0_conv.weight" in state:
        why = "the official ANN baseline (CLIPVisionTransformer), not the spiking encoder"
    elif any(k.startswith(("text_model.", "vision_model.")) for k in keys):
        why = "a CLIP model's state dict (text_model./vision_model. keys), not a SpikeCLIP encoder"
    elif any(k.startswith(("image_encoder.", "text_encoder.")) for k in keys):
        why = "a bare state dict of this project's SpikeCLIP, not a model.pt"
    else:
        why = (
            f"no official SpikeCLIP key ({IMAGE_MARKER} for the image encoder, "
            f"{' + '.join(TEXT_MARKERS)} for the text encoder)"
        )
    return _raise_not_official(path, f"{why}; first keys: {_listing(keys)}")


def _raise_not_official(path: str | Path, reason: str) -> str:
    raise NotOfficialCheckpoint(path, reason)


def looks_official(payload: Any) -> bool:
    """True if a loaded payload is an official SpikeCLIP checkpoint (either layout, either
    tower). For `spikeclip.checkpoint.load`'s auto-detection; never raises."""
    if not isinstance(payload, Mapping):
        return False
    state = payload.get("state_dict", payload)
    if not isinstance(state, Mapping):
        return False
    keys = {
        k[len("module.") :] if isinstance(k, str) and k.startswith("module.") else k for k in state
    }
    return IMAGE_MARKER in keys or all(k in keys for k in TEXT_MARKERS)


def read_official(path: str | Path) -> OfficialTower:
    """Read one official file (`spikeclip.safe_load.read_torch_file`: path, CRC-32,
    weights_only) and identify its layout and tower."""
    path = Path(path)
    return tower_from_payload(read_torch_file(path), path)


def tower_from_payload(payload: Any, path: str | Path) -> OfficialTower:
    """`OfficialTower` from an already loaded (weights_only) payload; every state-dict tensor
    must be finite (`NonFiniteTensor` names the official key otherwise)."""
    layout, state, meta = split_layout(payload, path)
    check_finite(state, path)
    return OfficialTower(
        path=Path(path),
        tower=detect_tower(state, path),
        layout=layout,
        state_dict=state,
        meta=meta,
    )


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_LISTED])
    more = len(keys) - MAX_LISTED
    return f"{shown} (+{more} more)" if more > 0 else (shown or "none")


# ----------------------------------------------------------------------------- config


def _need(state: Mapping[str, Tensor], path: Path, key: str, ndim: int) -> tuple[int, ...]:
    """Shape of `state[key]`, which must exist with `ndim` dims (else OfficialLayoutMismatch)."""
    if key not in state:
        raise OfficialLayoutMismatch(path, f"missing {key}, needed to infer the configuration")
    shape = tuple(state[key].shape)
    if len(shape) != ndim:
        raise OfficialLayoutMismatch(path, f"{key} has shape {list(shape)}, expected {ndim} dims")
    return shape


def _time_steps(state: Mapping[str, Tensor], path: Path) -> int:
    shape = _need(state, path, "weights_tensor", 3)
    if shape[0] != 1 or shape[2] != 1:
        raise OfficialLayoutMismatch(
            path, f"weights_tensor has shape {list(shape)}, expected [1, T, 1]"
        )
    return shape[1]


def infer_image_fields(
    tower: OfficialTower, *, num_heads: int | None = None, img_size: int | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Image-tower `SpikeCLIPConfig` fields from an official `Vision_Encoder` state dict.

    in_channels/tokenizer_channels/embed_dim from the five tokenizer convs, depth from the
    `block.N.` indices, mlp_ratio from block 0's mlp1_conv, out_dim from `proj`, T from
    `weights_tensor` (`InvalidCheckpointContent` if these make no valid config). num_heads: the
    argument, else a stored `args.num_heads`, else 8 only if those fields are exactly the
    paper's (noted); otherwise `ConversionOptionRequired` (exit 2): no tensor records the head
    count and a wrong one silently changes the attention. img_size: argument, else 32 (noted;
    it changes no weight). Returns (fields, notes).
    """
    state, path, notes = tower.state_dict, tower.path, []
    convs = [_need(state, path, f"patch_embed.block{i}_conv.weight", 4) for i in range(5)]
    embed = convs[4][0]
    depth = 1 + max(
        (int(m.group(1)) for k in state if (m := re.match(r"block\.(\d+)\.", k))), default=-1
    )
    if depth < 1:
        raise OfficialLayoutMismatch(path, "no block.N. keys: an image encoder needs depth >= 1")
    hidden = _need(state, path, "block.0.mlp.mlp1_conv.weight", 4)[0]
    if hidden % embed:
        raise OfficialLayoutMismatch(
            path, f"block.0.mlp.mlp1_conv.weight has {hidden} outputs, not a multiple of {embed}"
        )
    fields = {
        "in_channels": convs[0][1],
        "tokenizer_channels": tuple(c[0] for c in convs[:4]),
        "embed_dim": embed,
        "depth": depth,
        "mlp_ratio": hidden // embed,
        "out_dim": _need(state, path, "proj.weight", 2)[0],
        "T": _time_steps(state, path),
    }
    _validate({**_TEXT_PLACEHOLDER, **fields, "num_heads": 1, "img_size": PAPER_IMG_SIZE}, path)
    if num_heads is None:
        num_heads = tower.meta.get("num_heads")
        if num_heads is not None:
            _validate({**_TEXT_PLACEHOLDER, **fields, "num_heads": num_heads}, path)
            notes.append(f"num_heads={num_heads} from the checkpoint's stored args")
    if num_heads is None:
        num_heads = _paper_heads(fields, path)
        notes.append(
            f"num_heads is not stored in official checkpoints: assumed {num_heads}, the paper's "
            "value for exactly this configuration; pass --num-heads if you trained with another"
        )
    if img_size is None:
        img_size = PAPER_IMG_SIZE
        notes.append(f"image size is not stored: assumed {img_size}×{img_size} (pass --img-size)")
    return {**fields, "num_heads": num_heads, "img_size": img_size}, notes


def _paper_heads(fields: Mapping[str, Any], path: Path) -> int:
    """`PAPER_NUM_HEADS` if the file's image fields are exactly the paper's, else raise
    `ConversionOptionRequired` saying which fields differ and which head counts would fit."""
    paper = SpikeCLIPConfig.paper()
    differ = [
        f"{k}={fields[k]} vs {getattr(paper, k)}"
        for k in PAPER_IMAGE_FIELDS
        if fields[k] != getattr(paper, k)
    ]
    if not differ:
        return PAPER_NUM_HEADS
    embed = fields["embed_dim"]
    fitting = [h for h in range(1, embed + 1) if embed % h == 0]
    shown = ", ".join(map(str, fitting[:MAX_LISTED_HEADS])) + (
        ", …" if len(fitting) > MAX_LISTED_HEADS else ""
    )
    raise ConversionOptionRequired(
        f"{path}: the attention head count is not stored in official checkpoints and this one "
        f"is not the paper's configuration ({'; '.join(differ)}), so no default is safe: a "
        "wrong count silently changes the image features. Pass it: spikeclip-convert "
        "--num-heads N, or spikeclip.checkpoint.load(path, num_heads=N) "
        f"(N divides embed_dim {embed}: {shown})"
    )


def _validate(fields: Mapping[str, Any], path: Path) -> None:
    """Raise `InvalidCheckpointContent` if `fields` (read from the file at `path`) make no valid
    `SpikeCLIPConfig` (e.g. T above `config.MAX_T`)."""
    try:
        SpikeCLIPConfig(**fields)
    except ConfigError as err:
        raise InvalidCheckpointContent(path, f"implies an invalid configuration: {err}") from err


def infer_text_fields(tower: OfficialTower) -> tuple[dict[str, Any], list[str]]:
    """Text-tower `SpikeCLIPConfig` fields from an official `Language_Encoder` state dict.

    vocab_size/text_width from the token table, text_len = fc1 inputs / text_width (20 in the
    paper), text_hidden = fc1 outputs, out_dim = fc2 outputs, T from `weights_tensor`.
    """
    state, path = tower.state_dict, tower.path
    vocab, width = _need(state, path, "clip_embedding.token_embedding.weight", 2)
    hidden, flat = _need(state, path, "fc1.weight", 2)
    if flat % width:
        raise OfficialLayoutMismatch(
            path, f"fc1.weight has {flat} inputs, not a multiple of the embedding width {width}"
        )
    positions = _need(state, path, "clip_embedding.position_embedding.weight", 2)[0]
    text_len = flat // width
    if positions < text_len:
        raise OfficialLayoutMismatch(
            path,
            f"clip_embedding.position_embedding.weight has {positions} rows, fewer than the "
            f"text length {text_len} implied by fc1",
        )
    fields = {
        "vocab_size": vocab,
        "text_width": width,
        "text_len": text_len,
        "text_hidden": hidden,
        "out_dim": _need(state, path, "fc2.weight", 2)[0],
        "T": _time_steps(state, path),
    }
    _validate({**_IMAGE_PLACEHOLDER, **fields}, path)
    notes = []
    if positions > text_len:
        notes.append(
            f"position table rows {text_len}…{positions - 1} dropped (the official forward reads "
            f"only the first {text_len})"
        )
    return fields, notes


_IMAGE_PLACEHOLDER = {
    "in_channels": 3,
    "tokenizer_channels": (1, 1, 1, 1),
    "embed_dim": 1,
    "depth": 1,
    "num_heads": 1,
    "mlp_ratio": 1,
    "img_size": PAPER_IMG_SIZE,
}
_TEXT_PLACEHOLDER = {"vocab_size": 1, "text_width": 1, "text_len": 1, "text_hidden": 1}


# ----------------------------------------------------------------------------- key mapping


def map_key(key: str, tower: str) -> str | None:
    """Our key (below `image_encoder.`/`text_encoder.`) for an official parameter/buffer key,
    or None if the official architecture has no such key."""
    for pattern, repl in _IMAGE_RULES if tower == "image" else _TEXT_RULES:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, repl, key)
    return None


def lif_name_map(config: SpikeCLIPConfig) -> dict[str, str]:
    """Official LIF module path → our module path (prefixed `image_encoder.`/`text_encoder.`).

    Both sides lay each LIF's output out the same way (`[T, B, C, H, W]` in the tokenizer and
    MLP, `[T, B, C, N]` for q/k/v/attn, `[T, B, F]` in the text tower), so spikes compare as is.
    """
    names = [f"patch_embed.block{i}_lif" for i in range(1, 5)]
    for n in range(config.depth):
        names += [f"block.{n}.attn.{p}_lif" for p in ("proj", "q", "k", "v", "attn")]
        names += [f"block.{n}.mlp.mlp{j}_lif" for j in (1, 2)]
    out = {name: "image_encoder." + _apply(_IMAGE_LIF_RULES, name) for name in names}
    out.update(
        {name: "text_encoder." + _apply(_TEXT_LIF_RULES, name) for name in ("mlp_lif1", "mlp_lif2")}
    )
    return out


def _apply(rules, name: str) -> str:
    for pattern, repl in rules:
        if re.fullmatch(pattern, name):
            return re.sub(pattern, repl, name)
    raise KeyError(name)


def _transform(key: str, value: Tensor, target: Tensor) -> Tensor:
    """Official tensor → the layout of our `target` (time weights, position-table rows)."""
    if key == "weights_tensor":
        return value.reshape(-1)
    if key == "clip_embedding.position_embedding.weight":
        return value[: target.shape[0]]
    return value


def map_state(tower: OfficialTower, ours: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Official state dict → our keys (below the tower prefix), checked against `ours`.

    `ours` is the tower's own state dict (`model.image_encoder.state_dict()`), giving the
    expected keys and shapes. Raises OfficialLayoutMismatch naming the first missing,
    unexpected and mis-shaped keys.
    """
    mapped: dict[str, Tensor] = {}
    unexpected, shapes, misfit = [], [], set()
    for key, value in tower.state_dict.items():
        if tower.tower == "text" and key == _TEXT_DROPPED:
            _check_position_ids(value, tower.path, ours["position_embedding.weight"].shape[0])
            continue
        target = map_key(key, tower.tower)
        if target is None or target not in ours:
            unexpected.append(key)
            continue
        new = _transform(key, value, ours[target])
        if tuple(new.shape) != tuple(ours[target].shape):
            shapes.append(f"{key} {list(value.shape)} (needs {list(ours[target].shape)})")
            misfit.add(target)
            continue
        mapped[target] = new.to(ours[target].dtype)
    for key in ours:
        if key.endswith(_BN_COUNTER) and key not in mapped and key not in misfit:
            mapped[key] = torch.zeros_like(ours[key])  # absent in pre-0.4.1 files; eval ignores it
    missing = [_official_name(k, tower.tower) for k in ours if k not in mapped and k not in misfit]
    problems = []
    if missing:
        problems.append(f"missing {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected {_listing(unexpected)}")
    if shapes:
        problems.append(f"wrong shape {_listing(shapes)}")
    if problems:
        kind = "Vision_Encoder" if tower.tower == "image" else "Language_Encoder"
        raise OfficialLayoutMismatch(
            tower.path, f"does not fit the official {kind} its shapes imply: " + "; ".join(problems)
        )
    return mapped


def _official_name(ours_key: str, tower: str) -> str:
    """Inverse of `map_key`, for naming missing keys in official terms."""
    rules = _IMAGE_RULES if tower == "image" else _TEXT_RULES
    for pattern, repl in rules:
        back = _invert(pattern, repl)
        if back is not None and re.fullmatch(back[0], ours_key):
            return re.sub(back[0], back[1], ours_key)
    return ours_key


def _invert(pattern: str, repl: str) -> tuple[str, str] | None:
    """Swap a simple rule's sides: groups `(…)` in `pattern` ↔ `\\N` in `repl`."""
    groups = re.findall(r"\([^)]*\)", pattern)
    refs = [int(n) for n in re.findall(r"\\(\d)", repl)]
    if sorted(refs) != list(range(1, len(groups) + 1)):
        return None
    back_pattern = re.escape(repl)
    for n in refs:
        back_pattern = back_pattern.replace(re.escape(f"\\{n}"), groups[n - 1], 1)
    order = {n: i + 1 for i, n in enumerate(refs)}
    back_repl = pattern.replace("\\.", ".")
    for n, g in enumerate(groups, start=1):
        back_repl = back_repl.replace(g, f"\\{order[n]}", 1)
    return back_pattern, back_repl


def _check_position_ids(value: Tensor, path: Path, text_len: int) -> None:
    ids = value.reshape(-1)[:text_len]
    if ids.dtype.is_floating_point or not torch.equal(ids, torch.arange(ids.numel())):
        raise OfficialLayoutMismatch(
            path, "clip_embedding.position_ids is not 0, 1, 2, …: positions would differ"
        )


# ----------------------------------------------------------------------------- conversion


def convert(
    towers: list[OfficialTower], *, num_heads: int | None = None, img_size: int | None = None
) -> Conversion:
    """Build a `SpikeCLIP` (eval mode) holding the official weights of one or two towers.

    At most one image and one text tower; if both, their T and output width must agree. A
    missing tower is a placeholder of minimal size with deterministic weights (noted).
    """
    by_kind: dict[str, OfficialTower] = {}
    for t in towers:
        if t.tower in by_kind:
            raise UsageError(
                f"{t.path}: a second official {t.tower} encoder (first: {by_kind[t.tower].path});"
                " give at most one image and one text checkpoint"
            )
        by_kind[t.tower] = t
    if not by_kind:
        raise ValueError("convert() needs at least one official tower")
    image, text = by_kind.get("image"), by_kind.get("text")
    fields, notes = _config_fields(image, text, num_heads=num_heads, img_size=img_size)
    try:
        config = SpikeCLIPConfig(**fields)
    except ConfigError as err:  # the file's own fields were validated: the options do not fit
        where = image.path if image is not None else text.path
        raise ConfigError(f"{where}: the given num_heads/img_size do not fit: {err}") from err
    sources = {t.tower: str(t.path) for t in by_kind.values()}
    check_memory(
        estimate_memory(config),
        what=f"{' + '.join(sources.values())}: building the converted model",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = SpikeCLIP(config)
    for t in (image, text):
        if t is not None:
            module = model.image_encoder if t.tower == "image" else model.text_encoder
            module.load_state_dict(map_state(t, module.state_dict()), strict=True)
    model.eval()
    return Conversion(model=model, config=config, notes=tuple(notes), sources=sources)


def _config_fields(
    image: OfficialTower | None, text: OfficialTower | None, *, num_heads: int | None,
    img_size: int | None,
) -> tuple[dict[str, Any], list[str]]:
    """`SpikeCLIPConfig` fields of the given towers (a placeholder for a missing one) and the
    notes on what was assumed; `OfficialLayoutMismatch` when the towers' T or width differ."""
    fields: dict[str, Any] = {}
    notes: list[str] = []
    if image is not None:
        f, n = infer_image_fields(image, num_heads=num_heads, img_size=img_size)
        fields.update(f)
        notes += n
    if text is not None:
        f, n = infer_text_fields(text)
        for key in ("T", "out_dim"):
            if key in fields and fields[key] != f[key]:
                raise OfficialLayoutMismatch(
                    text.path,
                    f"text encoder has {key}={f[key]} but the image encoder "
                    f"({image.path.name if image else '?'}) has {key}={fields[key]}",
                )
        fields.update(f)
        notes += n
    if image is None:
        fields.update(_IMAGE_PLACEHOLDER)
        notes.append("no image encoder given: the image tower is a 1-channel placeholder")
    if text is None:
        fields.update(_TEXT_PLACEHOLDER)
        notes.append(
            "no text encoder given: the text tower is a 1-token placeholder (zero-shot class "
            "vectors need the official Language_Encoder checkpoint too)"
        )
    return fields, notes


def convert_files(
    paths: list[str | Path], *, num_heads: int | None = None, img_size: int | None = None
) -> Conversion:
    """`convert` the official files at `paths` (one image and/or one text checkpoint)."""
    return convert([read_official(p) for p in paths], num_heads=num_heads, img_size=img_size)


def convert_loaded(payload: Any, path: str | Path, **kwargs: Any) -> Conversion:
    """Auto-detection hook for `spikeclip.checkpoint.load`: convert an already loaded payload
    (one tower) and warn `OfficialConversionNotice` with the notes."""
    result = convert([tower_from_payload(payload, path)], **kwargs)
    warnings.warn(OfficialConversionNotice(conversion_message(result, Path(path))), stacklevel=2)
    return result


def conversion_metadata(result: Conversion) -> dict[str, Any]:
    """JSON-like `model.pt` metadata recording the import (for `spikeclip.checkpoint.save`)."""
    return {
        "converted_from": "official SpikeCLIP (Lvchangze/SpikeCLIP model.py)",
        "official_sources": dict(result.sources),
        "placeholder_towers": sorted({"image", "text"} - set(result.sources)),
        "conversion_notes": list(result.notes),
    }


def conversion_message(result: Conversion, path: Path | None = None) -> str:
    """One line: what was converted and what was assumed."""
    cfg = result.config
    what = []
    if "image" in result.sources:
        what.append(
            f"image encoder (embed {cfg.embed_dim}, depth {cfg.depth}, {cfg.num_heads} heads, "
            f"T={cfg.T}, out {cfg.out_dim})"
        )
    if "text" in result.sources:
        what.append(
            f"text encoder (len {cfg.text_len}, width {cfg.text_width}, hidden {cfg.text_hidden}, "
            f"T={cfg.T}, out {cfg.out_dim})"
        )
    src = f"{path}: " if path is not None else ""
    tail = f"; {'; '.join(result.notes)}" if result.notes else ""
    return f"{src}converted an official SpikeCLIP checkpoint: {' + '.join(what)}{tail}"


__all__ = [
    "Conversion",
    "NotOfficialCheckpoint",
    "OfficialConversionNotice",
    "OfficialLayoutMismatch",
    "OfficialTower",
    "convert",
    "convert_files",
    "convert_loaded",
    "conversion_message",
    "conversion_metadata",
    "lif_name_map",
    "looks_official",
    "map_key",
    "read_official",
]
