"""Per-layer-kind tables of the quantizer's backends: a kind without an entry is a typed error
naming the kind, the layer and the backend (exit 4), never a silent skip or a KeyError."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from hardware.ir.layers import CurrentInputLayer, LIFLayer
from hardware.ir.network import Edge, LoihiNetwork
from hardware.lower.float_graph import FLIF, FloatGraph, FNode
from hardware.quantize.build import BUILD, build_network
from hardware.quantize.plan import QuantPlan
from hardware.quantize.registry import NoRuleError
from hardware.quantize.twin import DEQUANTIZE, FAKE_QUANTIZE, dequantize, fake_quantize
from spikeclip.errors import EXIT_UNSUPPORTED


@dataclass(frozen=True, kw_only=True, eq=False)
class FGlow(FNode):
    """A float node kind no backend knows."""

    shape: tuple[int, ...] = (2,)


def _graph() -> FloatGraph:
    lif = FLIF(name="lif", shape=(2,), theta=1.0, tau=2.0, bias=torch.zeros(2, dtype=torch.float64))
    return FloatGraph(nodes=(FGlow(name="glow"), lif), edges=(("glow", "lif"),), T=2, tau=2.0,
                      input_shape=(2,))


def test_build_names_kind_layer_and_backend():
    plan = QuantPlan(scales={"lif": 1.0}, bias_exps={"lif": 1})
    with pytest.raises(NoRuleError) as err:
        build_network(_graph(), plan)
    assert str(err.value).startswith(
        "hardware.quantize.build: no rule for layer kind 'FGlow' (layer 'glow')")
    assert (err.value.kind, err.value.layer, err.value.backend) == (
        "FGlow", "glow", "hardware.quantize.build")
    assert err.value.exit_code == EXIT_UNSUPPORTED


def test_fake_quantize_names_kind_layer_and_backend():
    with pytest.raises(NoRuleError, match=r"fake_quantize: no rule for layer kind 'FGlow' "
                                          r"\(layer 'glow'\); this backend handles FAttention"):
        fake_quantize(_graph(), QuantPlan(scales={"lif": 1.0}, bias_exps={"lif": 1}))


def test_dequantize_names_kind_layer_and_backend():
    net = LoihiNetwork(
        layers=(CurrentInputLayer(name="currents", shape=(2,)),
                LIFLayer(name="lif", shape=(2,), du=4095, dv=2048, vth=1, meta={"scale": 1.0})),
        edges=(Edge(src="currents", dst="lif"),), T=2,
    )
    with pytest.raises(NoRuleError, match=r"twin.dequantize: no rule for layer kind "
                                          r"'current_input' \(layer 'currents'\)"):
        dequantize(net)


def test_every_float_node_kind_has_a_builder_and_a_fake_quantizer():
    assert set(BUILD) == set(FAKE_QUANTIZE)
    assert {"host_input", "conv", "token_linear", "dense", "maxpool", "attention", "lif",
            "readout", "spike_input"} == set(DEQUANTIZE)
