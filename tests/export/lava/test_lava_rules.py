"""The Lava backend's table of layer kinds (`export.lava.graph.LAVA_RULES`): one entry per kind of
`hardware.ir.layers.LAYER_TYPES`, and a kind without an entry is a typed lowering error naming
the kind, the backend and the layer, at planning and at build time (no Lava run)."""

from __future__ import annotations

import pytest

from export.lava import graph as lava_graph
from export.lava.errors import LavaLoweringError
from hardware.ir.layers import LAYER_TYPES, DenseLayer, LIFLayer, SpikeInputLayer
from hardware.ir.network import Edge, LoihiNetwork
from spikeclip.errors import EXIT_UNSUPPORTED


def _chain() -> LoihiNetwork:
    """in (2 spikes) → d1 (dense 2→1) → lif1."""
    return LoihiNetwork(
        layers=(
            SpikeInputLayer(name="in", shape=(2,)),
            DenseLayer(name="d1", weights=[[4, -2]]),
            LIFLayer(name="lif1", shape=(1,), du=4095, dv=2048, vth=4),
        ),
        edges=(Edge(src="in", dst="d1"), Edge(src="d1", dst="lif1")),
        T=3,
    )


def _without(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    rules = {k: v for k, v in lava_graph.LAVA_RULES.items() if k != kind}
    monkeypatch.setattr(lava_graph, "LAVA_RULES", rules)


def test_every_layer_kind_has_one_lava_rule() -> None:
    assert set(lava_graph.LAVA_RULES) == set(LAYER_TYPES)


def test_plan_names_each_replica_by_its_rule() -> None:
    plan = lava_graph.to_lava(_chain())
    assert {n.name: dict(n.processes) for n in plan.nodes.values()} == {
        "in": {0: "RingBuffer"},
        "d1": {0: "Dense"},
        "lif1": {0: "LIFReset"},
    }


def test_a_kind_without_a_rule_is_refused_when_planning(monkeypatch: pytest.MonkeyPatch) -> None:
    _without(monkeypatch, "dense")
    with pytest.raises(lava_graph.NoLavaRule) as refused:
        lava_graph.to_lava(_chain())
    err = refused.value
    assert (err.kind, err.backend, err.layer) == ("dense", "lava", "d1")
    assert isinstance(err, LavaLoweringError) and err.exit_code == EXIT_UNSUPPORTED
    assert str(err).startswith(
        "export.lava: layer 'd1': no rule for layer kind 'dense' in backend 'lava'"
    )
    assert str(err).endswith(
        "LAVA_RULES knows attention, conv, current_input, host_input, lif, maxpool, readout, "
        "spike_input, token_linear)"
    )


def test_a_kind_without_a_rule_is_refused_when_building(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = lava_graph.to_lava(_chain())
    _without(monkeypatch, "spike_input")  # "in" is built first: nothing of Lava is made
    with pytest.raises(lava_graph.NoLavaRule) as refused:
        plan.build([[[0, 1]]] * 3)  # [T=3, B=1, 2]
    assert (refused.value.kind, refused.value.layer) == ("spike_input", "in")
