"""Standard-only parts of a SpikeCLIP NIR graph, as NIR files that foreign tools load as they are.

``model.nir`` (`to_nir(model, "both")`) holds both towers with marked extensions, which
snnTorch, Norse and sinabs refuse on purpose (`export.nir.schema`). The parts below contain
standard nodes only, so ``snntorch.import_nir.import_from_nir``, ``norse.torch.from_nir`` and
``sinabs.from_nir`` load them with no surgery (importer conventions and quirks, with their source
locations: ``export/nir/FOREIGN.md``). Files written by `write_standard_parts(model, folder)`:

``text_encoder.nir`` (`PARTS["text_encoder"]`)
    Input ``input`` (L·W,) → ``text_encoder.lif1`` (LIF) → ``.fc1`` (Affine) → ``.lif2`` (LIF)
    → ``.fc2`` (Affine) → Output ``output`` (fc2's current per step, (F,)). The Input is a host
    input, the same at every step: for token ids ``[B, L]`` (the checkpoint's tokenizer, spec
    in ``tokenizer`` when known), ``x[b, l·W + w] = token_embedding[ids[b, l], w] +
    position_embedding[l, w]`` (`text_input`). Both tables are in the file, in the model's
    dtype: ``graph.metadata["spikeclip"]["encodings"]["input"]["embedding"]`` holds
    ``token_embedding`` [V, W], ``position_embedding`` [L, W], ``rule``, ``tokenizer``.
    The text feature is ``y[b] = Σ_t time_weights[t] · output[t, b]`` (`text_features`;
    ``…["decodings"]["output"]["time_weights"]`` [T]).
``image_stem.nir`` (`PARTS["image_stem"]`)
    Input ``input`` (C, H, W) = the CLIP-normalized image, the same at every step →
    ``image_encoder.tokenizer.conv0`` (Conv2d, BN folded) → ``.lif0`` → ``.conv1`` → ``.lif1``
    → ``.conv2`` → Output ``output``: conv2's current per step, which the model's first
    max-pool (an extension, not in this file) takes next.

Both keep ``model.nir``'s discretization record (dt = 1e-4 s, T, forward Euler, hard reset,
compare ≥) and its node names, so a part's node is the model node of the same name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nir
import numpy as np
from torch import nn

from export.nir.errors import GraphStructureError, UnknownExtensionError
from export.nir.exporter import to_nir
from export.nir.io import write_nir
from export.nir.schema import (
    GRAPH_KEY,
    GraphMeta,
    InputEncoding,
    ReadoutDecoding,
    TextEmbedding,
    graph_meta,
)
from spikeclip.model import SpikeCLIP
from spikeclip.text_encoder import TextEncoder


@dataclass(frozen=True)
class PartSpec:
    """A part: the nodes strictly after `after` up to and including `until`."""

    after: str
    until: str
    file: str


PARTS = {
    "text_encoder": PartSpec("text_encoder.encode", "text_encoder.fc2", "text_encoder.nir"),
    "image_stem": PartSpec(
        "image_encoder.encode", "image_encoder.tokenizer.conv2", "image_stem.nir"
    ),
}
"""Part name → where it is cut from ``model.nir`` and the file it is written to."""

STANDARD_TYPES = (nir.Affine, nir.Linear, nir.Conv2d, nir.LIF)
"""Node types a part may hold besides its Input and Output."""


def _out_shape(node: nir.NIRNode) -> tuple[int, ...]:
    (shape,) = node.output_type.values()
    return tuple(int(s) for s in np.asarray(shape).reshape(-1))


def _neighbours(edges: list[tuple[str, str]]) -> tuple[dict, dict]:
    succ: dict[str, list[str]] = {}
    pred: dict[str, list[str]] = {}
    for s, d in edges:
        succ.setdefault(s, []).append(d)
        pred.setdefault(d, []).append(s)
    return succ, pred


def _reach(start: list[str], nbrs: dict[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(nbrs.get(n, []))
    return seen


def _part_meta(graph: nir.NIRGraph, name: str, spec: PartSpec, pred: dict) -> GraphMeta:
    """The part's metadata: the graph's discretization; the decoding of an Output fed by
    `spec.until` alone and the encoding of the Input behind `spec.after`, re-keyed to the
    part's ``output`` / ``input``."""
    meta = graph_meta(graph)
    decodings = tuple(
        ReadoutDecoding(**{**vars(d), "output": "output"})
        for d in meta.decodings
        if pred.get(d.output) == [spec.until]
    )
    encodings = tuple(
        InputEncoding(**{**vars(e), "input": "input"})
        for e in meta.encodings
        if e.input in pred.get(spec.after, [])
    )
    return GraphMeta(
        discretization=meta.discretization,
        extensions=(),
        decodings=decodings,
        encodings=encodings,
        towers=(name,),
    )


