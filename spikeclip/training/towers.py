"""A small ANN image tower for offline teachers (MiniLM text + this CNN = a CLIP-style teacher)."""

from __future__ import annotations

import torch
from torch import nn


class ConvTower(nn.Module):
    """Conv3×3-BN-ReLU ×3 (widths w, 2w, 4w; 2×2 max-pool after the first two), global average
    pool, Linear(4w → out_dim). Input `[B, 3, S, S]` float32 (S divisible by 4), output
    `[B, out_dim]` float32 (not normalized)."""

    def __init__(self, out_dim: int, width: int = 32, in_channels: int = 3) -> None:
        super().__init__()
        w = width

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                    nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *block(in_channels, w), nn.MaxPool2d(2),
            *block(w, 2 * w), nn.MaxPool2d(2),
            *block(2 * w, 4 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.proj = nn.Linear(4 * w, out_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(self.features(images))
