"""snnTorch interop: the standard parts (text tower; tokenizer stem up to its first max-pool),
imported with ``snntorch.import_nir`` (dt = 1e-4 pinned), spike like our executor (the parts as
files and the other importers: test_nir_parts.py)."""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch
from test_nir_twin import inputs_for, lively

from export.nir import GraphStructureError, from_nir, to_nir
from export.nir.parts import cut_part
from export.nir.schema import GRAPH_KEY
from export.nir.snntorch_interop import compare_with_executor, import_snntorch, run_snntorch
from spikeclip.config import SpikeCLIPConfig
from spikeclip.model import SpikeCLIP

pytest.importorskip("nirtorch", reason="snntorch.import_nir needs nirtorch==2.6 (setup.cfg)")


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    cfg = SpikeCLIPConfig.tiny()
    images, ids = inputs_for(cfg, 4)
    model = lively(SpikeCLIP(cfg), images, ids)
    return to_nir(model, "both"), images, model.text_encoder.embed(ids).detach()


@pytest.mark.parametrize("part", ["text_encoder", "image_stem"])
def test_snntorch_spikes_equal_ours(tiny, part: str) -> None:
    graph, images, embedded = tiny
    x = embedded if part == "text_encoder" else images
    report = compare_with_executor(graph, part, x)
    assert len(report) == 2
    for row in report:
        print(row)
        assert row.compared > 0
        # every difference must be a tie or within float32 rounding of the threshold
        assert row.differ == row.differ_near_tie, row
    assert sum(r.differ for r in report) == 0  # measured: none on these inputs


@pytest.mark.parametrize("part", ["text_encoder", "image_stem"])
def test_snntorch_output_currents_match_within_float32(tiny, part: str) -> None:
    graph, images, embedded = tiny
    x = embedded if part == "text_encoder" else images
    sub = cut_part(graph, part)
    ours = from_nir(sub)(x.double()).outputs["output"]
    theirs, spikes = run_snntorch(import_snntorch(cut_part(graph, part)), x.float(), 4)
    assert spikes and all(s.sum() > 0 for s in spikes.values())
    scale = ours.abs().max().item()
    assert scale > 0
    assert (theirs.double() - ours).abs().max().item() <= 1e-5 * scale


def test_affine_bias_reaches_snntorch(tiny) -> None:
    """nirtorch 2.6's default Affine map drops the bias; snnTorch's own map must not."""
    graph, _, _ = tiny
    net = import_snntorch(cut_part(graph, "text_encoder"))
    bias = graph.nodes["text_encoder.fc1"].bias
    assert np.abs(bias).max() > 0
    assert torch.equal(net.text_encoder_fc1.bias.detach(), torch.as_tensor(bias).float())


def test_other_dt_is_refused(tiny) -> None:
    graph, _, _ = tiny
    sub = cut_part(graph, "text_encoder")
    sub.metadata[GRAPH_KEY]["discretization"]["dt"] = 1e-3
    with pytest.raises(GraphStructureError, match="hard-codes dt"):
        import_snntorch(sub)


def test_whole_graph_is_refused_by_snntorch(tiny) -> None:
    from snntorch.import_nir import import_from_nir

    graph, _, _ = tiny
    text_only = to_nir_text(graph)
    with pytest.raises(ValueError, match="Delay"):
        import_from_nir(text_only)


def to_nir_text(graph: nir.NIRGraph) -> nir.NIRGraph:
    """The text tower of `graph` as its own graph, extensions included (what a user would
    hand to a foreign importer)."""
    keep = {n for n in graph.nodes if n.startswith("text_encoder.")}
    return nir.NIRGraph(
        nodes={n: graph.nodes[n] for n in graph.nodes if n in keep},
        edges=[e for e in graph.edges if e[0] in keep and e[1] in keep],
    )
