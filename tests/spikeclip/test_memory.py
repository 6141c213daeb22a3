"""spikeclip.memory: the estimate against built models, hand-derived paper numbers, the limits."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from spikeclip import memory
from spikeclip.config import LayerRecord, SpikeCLIPConfig
from spikeclip.errors import InsufficientMemoryError
from spikeclip.memory import AvailableMemory, check_memory, estimate_memory, format_bytes
from spikeclip.model import SpikeCLIP
from spikeclip.training.presets import digits

CONFIGS = {
    "paper": SpikeCLIPConfig.paper(),
    "tiny": SpikeCLIPConfig.tiny(),
    "digits": digits(),
    "odd": SpikeCLIPConfig(
        img_size=12,
        in_channels=1,
        embed_dim=24,
        depth=3,
        num_heads=4,
        mlp_ratio=3,
        T=7,
        out_dim=10,
        tokenizer_channels=(3, 5, 7, 11),
        text_len=5,
        vocab_size=33,
        text_width=6,
        text_hidden=9,
    ),
}


def _state_bytes(module: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())


def _described_values(records: list[LayerRecord], T: int, per_sample: set[str]) -> int:
    """Σ output sizes of `describe()`'s records: T times per step, once for per-sample kinds."""
    return sum(
        math.prod(r.out_shape) * (1 if r.kind in per_sample else T)
        for r in records
        if r.kind != "repeat"
    )


@pytest.mark.parametrize("name", list(CONFIGS))
def test_parameter_bytes_equal_the_built_state_dicts(name):
    cfg = CONFIGS[name]
    model = SpikeCLIP(cfg)
    est = estimate_memory(cfg)
    assert est.image_parameter_bytes == _state_bytes(model.image_encoder)
    assert est.text_parameter_bytes == _state_bytes(model.text_encoder)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_activation_bytes_are_the_described_outputs(name):
    """Reference: the layer records the model itself describes (+ Kᵀ·V, D·d per step/block)."""
    cfg = CONFIGS[name]
    model = SpikeCLIP(cfg)
    image = _described_values(
        model.image_encoder.describe(), cfg.T, {"time_readout", "linear"}
    ) + cfg.T * cfg.depth * cfg.embed_dim * cfg.head_dim
    text = _described_values(
        model.text_encoder.describe(), cfg.T, {"embedding", "time_readout"}
    )
    est = estimate_memory(cfg)
    assert est.image_activation_bytes == 4 * image
    assert est.text_activation_bytes == 4 * text


def test_paper_numbers_by_hand():
    """Paper: c = (3, 48, 96, 192, 384, 384), D = 384, H = 1536, d = 48, N = 64, T = 4, depth 4.

    Parameters: convs 9·(3·48 + 48·96 + 96·192 + 192·384 + 384·384) = 2,199,312, BN 4·1104 =
    4,416; a block's attention 3·(384² + 4·384) + 384² + 384 + 4·384 = 596,352 and MLP
    2·384·1536 + 1536 + 4·1536 + 384 + 4·384 = 1,189,248, ×4 blocks = 7,142,400; readout +
    head 4 + 384·512 + 512 = 197,124: 9,543,252 floats (the config's 9,513,396 parameters plus
    29,856 BN running statistics) = 38,173,008 B, + 29 BN counters × 8 B = 38,173,240 B.
    Activations per step: tokenizer 3·48·1024 + 3·96·1024 + 192·(2·1024 + 2·256)
    + 384·(2·256 + 2·64) + 2·384·64 = 1,228,800; a block 19·384·64 + 384·48 + 3·1536·64 =
    780,288 (×4); token mean 384: 4,350,336 per step, ×4 steps + readout 384 + head 512 =
    17,402,240 values = 69,608,960 B.
    """
    est = estimate_memory(SpikeCLIPConfig.paper())
    assert est.image_parameter_bytes == 38_173_240
    assert est.image_activation_bytes == 69_608_960
    # text: 49408·512 + 20·512 + 10240·2048 + 2048 + 2048·512 + 512 + 4 floats
    assert est.text_parameter_bytes == 4 * 47_329_796
    # text: 20·512 + 4·(10240 + 2·2048 + 512) + 512 values
    assert est.text_activation_bytes == 4 * 70_144


def test_batch_scales_only_the_activations():
    one = estimate_memory(SpikeCLIPConfig.paper())
    many = estimate_memory(SpikeCLIPConfig.paper(), batch=64)
    assert many.parameter_bytes == one.parameter_bytes
    assert many.total_bytes == one.parameter_bytes + 64 * one.activation_bytes_per_sample
    with pytest.raises(ValueError, match="batch"):
        estimate_memory(SpikeCLIPConfig.tiny(), batch=-1)


