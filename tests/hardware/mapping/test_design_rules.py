"""One minimal failing case per design rule (and the passing case at the limit)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hardware.ir.layers import DenseLayer, LIFLayer, MaxPoolLayer, SpikeInputLayer
from hardware.ir.network import Edge, LoihiNetwork
from hardware.mapping import design_rules as dr
from hardware.mapping.core_split import split_group
from hardware.mapping.mapper import map_network
from hardware.mapping.profiles import load_target
from hardware.mapping.specs import GroupSpec, InputSpec

L1 = load_target("loihi1").limits("optimistic")
L2 = load_target("loihi2").limits("optimistic")


def _demand(**over: int) -> dr.CoreDemand:
    base = dict(
        neurons=1, input_axons=1, output_axons=1, synapses=1, memory_bits=1, neuron_groups=1
    )
    base.update(over)
    return dr.CoreDemand(**base)


@pytest.mark.parametrize(
    ("rule", "field", "limit"),
    [
        (dr.fits_neurons_per_core, "neurons", 1024),
        (dr.fan_in_within_axons, "input_axons", 4096),
        (dr.fan_out_within_axons, "output_axons", 4096),
        (dr.fits_synaptic_memory, "memory_bits", 1 << 20),
        (dr.fits_neuron_groups, "neuron_groups", 8),
    ],
)
def test_core_rule_fails_one_above_the_loihi1_limit_with_evidence(rule, field, limit) -> None:
    rule("L", _demand(**{field: limit}), L1)  # at the limit: fits
    with pytest.raises(dr.DesignRuleError) as info:
        rule("L", _demand(**{field: limit + 1}), L1)
    err = info.value
    assert (err.rule, err.layer, err.demand, err.limit) == (rule.__name__, "L", limit + 1, limit)
    assert rule.__name__ in str(err) and "'L'" in str(err)


def test_delay_rule() -> None:
    dr.delay_within_limit("syn", 62, L1)
    with pytest.raises(dr.DesignRuleError, match="delay_within_limit") as info:
        dr.delay_within_limit("syn", 63, L1)
    assert (info.value.resource, info.value.demand, info.value.limit) == ("delay_steps", 63, 62)


def test_weight_bits_rule() -> None:
    dr.weight_bits_within_limit("syn", 8, L1)
    with pytest.raises(dr.DesignRuleError, match="weight_bits_within_limit"):
        dr.weight_bits_within_limit("syn", 9, L1)


def test_graded_spikes_rule_needs_loihi2() -> None:
    dr.graded_spikes_supported("relay", "neurocore-L2", L2)
    dr.graded_spikes_supported("lif", "neurocore", L1)
    with pytest.raises(dr.DesignRuleError, match="graded_spikes_supported"):
        dr.graded_spikes_supported("relay", "neurocore-L2", L1)


def test_known_placement_rule() -> None:
    dr.known_placement("x", "embedded")
    with pytest.raises(dr.MappingError, match="'gpu' is not one of"):
        dr.known_placement("x", "gpu")


def test_system_chips_rule() -> None:
    one_chip = load_target("loihi1-chip").limits("optimistic")
    dr.fits_system_chips(1, one_chip)
    dr.fits_system_chips(10**6, L1)  # a bare generation has no chip limit
    with pytest.raises(dr.DesignRuleError, match="fits_system_chips") as info:
        dr.fits_system_chips(2, one_chip)
    assert (info.value.demand, info.value.limit) == (2, 1)


# --- the same rules reached through the mapper on minimal networks (typed error, no hang) ---


def _lif(name: str, n: int) -> LIFLayer:
    return LIFLayer(name=name, shape=(n,), du=4095, dv=2048, vth=10)


def _dense_net(n_in: int, n_out: int) -> LoihiNetwork:
    return LoihiNetwork(
        T=2,
        layers=(
            SpikeInputLayer(name="in", shape=(n_in,)),
            DenseLayer(name="fc", weights=np.full((n_out, n_in), 2), sign_mode="mixed"),
            _lif("lif", n_out),
        ),
        edges=(Edge(src="in", dst="fc"), Edge(src="fc", dst="lif")),
    )


def test_mapper_raises_fan_in_when_one_neuron_needs_too_many_axons() -> None:
    # 4097 inputs all reach every neuron: even one neuron per core needs 4097 > 4096 axons.
    with pytest.raises(dr.DesignRuleError, match="fan_in_within_axons") as info:
        map_network(_dense_net(4097, 1), load_target("loihi1"))
    assert (info.value.layer, info.value.demand) == ("lif", 4097)


def test_loihi1_runs_the_maxpool_path_on_the_embedded_cores() -> None:
    from hardware.ir.layers import ConvLayer

    net = LoihiNetwork(
        T=2,
        layers=(
            SpikeInputLayer(name="in", shape=(1, 4, 4)),
            ConvLayer(
                name="conv",
                weights=np.full((1, 1, 3, 3), 2),
                in_shape=(1, 4, 4),
                padding=(1, 1),
                sign_mode="mixed",
            ),
            MaxPoolLayer(name="pool", in_shape=(1, 4, 4)),
            LIFLayer(name="lif", shape=(1, 2, 2), du=4095, dv=2048, vth=10),
        ),
        edges=(
            Edge(src="in", dst="conv"),
            Edge(src="conv", dst="pool"),
            Edge(src="pool", dst="lif"),
        ),
    )
    # Loihi 1 has no graded spikes: the conv's currents cannot leave a neurocore, nor can the
    # pooled currents enter one, so the conv and the LIF run with the max-pool on the x86
    # cores, fed by the host's spikes: nothing is left on the neurocores.
    m = map_network(net, load_target("loihi1"))
    moved = [(o.layer, o.placement, o.category) for o in m.offloaded]
    assert moved == [("conv", "embedded", "maxpool"), ("lif", "embedded", "maxpool")]
    assert m.cores_range() == (0, 0)
    # Embedded ops per image (T = 2): conv 1·1·(2+3+3+2)² = 100 connections, 200; pool
    # 2·2 outputs × 9 taps, 72; lif 4 updates, 8. The host sends 16 input spikes per step and
    # reads the output LIF's 4.
    by = {p.placement: p.ops for p in m.placement}
    assert by["embedded"] == 200 + 72 + 8
    assert dict(m.traffic.host_bits) == {"input": 16 * 2, "output": 4 * 2}
    # Loihi 2 sends graded spikes: the conv sums into relay compartments on a neurocore.
    m2 = map_network(net, load_target("loihi2"))
    assert [g.name for g in m2.scenarios["optimistic"].groups] == ["relay:pool", "lif"]
    assert m2.offloaded == ()


def test_mapper_raises_when_the_system_has_too_few_chips() -> None:
    # 129 · 1024 neurons need 129 Loihi 1 cores > 128 on one chip.
    net = LoihiNetwork(T=1, layers=(_lif("big", 129 * 1024),), edges=())
    with pytest.raises(dr.DesignRuleError, match="fits_system_chips"):
        map_network(net, load_target("loihi1-chip"))
    assert map_network(net, load_target("loihi1")).chips_range() == (2, 2)


def test_split_search_enforces_neuron_groups() -> None:
    # 16 neurons with 9 distinct profiles: one core would hold 9 > 8 profiles, so the search
    # cuts at 8 neurons per core (≤ 8 profiles each): 2 cores although 16 ≤ 1024 neurons.
    group = GroupSpec(name="g", shape=(16, 1, 1), inputs=(), neuron_groups=9)
    result = split_group(group, L1, 1)
    assert result.split.cores == 2
    assert result.demand["neuron_groups"] == 8


def test_split_search_raises_memory_when_one_neuron_does_not_fit() -> None:
    # 40,000 inputs × one 8-bit synapse each: per axon ceil64(8 + 10) = 64 bits, so one
    # neuron needs 2,560,000 bits > 2^20. With the stock limits the 40,000 input axons fail
    # first; with the axon limit lifted, memory is the rule that fails.
    spec = InputSpec(name="w", source="s", kind="dense", in_shape=(40000, 1, 1))
    group = GroupSpec(name="g", shape=(1, 1, 1), inputs=(spec,))
    with pytest.raises(dr.DesignRuleError, match="fan_in_within_axons"):
        split_group(group, L1, 1)
    with pytest.raises(dr.DesignRuleError, match="fits_synaptic_memory") as info:
        split_group(group, dataclasses.replace(L1, input_axons=100_000), 1)
    assert (info.value.demand, info.value.limit) == (40000 * 64, 1 << 20)
