"""map_network and the split arithmetic on small layers, core counts derived by hand."""

from __future__ import annotations

import dataclasses
import math
from types import MappingProxyType

import numpy as np
import pytest

from hardware.ir.layers import ConvLayer, DenseLayer, LIFLayer, SpikeInputLayer
from hardware.ir.network import Edge, LoihiNetwork
from hardware.lower.topology import image_tower_structure
from hardware.mapping.core_split import bits_per_axon, core_demand, split_group
from hardware.mapping.design_rules import MappingError
from hardware.mapping.mapper import map_network
from hardware.mapping.profiles import Quantity, load_target
from hardware.mapping.specs import GroupSpec, InputSpec, Split
from spikeclip.config import SpikeCLIPConfig

LOIHI1 = load_target("loihi1")
L1 = LOIHI1.limits("optimistic")


def _lif(name: str, shape: tuple[int, ...]) -> LIFLayer:
    return LIFLayer(name=name, shape=shape, du=4095, dv=2048, vth=10)


def _dense(name: str, n_in: int, n_out: int, bits: int = 8) -> DenseLayer:
    step = 1 << (8 - bits + 1)  # mixed-sign grid step for `bits`
    return DenseLayer(
        name=name, weights=np.full((n_out, n_in), -step), sign_mode="mixed", num_weight_bits=bits
    )


def _chain(n_in: int, n_out: int, bits: int = 8) -> LoihiNetwork:
    return LoihiNetwork(
        T=2,
        layers=(
            SpikeInputLayer(name="in", shape=(n_in,)),
            _dense("fc", n_in, n_out, bits),
            _lif("lif", (n_out,)),
        ),
        edges=(Edge(src="in", dst="fc"), Edge(src="fc", dst="lif")),
    )


def _group(mapping, name: str):
    return next(g for g in mapping.scenarios["optimistic"].groups if g.name == name)


# --- memory layout --------------------------------------------------------------------------


def test_bits_per_axon_follows_the_64_synapse_block_layout() -> None:
    # 8-bit weights: a full block is 64·8 + 10 = 522 → 576 bits (9 words); 48 synapses:
    # 48·8 + 10 = 394 → 448; 112 synapses = one full block + 48 → 1024; 0 synapses → 0.
    got = bits_per_axon(np.array([64, 48, 112, 0, 1]), 8, L1)
    assert got.tolist() == [576, 448, 1024, 0, 64]


# --- Loihi 1 core counts by hand ------------------------------------------------------------


def test_dense_1000x1000_needs_9_loihi1_cores_bound_by_memory() -> None:
    # 9 cores: 112 neurons/core → per axon 1024 bits (above) × 1000 axons = 1,024,000 ≤ 2^20.
    # 8 cores: 125 neurons/core → 576 + (61·8 + 10 = 498 → 512) = 1088 × 1000 = 1,088,000 > 2^20.
    g = _group(map_network(_chain(1000, 1000), LOIHI1), "lif")
    assert g.cores == 9
    assert g.binding == "memory_bits"
    assert g.demand["memory_bits"] == 1_024_000
    assert (g.demand["neurons"], g.demand["input_axons"]) == (112, 1000)
    assert g.synapses == 1_000_000


