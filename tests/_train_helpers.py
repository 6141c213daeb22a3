"""Small random-weight teachers, a tiny student and a small digits subset for the training tests
(built offline in the test: no download)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from torch.utils.data import Subset

from spikeclip.config import SpikeCLIPConfig
from spikeclip.model import SpikeCLIP
from spikeclip.training import data
from spikeclip.training.teachers import HFClipTeacher, OpenClipTeacher

TEACHER_DIM = 16
TEACHER_IMG = 16
OPEN_CLIP_NAME = "spikeclip-test-tinyclip"
OPEN_CLIP_CFG = {
    "embed_dim": TEACHER_DIM,
    "vision_cfg": {"image_size": TEACHER_IMG, "layers": 1, "width": 32, "patch_size": 8,
                   "head_width": 16},
    "text_cfg": {"context_length": 20, "vocab_size": 49408, "width": 32, "heads": 2,
                 "layers": 1},
}


def register_open_clip(tmp: Path) -> str:
    """Register the tiny open_clip config under OPEN_CLIP_NAME; returns the teacher spec."""
    import open_clip

    path = tmp / f"{OPEN_CLIP_NAME}.json"
    path.write_text(json.dumps(OPEN_CLIP_CFG))
    open_clip.add_model_config(path)
    return f"open_clip:{OPEN_CLIP_NAME}"


def open_clip_teacher(tmp: Path, seed: int = 0) -> OpenClipTeacher:
    import open_clip

    register_open_clip(tmp)
    torch.manual_seed(seed)
    model, _, pre = open_clip.create_model_and_transforms(OPEN_CLIP_NAME, pretrained=None)
    return OpenClipTeacher(model, open_clip.get_tokenizer(OPEN_CLIP_NAME), pre,
                           f"open_clip:{OPEN_CLIP_NAME}").eval()


def hf_teacher(seed: int = 0) -> HFClipTeacher:
    from open_clip.tokenizer import SimpleTokenizer
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    cfg = CLIPConfig(
        text_config={"vocab_size": 49408, "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 1, "num_attention_heads": 2,
                     "max_position_embeddings": 20},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                       "num_attention_heads": 2, "image_size": TEACHER_IMG, "patch_size": 8},
        projection_dim=TEACHER_DIM,
    )
    return HFClipTeacher(CLIPModel(cfg), SimpleTokenizer(), "hf:test-tiny").eval()


def student_config() -> SpikeCLIPConfig:
    """The model's tiny preset with the teachers' vocabulary, text length 12, output 16."""
    return dataclasses.replace(SpikeCLIPConfig.tiny(), vocab_size=49408, text_len=12,
                               out_dim=TEACHER_DIM)


def student(seed: int = 0) -> SpikeCLIP:
    torch.manual_seed(seed)
    return SpikeCLIP(student_config())


def small_digits(n_train: int = 96, n_val: int = 48) -> data.Splits:
    """Digits at the teachers' 16×16, train/val cut to the first n items of each split."""
    full = data.digits_splits(TEACHER_IMG)
    return dataclasses.replace(full, train=Subset(full.train, range(n_train)),
                               val=Subset(full.val, range(n_val)))


def fixed_batch(dataset, n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    items = [dataset[i] for i in range(n)]
    return torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items])
