"""The standard parts as files (`export.nir.parts`), read by snnTorch's, Norse's and sinabs'
own importers with no surgery.

References: the model's own float32 forward (`TextEncoder.forward`, `TextEncoder.embed`) and our
float64 executor; the foreign runs use only the importers and the documented host-side steps
(embedding from the file's tables, Σ_t w[t]·O[t] with the file's time weights).
"""

from __future__ import annotations

import contextlib
import io
from collections import Counter

import nir
import norse.torch as norse
import numpy as np
import pytest
import sinabs
import torch
from _paths import DEFAULT_MODEL
from test_nir_twin import inputs_for, lively

from export.nir import GraphStructureError, from_nir, read_nir, to_nir, write_standard_parts
from export.nir.parts import PARTS, cut_part, text_features, text_input
from export.nir.schema import DT, graph_meta
from export.nir.snntorch_interop import import_snntorch, run_snntorch
from spikeclip import checkpoint
from spikeclip.config import SpikeCLIPConfig
from spikeclip.model import SpikeCLIP
from spikeclip.training.teachers import load_tokenizer


@pytest.fixture(scope="module")
def default(tmp_path_factory):
    """The default model, its class prompts tokenized by its own tokenizer, and its parts
    written to a folder."""
    ck = checkpoint.load(DEFAULT_MODEL)
    spec = ck.metadata["tokenizer"]
    prompts = [t.format(c) for c in ck.class_names for t in ck.templates]
    ids = load_tokenizer(spec)(prompts, ck.config.text_len)
    paths = write_standard_parts(ck.model, tmp_path_factory.mktemp("parts"), tokenizer=spec)
    return ck.model, ids, paths


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.manual_seed(0)
    cfg = SpikeCLIPConfig.tiny()
    images, ids = inputs_for(cfg, 4)
    model = lively(SpikeCLIP(cfg), images, ids)
    return model, images, ids, write_standard_parts(model, tmp_path_factory.mktemp("tiny"))


def run_norse(net: torch.nn.Module, x: torch.Tensor, steps: int) -> torch.Tensor:
    """Norse's GraphExecutor, stepped by hand with its explicit state: `[T, B, ...]`."""
    state, outs = None, []
    with torch.no_grad():
        for _ in range(steps):
            out, state = net(x, state)
            outs.append(out)
    return torch.stack(outs)


def test_files_hold_standard_nodes_and_their_records(tiny) -> None:
    model, _, _, paths = tiny
    assert {name: p.name for name, p in paths.items()} == {
        "text_encoder": "text_encoder.nir",
        "image_stem": "image_stem.nir",
    }
    text, stem = read_nir(paths["text_encoder"]), read_nir(paths["image_stem"])
    kinds = lambda g: Counter(type(n).__name__ for n in g.nodes.values())  # noqa: E731
    assert kinds(text) == {"Input": 1, "LIF": 2, "Affine": 2, "Output": 1}
    assert kinds(stem) == {"Input": 1, "Conv2d": 3, "LIF": 2, "Output": 1}
    assert tuple(stem.nodes["input"].input_type["input"]) == (3, 16, 16)
    assert tuple(stem.nodes["output"].output_type["output"]) == (8, 16, 16)  # conv2, pre-pool
    assert tuple(text.nodes["input"].input_type["input"]) == (6 * 8,)  # L·W
    meta = graph_meta(text)
    assert meta.extensions == () and meta.towers == ("text_encoder",)
    assert meta.discretization.dt == DT and meta.discretization.timesteps == 4
    (dec,) = meta.decodings
    assert dec.output == "output"
    assert np.array_equal(dec.time_weights, model.text_encoder.readout.weights.detach().numpy())
    (enc,) = meta.encodings
    emb = enc.embedding
    assert enc.input == "input" and emb is not None and emb.token_embedding.dtype == np.float32
    assert np.array_equal(emb.token_embedding, model.text_encoder.token_embedding.weight.detach())
    assert graph_meta(stem).decodings == ()
    assert graph_meta(stem).encodings[0].feature == "image"


def test_host_input_from_the_file_equals_the_models_embedding(default) -> None:
    model, ids, paths = default
    graph = nir.read(paths["text_encoder"])
    x = text_input(graph, ids.numpy())
    assert x.dtype == np.float32
    assert np.array_equal(x, model.text_encoder.embed(ids).detach().numpy())
    meta = graph_meta(graph)
    assert meta.encodings[0].embedding.tokenizer == "minilm"
    with pytest.raises(GraphStructureError, match="token ids"):
        text_input(graph, ids.numpy()[:, :3])
    with pytest.raises(GraphStructureError, match="carries no text embedding"):
        text_input(nir.read(paths["image_stem"]), ids.numpy())