def test_neuron_bound_layer_and_output_axons_of_its_producer() -> None:
    # a: 1000 neurons fed by 10 inputs; b: 5000 neurons fed densely by a with 1-bit weights.
    # b memory per axon at c neurons/core, 1-bit: full block 64 + 10 → 128 bits.
    #   c = 1000: 15·128 + (40 + 10 → 64) = 1984 × 1000 axons = 1,984,000 > 2^20;
    #   c = 500 (10 cores): 7·128 + (52 + 10 → 64) = 960 × 1000 = 960,000 ≤ 2^20;
    #   c = 556 (9 cores): 8·128 + (44 + 10 → 64) = 1088 × 1000 > 2^20.  → b: 10 cores.
    # Every a neuron reaches all 10 b cores: ≤ 4096 / 10 = 409 neurons per a core → 3 cores of
    # 334 neurons, 3340 output axons each.
    net = LoihiNetwork(
        T=2,
        layers=(
            SpikeInputLayer(name="in", shape=(10,)),
            _dense("w_a", 10, 1000),
            _lif("a", (1000,)),
            _dense("w_b", 1000, 5000, bits=1),
            _lif("b", (5000,)),
        ),
        edges=(
            Edge(src="in", dst="w_a"),
            Edge(src="w_a", dst="a"),
            Edge(src="a", dst="w_b"),
            Edge(src="w_b", dst="b"),
        ),
    )
    m = map_network(net, LOIHI1)
    b, a = _group(m, "b"), _group(m, "a")
    assert (b.cores, b.demand["memory_bits"]) == (10, 960_000)
    assert (a.cores, a.demand["neurons"], a.demand["output_axons"]) == (3, 334, 3340)
    assert a.binding == "output_axons"
    scen = m.scenarios["optimistic"]
    assert (scen.cores, scen.chips) == (13, 1)
    assert [g.first_core for g in scen.groups] == [0, 3]  # producer packed before consumer


def test_conv_core_demand_counts_padding_exactly() -> None:
    # conv 2→4 channels, 4×4, k=3, pad 1: per axis, outputs read 2,3,3,2 taps = 10, so
    # connections = 4·2·10·10 = 800. Per input position the taps are cy·cx with
    # cy, cx ∈ {2,3,3,2}; × 4 output channels → 16 (4 corners), 24 (8 edges), 36 (4 inner)
    # synapses per axon → 16·8+10 = 138 → 192, 24·8+10 = 202 → 256, 36·8+10 = 298 → 320 bits:
    # per input channel 4·192 + 8·256 + 4·320 = 4096 bits, × 2 channels = 8192 bits.
    spec = InputSpec(
        name="c", source="s", kind="conv", in_shape=(2, 4, 4), kernel=(3, 3), padding=(1, 1)
    )
    group = GroupSpec(name="g", shape=(4, 4, 4), inputs=(spec,))
    d = core_demand(group, Split(channel_groups=1, tiles_y=1, tiles_x=1), 1, L1)
    assert (d.neurons, d.input_axons, d.synapses, d.memory_bits) == (64, 32, 800, 8192)
    net = LoihiNetwork(
        T=1,
        layers=(
            SpikeInputLayer(name="in", shape=(2, 4, 4)),
            ConvLayer(
                name="conv",
                weights=np.full((4, 2, 3, 3), 2),
                in_shape=(2, 4, 4),
                padding=(1, 1),
                sign_mode="mixed",
            ),
            _lif("lif", (4, 4, 4)),
        ),
        edges=(Edge(src="in", dst="conv"), Edge(src="conv", dst="lif")),
    )
    g = _group(map_network(net, LOIHI1), "lif")
    assert (g.cores, g.synapses, g.demand["memory_bits"]) == (1, 800, 8192)


def test_conv_spatial_tiles_cut_the_input_halo() -> None:
    # 1→1 channel, 8×8, k=3, pad 1, tiles 2×2 of 4×4 outputs: the worst tile reads a
    # 5×5 input window (one side is padding) → 25 input axons.
    spec = InputSpec(
        name="c", source="s", kind="conv", in_shape=(1, 8, 8), kernel=(3, 3), padding=(1, 1)
    )
    group = GroupSpec(name="g", shape=(1, 8, 8), inputs=(spec,))
    d = core_demand(group, Split(channel_groups=1, tiles_y=2, tiles_x=2), 1, L1)
    assert (d.neurons, d.input_axons) == (16, 25)


