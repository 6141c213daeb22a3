"""Dense ops per step from the model structure, and whole-model counts from activity."""

from __future__ import annotations

import numpy as np
import pytest

from hardware.energy.activity import (
    count_model,
    full_activity,
    record_float_spikes,
    split_fused_qkv,
)
from hardware.energy.counts import total
from hardware.energy.errors import EnergyCountError
from hardware.energy.structure import dense_ops_per_step, layer_specs, neurons_per_step
from spikeclip.config import SpikeCLIPConfig
from spikeclip.model import SpikeCLIP


@pytest.fixture(scope="module")
def paper_specs():
    model = SpikeCLIP(SpikeCLIPConfig.paper())
    return layer_specs(model.image_encoder.describe("image_encoder", "image"))


@pytest.fixture(scope="module")
def tiny_specs():
    model = SpikeCLIP(SpikeCLIPConfig.tiny())
    return layer_specs(model.image_encoder.describe("image_encoder", "image"))


def test_paper_dense_ops_per_step(paper_specs) -> None:
    # spikeclip_digest §2.9: convs 1,327,104 + 42,467,328 + 169,869,312 + 169,869,312 +
    # 84,934,656 = 468,467,712; per block QKV 28,311,552 + QKᵀ 1,572,864 + (·)V 1,572,864 +
    # proj 9,437,184 + MLP 75,497,472 = 116,391,936, ×4 = 465,567,744; head 196,608.
    assert dense_ops_per_step(paper_specs, "qkt_v") == 934_232_064
    # Q(KᵀV): each attention product is H·N·d² = 8·64·48² = 1,179,648 instead of H·N²·d =
    # 1,572,864, so 4 blocks · 2 products · 393,216 = 3,145,728 fewer.
    assert dense_ops_per_step(paper_specs, "q_ktv") == 931_086_336
    conv0, head = paper_specs[0], paper_specs[-1]
    assert conv0.dense_input and head.dense_input
    assert not any(s.dense_input for s in paper_specs[1:-1])
    # neurons per step: tokenizer 48·1024 + 96·1024 + 192·256 + 384·64 = 221,184; per block
    # 4·(384·64) + 384·64 + 1536·64 = 245,760, ×4 = 983,040 → 1,204,224 (DESIGN §7: ≈1.2 M)
    assert neurons_per_step(paper_specs) == 1_204_224


def test_tiny_counts_with_every_neuron_spiking(tiny_specs) -> None:
    # Tiny config: 16×16 image, tokenizer 3→4→8→8→16→16, D=16, 2 blocks, 2 heads (d=8),
    # MLP 32, N=16 tokens, out 12. T=4, B=1, every neuron fires every step.
    counts = count_model(
        tiny_specs, full_activity(tiny_specs, samples=1, steps=4), samples=1, steps=4
    )
    # 3×3/pad-1 fan-out summed over a side of L is 3L−2 (46 at 16, 22 at 8, 10 at 4):
    # conv1 8·4·46² = 67,712; conv2 8·8·46² = 135,424; conv3 16·8·22² = 61,952;
    # conv4 16·16·10² = 25,600 → 290,688 per step. 1×1 layers are exact = dense:
    # per block QKV 3·16·16·16 + proj 16·16·16 + MLP 2·16·16·32 = 32,768, attention Q(KᵀV)
    # with all ones: popcount H·N·d² = 2,048 plus nnz(Q)·d = 2,048 → 36,864; ×2 = 73,728.
    assert total(counts, "sop_exact") == 4 * (290_688 + 73_728)
    assert total(counts, "dense_macs") == 27_648 + 192  # conv0 3·4·9·256, head 16·12; once
    # neurons per step: 4·256 + 8·256 + 8·64 + 16·16 = 3,840; per block 256 + 3·256 + 256 +
    # 256 + 32·16 = 2,048 → 7,936 per step
    assert total(counts, "neuron_updates") == 4 * 7_936
    assert total(counts, "spikes_out") == 4 * 7_936
    assert total(counts, "ann_macs") == 433_344  # the ANN twin, T = 1 (see test_onnx_export)
    per_step = count_model(tiny_specs, full_activity(tiny_specs, samples=1, steps=4),
                           samples=1, steps=4, dense_runs=4)  # fmt: skip
    assert total(per_step, "dense_macs") == 4 * 27_840