def test_a_stage_counts_the_activations_of_the_towers_it_runs():
    both = estimate_memory(SpikeCLIPConfig.paper(), batch=3)
    text = estimate_memory(SpikeCLIPConfig.paper(), batch=3, towers=("text",))
    params = estimate_memory(SpikeCLIPConfig.paper(), batch=3, towers=())
    assert text.parameter_bytes == params.parameter_bytes == both.parameter_bytes
    assert (text.image_activation_bytes, text.text_activation_bytes) == (
        0, both.text_activation_bytes)  # fmt: skip
    assert text.total_bytes == both.parameter_bytes + 3 * 4 * 70_144  # the paper's, by hand
    assert params.total_bytes == both.parameter_bytes
    small = AvailableMemory(system=text.parameter_bytes)
    with pytest.raises(InsufficientMemoryError, match=r"of activations for 3 prompts\)"):
        check_memory(text, what="x", available=small)
    with pytest.raises(ValueError, match="towers"):
        estimate_memory(SpikeCLIPConfig.tiny(), towers=("audio",))


def test_check_refuses_with_the_estimate_and_what_is_available():
    est = estimate_memory(SpikeCLIPConfig.paper())
    check_memory(est, what="x", available=AvailableMemory(system=est.total_bytes))
    small = AvailableMemory(system=8 << 30, cgroup=est.total_bytes - 1)
    with pytest.raises(InsufficientMemoryError) as err:
        check_memory(est, what="model.pt: building its model", available=small)
    text = str(err.value)
    assert err.value.exit_code == 9 and "\n" not in text
    assert text.startswith("model.pt: building its model: needs about 284 MiB at float32")
    assert f"only {format_bytes(est.total_bytes - 1)} is available (memory cgroup limit)" in text


def test_a_huge_config_is_estimated_without_building_it():
    """Every bound met; 1024 blocks of 8·65,536² weights (tiny's MLP ratio 2) are ~1.4·10¹⁴
    bytes of parameters: estimated from the numbers alone."""
    cfg = dataclasses.replace(SpikeCLIPConfig.tiny(), embed_dim=1 << 16, depth=1024)
    est = estimate_memory(cfg)
    assert est.image_parameter_bytes > 1024 * 8 * 4 * (1 << 32)
    with pytest.raises(InsufficientMemoryError, match="TiB of parameters"):
        check_memory(est, what="huge", available=AvailableMemory(system=1 << 40))


def test_binding_limit_and_its_name():
    assert AvailableMemory(system=10).source == "available system memory"
    assert AvailableMemory(system=10, cgroup=5, address_space=7).bytes == 5
    assert AvailableMemory(system=10, cgroup=5, address_space=3).source == (
        "address-space limit (ulimit -v)"
    )


def test_cgroup_v2_and_v1_files_are_read(tmp_path, monkeypatch):
    v2, v1 = tmp_path / "v2", tmp_path / "v1"
    v2.mkdir(), v1.mkdir()
    monkeypatch.setattr(memory, "CGROUP_V2", v2)
    monkeypatch.setattr(memory, "CGROUP_V1", v1)
    assert memory._cgroup_headroom() is None  # no files: no limit
    (v2 / "memory.max").write_text("max\n")
    (v1 / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # v1's "unlimited"
    assert memory._cgroup_headroom() is None
    (v1 / "memory.limit_in_bytes").write_text("4000\n")
    (v1 / "memory.usage_in_bytes").write_text("1500\n")
    assert memory._cgroup_headroom() == 2500
    (v2 / "memory.max").write_text("3000\n")
    (v2 / "memory.current").write_text("1000\n")
    assert memory._cgroup_headroom() == 2000  # v2 first


def test_address_space_limit_counts_the_process_size(monkeypatch):
    limit = 1 << 50
    monkeypatch.setattr(memory.resource, "getrlimit", lambda _r: (limit, limit))
    headroom = memory._address_space_headroom()
    assert headroom is not None and 0 < headroom < limit
    monkeypatch.setattr(
        memory.resource, "getrlimit", lambda _r: (memory.resource.RLIM_INFINITY,) * 2
    )
    assert memory._address_space_headroom() is None


def test_available_memory_is_positive_and_bounded_by_the_system():
    now = memory.available_memory()
    assert 0 < now.bytes <= now.system


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (3 << 30, "3 GiB"), (5 << 40, "5 TiB")],
)
def test_format_bytes(n, text):
    assert format_bytes(n) == text
