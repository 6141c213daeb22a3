"""Structure of the `to_nir` graph, refusals, file errors and a mutation test.

Expected counts are derived by hand from the tiny config (depth 2, img 16 → grid 4×4, D = 16,
tokenizer channels (4, 8, 8, 16), text 6×8 → 32 → 12):
- image: 1 Input, 1 Output, 5 tokenizer convs + 4 per block (qkv, proj, fc1, fc2) = 13 Conv2d,
  4 tokenizer LIFs + 5 per block (attn in/qkv/attn, mlp in/fc1) = 14 LIF,
  extensions 1 static_input + 2 max_pool2d + 2 spiking_attention = 5 nested graphs;
- text: 1 Input, 1 Output, 1 static_input, 2 LIF, 2 Affine.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
import torch
from test_nir_twin import inputs_for, lively
from torch import nn

from export.nir import (
    MetadataError,
    NIRExportWarning,
    NIRFileError,
    UnknownExtensionError,
    UnsupportedModuleError,
    from_nir,
    read_nir,
    to_nir,
    write_nir,
)
from export.nir.schema import GRAPH_KEY, extension_spec, graph_meta
from spikeclip.ann_twin import build_ann_twin
from spikeclip.config import SpikeCLIPConfig
from spikeclip.model import SpikeCLIP

IMG = "image_encoder"
TXT = "text_encoder"


@pytest.fixture(scope="module")
def tiny() -> tuple[SpikeCLIP, nir.NIRGraph, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    cfg = SpikeCLIPConfig.tiny()
    images, ids = inputs_for(cfg, 3)
    model = lively(SpikeCLIP(cfg), images, ids)
    return model, to_nir(model, "both"), images, ids


@pytest.fixture(scope="module")
def tiny_file(tiny, tmp_path_factory) -> Path:
    return write_nir(tiny[1], tmp_path_factory.mktemp("nir") / "tiny.nir")


def test_type_checked_read_and_node_counts(tiny_file: Path) -> None:
    graph = nir.read(tiny_file, type_check=True)
    counts = Counter(type(n).__name__ for n in graph.nodes.values())
    assert counts == {
        "Input": 2,
        "Output": 2,
        "Conv2d": 13,
        "LIF": 14 + 2,
        "NIRGraph": 5 + 1,
        "Affine": 2,
    }
    meta = graph_meta(graph)
    listed = {e.node: e.op for e in meta.extensions}
    assert set(listed) == {n for n, v in graph.nodes.items() if isinstance(v, nir.NIRGraph)}
    assert Counter(listed.values()) == {"static_input": 2, "max_pool2d": 2, "spiking_attention": 2}
    for name, op in listed.items():
        assert extension_spec(name, graph.nodes[name]).op == op
    assert meta.towers == (IMG, TXT)
    d = meta.discretization
    assert (d.timesteps, d.dt, d.method, d.reset, d.compare) == (
        4,
        1e-4,
        "forward_euler",
        "zero",
        ">=",
    )


def test_per_neuron_parameters_have_the_neuron_shape(tiny_file: Path) -> None:
    g = nir.read(tiny_file)
    shapes = {
        f"{IMG}.tokenizer.lif0": (4, 16, 16),
        f"{IMG}.tokenizer.lif2": (8, 8, 8),  # after the first max-pool (16 → 8)
        f"{IMG}.tokenizer.lif3": (16, 4, 4),
        f"{IMG}.blocks.0.attn.qkv_lif": (48, 4, 4),  # q|k|v stacked: 3·16 channels
        f"{IMG}.blocks.1.attn.attn_lif": (16, 4, 4),
        f"{IMG}.blocks.1.mlp.fc1_lif": (32, 4, 4),
        f"{TXT}.lif1": (48,),
        f"{TXT}.lif2": (32,),
    }
    for name, shape in shapes.items():
        node = g.nodes[name]
        for key in ("tau", "r", "v_leak", "v_threshold", "v_reset"):
            assert getattr(node, key).shape == shape, (name, key)
        assert np.all(node.tau == 2e-4) and np.all(node.r == 1) and np.all(node.v_reset == 0)
    assert np.all(g.nodes[f"{IMG}.blocks.1.attn.attn_lif"].v_threshold == 0.5)
    assert np.all(g.nodes[f"{IMG}.blocks.0.attn.qkv_lif"].v_threshold == 1.0)


def test_residual_stream_is_fan_in(tiny_file: Path) -> None:
    g = nir.read(tiny_file)
    into = lambda n: sorted(s for s, d in g.edges if d == n)  # noqa: E731
    b = f"{IMG}.blocks"
    # X before block 1's MLP = conv4 + block0 (attn.proj, mlp.fc2) + block1 attn.proj
    assert into(f"{b}.1.mlp.in_lif") == sorted(
        [
            f"{IMG}.tokenizer.conv4",
            f"{b}.0.attn.proj_conv",
            f"{b}.0.mlp.fc2_conv",
            f"{b}.1.attn.proj_conv",
        ]
    )
    assert len(into(f"{IMG}.output")) == 1 + 2 * 2
    assert into(f"{b}.0.attn.core") == [f"{b}.0.attn.qkv_lif"]


def test_strict_model_records_strict_compare() -> None:
    import dataclasses

    cfg = dataclasses.replace(SpikeCLIPConfig.tiny(), strict_threshold=True)
    meta = graph_meta(to_nir(SpikeCLIP(cfg).eval(), "text"))
    assert meta.discretization.compare == ">"


def test_unknown_layer_names_its_module_path() -> None:
    model = SpikeCLIP(SpikeCLIPConfig.tiny()).eval()
    model.image_encoder.blocks[1].mlp = nn.Identity()
    with pytest.raises(UnsupportedModuleError, match=r"image_encoder\.blocks\.1\.mlp \(Identity\)"):
        to_nir(model, "image")
    model = SpikeCLIP(SpikeCLIPConfig.tiny()).eval()
    model.image_encoder.tokenizer.lif2 = nn.ReLU()
    with pytest.raises(UnsupportedModuleError, match=r"image_encoder\.tokenizer\.lif2 \(ReLU\)"):
        to_nir(model, "image")
    model = SpikeCLIP(SpikeCLIPConfig.tiny()).eval()
    model.image_encoder.blocks[0].attn.q_bn = nn.Identity()
    with pytest.raises(UnsupportedModuleError, match=r"blocks\.0\.attn\.q_bn \(Identity\)"):
        to_nir(model, "image")


def test_ann_twin_is_refused() -> None:
    twin = build_ann_twin(SpikeCLIPConfig.tiny()).eval()
    with pytest.raises(UnsupportedModuleError, match=r"tokenizer\.lif0 \(ANNActivation\)"):
        to_nir(twin, "image")


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupted_file_gives_one_line_error(tiny_file: Path, tmp_path: Path, damage: str) -> None:
    data = tiny_file.read_bytes()
    bad = tmp_path / "bad.nir"
    bad.write_bytes(
        {"garbage": b"not hdf5 at all" * 10, "truncated": data[: len(data) // 2], "empty": b""}[
            damage
        ]
    )
    with pytest.raises(NIRFileError) as err:
        read_nir(bad)
    assert "\n" not in str(err.value) and str(bad) in str(err.value)


def test_foreign_nir_file_and_missing_file(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.nir"
    nir.write(foreign, nir.NIRGraph.from_list(nir.Affine(weight=np.eye(2), bias=np.zeros(2))))
    with pytest.raises(NIRFileError, match="not written by export.nir.to_nir"):
        read_nir(foreign)
    with pytest.raises(NIRFileError, match="no such file"):
        read_nir(tmp_path / "missing.nir")


def test_unknown_marker_and_node_type_name_the_node(tiny) -> None:
    graph = to_nir(tiny[0], "image")
    pool = graph.nodes[f"{IMG}.tokenizer.pool2"]
    pool.metadata["spikeclip_ext"] = "median_pool"
    with pytest.raises(UnknownExtensionError, match=r"tokenizer\.pool2.*median_pool"):
        from_nir(graph)
    graph = to_nir(tiny[0], "image")
    lif = graph.nodes[f"{IMG}.tokenizer.lif1"]
    graph.nodes[f"{IMG}.tokenizer.lif1"] = nir.CubaLIF(
        tau_syn=lif.tau, tau_mem=lif.tau, r=lif.r, v_leak=lif.v_leak, v_threshold=lif.v_threshold
    )
    with pytest.raises(UnknownExtensionError, match=r"tokenizer\.lif1.*CubaLIF"):
        from_nir(graph)


def test_mutating_one_weight_in_the_file_changes_the_output_as_predicted(
    tiny, tiny_file: Path, tmp_path: Path
) -> None:
    model, _, images, ids = tiny
    inputs = {f"{IMG}.input": images, f"{TXT}.input": model.text_encoder.embed(ids).detach()}
    before = from_nir(read_nir(tiny_file))(inputs, record=True)
    s2 = before.spikes[f"{TXT}.lif2"]  # [T, B, 32]
    j = int(s2.sum(dim=(0, 1)).argmax())  # the most active lif2 neuron
    i, delta = 3, 0.25
    mutated = tmp_path / "mutated.nir"
    mutated.write_bytes(tiny_file.read_bytes())
    with h5py.File(mutated, "r+") as f:
        f[f"node/nodes/{TXT}.fc2/weight"][i, j] += delta
        f[f"node/nodes/{IMG}.tokenizer.conv0/weight"][0, 0, 1, 1] += 1.0
    after = from_nir(read_nir(mutated))(inputs)
    # text: only feature row i moves, by delta · Σ_t w_t · s2[t, :, j]
    w = torch.as_tensor(graph_meta(read_nir(mutated)).decodings[1].time_weights)
    predicted = delta * torch.einsum("t,tb->b", w, s2[:, :, j])
    change = after.features[f"{TXT}.output"] - before.features[f"{TXT}.output"]
    assert predicted.abs().max() > 0.05  # the mutation is visible for at least one sample
    torch.testing.assert_close(change[:, i], predicted, rtol=0, atol=1e-12)
    assert torch.equal(
        change[:, [k for k in range(change.shape[1]) if k != i]], torch.zeros_like(change[:, 1:])
    )
    # image: conv0's change reaches the image feature
    assert not torch.equal(after.features[f"{IMG}.output"], before.features[f"{IMG}.output"])


def test_graph_metadata_survives_write_read(tiny, tiny_file: Path) -> None:
    a, b = graph_meta(tiny[1]), graph_meta(nir.read(tiny_file))
    assert a.discretization == b.discretization and a.extensions == b.extensions
    assert a.towers == b.towers and a.encodings == b.encodings
    for x, y in zip(a.decodings, b.decodings):
        assert x.output == y.output and x.token_axes == y.token_axes
        assert np.array_equal(x.time_weights, y.time_weights)
        assert (x.head_weight is None) == (y.head_weight is None)
    raw = nir.read(tiny_file).metadata[GRAPH_KEY]
    assert isinstance(json.loads(raw["extensions"]), list)


def test_encoder_alone_and_bad_tower(tiny) -> None:
    model = tiny[0]
    alone = to_nir(model.text_encoder)
    assert graph_meta(alone).towers == (TXT,)
    assert sorted(alone.nodes) == sorted(n for n in tiny[1].nodes if n.startswith(TXT))
    with pytest.raises(UnsupportedModuleError, match="tower must be one of"):
        to_nir(model, "audio")


def test_time_weights_must_match_timesteps(tiny) -> None:
    graph = to_nir(tiny[0], "text")
    decodings = graph.metadata[GRAPH_KEY]["decodings"]
    decodings[f"{TXT}.output"]["time_weights"] = np.ones(3)
    with pytest.raises(MetadataError, match=r"time_weights: has 3 weights for T = 4"):
        from_nir(graph)


def test_training_mode_model_warns() -> None:
    model = SpikeCLIP(SpikeCLIPConfig.tiny()).train()
    with pytest.warns(NIRExportWarning, match="training mode"):
        to_nir(model, "text")
