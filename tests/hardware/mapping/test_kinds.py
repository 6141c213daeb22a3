"""The mapping backend's per-kind table: every layer kind has an entry; a missing one is a
typed error that names the kind and the backend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

from hardware.ir.layers import LAYER_TYPES, DenseLayer, LIFLayer, SpikeInputLayer
from hardware.ir.network import Edge, LoihiNetwork
from hardware.mapping.kinds import MAPPING_KINDS, MissingKindError, layer_ops_per_image
from hardware.mapping.mapper import map_network
from hardware.mapping.profiles import load_target
from spikeclip.errors import EXIT_UNSUPPORTED


@dataclass(frozen=True, kw_only=True, eq=False)
class _MysteryLayer(LIFLayer):
    """A population of a kind no backend knows (a LIF in every other respect)."""

    KIND: ClassVar[str] = "mystery"


def test_every_layer_kind_of_the_schema_has_a_mapping_entry() -> None:
    assert set(LAYER_TYPES) == set(MAPPING_KINDS)


def test_a_kind_without_an_entry_raises_a_typed_error_naming_kind_and_backend() -> None:
    layer = _MysteryLayer(name="m", shape=(4,), du=0, dv=0, vth=1)
    net = LoihiNetwork(
        T=2,
        layers=(
            SpikeInputLayer(name="in", shape=(3,)),
            DenseLayer(name="fc", weights=np.full((4, 3), 2), sign_mode="mixed"),
            layer,
        ),
        edges=(Edge(src="in", dst="fc"), Edge(src="fc", dst="m")),
    )
    with pytest.raises(MissingKindError, match=r"'mystery'.*mapping") as info:
        map_network(net, load_target("loihi2"))
    assert (info.value.kind, info.value.backend) == ("mystery", "mapping")
    assert info.value.exit_code == EXIT_UNSUPPORTED
    with pytest.raises(MissingKindError):
        layer_ops_per_image(net, layer)


def test_ops_per_image_by_hand() -> None:
    # dense 3 → 4 feeding one LIF, T = 2: 12 connections × 2 steps; the LIF: 4 updates × 2.
    net = LoihiNetwork(
        T=2,
        layers=(
            SpikeInputLayer(name="in", shape=(3,)),
            DenseLayer(name="fc", weights=np.full((4, 3), 2), sign_mode="mixed"),
            LIFLayer(name="lif", shape=(4,), du=0, dv=0, vth=1),
        ),
        edges=(Edge(src="in", dst="fc"), Edge(src="fc", dst="lif")),
    )
    assert [layer_ops_per_image(net, layer) for layer in net.layers] == [0, 24, 8]
