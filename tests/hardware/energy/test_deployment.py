"""Counts of a LoihiNetwork from spikes and the energy of its data movement, by hand."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar

import numpy as np
import pytest

from hardware.energy.counts import lif_counts
from hardware.energy.deployment import (
    CHIP_LINK,
    HOST_LINK,
    SPIKE_MESSAGE_BITS,
    deployment_energy,
    population_spikes,
)
from hardware.energy.network_counts import count_network
from hardware.energy.presets import PRESETS
from hardware.energy.report import build_report, default_assumptions, to_json, to_markdown
from hardware.ir.layers import DenseLayer, LIFLayer, SpikeInputLayer
from hardware.ir.network import Edge, LoihiNetwork
from hardware.mapping.kinds import MissingKindError
from hardware.mapping.mapper import map_network
from hardware.mapping.profiles import Quantity, load_target


def _chain() -> LoihiNetwork:
    """s (3 inputs) → w (dense 3 → 4) → x (4 LIFs) → v (dense 4 → 2) → y (2 LIFs)."""
    return LoihiNetwork(
        T=2,
        layers=(
            SpikeInputLayer(name="s", shape=(3,)),
            DenseLayer(name="w", weights=np.full((4, 3), 2), sign_mode="mixed"),
            LIFLayer(name="x", shape=(4,), du=4095, dv=2048, vth=10),
            DenseLayer(name="v", weights=np.full((2, 4), 2), sign_mode="mixed"),
            LIFLayer(name="y", shape=(2,), du=4095, dv=2048, vth=10),
        ),
        edges=(
            Edge(src="s", dst="w"),
            Edge(src="w", dst="x"),
            Edge(src="x", dst="v"),
            Edge(src="v", dst="y"),
        ),
    )


def test_count_network_from_batch_summed_spikes() -> None:
    # One sample, T = 2. Input spikes 1+0+1 and 1+1+0 = 4 events × 4 outputs = 16 synaptic
    # events into x; x spikes 1+0+0+1 then 0: 2 spikes × 2 outputs = 4 events into y; x
    # updates 2 steps × 4 neurons = 8, y 2 × 2 = 4.
    spikes = {
        "s": np.array([[1, 0, 1], [1, 1, 0]]),
        "x": np.array([[1, 0, 0, 1], [0, 0, 0, 0]]),
        "y": np.array([[0, 1], [0, 0]]),
    }
    counts = {c.name: c for c in count_network(_chain(), spikes, samples=1)}
    assert list(counts) == ["w", "x", "v", "y"]
    assert (counts["w"].sop_exact, counts["v"].sop_exact) == (16, 4)
    assert (counts["x"].neuron_updates, counts["x"].spikes_out) == (8, 2)
    assert (counts["y"].neuron_updates, counts["y"].spikes_out) == (4, 1)


def test_a_layer_kind_without_an_energy_entry_names_the_backend() -> None:
    @dataclass(frozen=True, kw_only=True, eq=False)
    class Odd(LIFLayer):
        KIND: ClassVar[str] = "odd"

    net = LoihiNetwork(T=1, layers=(Odd(name="o", shape=(2,), du=0, dv=0, vth=1),), edges=())
    with pytest.raises(MissingKindError, match=r"'odd'.*energy"):
        count_network(net, {"o": np.zeros((1, 2))}, samples=1)


def _one_core_chips() -> object:
    """Loihi 1 with one core per chip (so that x and y sit on different chips)."""
    base = load_target("loihi1")
    q = dict(base.quantities)
    q["chip.cores"] = Quantity(low=1, high=1, unit="cores", source="test")
    return dataclasses.replace(base, quantities=MappingProxyType(q))


def test_chip_crossing_spikes_host_traffic_and_routing_by_hand() -> None:
    # x is on chip 0 (core 0), y on chip 1 (core 1 = core 0 of chip 1, the same mesh
    # position: 0 hops). 10 spikes of x per sample cross 1 chip boundary: 10 × 40 bits = 400
    # bits at 1.4–1.9 pJ/bit. Routing: 10 messages × (1.7 pJ in-tile + 0 hops). Host bits per
    # image: the input's 3 spikes × T = 2 = 6, the output y's 2 × 2 = 4.
    mapping = map_network(_chain(), _one_core_chips())  # type: ignore[arg-type]
    preset = PRESETS["loihi1-table2"]
    d = deployment_energy(mapping, "optimistic", {"x": 10.0, "y": 3.0}, preset)
    assert (d.chips, d.messages, d.mean_hops) == (2, 10.0, 0.0)
    assert d.crossing_bits == 10 * SPIKE_MESSAGE_BITS == 400
    assert d.crossing_pj == pytest.approx((400 * CHIP_LINK.low, 400 * CHIP_LINK.high))
    assert d.routing_pj == pytest.approx(10 * 1.7)
    assert d.host_bits == 6 + 4
    assert d.host_pj == pytest.approx((10 * HOST_LINK.low, 10 * HOST_LINK.high))
    assert d.embedded_pj == 0.0


def test_population_spikes_fuse_qkv_and_the_report_shows_the_share() -> None:
    layers = [
        lif_counts(name=f"b.attn.{p}_lif", spikes=np.ones((2, 1, 3)), batch_summed=0)
        for p in ("q", "k", "v")
    ]
    spikes = population_spikes(layers)
    assert spikes["b.attn.q_lif"] == 6 and spikes["b.attn.qkv_lif"] == 18
    mapping = map_network(_chain(), _one_core_chips())  # type: ignore[arg-type]
    moved = [deployment_energy(mapping, "optimistic", {"x": 10.0}, PRESETS["loihi1-table2"])]
    assumptions = default_assumptions(
        steps=2, samples=1, activity="test", order="q_ktv", dense_runs=1
    )
    rep = build_report(
        layers, assumptions=assumptions, deployment=moved, deployment_preset="loihi1-table2",
        hops=2.5,
    )  # fmt: skip
    text = to_markdown(rep)
    assert "## Multi-chip deployment: data movement per sample" in text
    assert "| optimistic | 2 | 0.00 |" in text
    assert {p.name: p.hops for p in rep.presets}["loihi1-table2"] == 2.5
    assert to_json(rep)["deployment"]["scenarios"][0]["crossing_bits"] == 400
