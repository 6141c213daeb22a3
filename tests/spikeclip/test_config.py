"""SpikeCLIPConfig: presets, validation, dict round trip."""

from __future__ import annotations

import dataclasses

import pytest

from spikeclip.config import SpikeCLIPConfig
from spikeclip.errors import ConfigError


def test_paper_preset_is_the_official_configuration():
    cfg = SpikeCLIPConfig.paper()
    assert (cfg.img_size, cfg.in_channels, cfg.embed_dim, cfg.depth) == (32, 3, 384, 4)
    assert (cfg.num_heads, cfg.mlp_ratio, cfg.T, cfg.out_dim) == (8, 4, 4, 512)
    assert cfg.tokenizer_channels == (48, 96, 192, 384)
    assert (cfg.text_len, cfg.vocab_size, cfg.text_width, cfg.text_hidden) == (20, 49408, 512, 2048)
    assert (cfg.attn_scale, cfg.v_threshold, cfg.attn_v_threshold, cfg.tau) == (
        0.125,
        1.0,
        0.5,
        2.0,
    )
    assert cfg.surrogate_alpha == 4.0 and cfg.strict_threshold is False and cfg.neuron == "lif"
    # 384 / 8 heads = 48; 384 * 4 = 1536; 32 / 2 / 2 = 8 → 8 * 8 = 64 tokens
    assert (cfg.head_dim, cfg.mlp_hidden, cfg.grid_size, cfg.num_tokens) == (48, 1536, 8, 64)


def test_tiny_preset_is_small_and_valid():
    cfg = SpikeCLIPConfig.tiny()
    assert cfg.embed_dim < 64 and cfg.vocab_size < 100 and cfg.img_size <= 16
    assert cfg.embed_dim % cfg.num_heads == 0


def test_frozen_and_keyword_only():
    cfg = SpikeCLIPConfig.tiny()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.T = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        SpikeCLIPConfig(32)  # type: ignore[misc]


@pytest.mark.parametrize("preset", [SpikeCLIPConfig.paper, SpikeCLIPConfig.tiny])
def test_dict_round_trip(preset):
    cfg = preset()
    data = cfg.to_dict()
    assert data["tokenizer_channels"] == list(cfg.tokenizer_channels)  # builtins only
    assert SpikeCLIPConfig.from_dict(data) == cfg
    assert SpikeCLIPConfig.from_dict({"T": 6}) == dataclasses.replace(SpikeCLIPConfig(), T=6)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"embed_dim": 100, "num_heads": 8}, "divisible by num_heads"),
        ({"img_size": 30}, "img_size=30"),
        ({"T": 0}, "config.T must be >= 1"),
        ({"tau": -1.0}, "config.tau"),
        ({"T": True}, "config.T must be int"),
        ({"tokenizer_channels": (1, 2, 3)}, "tokenizer_channels"),
        ({"neuron": "izhikevich"}, "config.neuron"),
        ({"neuron": "ann", "T": 4}, "needs T=1"),
        ({"v_threshold": float("nan")}, "v_threshold"),
    ],
)
def test_invalid_values_raise_config_error(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        SpikeCLIPConfig(**kwargs)


def test_from_dict_rejects_unknown_fields_and_non_mappings():
    with pytest.raises(ConfigError, match="unknown config field.*depthh"):
        SpikeCLIPConfig.from_dict({"depthh": 3})
    with pytest.raises(ConfigError, match="mapping"):
        SpikeCLIPConfig.from_dict([("T", 4)])  # type: ignore[arg-type]
