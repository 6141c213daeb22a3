"""SpikeCLIP's spiking text encoder: a 2-layer spiking MLP over flattened token embeddings.

research/spikeclip_digest.md §3: ids `[B, L]` → token + position embeddings `[B, L, W]` →
flatten `[B, L·W]`, the same vector every step `[T, B, L·W]` → LIF → Linear(L·W → hidden) → LIF →
Linear(hidden → out) → time-weighted readout → `[B, out]`. No attention mask: padded positions
contribute their embeddings (fc1 sees every position separately). Embeddings are trainable;
PyTorch's default init (N(0, 1)) unless copied from a teacher with `init_embeddings`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from spikeclip.config import LayerRecord, SpikeCLIPConfig
from spikeclip.errors import ModelInputError
from spikeclip.image_encoder import TimeWeightedReadout, _name, _neuron_record
from spikeclip.neurons import make_neuron


class TextEncoder(nn.Module):
    """Token ids `[B, text_len]` (int64, in [0, vocab_size)) → text features `[B, out_dim]`."""

    def __init__(self, config: SpikeCLIPConfig) -> None:
        super().__init__()
        self.config = config
        flat = config.text_len * config.text_width
        self.token_embedding = nn.Embedding(config.vocab_size, config.text_width)
        self.position_embedding = nn.Embedding(config.text_len, config.text_width)
        self.lif1 = make_neuron(config, v_threshold=config.v_threshold)
        self.fc1 = nn.Linear(flat, config.text_hidden)
        self.lif2 = make_neuron(config, v_threshold=config.v_threshold)
        self.fc2 = nn.Linear(config.text_hidden, config.out_dim)
        self.readout = TimeWeightedReadout(config.T)

    @torch.no_grad()
    def init_embeddings(self, token_table: Tensor, position_table: Tensor | None = None) -> None:
        """Copy a teacher's token table `[vocab_size, text_width]` and (optionally) the first
        text_len rows of its position table `[≥ text_len, text_width]` into this encoder."""
        cfg = self.config
        if tuple(token_table.shape) != (cfg.vocab_size, cfg.text_width):
            raise ModelInputError(
                f"token table must be [{cfg.vocab_size}, {cfg.text_width}] (config vocab_size, "
                f"text_width), got {list(token_table.shape)}"
            )
        self.token_embedding.weight.copy_(token_table)
        if position_table is None:
            return
        if (
            position_table.ndim != 2
            or position_table.shape[0] < cfg.text_len
            or (position_table.shape[1] != cfg.text_width)
        ):
            raise ModelInputError(
                f"position table must be [>= {cfg.text_len}, {cfg.text_width}], "
                f"got {list(position_table.shape)}"
            )
        self.position_embedding.weight.copy_(position_table[: cfg.text_len])

    def check_input(self, token_ids: Tensor) -> None:
        """Raise `ModelInputError` unless token_ids is integer `[B, text_len]` within the vocab."""
        cfg = self.config
        if (
            token_ids.ndim != 2
            or token_ids.shape[1] != cfg.text_len
            or (token_ids.dtype not in (torch.int64, torch.int32))
        ):
            raise ModelInputError(
                f"text encoder expects int64 token ids [B, {cfg.text_len}], "
                f"got {token_ids.dtype} {list(token_ids.shape)}"
            )
        if token_ids.numel() == 0:
            return
        lo, hi = int(token_ids.min()), int(token_ids.max())
        if lo < 0 or hi >= cfg.vocab_size:
            raise ModelInputError(
                f"token ids must lie in [0, {cfg.vocab_size}), got range [{lo}, {hi}]"
            )

    def embed(self, token_ids: Tensor) -> Tensor:
        """`[B, L]` → flattened token + position embeddings `[B, L·W]` (the per-step input)."""
        self.check_input(token_ids)
        e = self.token_embedding(token_ids) + self.position_embedding.weight
        return e.flatten(1)

    def forward(self, token_ids: Tensor) -> Tensor:
        """`[B, text_len]` → `[B, out_dim]` (not normalized)."""
        e = self.embed(token_ids)
        x = e.unsqueeze(0).expand(self.config.T, *e.shape)
        x = self.fc1(self.lif1(x))
        x = self.fc2(self.lif2(x))
        return self.readout(x)

    def describe(self, prefix: str = "", source: str = "input") -> list[LayerRecord]:
        """embedding (token + position, flattened), lif1, fc1, lif2, fc2, readout."""
        cfg = self.config
        flat = (cfg.text_len * cfg.text_width,)
        n = lambda s: _name(prefix, s)  # noqa: E731
        recs = [
            LayerRecord(
                name=n("embedding"),
                kind="embedding",
                inputs=(source,),
                in_shape=(cfg.text_len,),
                out_shape=flat,
                is_module=False,
                attrs={
                    "token_table": n("token_embedding"),
                    "position_table": n("position_embedding"),
                    "rule": "flatten(token_embedding[ids] + position_embedding), same every step",
                },
            ),
            _neuron_record(self.lif1, n("lif1"), n("embedding"), flat),
            LayerRecord(
                name=n("fc1"),
                kind="linear",
                inputs=(n("lif1"),),
                in_shape=flat,
                out_shape=(cfg.text_hidden,),
                attrs={"bias": True},
            ),
            _neuron_record(self.lif2, n("lif2"), n("fc1"), (cfg.text_hidden,)),
            LayerRecord(
                name=n("fc2"),
                kind="linear",
                inputs=(n("lif2"),),
                in_shape=(cfg.text_hidden,),
                out_shape=(cfg.out_dim,),
                attrs={"bias": True},
            ),
        ]
        recs += self.readout.describe(n("readout"), n("fc2"), cfg.out_dim)
        return recs
