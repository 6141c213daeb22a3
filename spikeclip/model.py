"""`SpikeCLIP`: the image and text towers plus zero-shot classification (digest §8, §16).

Zero-shot rule (the paper's `utils.labels_candidates`): for class c with K prompt templates,
m_c = mean_k normalize(text(prompt_ck)) — the mean is NOT re-normalized (pass renormalize=True
for the ANN-CLIP convention); logits[b, c] = normalize(image(x_b)) · m_c, no logit scale.
Tokenization lives with the teachers; this model takes token ids.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spikeclip.config import LayerRecord, SpikeCLIPConfig
from spikeclip.errors import ModelInputError
from spikeclip.image_encoder import ImageEncoder
from spikeclip.text_encoder import TextEncoder


class SpikeCLIP(nn.Module):
    """Spiking CLIP: `.image_encoder` (images → `[B, out]`), `.text_encoder` (ids → `[B, out]`)."""

    def __init__(self, config: SpikeCLIPConfig) -> None:
        super().__init__()
        if not isinstance(config, SpikeCLIPConfig):
            raise TypeError(f"SpikeCLIP needs a SpikeCLIPConfig, got {type(config).__name__}")
        self.config = config
        self.image_encoder = ImageEncoder(config)
        self.text_encoder = TextEncoder(config)

    def encode_image(self, images: Tensor) -> Tensor:
        """Images `[B, C, H, W]` (CLIP-normalized) → features `[B, out_dim]`, not normalized."""
        return self.image_encoder(images)

    def encode_text(self, token_ids: Tensor) -> Tensor:
        """Token ids `[B, text_len]` → features `[B, out_dim]`, not normalized."""
        return self.text_encoder(token_ids)

    def class_matrix(
        self, token_ids: Tensor | Sequence[Tensor], *, renormalize: bool = False
    ) -> Tensor:
        """Class vectors `[C, out_dim]` from prompts: `[C, K, L]` ids, or a list of C `[K_c, L]`.

        Row c = mean over the class's K templates of the L2-normalized text features
        (re-normalized to unit length only if `renormalize`).
        """
        if isinstance(token_ids, Tensor):
            if token_ids.ndim != 3:
                raise ModelInputError(
                    f"class_matrix expects ids [C, K, L] or a list of [K, L], "
                    f"got {list(token_ids.shape)}"
                )
            groups = list(token_ids.unbind(0))
        else:
            groups = list(token_ids)
        if not groups or any(g.ndim != 2 or g.shape[0] == 0 for g in groups):
            raise ModelInputError("class_matrix needs >= 1 class, each with >= 1 prompt [K, L]")
        feats = F.normalize(self.encode_text(torch.cat(groups)), dim=-1)
        rows = [chunk.mean(dim=0) for chunk in feats.split([g.shape[0] for g in groups])]
        matrix = torch.stack(rows)
        return F.normalize(matrix, dim=-1) if renormalize else matrix

    def logits(self, images: Tensor, class_matrix: Tensor) -> Tensor:
        """Zero-shot logits `[B, C]` = normalize(encode_image(images)) @ class_matrix.T."""
        if class_matrix.ndim != 2 or class_matrix.shape[1] != self.config.out_dim:
            raise ModelInputError(
                f"class matrix must be [C, {self.config.out_dim}], got {list(class_matrix.shape)}"
            )
        return F.normalize(self.encode_image(images), dim=-1) @ class_matrix.T

    def forward(self, images: Tensor, class_matrix: Tensor) -> Tensor:
        """Same as `logits`."""
        return self.logits(images, class_matrix)

    @torch.no_grad()
    def predict(self, images: Tensor, class_matrix: Tensor) -> Tensor:
        """Predicted class indices `[B]` (int64): argmax of the zero-shot logits."""
        return self.logits(images, class_matrix).argmax(dim=-1)

    def describe(self) -> list[LayerRecord]:
        """Records of both towers, names prefixed `image_encoder.` / `text_encoder.`; the
        image tower's input is named "image", the text tower's "token_ids"."""
        return self.image_encoder.describe("image_encoder", "image") + self.text_encoder.describe(
            "text_encoder", "token_ids"
        )