def cut_part(graph: nir.NIRGraph, name: str) -> nir.NIRGraph:
    """Part `name` of a `to_nir` graph as a fresh graph with its own Input ``input`` and
    Output ``output`` (the graph itself is not changed; nodes are shared, not copied)."""
    if name not in PARTS:
        raise GraphStructureError(f"unknown standard part {name!r} (known: {sorted(PARTS)})")
    spec = PARTS[name]
    for node in (spec.after, spec.until):
        if node not in graph.nodes:
            raise GraphStructureError(f"part {name!r} needs node {node!r}, not in the graph")
    succ, pred = _neighbours(graph.edges)
    keep = _reach(succ.get(spec.after, []), succ) & _reach([spec.until], pred)
    order = [n for n in graph.nodes if n in keep]
    for n in order:
        if not isinstance(graph.nodes[n], STANDARD_TYPES):
            kind = type(graph.nodes[n]).__name__
            raise UnknownExtensionError(n, f"{kind} is not a standard node")
    nodes: dict[str, nir.NIRNode] = {
        "input": nir.Input(input_type=np.array(_out_shape(graph.nodes[spec.after])))
    }
    nodes.update({n: graph.nodes[n] for n in order})
    nodes["output"] = nir.Output(output_type=np.array(_out_shape(graph.nodes[spec.until])))
    edges = [(s, d) for s, d in graph.edges if s in keep and d in keep]
    edges += [("input", d) for d in succ[spec.after] if d in keep] + [(spec.until, "output")]
    meta = _part_meta(graph, name, spec, pred)
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={GRAPH_KEY: meta.to_metadata()})


def _with_embedding(part: nir.NIRGraph, embedding: TextEmbedding) -> nir.NIRGraph:
    """`part` with `embedding` attached to the encoding of its Input."""
    meta = graph_meta(part)
    encodings = tuple(
        InputEncoding(**{**vars(e), "embedding": embedding}) if e.input == "input" else e
        for e in meta.encodings
    )
    md = GraphMeta(**{**vars(meta), "encodings": encodings}).to_metadata()
    return nir.NIRGraph(nodes=part.nodes, edges=part.edges, metadata={GRAPH_KEY: md})


def text_embedding(encoder: TextEncoder, tokenizer: str = "") -> TextEmbedding:
    """The encoder's token and position tables (copies, in the model's dtype)."""
    return TextEmbedding(
        token_embedding=encoder.token_embedding.weight.detach().cpu().numpy().copy(),
        position_embedding=encoder.position_embedding.weight.detach().cpu().numpy().copy(),
        tokenizer=tokenizer,
    )


def standard_parts(model: nn.Module, *, tokenizer: str = "") -> dict[str, nir.NIRGraph]:
    """The standard parts of `model` (SpikeCLIP: both; TextEncoder or ImageEncoder: its own),
    keyed by part name (`PARTS`). `tokenizer`: the spec recorded with the text tables."""
    # a bare encoder exports itself whatever the tower argument says
    graph = to_nir(model, "both" if isinstance(model, SpikeCLIP) else "image")
    parts = {n: cut_part(graph, n) for n, spec in PARTS.items() if spec.after in graph.nodes}
    encoder = model.text_encoder if isinstance(model, SpikeCLIP) else model
    if "text_encoder" in parts and isinstance(encoder, TextEncoder):
        parts["text_encoder"] = _with_embedding(
            parts["text_encoder"], text_embedding(encoder, tokenizer)
        )
    return parts


def write_standard_parts(
    model: nn.Module, folder: str | Path, *, tokenizer: str = ""
) -> dict[str, Path]:
    """Write each of `standard_parts(model)` to ``folder / PARTS[name].file`` (atomic
    writes; the folder is created if missing). Returns part name → path written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return {
        name: write_nir(part, folder / PARTS[name].file)
        for name, part in standard_parts(model, tokenizer=tokenizer).items()
    }


def _embedding_of(part: nir.NIRGraph) -> TextEmbedding:
    for enc in graph_meta(part).encodings:
        if enc.input == "input" and enc.embedding is not None:
            return enc.embedding
    raise GraphStructureError("the graph carries no text embedding tables (not text_encoder.nir)")


def text_input(part: nir.NIRGraph, token_ids: np.ndarray) -> np.ndarray:
    """The host input of ``text_encoder.nir`` for ids `[B, L]`: `[B, L·W]` in the tables' dtype,
    by the rule stored with them (`TextEmbedding.RULE`)."""
    emb = _embedding_of(part)
    ids = np.asarray(token_ids)
    length, _ = emb.position_embedding.shape
    if ids.ndim != 2 or ids.shape[1] != length or ids.dtype.kind not in "iu":
        raise GraphStructureError(f"token ids must be integer [B, {length}], got {ids.shape}")
    vocab = emb.token_embedding.shape[0]
    if ids.size and (ids.min() < 0 or ids.max() >= vocab):
        raise GraphStructureError(f"token ids must lie in [0, {vocab})")
    return (emb.token_embedding[ids] + emb.position_embedding).reshape(ids.shape[0], -1)


def text_features(part: nir.NIRGraph, outputs: np.ndarray) -> np.ndarray:
    """The text feature `[B, F]` from the part's per-step Output `[T, B, F]`: Σ_t w[t]·O[t],
    computed in the outputs' dtype (w from the file's readout decoding)."""
    (dec,) = [d for d in graph_meta(part).decodings if d.output == "output"] or [None]
    if dec is None:
        raise GraphStructureError("the graph has no readout decoding for its Output 'output'")
    out = np.asarray(outputs)
    weights = dec.time_weights.astype(out.dtype)
    if out.ndim != 3 or out.shape[0] != weights.shape[0]:
        raise GraphStructureError(f"outputs must be [T={weights.shape[0]}, B, F], got {out.shape}")
    return np.einsum("t,tbf->bf", weights, out)


__all__ = [
    "PARTS",
    "PartSpec",
    "cut_part",
    "standard_parts",
    "text_embedding",
    "text_features",
    "text_input",
    "write_standard_parts",
]
