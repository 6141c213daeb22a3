"""The Loihi 2 hardware path: the "not installed" statement and the off-chip listing.

lava-loihi is not installed here, so the compile path is exercised with a stand-in graph whose
``compile`` succeeds or raises; the listing runs on a hand-written graph description and on a
real ``to_lava`` plan; model discovery is Lava's own, checked with Python models standing in
for chip models.
"""

from __future__ import annotations

import importlib.util
from types import MappingProxyType, SimpleNamespace

import pytest
import torch

from export.lava import hardware_path as hp
from export.lava.graph import PROJECT_PREFIX, LavaNode

installed = importlib.util.find_spec("lava.utils.loihi2_profiler") is not None


def _node(name: str, placement: str, *procs: tuple[int, str]) -> LavaNode:
    return LavaNode(
        name=name,
        kind="x",
        processes=MappingProxyType(dict(procs)),
        stock=False,
        placement=placement,
        depth=0,
    )


#: A described image-tower slice: stock and project processes, one with two delay replicas.
DESCRIPTION = (
    _node("encode", "host", (0, "BiasInjection")),
    _node("lif0", "neurocore", (0, "LIFReset")),
    _node("conv1", "neurocore", (0, "Conv"), (2, "DelaySparse")),
    _node("pool1", "embedded", (0, "CurrentMaxPool")),
    _node("qkv", "neurocore", (0, "TokenLinear"), (2, "TokenLinear")),
    _node("attn", "embedded", (1, "SpikeAttention")),
    _node("fc", "neurocore", (0, "Dense"), (3, "DelayDense")),
    _node("output", "host", (0, "HostReadout")),
)
PROJECT = [
    ("encode", "BiasInjection", "host"),
    ("pool1", "CurrentMaxPool", "embedded"),
    ("qkv", "TokenLinear", "neurocore"),
    ("attn", "SpikeAttention", "embedded"),
    ("output", "HostReadout", "host"),
]


def _rows(support):
    return [(p.layer, p.process, p.placement) for p in support]


def test_lava_loihi_detection_matches_lava():
    assert hp.lava_loihi_installed() is installed


def test_listing_on_a_graph_description():
    support = hp.process_support(DESCRIPTION)
    # One row per (layer, distinct class): TokenLinear's two replicas count once.
    assert len(support) == 10
    assert _rows(hp.without_chip_model(support)) == PROJECT
    assert {p.process for p in support if not p.project} == {
        "LIFReset",
        "Conv",
        "DelaySparse",
        "Dense",
        "DelayDense",
    }


def test_listing_with_chip_models_present():
    # As lava-loihi would: stock classes get neurocore models; the project's list is unchanged.
    def stock_only(cls):
        return () if cls.__module__.startswith(PROJECT_PREFIX) else ("NcModel",)

    support = hp.process_support(DESCRIPTION, find_chip_models=stock_only)
    assert all(p.on_chip for p in support if not p.project)
    assert _rows(hp.without_chip_model(support)) == PROJECT

    # A project process that gained a C model leaves the list.
    def with_c_token_linear(cls):
        return ("CTokenLinear",) if cls.__name__ == "TokenLinear" else ()

    support = hp.process_support(DESCRIPTION, find_chip_models=with_c_token_linear)
    assert [r[1] for r in _rows(hp.without_chip_model(support))] == [
        "BiasInjection",
        "CurrentMaxPool",
        "SpikeAttention",
        "HostReadout",
    ]


def test_unknown_process_is_a_typed_error():
    with pytest.raises(hp.HardwarePathError, match="NcMagic"):
        hp.process_support([_node("x", "neurocore", (0, "NcMagic"))])


def test_discovery_uses_lavas_model_search(monkeypatch):
    # With Python models standing in for chip models, Lava's discovery must find the real
    # fixed-point models next to each process (their class names are in the project/Lava).
    from lava.magma.core.model.py.model import PyLoihiProcessModel

    monkeypatch.setattr(hp, "_chip_model_bases", lambda: (PyLoihiProcessModel,))
    assert hp.chip_models_of(hp.process_class("TokenLinear")) == ("PyTokenLinearModelFixed",)
    assert "PyLifResetModelBitAcc" in hp.chip_models_of(hp.process_class("LIFReset"))
    monkeypatch.undo()
    if not installed:  # no neurocore/C base classes exist without lava-loihi
        assert hp.chip_models_of(hp.process_class("LIFReset")) == ()


@pytest.mark.skipif(installed, reason="lava-loihi is installed here")
def test_not_installed_statement_on_a_real_plan():
    from export.lava import to_lava
    from export.lava.netx import NETX_OPTIONS
    from hardware.quantize.text import quantize_text
    from spikeclip.config import SpikeCLIPConfig
    from spikeclip.text_encoder import TextEncoder

    torch.manual_seed(0)
    net, _ = quantize_text(TextEncoder(SpikeCLIPConfig.tiny()).eval(), options=NETX_OPTIONS)
    report = hp.hardware_path(to_lava(net))  # must not raise, builds nothing
    assert not report.lava_loihi and not report.compiled and report.compile_error is None
    assert report.statement.startswith(hp.NOT_INSTALLED)
    assert _rows(report.off_chip) == [
        ("text_encoder.encode", "BiasInjection", "host"),
        ("text_encoder.output", "HostReadout", "host"),
    ]
    md = report.markdown()
    assert "| text_encoder.output | HostReadout | host |" in md
    assert "BiasInjection, HostReadout" in report.statement


def _stand_in_graph(compile_fn):
    anchor = SimpleNamespace(compile=compile_fn)
    return SimpleNamespace(
        nodes=MappingProxyType({n.name: n for n in DESCRIPTION}),
        build=lambda inputs, record_spikes: SimpleNamespace(anchor=anchor),
    )


def test_installed_path_compiles_with_loihi2hwcfg(monkeypatch):
    from lava.magma.core.run_configs import Loihi2HwCfg

    seen = []
    monkeypatch.setattr(hp, "lava_loihi_installed", lambda: True)
    with pytest.raises(hp.HardwarePathError, match="pass the inputs"):
        hp.hardware_path(_stand_in_graph(lambda run_cfg: seen.append(run_cfg)))
    assert not seen
    report = hp.hardware_path(_stand_in_graph(lambda run_cfg: seen.append(run_cfg)), inputs=[])
    assert report.compiled and isinstance(seen[0], Loihi2HwCfg)
    assert seen[0].select_tag == "fixed_pt"
    assert report.statement.startswith("lava-loihi is installed; the graph was compiled")

    def fails(run_cfg):
        raise RuntimeError("no NcProcessModel for TokenLinear")

    report = hp.hardware_path(_stand_in_graph(fails), inputs=[])
    assert not report.compiled
    assert report.compile_error == "RuntimeError: no NcProcessModel for TokenLinear"
    assert "failed to compile" in report.statement
    assert len(report.off_chip) == 5
