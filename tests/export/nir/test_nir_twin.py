"""The independent float64 reference for the NIR tests: a BN-folded torch twin of SpikeCLIP.

The twin is the model's own forward code (not the exporter's), run in float64 after folding
each BatchNorm into its conv with this file's own folding formula. Helpers here are imported by
the other test_nir_* files; the tests in this file check the twin itself against the unfolded
float64 model, so the reference is not taken on trust.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from spikeclip.config import SpikeCLIPConfig
from spikeclip.model import SpikeCLIP
from spikeclip.neurons import MultiStepLIF

NEAR_TIE = 1e-9
"""|H − θ| below this counts as a tie: float rounding may flip such spikes (plan_review C1)."""


def lively(model: SpikeCLIP, images: Tensor, token_ids: Tensor, *, seed: int = 0) -> SpikeCLIP:
    """Give every LIF real activity: BN statistics calibrated on `images`, γ ≈ 1, β > 0, and a
    text fc1 gain. Deterministic for a seed; returns the model in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for path, mod in model.named_modules():
            if isinstance(mod, nn.BatchNorm1d | nn.BatchNorm2d):
                mod.reset_running_stats()
                mod.momentum = None  # cumulative average: one pass = that batch's statistics
                mod.weight.copy_(torch.rand(mod.weight.shape, generator=gen) * 0.6 + 0.7)
                # q/k/v fire more so that the attention current reaches the 0.5 threshold
                shift = 1.0 if path.endswith(("q_bn", "k_bn", "v_bn")) else 0.2
                mod.bias.copy_(torch.rand(mod.bias.shape, generator=gen) * 0.6 + shift)
        model.text_encoder.fc1.weight.mul_(4.0)
        model.train()
        model.encode_image(images)
    return model.eval()


def fold_bn_twin(model: SpikeCLIP) -> SpikeCLIP:
    """float64 deep copy of `model` with every conv+BN pair fused (BN replaced by Identity)."""
    twin = copy.deepcopy(model).double().eval()
    for parent in twin.modules():
        for name, bn in list(parent.named_children()):
            if not isinstance(bn, nn.BatchNorm1d | nn.BatchNorm2d):
                continue
            conv = getattr(parent, name.replace("bn", "conv"))  # bn0→conv0, q_bn→q_conv, …
            inv = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            with torch.no_grad():
                shape = (-1,) + (1,) * (conv.weight.ndim - 1)
                bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
                conv.weight = nn.Parameter(conv.weight * inv.reshape(shape))
                conv.bias = nn.Parameter((bias - bn.running_mean) * inv + bn.bias)
            setattr(parent, name, nn.Identity())
    return twin


def record_lifs(model: nn.Module, fn: Callable[[], Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    """Run `fn()` and capture the spikes `[T, B, ...]` of every MultiStepLIF, by module path."""
    spikes: dict[str, Tensor] = {}
    hooks = []
    for path, mod in model.named_modules():
        if isinstance(mod, MultiStepLIF):
            hooks.append(
                mod.register_forward_hook(
                    lambda m, i, o, p=path: spikes.__setitem__(p, o.detach().clone())
                )
            )
    try:
        with torch.no_grad():
            out = fn()
    finally:
        for h in hooks:
            h.remove()
    return out, spikes


def node_of(lif_path: str) -> tuple[str, int | None]:
    """NIR node of a model LIF, and which third of its channels (q, k, v) when stacked."""
    for part, q in enumerate("qkv"):
        suffix = f".attn.{q}_lif"
        if lif_path.endswith(suffix):
            return lif_path[: -len(suffix)] + ".attn.qkv_lif", part
    return lif_path, None


def compare_lifs(
    twin_spikes: dict[str, Tensor],
    run_spikes: dict[str, Tensor],
    run_membranes: dict[str, Tensor],
    thresholds: dict[str, np.ndarray],
) -> dict[str, tuple[int, int, int]]:
    """Per model LIF: (spike mismatches away from ties, mismatches at ties, near-ties)."""
    out = {}
    for path, ref in twin_spikes.items():
        node, part = node_of(path)
        s, h = run_spikes[node], run_membranes[node]
        theta = torch.as_tensor(thresholds[node], dtype=h.dtype)
        if part is not None:
            third = s.shape[2] // 3
            sl = slice(part * third, (part + 1) * third)
            s, h, theta = s[:, :, sl], h[:, :, sl], theta[sl]
        tie = (h - theta).abs() < NEAR_TIE
        s, tie = s.reshape(ref.shape), tie.reshape(ref.shape)
        diff = s != ref
        out[path] = (int((diff & ~tie).sum()), int((diff & tie).sum()), int(tie.sum()))
    return out


def inputs_for(config: SpikeCLIPConfig, batch: int, *, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Deterministic images `[B, C, H, W]` (≈ CLIP-normalized scale) and token ids `[B, L]`."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, config.in_channels, config.img_size, config.img_size, generator=gen)
    ids = torch.randint(0, config.vocab_size, (batch, config.text_len), generator=gen)
    return images, ids


@pytest.fixture(scope="module")
def tiny_pair() -> tuple[SpikeCLIP, SpikeCLIP, Tensor, Tensor]:
    torch.manual_seed(0)
    cfg = SpikeCLIPConfig.tiny()
    images, ids = inputs_for(cfg, 4)
    model = lively(SpikeCLIP(cfg), images, ids)
    return model, fold_bn_twin(model), images, ids


def test_twin_matches_unfolded_model_in_float64(tiny_pair) -> None:
    model, twin, images, ids = tiny_pair
    ref = copy.deepcopy(model).double()
    with torch.no_grad():
        a, b = ref.encode_image(images.double()), twin.encode_image(images.double())
    assert torch.allclose(a, b, rtol=0, atol=1e-12 * a.abs().max().item())
    assert not any(isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d) for m in twin.modules())


def test_lively_model_fires_at_every_lif(tiny_pair) -> None:
    _, twin, images, ids = tiny_pair
    _, spikes = record_lifs(twin, lambda: twin.encode_image(images.double()))
    _, text_spikes = record_lifs(twin, lambda: twin.encode_text(ids))
    spikes.update(text_spikes)
    # tokenizer 4; per block attn in/q/k/v/attn + mlp in/fc1 = 7, depth 2; text 2
    assert len(spikes) == 4 + 7 * 2 + 2
    rates = {p: s.mean().item() for p, s in spikes.items()}
    assert all(0.005 < r < 0.95 for r in rates.values()), {p: round(r, 3) for p, r in rates.items()}
