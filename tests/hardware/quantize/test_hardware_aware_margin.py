"""The label-free gap hinge of hardware-aware fine-tuning (`margin_weight`, `margin`): its value
from hand-derived numbers, and that training with it widens the float model's top-1 − top-2 gap
on the images it trains on (the decisions move away from ties, where float and simulated
predictions differ)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _quant_helpers import active_tiny_encoder, tiny_images

from hardware.quantize.hardware_aware import (
    HardwareAwareOptions,
    finetune_hardware_aware,
    gap_hinge,
)
from spikeclip.training.data import TensorImages


def test_gap_hinge_by_hand() -> None:
    z = torch.tensor([[0.50, 0.48, 0.10],   # gap 0.02: 50 · (0.05 − 0.02) = 1.5
                      [0.10, 0.90, 0.00],   # gap 0.80: 0
                      [0.30, 0.30, 0.30]],  # gap 0: 50 · 0.05 = 2.5
                     dtype=torch.float64)
    assert float(gap_hinge(z, 0.05, 50.0)) == pytest.approx((1.5 + 0.0 + 2.5) / 3, abs=1e-12)


class _Holder(torch.nn.Module):
    def __init__(self, enc: torch.nn.Module) -> None:
        super().__init__()
        self.image_encoder = enc


def _gaps(enc: torch.nn.Module, x: torch.Tensor, cm: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        z = F.normalize(enc.double()(x), dim=-1) @ cm.T
    enc.float()
    top = z.topk(2, dim=-1).values
    return top[:, 0] - top[:, 1]


def _trained_gaps(margin_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    enc = active_tiny_encoder(seed=3).float()
    x = tiny_images(64, seed=5)
    cm = F.normalize(torch.randn(5, 12, generator=torch.Generator().manual_seed(4),
                                 dtype=torch.float64), dim=-1)
    y = torch.zeros(64, dtype=torch.int64)  # ignored: ce_weight 0
    before = _gaps(enc, x, cm)
    finetune_hardware_aware(
        _Holder(enc), TensorImages(x.float(), y), cm,
        options=HardwareAwareOptions(epochs=3, lr=1e-3, batch_size=32, calibration_samples=64,
                                     ce_weight=0.0, agree_weight=0.0, anchor_weight=0.0,
                                     margin_weight=margin_weight, margin=0.5, snap=False))
    return before, _gaps(enc, x, cm)


def test_margin_term_widens_the_top1_top2_gap() -> None:
    before, after = _trained_gaps(1.0)
    # the hinge acts on every image here (gaps ≪ 0.5): the mean gap grows by a clear factor
    assert float(before.mean()) < 0.5
    assert float(after.mean()) > 1.5 * float(before.mean())
    # without the term (every weight 0) nothing trains: the gaps stay as they were
    before0, after0 = _trained_gaps(0.0)
    assert torch.equal(before0, before)
    assert torch.allclose(after0, before0, atol=1e-6)