def _nengo_split(n_in: int, n_out: int, weight_bits: int) -> int:
    """nengo-loihi split_blocks.split_block: max of ceil(demand / limit) on the unsplit block
    (synapse bits from nengo's bits_per_axon: 64-synapse groups, +10 bits, 64-bit words)."""
    bits = 0
    for start in range(0, n_out, 64):
        n = min(n_out - start, 64)
        bits += -64 * (-(n * weight_bits + 10) // 64)
    return max(
        math.ceil(n_out / 1024),
        math.ceil(n_in / 4096),
        math.ceil(n_out / 4096),
        math.ceil(n_in * bits / 2**20),
    )


@pytest.mark.parametrize(
    ("n_in", "n_out", "bits"),
    [
        (1000, 1000, 8),
        (100, 3000, 8),
        (512, 5000, 1),
        (4096, 100, 8),
        (300, 777, 6),
        (64, 20000, 8),
    ],
)
def test_loihi1_dense_split_agrees_with_nengo_loihi_rule(n_in: int, n_out: int, bits: int) -> None:
    spec = InputSpec(name="w", source="s", kind="dense", in_shape=(n_in, 1, 1), weight_bits=bits)
    got = split_group(GroupSpec(name="d", shape=(n_out, 1, 1), inputs=(spec,)), L1, 1)
    assert got.split.cores == _nengo_split(n_in, n_out, bits)


def test_where_nengo_rule_and_exact_search_differ() -> None:
    # nengo's rule rounds the unsplit total. 1500 → 4000 at 2 bits: total 1500·12,032 bits
    # → 18 parts, but 18 parts of 223 neurons need 1500·(3·192 + 128) = 1,056,000 > 2^20:
    # the exact search needs 19. 4000 → 300 at 8 bits: the rule says 11, but 10 parts of 30
    # neurons need 4000·256 = 1,024,000 ≤ 2^20 bits: 10 suffice.
    def cores(n_in: int, n_out: int, bits: int) -> int:
        spec = InputSpec(
            name="w", source="s", kind="dense", in_shape=(n_in, 1, 1), weight_bits=bits
        )
        return split_group(
            GroupSpec(name="d", shape=(n_out, 1, 1), inputs=(spec,)), L1, 1
        ).split.cores

    assert (_nengo_split(1500, 4000, 2), cores(1500, 4000, 2)) == (18, 19)
    assert (_nengo_split(4000, 300, 8), cores(4000, 300, 8)) == (11, 10)


# --- replicas, delays, ranges -----------------------------------------------------------------


def test_a_synapse_feeding_two_lifs_is_stored_twice_and_delay_bits_cost_memory() -> None:
    # fc (5 → 64) feeds x (delay 0) and y (delay 3 → 2 delay bits). Per axon 64 synapses:
    # without delay 64·8 + 10 = 522 → 576 bits; with 2 delay bits 64·10 + 10 = 650 → 704 bits.
    net = LoihiNetwork(
        T=2,
        layers=(
            SpikeInputLayer(name="in", shape=(5,)),
            _dense("fc", 5, 64),
            _lif("x", (64,)),
            _lif("y", (64,)),
        ),
        edges=(Edge(src="in", dst="fc"), Edge(src="fc", dst="x"), Edge(src="fc", dst="y", delay=3)),
    )
    m = map_network(net, LOIHI1)
    x, y = _group(m, "x"), _group(m, "y")
    assert x.inputs == y.inputs == ("fc",)
    assert (x.demand["memory_bits"], y.demand["memory_bits"]) == (5 * 576, 5 * 704)
    assert (x.max_delay_bits, y.max_delay_bits) == (0, 2)
    assert x.synapses + y.synapses == 2 * 5 * 64


def test_loihi2_gives_core_ranges() -> None:
    # 6000 neurons, no synapses: 1 core at 8192 neurons/core, 2 at 4096.
    net = LoihiNetwork(T=1, layers=(_lif("n", (6000,)),), edges=())
    m = map_network(net, load_target("loihi2"))
    assert m.cores_range() == (1, 2)
    assert m.chips_range() == (1, 1)
    assert not m.failures


def test_exact_limits_give_one_core_count_but_timing_ranges() -> None:
    # Loihi 1 limits are exact; its host round trip is a low/high pair (0.1 ms … 2.4 ms).
    m = map_network(_chain(10, 10), load_target("loihi1-chip"))
    opt, pess = m.scenarios["optimistic"], m.scenarios["pessimistic"]
    assert (opt.cores, pess.cores) == (1, 1)
    assert pess.latency.step_s > opt.latency.step_s


# --- the SpikeCLIP structure ---------------------------------------------------------------


def test_tiny_spikeclip_structure_maps_and_counts_offcore_work_exactly() -> None:
    cfg = SpikeCLIPConfig.tiny()  # img 16, channels (4, 8, 8, 16), embed 16, 2 heads, 2 blocks
    net = image_tower_structure(cfg)
    assert net.misaligned() == ()
    m = map_network(net, load_target("loihi2"))
    by = {p.placement: p for p in m.placement}
    # attention: 2·heads·N·d²·T = 2·2·16·8²·4 = 16,384 per block, 2 blocks = 32,768;
    # pool2: (8·8·8)·9·4 = 18,432; pool3: (16·4·4)·9·4 = 9,216 → embedded 60,416 ops/image.
    assert by["embedded"].ops == 60_416
    assert sum(p.op_fraction for p in m.placement) == pytest.approx(1.0)
    t = m.traffic
    # input bias: 4·16·16 neurons × 16 bits = 16,384; readout relay: 16·16 × 24 bits × 4 steps.
    assert dict(t.host_bits) == {"input": 16_384, "readout": 24_576}
    # pool2: 8·16·16 in + 8·8·8 out, pool3: 16·8·8 in + 16·4·4 out, 24 bits × 4 steps;
    # attention: 48·16 spikes in (1 bit) + 16·16 currents out (24 bits), × 4 steps, 2 blocks.
    assert t.embedded_bits["maxpool"] == (2048 + 512 + 1024 + 256) * 24 * 4
    assert t.embedded_bits["attention"] == 2 * (768 + 256 * 24) * 4
    assert (t.host_round_trips_per_step, t.embedded_round_trips_per_step) == (1, 4)
    # Loihi 1 (no graded spikes): each max-pool's conv and LIF and each attention LIF run on
    # the x86 cores; the host computes the readout's input from spikes, replicating the branch
    # synapses that also feed neurocores (the last fc2 feeds only the readout: moved).
    m1 = map_network(net, LOIHI1)
    assert [(o.layer, o.placement) for o in m1.offloaded] == [
        ("conv2", "embedded"),
        ("lif2", "embedded"),
        ("conv3", "embedded"),
        ("lif3", "embedded"),
        ("b0.lif_attn", "embedded"),
        ("b1.lif_attn", "embedded"),
        ("conv4@readout", "host"),
        ("b0.proj@readout", "host"),
        ("b0.fc2@readout", "host"),
        ("b1.proj@readout", "host"),
        ("b1.fc2", "host"),
    ]
    assert {p.placement: p.neurons for p in m1.placement}["neurocore-L2"] == 0


def test_paper_structure_has_the_design_neuron_count() -> None:
    net = image_tower_structure()
    lif = sum(math.prod(layer.shape) for layer in net.layers if isinstance(layer, LIFLayer))
    # 48·32² + 96·32² + 192·16² + 384·8² + 4 blocks × (384 + 1152 + 384 + 384 + 1536)·64
    assert lif == 49_152 + 98_304 + 49_152 + 24_576 + 4 * 245_760 == 1_204_224


def test_fan_out_beyond_one_core_gets_repeaters() -> None:
    # A Loihi 1 profile with 128 output axons per core. b: 129·1024 neurons → 129 cores (a sink:
    # no output axons). Each of a's 2 neurons reaches all 129 b cores > 128, even alone on a
    # core, so repeaters: r = ceil(129 / 64) = 3 per neuron, k = 128 // 64 = 2 per core →
    # ceil(2·3 / 2) = 3 repeater cores; a then needs 2·3 = 6 output axons. 1 + 3 + 129 = 133.
    base = load_target("loihi1")
    quantities = dict(base.quantities)
    quantities["core.output_axons"] = Quantity(low=128, high=128, unit="axons", source="test")
    target = dataclasses.replace(base, quantities=MappingProxyType(quantities))
    n_b = 129 * 1024
    net = LoihiNetwork(
        T=1,
        layers=(
            SpikeInputLayer(name="in", shape=(4,)),
            _dense("w_a", 4, 2),
            _lif("a", (2,)),
            _dense("w_b", 2, n_b),
            _lif("b", (n_b,)),
        ),
        edges=(
            Edge(src="in", dst="w_a"),
            Edge(src="w_a", dst="a"),
            Edge(src="a", dst="w_b"),
            Edge(src="w_b", dst="b"),
        ),
    )
    scen = map_network(net, target).scenarios["optimistic"]
    assert [(g.name, g.cores) for g in scen.groups] == [("a", 1), ("repeat:a", 3), ("b", 129)]
    a, rep = scen.groups[0], scen.groups[1]
    assert a.demand["output_axons"] == 6
    assert (rep.neurons, rep.demand["output_axons"]) == (6, 128)
    assert (scen.cores, scen.chips) == (133, 2)


def test_equal_core_splits_prefer_tiles_over_channel_slices() -> None:
    # 8 channels × 256 tokens = 2048 neurons > 1024: 2 cores either way. Channel slices
    # (4 ch × 256 tokens): 2048 axons, 2048 · (4·8 + 10 → 64) = 131,072 bits; token tiles
    # (8 ch × 128 tokens): 1024 axons, 1024 · (8·8 + 10 → 128) = 131,072 bits. Both fit; the
    # tile split wins because a producer neuron then reaches 1 core instead of 2.
    spec = InputSpec(name="t", source="s", kind="conv", in_shape=(8, 256, 1))
    got = split_group(GroupSpec(name="g", shape=(8, 256, 1), inputs=(spec,)), L1, 1)
    assert got.split == Split(channel_groups=1, tiles_y=2, tiles_x=1)
    assert (got.demand["input_axons"], got.demand["memory_bits"]) == (1024, 131_072)


def test_latency_of_one_population_by_hand() -> None:
    # Loihi 1 optimistic: 1000 neurons × 9.7 ns = 9.7 µs on the slowest core, + barrier 299 ns
    # + 2·isqrt(128) = 22 hops × 6.5 ns = 143 ns → 10.142 µs per step; the host reads the
    # 1000 output spikes over the 1 Gbit/s link: 1 µs; depth 0 and T = 1 → one step per image.
    net = LoihiNetwork(T=1, layers=(_lif("n", (1000,)),), edges=())
    lat = map_network(net, LOIHI1).scenarios["optimistic"].latency
    assert lat.embedded_s == 0.0
    assert lat.host_s == pytest.approx(1e-6)
    assert lat.step_s == pytest.approx(11.142e-6)
    assert lat.image_s == pytest.approx(11.142e-6)


def test_conv_output_layout_must_match_its_consumer() -> None:
    # conv output (1, 4, 4) into a LIF laid out (1, 2, 8): same size, different grid.
    net = LoihiNetwork(
        T=1,
        layers=(
            SpikeInputLayer(name="in", shape=(1, 4, 4)),
            ConvLayer(
                name="conv", weights=np.full((1, 1, 1, 1), 2), in_shape=(1, 4, 4), sign_mode="mixed"
            ),
            ConvLayer(
                name="conv2",
                weights=np.full((1, 1, 1, 1), 2),
                in_shape=(1, 2, 8),
                sign_mode="mixed",
            ),
            SpikeInputLayer(name="in2", shape=(1, 2, 8)),
            _lif("lif", (1, 4, 4)),
        ),
        edges=(
            Edge(src="in", dst="conv"),
            Edge(src="conv", dst="lif"),
            Edge(src="in2", dst="conv2"),
            Edge(src="conv2", dst="lif"),
        ),
    )
    with pytest.raises(MappingError, match="'conv2'.*does not match"):
        map_network(net, LOIHI1)


def test_paper_image_tower_fits_one_kapoho_point_optimistic_and_16_chips_pessimistic() -> None:
    # Issue 23's goal: ≤ 8 chips (one Kapoho Point) optimistic, ≤ 16 pessimistic (main's mapper:
    # 102-375 chips). No mapping beats the compartment bound: 1,204,224 neurons (the test
    # above) over 8,192 (optimistic) or 4,095 (pessimistic) per core, 120 cores per chip.
    m = map_network(image_tower_structure(), load_target("loihi2"))
    opt, pess = m.scenarios["optimistic"], m.scenarios["pessimistic"]
    assert opt.cores >= math.ceil(1_204_224 / 8192) == 147
    assert pess.cores >= math.ceil(1_204_224 / 4095) == 295
    assert 2 <= opt.chips <= 8 and 3 <= pess.chips <= 16
