"""Image encoder: official parameter count, shapes, describe(), official-code outputs."""

from __future__ import annotations

import dataclasses
import math
import re

import pytest
import torch
from _paths import TESTS

from spikeclip.config import SpikeCLIPConfig
from spikeclip.errors import ModelInputError
from spikeclip.image_encoder import ImageEncoder, time_weight_init
from spikeclip.neurons import MultiStepLIF

OFFICIAL = TESTS / "fixtures" / "official"


def test_paper_parameter_count_is_official():
    # digest §2.9: tokenizer convs 2,199,312 + BN 2,208; 4 blocks × 1,778,688; head 197,120;
    # 4 time weights → 9,513,396
    enc = ImageEncoder(SpikeCLIPConfig.paper())
    assert sum(p.numel() for p in enc.parameters()) == 9_513_396
    assert enc.readout.weights.shape == (4,)
    assert tuple(enc.head.weight.shape) == (512, 384)


def test_paper_forward_shape():
    enc = ImageEncoder(SpikeCLIPConfig.paper()).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert enc.trunk(x).shape == (4, 1, 384, 8, 8)
        assert enc(x).shape == (1, 512)


@pytest.mark.parametrize("T", [1, 4, 6])
def test_tiny_shapes_for_any_T(T):
    cfg = dataclasses.replace(SpikeCLIPConfig.tiny(), T=T)
    enc = ImageEncoder(cfg)
    x = torch.randn(3, 3, cfg.img_size, cfg.img_size)
    g = cfg.img_size // 4
    assert enc.trunk(x).shape == (T, 3, cfg.embed_dim, g, g)
    assert enc(x).shape == (3, cfg.out_dim)
    assert enc.readout.weights.shape == (T,)


def test_time_weight_init():
    # the paper's values for T = 4: ln .1, ln .2, ln .4, ln .8
    assert time_weight_init(4) == pytest.approx([math.log(v) for v in (0.1, 0.2, 0.4, 0.8)])
    # documented rule for other T: ln(0.8 · 2^(t − T + 1))
    assert time_weight_init(1) == pytest.approx([math.log(0.8)])
    assert time_weight_init(6) == pytest.approx(
        [math.log(v) for v in (0.025, 0.05, 0.1, 0.2, 0.4, 0.8)]
    )


def test_bad_input_shape_is_a_typed_error():
    enc = ImageEncoder(SpikeCLIPConfig.tiny())
    with pytest.raises(ModelInputError, match=r"expects float images \[B, 3, 16, 16\]"):
        enc(torch.randn(2, 3, 8, 8))


def test_strict_config_builds_strict_neurons():
    enc = ImageEncoder(dataclasses.replace(SpikeCLIPConfig.tiny(), strict_threshold=True))
    lifs = [m for m in enc.modules() if isinstance(m, MultiStepLIF)]
    assert lifs and all(m.strict for m in lifs)


def test_describe_matches_modules_and_real_shapes():
    cfg = SpikeCLIPConfig.tiny()
    enc = ImageEncoder(cfg)
    records = enc.describe()
    names = [r.name for r in records]
    assert len(names) == len(set(names))
    # 4 tokenizer LIFs + per block: attn in/q/k/v/attn_lif + mlp in/fc1 = 7
    assert sum(r.kind == "lif" for r in records) == 4 + 7 * cfg.depth
    attn_lifs = [r for r in records if r.name.endswith("attn.attn_lif")]
    assert [r.attrs["v_threshold"] for r in attn_lifs] == [0.5] * cfg.depth
    by_name = {r.name: r for r in records}
    for r in records:  # every input exists earlier and carries the same number of elements
        for src in r.inputs:
            if src != "input":
                assert math.prod(by_name[src].out_shape) == math.prod(r.in_shape), r.name
    assert records[-1].name == "head" and records[-1].out_shape == (cfg.out_dim,)

    seen: dict[str, tuple[int, ...]] = {}
    hooks = [
        enc.get_submodule(r.name).register_forward_hook(
            lambda _m, _i, out, n=r.name: seen.__setitem__(n, tuple(out.shape))
        )
        for r in records
        if r.is_module
    ]
    enc(torch.randn(2, 3, cfg.img_size, cfg.img_size))
    for h in hooks:
        h.remove()
    for r in records:
        if r.is_module and r.kind not in ("time_readout", "linear"):
            assert seen[r.name] in ((cfg.T * 2, *r.out_shape), (cfg.T, 2, *r.out_shape)), r.name
    assert seen["head"] == (2, cfg.out_dim)


def _official_to_ours(key: str) -> str:
    """Rename a key of the paper's `vision_encoder` state dict to this package's names."""
    if key == "weights_tensor":
        return "readout.weights"
    key = re.sub(r"^patch_embed\.block(\d)_(conv|bn)", r"tokenizer.\2\1", key)
    key = re.sub(r"^proj\.", "head.", key)
    key = key.replace("block.", "blocks.").replace("mlp1_", "fc1_").replace("mlp2_", "fc2_")
    return key


def test_matches_the_official_code_on_its_fixture():
    # tests/fixtures/official: features written by the paper's model.py + spikingjelly 0.0.0.0.14
    # (embed 16, 2 heads, depth 2, MLP ratio 4, output 8, T = 4, 32×32 input, eval mode).
    saved = torch.load(OFFICIAL / "image_checkpoint.pth.tar", weights_only=True)["state_dict"]
    outputs = torch.load(OFFICIAL / "image_outputs.pt", weights_only=True)
    state = {_official_to_ours(k): v for k, v in saved.items()}
    state["readout.weights"] = state["readout.weights"].flatten()
    cfg = SpikeCLIPConfig(
        embed_dim=16, depth=2, num_heads=2, out_dim=8, tokenizer_channels=(2, 4, 8, 16)
    )
    enc = ImageEncoder(cfg)
    enc.load_state_dict(state, strict=True)
    enc.eval()
    with torch.no_grad():
        feats = enc(outputs["pixel_values"])
    torch.testing.assert_close(feats, outputs["features"], rtol=0, atol=1e-5)
