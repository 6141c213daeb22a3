"""Shared builders for the quantize/simulate/twin/fidelity tests (not a test module)."""

from __future__ import annotations

import dataclasses

import torch

from spikeclip.config import SpikeCLIPConfig
from spikeclip.image_encoder import ImageEncoder


def active_tiny_encoder(seed: int = 0, *, strict: bool = False) -> ImageEncoder:
    """The `tiny` image encoder (eval mode) with BN statistics/affines drawn so that every LIF
    layer fires (random init alone leaves most layers silent); ``strict``: fire on ``H > θ``."""
    torch.manual_seed(seed)
    enc = ImageEncoder(dataclasses.replace(SpikeCLIPConfig.tiny(), strict_threshold=strict))
    return make_lifs_fire(enc).eval()


def make_lifs_fire(module: torch.nn.Module) -> torch.nn.Module:
    """Draw every BatchNorm's statistics and affine of ``module`` (in place, from torch's global
    generator) so that the LIFs after them fire; returns ``module``."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(1.5, 3.0)
                m.bias.normal_(0.3, 0.5)
    return module


def active_tiny_model(seed: int = 0) -> torch.nn.Module:
    """The tiny `SpikeCLIP` (eval mode) with its image tower's LIFs firing (`make_lifs_fire`)."""
    from spikeclip.model import SpikeCLIP

    torch.manual_seed(seed)
    return make_lifs_fire(SpikeCLIP(SpikeCLIPConfig.tiny())).eval()


def tiny_images(n: int, seed: int = 1) -> torch.Tensor:
    """``[n, 3, 16, 16]`` float64 images, N(0, 1)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 16, 16, generator=g, dtype=torch.float64)
