"""SpikeCLIPConfig: presets, validation, dict round trip."""

from __future__ import annotations

import dataclasses
import math
import re

import pytest
import torch

from spikeclip.config import MAX_T, SpikeCLIPConfig
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


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("T", 2000, "config.T must be <= 1,024 (this toolchain's bound), got 2,000"),
        ("T", 1025, "config.T must be <= 1,024"),
        ("embed_dim", 1_000_000, "config.embed_dim must be <= 65,536"),
        ("depth", 1_000_000, "config.depth must be <= 1,024"),
        ("img_size", 100_000, "config.img_size must be <= 4,096"),
        ("vocab_size", 1 << 21, "config.vocab_size must be <= 1,048,576"),
        ("text_len", 5000, "config.text_len must be <= 4,096"),
        ("mlp_ratio", 65, "config.mlp_ratio must be <= 64"),
        ("tokenizer_channels", (4, 8, 8, 1 << 17), "tokenizer_channels must each be <= 65,536"),
    ],
)
def test_sizes_have_hard_upper_bounds(field, value, words):
    with pytest.raises(ConfigError, match=re.escape(words)) as err:
        SpikeCLIPConfig(**{**SpikeCLIPConfig.tiny().to_dict(), field: value})
    assert err.value.exit_code == 2  # from the command line: a usage error


def test_the_largest_T_builds_a_finite_readout():
    """The bound's reason: the readout's initial weights ln(0.8·2^(t−T+1)) are finite up to
    MAX_T (they underflowed to ln 0, "math domain error", above T = 1075)."""
    from spikeclip.image_encoder import TimeWeightedReadout, time_weight_init

    cfg = SpikeCLIPConfig(**{**SpikeCLIPConfig.tiny().to_dict(), "T": MAX_T})
    weights = TimeWeightedReadout(cfg.T).weights
    assert weights.shape == (1024,) and bool(torch.isfinite(weights).all())
    # w_0 = ln 0.8 − 1023·ln 2 (float64: 0.8·2^−1023 is subnormal but nonzero)
    assert weights[0].item() == pytest.approx(math.log(0.8) - 1023 * math.log(2), rel=1e-6)
    with pytest.raises(ValueError, match="math domain error"):
        time_weight_init(1076)
