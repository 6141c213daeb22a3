"""The metadata schema: round trip through nir.write/nir.read, typed errors, refused carriers,
and the executor's independence from `spikeclip`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest
import torch
from _paths import REPO

from export.nir import MetadataError, UnknownExtensionError, from_nir, read_nir, write_nir
from export.nir.schema import (
    GRAPH_KEY,
    AttentionSpec,
    Discretization,
    ExtensionEntry,
    GraphMeta,
    InputEncoding,
    MaxPoolSpec,
    ReadoutDecoding,
    StaticInputSpec,
    TextEmbedding,
    extension_spec,
    graph_meta,
    make_extension_node,
)


def _carrier_graph(spec, in_shape) -> nir.NIRGraph:
    """Input → extension carrier → Output: what a foreign importer would be handed."""
    ext = make_extension_node(spec, in_shape)
    out = tuple(int(s) for s in ext.output_type["output"])
    return nir.NIRGraph(
        nodes={
            "x": nir.Input(input_type=np.array(in_shape)),
            "ext": ext,
            "y": nir.Output(output_type=np.array(out)),
        },
        edges=[("x", "ext"), ("ext", "y")],
    )


def test_graph_meta_round_trips_through_nir_files(tmp_path: Path) -> None:
    meta = GraphMeta(
        discretization=Discretization(timesteps=3, compare=">"),
        extensions=(ExtensionEntry(node="a.b", op="max_pool2d"),),
        decodings=(
            ReadoutDecoding(output="o", feature="text", time_weights=np.array([0.5, -1.0, 2.0])),
        ),
        encodings=(InputEncoding(input="i", feature="text", preprocessing="embed"),),
        towers=("text_encoder",),
    )
    graph = nir.NIRGraph.from_list(nir.Affine(weight=np.eye(2), bias=np.zeros(2)))
    graph.metadata = {GRAPH_KEY: meta.to_metadata()}
    path = tmp_path / "m.nir"
    nir.write(path, graph)
    raw = nir.read(path).metadata[GRAPH_KEY]
    # what NIR hands back is not what was written: numpy scalars, sorted groups
    assert isinstance(raw["format_version"], np.integer)
    back = graph_meta(nir.read(path))
    assert back.discretization == meta.discretization
    assert back.extensions == meta.extensions and back.encodings == meta.encodings
    assert back.towers == ("text_encoder",)
    (dec,) = back.decodings
    assert dec.head_weight is None and dec.head_bias is None and dec.token_axes == ()
    assert np.array_equal(dec.time_weights, [0.5, -1.0, 2.0])


def test_text_embedding_round_trips_with_its_dtype(tmp_path: Path) -> None:
    tok = np.arange(12, dtype=np.float32).reshape(4, 3) / 7
    pos = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    emb = TextEmbedding(token_embedding=tok, position_embedding=pos, tokenizer="minilm")
    meta = GraphMeta(
        discretization=Discretization(timesteps=2),
        extensions=(),
        encodings=(InputEncoding(input="i", feature="text", preprocessing="p", embedding=emb),),
    )
    graph = nir.NIRGraph.from_list(nir.Affine(weight=np.eye(2), bias=np.zeros(2)))
    graph.metadata = {GRAPH_KEY: meta.to_metadata()}
    nir.write(tmp_path / "t.nir", graph)
    (back,) = graph_meta(nir.read(tmp_path / "t.nir")).encodings
    assert back == meta.encodings[0]
    assert back.embedding.token_embedding.dtype == np.float32  # not widened to float64
    assert back.embedding != TextEmbedding(token_embedding=tok.astype(np.float64),
                                           position_embedding=pos, tokenizer="minilm")
    with pytest.raises(MetadataError, match="tables must be"):
        TextEmbedding(token_embedding=tok, position_embedding=pos[:, :2])


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("compare", "=>", r"discretization\.compare"),
        ("format_version", 7, r"format 'spikeclip-nir' v7"),
        ("extensions", "[1, 2]", r"spikeclip\.extensions"),
        ("timesteps", None, r"discretization\.timesteps: missing"),
    ],
)
def test_malformed_metadata_raises_typed_error(field, value, match) -> None:
    md = GraphMeta(discretization=Discretization(timesteps=4), extensions=()).to_metadata()
    if field in ("compare", "timesteps"):
        if value is None:
            del md["discretization"][field]
        else:
            md["discretization"][field] = value
    else:
        md[field] = value
    with pytest.raises(MetadataError, match=match):
        GraphMeta.from_metadata(md)


@pytest.mark.parametrize(
    ("spec", "in_shape", "out_shape"),
    [
        (StaticInputSpec(), (3, 8, 8), (3, 8, 8)),
        (MaxPoolSpec(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1)), (5, 9, 8), (5, 5, 4)),
        (AttentionSpec(num_heads=2, head_dim=3, scale=0.125), (18, 2, 2), (6, 2, 2)),
    ],
)
def test_carriers_type_check_round_trip_and_are_refused_by_foreign_importers(
    spec, in_shape, out_shape, tmp_path: Path
) -> None:
    graph = _carrier_graph(spec, in_shape)
    path = tmp_path / "c.nir"
    nir.write(path, graph)
    back = nir.read(path, type_check=True).nodes["ext"]
    assert tuple(back.output_type["output"]) == out_shape
    assert extension_spec("ext", back) == spec
    nirtorch = pytest.importorskip("nirtorch", reason="nirtorch==2.6 (snnTorch's NIR importer)")
    from snntorch.import_nir import import_from_nir

    with pytest.raises(ValueError, match="Delay"):
        nirtorch.nir_to_torch(graph, {})
    with pytest.raises(ValueError, match="Delay"):
        import_from_nir(_carrier_graph(spec, in_shape))


def test_sumpool_would_run_silently_in_nirtorch() -> None:
    """Why the carrier matters: a max-pool written as SumPool2d is executed as a sum."""
    nirtorch = pytest.importorskip("nirtorch", reason="nirtorch==2.6 (snnTorch's NIR importer)")
    graph = nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([1, 4, 4])),
        nir.SumPool2d(
            kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])
        ),
    )
    module = nirtorch.nir_to_torch(graph, {})
    out, _ = module(torch.ones(1, 1, 4, 4))
    assert torch.equal(out, torch.full((1, 1, 2, 2), 4.0))  # a max-pool would give 1


def test_extension_without_version_or_with_unknown_op_is_refused() -> None:
    node = make_extension_node(StaticInputSpec(), (2,))
    node.metadata["spikeclip_ext_version"] = 2
    with pytest.raises(UnknownExtensionError, match=r"'enc'.*version 2"):
        extension_spec("enc", node)
    plain = nir.NIRGraph.from_list(nir.Affine(weight=np.eye(2), bias=np.zeros(2)))
    with pytest.raises(UnknownExtensionError, match=r"'sub'.*no spikeclip_ext marker"):
        extension_spec("sub", plain)


def test_executor_runs_without_importing_spikeclip(tmp_path: Path) -> None:
    """from_nir reads everything from the file: run it in a fresh interpreter and check that
    no `spikeclip` model code got imported (only the bottom modules every package uses: the
    error root and the one atomic writer), and that its features equal this process's run."""
    from test_nir_twin import inputs_for

    from export.nir import to_nir
    from spikeclip.config import SpikeCLIPConfig
    from spikeclip.model import SpikeCLIP

    torch.manual_seed(1)
    cfg = SpikeCLIPConfig.tiny()
    model = SpikeCLIP(cfg).eval()
    path = write_nir(to_nir(model, "image"), tmp_path / "m.nir")
    images, _ = inputs_for(cfg, 2)
    torch.save(images, tmp_path / "x.pt")
    expected = from_nir(read_nir(path))(images).features["image_encoder.output"]
    script = (
        "import sys, torch\n"
        "from export.nir import from_nir, read_nir\n"
        f"x = torch.load({str(tmp_path / 'x.pt')!r}, weights_only=True)\n"
        f"run = from_nir(read_nir({str(path)!r}))(x)\n"
        f"torch.save(run.features['image_encoder.output'], {str(tmp_path / 'y.pt')!r})\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'spikeclip'\n"
        "             and m not in ('spikeclip', 'spikeclip.errors', 'spikeclip.atomic_io',\n"
        "                           'spikeclip.outputs'))\n"
        "print('SPIKECLIP_MODULES', bad)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "SPIKECLIP_MODULES []" in done.stdout
    got = torch.load(tmp_path / "y.pt", weights_only=True)
    assert torch.equal(got, expected)