def test_tiny_counts_silent_network_and_batch(tiny_specs) -> None:
    act = {k: np.zeros_like(v) for k, v in full_activity(tiny_specs, samples=3, steps=4).items()}
    counts = count_model(tiny_specs, act, samples=3, steps=4)
    assert total(counts, "sop_exact") == 0 and total(counts, "spikes_out") == 0
    assert total(counts, "neuron_updates") == 3 * 4 * 7_936  # every neuron updates every step
    assert all(c.per_sample("neuron_updates") == c.neuron_updates / 3 for c in counts)


def test_missing_or_misshapen_activity_is_named(tiny_specs) -> None:
    act = full_activity(tiny_specs, samples=1, steps=4)
    del act["image_encoder.tokenizer.lif0"]
    with pytest.raises(EnergyCountError, match="no spikes recorded.*tokenizer.lif0"):
        count_model(tiny_specs, act, samples=1, steps=4)
    with pytest.raises(EnergyCountError, match="expected"):
        count_model(tiny_specs, full_activity(tiny_specs, samples=1, steps=4), samples=1,
                    steps=2)  # fmt: skip


def test_counts_from_float_model_spikes(tiny_specs) -> None:
    import torch

    torch.manual_seed(0)
    model = SpikeCLIP(SpikeCLIPConfig.tiny())
    images = 3 * torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    spikes = record_float_spikes(model.image_encoder, images, tiny_specs, prefix="image_encoder.")
    assert set(spikes) == {s.name for s in tiny_specs if s.op == "neuron"}
    lif0 = spikes["image_encoder.tokenizer.lif0"]
    assert lif0.shape == (4, 2, 4, 16, 16) and 0 < lif0.mean() < 1
    counts = {c.name: c for c in count_model(tiny_specs, spikes, samples=2, steps=4)}
    # Independent reference: conv1 of lif0's spikes with all-ones 3×3 weights, summed.
    ones = torch.ones(8, 4, 3, 3, dtype=torch.float64)
    ref = torch.nn.functional.conv2d(torch.from_numpy(lif0.reshape(8, 4, 16, 16)).double(),
                                     ones, padding=1).sum()  # fmt: skip
    assert counts["image_encoder.tokenizer.conv1"].sop_exact == int(ref.item())
    assert counts["image_encoder.tokenizer.lif0"].spikes_out == int(lif0.sum())


def test_batch_summed_spike_counts_give_the_same_totals(tiny_specs) -> None:
    import torch

    torch.manual_seed(1)
    model = SpikeCLIP(SpikeCLIPConfig.tiny())
    images = 3 * torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    spikes = record_float_spikes(model.image_encoder, images, tiny_specs, prefix="image_encoder.")
    per_sample = count_model(tiny_specs, spikes, samples=3, steps=4)
    summed = {k: v.astype(np.int64).sum(axis=1) for k, v in spikes.items()}  # [T, *shape]
    no_attention = [s for s in tiny_specs if s.op != "attention"]
    batch = count_model(no_attention, summed, samples=3, steps=4, batch_summed=True)
    expect = [c for c in per_sample if c.op != "attention"]
    assert batch == expect  # every field, including fr_in's denominators
    with pytest.raises(EnergyCountError, match="per-sample"):
        count_model(tiny_specs, summed, samples=3, steps=4, batch_summed=True)


def test_split_fused_qkv_restores_the_model_neurons(tiny_specs) -> None:
    act = full_activity(tiny_specs, samples=1, steps=4)
    fused = {k: v for k, v in act.items() if not k.endswith(("q_lif", "k_lif", "v_lif"))}
    for i in range(2):
        p = f"image_encoder.blocks.{i}.attn."
        parts = [act[p + n] for n in ("q_lif", "k_lif", "v_lif")]
        # the model's [T, B, D, N] records as the network's (3D, h, w) map
        fused[p + "qkv_lif"] = np.concatenate(parts, axis=2).reshape(4, 1, 48, 4, 4)
        fused[p + "qkv_lif"][0, 0, 16, 0, 0] = 0  # first K channel, token 0, step 0
    split = split_fused_qkv(fused)
    k0 = split["image_encoder.blocks.0.attn.k_lif"]
    assert k0.shape == (4, 1, 16, 4, 4) and k0[0, 0, 0, 0, 0] == 0 and k0.sum() == 4 * 256 - 1
    counts = {c.name: c for c in count_model(tiny_specs, split, samples=1, steps=4)}
    # one K spike fewer: KᵀV loses |V_0| = d = 8 pairs in head 0 (token 0, step 0)
    assert counts["image_encoder.blocks.0.attn.core"].sop_exact == 4 * 4_096 - 8
