"""`hardware.ir.timing` and the planning half of `to_lava` (no Lava run): hand-derived depths,
delays, reset offsets, schedule indices and the typed lowering errors."""

from __future__ import annotations

import numpy as np
import pytest
from _small_nets import residual_net

from export.lava import LavaLoweringError, to_lava
from export.lava.procs.recorder.process import pack_spikes, unpack_spikes
from hardware.ir.layers import DenseLayer, HostInputLayer, LIFLayer, SpikeInputLayer
from hardware.ir.network import Edge, LoihiNetwork
from hardware.ir.timing import Timing, TimingError, align_delays


def _lif(name: str, n: int = 1) -> LIFLayer:
    return LIFLayer(name=name, shape=(n,), du=4095, dv=2048, vth=4)


def _residual() -> LoihiNetwork:
    """in → d1 → lif1 → d2 → lif2 and the skip in → skip → lif2 (all delays 0); timing depends
    on the structure only."""
    return residual_net()


def test_align_delays_by_hand():
    # Depths: in 0, d1 0, lif1 1 (d1's latency), d2 1, skip 0, lif2 = max(d2: 1+1, skip: 0+1)
    # = 2. The skip edge arrives at 1, one step early → delay 1.
    net = align_delays(_residual())
    assert {(e.src, e.dst): e.delay for e in net.edges}[("skip", "lif2")] == 1
    assert sum(e.delay for e in net.edges) == 1
    assert net.misaligned() == ()
    assert [net.depth(n) for n in ("in", "d1", "lif1", "d2", "skip", "lif2")] == [0, 0, 1, 1, 0, 2]


def test_timing_schedule_by_hand():
    timing = Timing.of(align_delays(_residual()))
    assert timing.reset_offset("lif1") == 2 and timing.reset_offset("lif2") == 3
    assert timing.n_steps(4) == 4 * 3 + 2
    # lif2 (depth 2) runs sample 1, step 0 at time_step 1·3 + 0 + 2 + 1 = 6.
    assert timing.lava_step("lif2", 1, 0) == 6
    # Record columns (time_step − 1) of lif1 (depth 1), T = 3, 2 samples: [t, k] = 3k + t + 1.
    assert timing.logical_indices("lif1", 2).tolist() == [[1, 4], [2, 5], [3, 6]]


def test_to_lava_plans_replicas_per_delay():
    graph = to_lava(_residual())
    assert dict(graph.nodes["skip"].processes) == {1: "DelayDense"}
    assert dict(graph.nodes["d1"].processes) == {0: "Dense"}
    assert graph.nodes["lif2"].reset_offset == 3
    assert "| skip | dense | DelayDense (1) | yes |" in graph.table()


def test_timing_refuses_a_misaligned_network():
    with pytest.raises(TimingError, match="lif2"):
        Timing.of(_residual())


def test_delay_beyond_lava_cap_is_a_typed_error():
    # A chain of 64 Dense→LIF hops next to a one-hop skip: the skip needs 63 > 62 steps.
    layers = [SpikeInputLayer(name="in", shape=(1,))]
    edges = []
    src = "in"
    for i in range(64):
        layers += [DenseLayer(name=f"d{i}", weights=[[2]]), _lif(f"l{i}")]
        edges += [Edge(src=src, dst=f"d{i}"), Edge(src=f"d{i}", dst=f"l{i}")]
        src = f"l{i}"
    layers.append(DenseLayer(name="skip", weights=[[2]]))
    edges += [Edge(src="in", dst="skip"), Edge(src="skip", dst="l63")]
    net = LoihiNetwork(layers=tuple(layers), edges=tuple(edges), T=2)
    with pytest.raises(LavaLoweringError, match=r"'l63'.*63 steps"):
        to_lava(net)


def test_delayed_spike_edge_is_a_typed_error():
    net = _residual()
    edges = tuple(
        Edge(src=e.src, dst=e.dst, delay=2 if e.src == "lif1" else e.delay) for e in net.edges
    )
    bad = LoihiNetwork(layers=net.layers, edges=edges, T=3)
    with pytest.raises(LavaLoweringError, match="'lif1'.*only synapses"):
        to_lava(bad)


def test_lif_with_a_conflicting_reset_setting_is_refused():
    net = _residual()
    layers = tuple(
        LIFLayer(name="lif2", shape=(1,), du=4095, dv=2048, vth=4, reset_interval=3, reset_offset=1)
        if ly.name == "lif2"
        else ly
        for ly in net.layers
    )
    with pytest.raises(LavaLoweringError, match="'lif2'.*reset"):
        to_lava(LoihiNetwork(layers=layers, edges=net.edges, T=3))


def test_recorder_packing_by_hand():
    # Entries 0 and 2 set → word 2⁰ + 2² = 5; entry 48 opens a second word (value 1).
    bits = np.zeros(50)
    bits[[0, 2, 48]] = 1
    assert pack_spikes(bits).tolist() == [5.0, 1.0]
    rng = np.random.default_rng(0)
    raster = rng.random((3, 101)) < 0.5
    words = np.stack([pack_spikes(r.astype(np.float64)) for r in raster])
    assert words.max() < 2.0**48
    assert np.array_equal(unpack_spikes(words, 101), raster)


def test_two_host_inputs_into_one_lif_are_refused():
    def host(name: str) -> HostInputLayer:
        return HostInputLayer(
            name=name,
            op="embedding",
            weight=np.ones((3, 2)),
            bias=np.zeros((1, 2)),
            in_shape=(1,),
            bias_exp=2,
        )

    layers = (
        host("h1"),
        host("h2"),
        LIFLayer(name="lif", shape=(2,), du=4095, dv=2048, vth=4, bias_exp=2),
    )
    edges = (Edge(src="h1", dst="lif"), Edge(src="h2", dst="lif"))
    with pytest.raises(LavaLoweringError, match="'lif'.*2 host inputs"):
        to_lava(LoihiNetwork(layers=layers, edges=edges, T=2))


def test_custom_processes_listed_for_hardware_runs():
    assert to_lava(_residual()).custom_processes() == ()  # all stock Lava