def test_snntorch_reproduces_the_default_models_text_features(default) -> None:
    """Acceptance (issue 24): snnTorch imports text_encoder.nir of the default model and gives
    the project's float text features within 1e-6 (measured: identical, max |Δ| = 0.0)."""
    model, ids, paths = default
    graph = nir.read(paths["text_encoder"])
    with torch.no_grad():
        ref = model.text_encoder(ids).numpy()
    net = import_snntorch(nir.read(paths["text_encoder"]))
    out, spikes = run_snntorch(net, torch.from_numpy(text_input(graph, ids.numpy())), 4)
    assert all(s.sum() > 0 for s in spikes.values())
    feats = text_features(graph, out.numpy())
    assert feats.dtype == np.float32 and feats.shape == ref.shape == (80, 384)
    assert np.abs(ref).max() > 1
    assert np.abs(feats - ref).max() <= 1e-6


def test_snntorch_loads_the_file_with_its_own_entry_point(default) -> None:
    """No wrapper: the importer itself, on what `nir.read` returns."""
    from snntorch.import_nir import import_from_nir

    _, _, paths = default
    for path in paths.values():
        with contextlib.redirect_stdout(io.StringIO()):
            net = import_from_nir(nir.read(path))
        assert sum(p.numel() for p in net.parameters()) > 0


def test_norse_reproduces_the_default_models_text_features(default) -> None:
    """Norse's LIFBoxCell is our forward-Euler LIF exactly, given the graph's dt (its default
    dt = 1e-3 would make dt/tau = 5: see FOREIGN.md)."""
    model, ids, paths = default
    graph = nir.read(paths["text_encoder"])
    with torch.no_grad():
        ref = model.text_encoder(ids).numpy()
    net = norse.from_nir(nir.read(paths["text_encoder"]), dt=graph_meta(graph).discretization.dt)
    out = run_norse(net, torch.from_numpy(text_input(graph, ids.numpy())), 4)
    assert np.abs(text_features(graph, out.numpy()) - ref).max() <= 1e-6


def test_norse_runs_the_stem_like_our_executor(tiny) -> None:
    _, images, _, paths = tiny
    graph = nir.read(paths["image_stem"])
    ours = from_nir(graph)(images.double()).outputs["output"]
    net = norse.from_nir(nir.read(paths["image_stem"]), dt=DT)
    theirs = run_norse(net, images.float(), 4)
    scale = ours.abs().max().item()
    assert scale > 0
    assert (theirs.double() - ours).abs().max().item() <= 1e-5 * scale


def test_sinabs_loads_the_text_part_but_runs_another_neuron(tiny) -> None:
    """sinabs reads tau in time steps (alpha = exp(−1/tau)) and ignores dt and r, fires
    MultiSpike and resets by subtraction: it loads our file, its synapses are ours, its LIF is
    not (FOREIGN.md)."""
    model, _, ids, paths = tiny
    net = sinabs.from_nir(nir.read(paths["text_encoder"]), batch_size=ids.shape[0])
    fc1 = net.get_submodule("text_encoder_fc1")
    assert torch.equal(fc1.weight, model.text_encoder.fc1.weight.detach())
    lif = net.get_submodule("text_encoder_lif1")
    assert type(lif).__name__ == "LIFSqueeze" and lif.norm_input is False
    assert torch.all(lif.alpha_mem_calculated == 0)  # exp(−1/2e-4): no memory at all
    x = model.text_encoder.embed(ids).detach()
    batch = ids.shape[0]
    out, _ = net(x.repeat_interleave(4, dim=0))  # [B·T, F], batch-major
    with torch.no_grad():
        ref = model.text_encoder(ids)
    feats = torch.einsum("t,btf->bf", model.text_encoder.readout.weights, out.view(batch, 4, -1))
    assert (feats - ref).abs().max() > 1e-2


def test_sinabs_cannot_load_a_conv_lif(tiny) -> None:
    """sinabs 3.1.3 checks ``any(node.v_leak) != 0`` (sinabs/nir.py, LIF branch): Python's any()
    over a (C, H, W) array raises, so no NIR LIF after a Conv2d can be imported (FOREIGN.md)."""
    _, _, _, paths = tiny
    with pytest.raises(ValueError, match="truth value of an array"):
        sinabs.from_nir(nir.read(paths["image_stem"]), batch_size=4)


def test_cut_part_refuses_unknown_parts_and_missing_towers(tiny) -> None:
    model, _, _, _ = tiny
    image_only = to_nir(model, "image")
    with pytest.raises(GraphStructureError, match="needs node 'text_encoder.encode'"):
        cut_part(image_only, "text_encoder")
    with pytest.raises(GraphStructureError, match="unknown standard part"):
        cut_part(image_only, "readout")
    assert set(PARTS) == {"text_encoder", "image_stem"}
