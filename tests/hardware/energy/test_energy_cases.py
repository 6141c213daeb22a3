"""The five hand-computed validation cases of research/energy_digest §7.E (B = 1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hardware.energy.counts import (
    attention_counts,
    conv_counts,
    dense_counts,
    lif_counts,
    linear_counts,
)
from hardware.energy.fanout import spatial_fanout
from hardware.energy.presets import PRESETS, ann_energy_pj, snn_energy_pj

PAPER = PRESETS["paper-45nm"]
LOIHI1 = PRESETS["loihi1-table2"]


def test_case1_linear_binary_input() -> None:
    # Linear(4→3), T=2: x0=[1,0,1,0], x1=[0,0,0,1] → 3 spikes, each reaching 3 outputs.
    x = np.array([[[1, 0, 1, 0]], [[0, 0, 0, 1]]])  # [T=2, B=1, 4]
    c = linear_counts(name="fc", x=x, out_features=3)
    assert c.sop_exact == 9
    assert c.sop_rate == pytest.approx(9.0)  # fr = 3/8; 0.375·2·12
    assert c.fr_in == 3 / 8
    assert (c.ann_macs, c.snn_dense_ops) == (12, 24)
    assert c.bias_adds == 0
    assert snn_energy_pj(c, PAPER) == pytest.approx(8.1)  # 9 · 0.9
    assert ann_energy_pj(c, PAPER) == pytest.approx(55.2)  # 12 · 4.6
    with_bias = linear_counts(name="fc", x=x, out_features=3, bias=True)
    assert with_bias.bias_adds == 6  # 3 per step, 2 steps
    # Per sample divides by B, never by T: a batch of two copies gives the same per-sample count.
    two = linear_counts(name="fc", x=np.concatenate([x, x], axis=1), out_features=3)
    assert two.sop_exact == 18 and two.per_sample("sop_exact") == 9.0


def test_case2_conv_borders() -> None:
    # Conv2d(1→2, 3×3, s=1, p=1), 4×4 input, T=1. Fan-out per output channel (hand):
    fan = np.array([[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]])
    np.testing.assert_array_equal(spatial_fanout((4, 4), (3, 3), (1, 1), (1, 1), (1, 1)), fan)
    geo = dict(out_channels=2, kernel=(3, 3), stride=(1, 1), padding=(1, 1))
    ones = np.ones((1, 1, 1, 4, 4), dtype=np.int64)
    a = conv_counts(name="c", x=ones, **geo)
    assert (a.ann_macs, a.sop_exact, a.sop_rate) == (288, 200, 288.0)
    corner = np.zeros_like(ones)
    corner[..., 0, 0] = 1
    b = conv_counts(name="c", x=corner, **geo)
    assert (b.sop_exact, b.sop_rate) == (8, 18.0)  # 4 positions · 2 channels; 288/16
    inner = np.zeros_like(ones)
    inner[..., 1, 1] = 1
    c = conv_counts(name="c", x=inner, **geo)
    assert (c.sop_exact, c.sop_rate) == (18, 18.0)


def test_case3_sinabs_reference() -> None:
    # Conv2d(1→5, k=2, no pad) on eye(3): fan-out [[1,2,1],[2,4,2],[1,2,1]] → (1+4+1)·5 = 30.
    x = np.eye(3, dtype=np.int64)[None, None, None]  # [T=1, B=1, C=1, 3, 3]
    c = conv_counts(name="c", x=x, out_channels=5, kernel=(2, 2))
    assert c.sop_exact == 30
    assert c.ann_macs == 80  # 5 channels · 2×2 outputs · 4 taps
    assert c.sop_rate == pytest.approx(80 / 3)


def test_case4_spiking_self_attention() -> None:
    q = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    k = np.array([[1, 0], [1, 0], [0, 1], [0, 0]])
    v = np.array([[1, 1], [0, 1], [1, 0], [0, 0]])
    # Both orders give the same output (no softmax): [[1,2],[1,0],[2,2],[0,0]].
    expected = np.array([[1, 2], [1, 0], [2, 2], [0, 0]])
    np.testing.assert_array_equal(q @ (k.T @ v), expected)
    np.testing.assert_array_equal((q @ k.T) @ v, expected)
    qkv = {n: m[None, None, None] for n, m in (("q", q), ("k", k), ("v", v))}  # [1,1,1,4,2]
    a = attention_counts(name="ssa", order="q_ktv", **qkv)
    assert a.sop_exact == 12  # AND-popcount of KᵀV = 4, plus nnz(Q)·d = 8
    assert a.snn_dense_ops == 32 and a.ann_macs == 32  # 2·N·d²
    b = attention_counts(name="ssa", order="qkt_v", **qkv)
    assert b.sop_exact == 22  # sum(QKᵀ) = 6, plus nnz(V)·N = 16
    assert b.snn_dense_ops == 64  # 2·N²·d
    # Spikingformer: N·d²·(min(fr_K=0.375, fr_V=0.5) + fr_Q=0.5) = 16·0.875 = 14
    assert a.sop_rate == pytest.approx(14.0) and b.sop_rate == pytest.approx(14.0)


def _case5_layers(runs: int) -> list:
    raster = np.zeros((4, 1, 3), dtype=np.int64)  # LIF(3) output, T=4, 5 spikes
    raster[0, 0, 0] = raster[1, 0, 1] = raster[2, 0, 0] = raster[2, 0, 2] = raster[3, 0, 1] = 1
    fc1 = dense_counts(
        name="fc1",
        op="linear",
        macs_per_run=12,
        in_numel=4,
        out_numel=3,
        weights=12,
        samples=1,
        steps=4,
        runs_per_sample=runs,
    )
    return [
        fc1,
        lif_counts(name="lif", spikes=raster),
        linear_counts(name="fc2", x=raster, out_features=2),
    ]


def test_case5_encoding_layer_neuron_updates_loihi() -> None:
    once, per_step = _case5_layers(1), _case5_layers(4)
    assert once[0].dense_macs == 12 and per_step[0].dense_macs == 48
    assert once[2].sop_exact == 10  # 5 spikes · 2 outputs
    assert once[1].neuron_updates == 12 and once[1].spikes_out == 5
    # paper-45nm: dense MACs · 4.6 + synaptic ops · 0.9 (neurons are not priced by this rule)
    assert sum(snn_energy_pj(c, PAPER) for c in once) == pytest.approx(64.2)  # 12·4.6 + 10·0.9
    assert sum(snn_energy_pj(c, PAPER) for c in per_step) == pytest.approx(229.8)  # 48·4.6 + 9
    assert sum(ann_energy_pj(c, PAPER) for c in once) == pytest.approx(82.8)  # (12+6)·4.6
    # Loihi 1 (first layer on the host; active = spiked): 236 + 405 + 364 + 8.5
    loihi = [snn_energy_pj(c, LOIHI1) for c in once]
    assert sum(loihi) == pytest.approx(1013.5)
    # per layer: host conv 0; LIF 5·81 + 7·52 + 5·1.7 = 777.5; fc2 10·23.6 = 236
    assert loihi == pytest.approx([0.0, 777.5, 236.0])


@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "groups", "size"),
    [((2, 1), (1, 0), (1, 2), 1, (7, 9)), ((3, 3), (2, 2), (2, 1), 2, (8, 5))],
)
def test_conv_exact_sops_match_torch_ones_kernel(stride, padding, dilation, groups, size) -> None:
    # Independent reference: a conv of the spike map with an all-ones kernel counts, for every
    # output, the events it receives; summed over outputs that is the number of synaptic events.
    rng = np.random.default_rng(0)
    x = (rng.random((3, 2, 4, *size)) < 0.3).astype(np.int64)  # [T, B, C_in=4, H, W]
    x[0, 0, 0, 0, 0] = 2  # a multi-spike counts twice
    c = conv_counts(
        name="c",
        x=x,
        out_channels=6,
        kernel=(3, 2),
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
    )
    w = torch.ones(6, 4 // groups, 3, 2, dtype=torch.float64)
    y = torch.nn.functional.conv2d(
        torch.from_numpy(x.reshape(6, 4, *size)).double(),
        w,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
    )
    assert c.sop_exact == int(y.sum().item())
    assert c.in_kind == "integer"
    assert c.ann_macs == 2 * y[0].numel() * (4 // groups) * 6  # B · out numel · C_in/g · k
    assert c.snn_dense_ops == 3 * 2 * y[0].numel() * (4 // groups) * 6


def test_attention_popcounts_match_matrix_products() -> None:
    # Independent reference: the first product's exact cost is the sum of its integer entries
    # (each entry counts the coinciding spike pairs); the second costs events · fan-out.
    rng = np.random.default_rng(3)
    q, k, v = ((rng.random((2, 3, 2, 5, 4)) < 0.4).astype(np.int64) for _ in range(3))
    a = attention_counts(name="a", q=q, k=k, v=v, order="q_ktv")
    assert a.sop_exact == int((k.swapaxes(-1, -2) @ v).sum()) + int(q.sum()) * 4
    b = attention_counts(name="a", q=q, k=k, v=v, order="qkt_v")
    assert b.sop_exact == int((q @ k.swapaxes(-1, -2)).sum()) + int(v.sum()) * 5
    assert a.samples == 3 and a.ann_macs == 3 * 2 * 2 * 5 * 4 * 4  # B · 2·H·N·d²


def test_conv1d_exact_sops_match_torch() -> None:
    rng = np.random.default_rng(4)
    x = (rng.random((2, 3, 5, 11)) < 0.5).astype(np.int64)  # [T, B, C_in=5, L=11]
    c = conv_counts(name="c1", x=x, out_channels=7, kernel=(3,), stride=(2,), padding=(1,))
    y = torch.nn.functional.conv1d(
        torch.from_numpy(x.reshape(6, 5, 11)).double(),
        torch.ones(7, 5, 3, dtype=torch.float64),
        stride=2,
        padding=1,
    )
    assert c.sop_exact == int(y.sum().item())
