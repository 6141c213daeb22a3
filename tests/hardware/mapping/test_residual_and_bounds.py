"""Shared sums (accumulators vs replicas), lower bounds and mesh routes, derived by hand."""

from __future__ import annotations

import numpy as np

from hardware.ir.layers import DenseLayer, LIFLayer, SpikeInputLayer
from hardware.ir.network import Edge, LoihiNetwork
from hardware.ir.timing import align_delays
from hardware.mapping.bounds import lower_bounds
from hardware.mapping.grouping import accumulator_levels, core_groups
from hardware.mapping.mapper import map_network
from hardware.mapping.mesh import position, routes
from hardware.mapping.profiles import load_target

L1 = load_target("loihi1").limits("optimistic")
L2 = load_target("loihi2").limits("pessimistic")


def _dense(name: str, n_in: int, n_out: int) -> DenseLayer:
    return DenseLayer(name=name, weights=np.full((n_out, n_in), -2), sign_mode="mixed")


def _lif(name: str, n: int) -> LIFLayer:
    return LIFLayer(name=name, shape=(n,), du=4095, dv=2048, vth=10)


def _residual() -> LoihiNetwork:
    """x1 sums w0; x2 sums w0 and w1 (w1 on x1's spikes): x2's sum extends x1's, as the
    residual stream does. Depths: x1 at 1 (s → w0 → x1), x2 at 2 (x1 → w1 → x2), so the w0
    edge into x2 is delayed by 1 once aligned."""
    return align_delays(
        LoihiNetwork(
            T=2,
            layers=(
                SpikeInputLayer(name="s", shape=(8,)),
                _dense("w0", 8, 16),
                _lif("x1", 16),
                _dense("w1", 16, 16),
                _lif("x2", 16),
            ),
            edges=(
                Edge(src="s", dst="w0"),
                Edge(src="w0", dst="x1"),
                Edge(src="x1", dst="w1"),
                Edge(src="w0", dst="x2"),
                Edge(src="w1", dst="x2"),
            ),
        )
    )


def test_replicas_store_a_shared_synapse_layer_in_every_consumer() -> None:
    groups = core_groups(_residual(), L2)
    inputs = {g.spec.name: [(s.name, s.delay) for s in g.spec.inputs] for g in groups}
    assert inputs == {"x1": [("w0", 0)], "x2": [("w0", 1), ("w1", 0)]}


def test_accumulators_store_each_synapse_layer_once_aligned_by_a_delay() -> None:
    # x1's sum {w0} is a proper subset of x2's {w0, w1}: one accumulator holds w0; x1 takes
    # it one-to-one; x2 takes it delayed by depth(x2) − depth(x1) = 1 and adds w1 itself.
    groups = core_groups(_residual(), L2, accumulate=True)
    inputs = {g.spec.name: [(s.name, s.delay, s.graded) for s in g.spec.inputs] for g in groups}
    assert inputs == {
        "acc:x1": [("w0", 0, False)],
        "x1": [("acc:x1", 0, True)],
        "x2": [("acc:x1", 1, True), ("w1", 0, False)],
    }
    assert [g.kind for g in groups] == ["accumulator", "lif", "lif"]
    assert accumulator_levels(groups) == 1


def test_the_mapper_keeps_the_cheaper_choice_and_reports_the_other() -> None:
    m = map_network(_residual(), load_target("loihi2"))
    for s in m.scenarios.values():
        assert s.residual in ("replicas", "accumulators")
        assert s.other_residual_cores is not None and s.other_residual_cores >= s.cores
    # Loihi 1 has no graded spikes: replicas only.
    m1 = map_network(_residual(), load_target("loihi1"))
    assert m1.scenarios["optimistic"].residual == "replicas"
    assert m1.scenarios["optimistic"].other_residual_cores is None


def test_lower_bounds_by_hand() -> None:
    # dense 1000 → 5000, every weight −2 (non-zero), 8 bits, on Loihi 1 (2^20 bits, 1024
    # compartments, 4096 input axons per core): compartments 5000 / 1024 → 5 cores; memory
    # 5,000,000 weights × 8 bits = 40,000,000 bits / 1,048,576 → 39 cores; axons 1000 / 4096
    # → 1. The bound is 39 cores, on 1 chip of 128.
    net = LoihiNetwork(
        T=1,
        layers=(SpikeInputLayer(name="s", shape=(1000,)), _dense("w", 1000, 5000), _lif("x", 5000)),
        edges=(Edge(src="s", dst="w"), Edge(src="w", dst="x")),
    )
    lb = lower_bounds(net, L1)
    assert [(b.resource, b.demand, b.cores) for b in lb.bounds] == [
        ("compartments", 5000, 5),
        ("synaptic memory", 40_000_000, 39),
        ("axons", 1000, 1),
    ]
    assert (lb.cores, lb.chips, lb.binding) == (39, 1, "synaptic memory")
    mapped = map_network(net, load_target("loihi1")).scenarios["optimistic"]
    assert mapped.cores >= lb.cores


def test_mesh_positions_and_routes() -> None:
    # Loihi 1: 4 cores per router, 8 routers per mesh row, 128 cores per chip. Core 37 is on
    # router 9 → (x 1, y 1); core 130 is core 2 of chip 1 → router 0.
    assert position(37, L1) == (0, 1, 1)
    assert position(130, L1) == (1, 0, 0)
    # Two single-core groups on cores 0 and 1 share router 0: a route of 0 hops, same chip.
    m = map_network(_residual(), load_target("loihi1"))
    optimistic = m.scenarios["optimistic"]
    got = {(r.source, r.group): (r.hops, r.chips_crossed) for r in routes(optimistic)}
    assert got == {("x1", "x2"): (0, 0)}
