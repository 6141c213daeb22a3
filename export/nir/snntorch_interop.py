"""snnTorch interop: the standard parts of a `to_nir` graph, imported with snnTorch's importer.

Only graph parts made of standard nodes can be imported by a foreign tool (the extensions are
refused on purpose, see `export.nir.schema`). Two such parts are defined (`STANDARD_PARTS`):

- ``text``: the whole text tower after its static input: Input (L·W,) → lif1 → fc1 → lif2 →
  fc2 → Output (fc2's current per step; the readout decoding stays on our side);
- ``stem``: the image tokenizer up to its first max-pool: Input (C, H, W) → conv0 → lif0 →
  conv1 → lif1 → conv2 → Output (conv2's current, which feeds the first max-pool).

`standard_part` cuts such a part out as a self-contained graph (new Input/Output, the
discretization copied, no extensions); `import_snntorch` hands it to
``snntorch.import_nir.import_from_nir``; `compare_with_executor` runs both on the same input
and counts where their spikes differ.

What to expect, and the importer's known problems worked around here (snnTorch 1.0.0,
nirtorch 2.6):
1. snnTorch hard-codes dt = 1e-4 (it is not read from the graph): our graphs pin dt = 1e-4
   (`schema.DT`), and `import_snntorch` refuses a graph with any other dt.
2. Its LIF is ``Leaky(beta = 1 − dt/tau = 0.5, threshold = v_threshold / (r·dt/tau) = 2θ)``:
   mem = 0.5·mem + I = 2H, so spikes agree with ours except for the compare (snnTorch fires
   on mem > thr; our model on H ≥ θ) and float rounding: snnTorch runs in float32 (its
   surrogate spike functions return float32 spikes, so a float64 run fails at the next layer).
   It needs one threshold per layer: our per-neuron arrays are uniform within a LIF node.
3. nirtorch 2.6's default Affine mapping drops the bias (NIRTorch PR #55); snnTorch's
   importer maps Affine/Conv2d itself and sets the bias, so the parts here are not affected
   (a test checks fc1's bias reaches the module).
4. snnTorch maps ``nir.Flatten`` dims as torch dims, off by one for the batch axis; the parts
   contain no Flatten (the text input is flattened on the host, `InputEncoding`).
5. The importer prints progress/warnings on stdout and rewrites the graph it is given:
   stdout is captured and it only ever gets a fresh copy made by `standard_part`.
6. Its neurons keep state inside the modules (``init_hidden=True``): every Leaky is reset
   before each sample.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import nir
import numpy as np
import torch
from torch import Tensor, nn

from export.nir.errors import GraphStructureError, UnknownExtensionError
from export.nir.from_nir import from_nir
from export.nir.schema import DT, GRAPH_KEY, GraphMeta, graph_meta

STANDARD_PARTS = {
    "text": ("text_encoder.encode", "text_encoder.fc2"),
    "stem": ("image_encoder.encode", "image_encoder.tokenizer.conv2"),
}
"""Part name → (node whose output is the part's input, last node of the part)."""

SNNTORCH_TYPES = (nir.Affine, nir.Linear, nir.Conv2d, nir.LIF)
FLOAT32_NEAR_TIE = 1e-4
"""|H − θ| below this (in input units) is within float32 rounding of the threshold."""


def _out_shape(node: nir.NIRNode) -> tuple[int, ...]:
    (shape,) = node.output_type.values()
    return tuple(int(s) for s in np.asarray(shape).reshape(-1))


def standard_part(graph: nir.NIRGraph, part: str) -> nir.NIRGraph:
    """The nodes strictly after `STANDARD_PARTS[part][0]` up to and including its last node,
    as a fresh graph with its own Input ("input") and Output ("output")."""
    if part not in STANDARD_PARTS:
        raise GraphStructureError(
            f"unknown standard part {part!r} (known: {sorted(STANDARD_PARTS)})"
        )
    after, until = STANDARD_PARTS[part]
    for name in (after, until):
        if name not in graph.nodes:
            raise GraphStructureError(f"part {part!r} needs node {name!r}, not in the graph")
    succ: dict[str, list[str]] = {}
    pred: dict[str, list[str]] = {}
    for s, d in graph.edges:
        succ.setdefault(s, []).append(d)
        pred.setdefault(d, []).append(s)

    def reach(start: list[str], nbrs: dict[str, list[str]]) -> set[str]:
        seen, todo = set(), list(start)
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo.extend(nbrs.get(n, []))
        return seen

    keep = reach(succ.get(after, []), succ) & reach([until], pred)
    order = [n for n in graph.nodes if n in keep]
    for name in order:
        node = graph.nodes[name]
        if not isinstance(node, SNNTORCH_TYPES):
            raise UnknownExtensionError(name, f"{type(node).__name__} is not a standard node")
    nodes: dict[str, nir.NIRNode] = {
        "input": nir.Input(input_type=np.array(_out_shape(graph.nodes[after])))
    }
    nodes.update({n: graph.nodes[n] for n in order})
    nodes["output"] = nir.Output(output_type=np.array(_out_shape(graph.nodes[until])))
    edges = [(s, d) for s, d in graph.edges if s in keep and d in keep]
    edges += [("input", d) for d in succ[after] if d in keep] + [(until, "output")]
    meta = graph_meta(graph)
    part_meta = GraphMeta(discretization=meta.discretization, extensions=(), towers=(part,))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={GRAPH_KEY: part_meta.to_metadata()})


def import_snntorch(part_graph: nir.NIRGraph) -> nn.Module:
    """``snntorch.import_nir.import_from_nir`` on a standard part (see the module docstring)."""
    from snntorch.import_nir import import_from_nir

    dt = graph_meta(part_graph).discretization.dt
    if dt != DT:
        raise GraphStructureError(f"snnTorch's importer hard-codes dt = {DT}; the graph has {dt}")
    with contextlib.redirect_stdout(io.StringIO()):
        return import_from_nir(part_graph)


def run_snntorch(net: nn.Module, x: Tensor, timesteps: int) -> tuple[Tensor, dict[str, Tensor]]:
    """Feed the static input `x [B, ...]` for T steps from reset state.

    Returns (output `[T, B, ...]`, {NIR node name: spikes `[T, B, ...]`} of every Leaky).
    """
    import snntorch as snn

    leaky = {name: mod for name, mod in net.named_modules() if isinstance(mod, snn.Leaky)}
    spikes: dict[str, list[Tensor]] = {name: [] for name in leaky}
    hooks = [
        mod.register_forward_hook(lambda m, i, o, n=name: spikes[n].append(o.detach()))
        for name, mod in leaky.items()
    ]
    for mod in leaky.values():
        mod.mem = torch.zeros(0)  # Leaky re-zeroes a state whose shape does not match the input
    outputs, state = [], None
    try:
        with torch.no_grad():
            for _ in range(timesteps):
                out, state = net(x, state)
                outputs.append(out)
    finally:
        for h in hooks:
            h.remove()
    return torch.stack(outputs), {n: torch.stack(v) for n, v in spikes.items()}


@dataclass(frozen=True, kw_only=True)
class LifAgreement:
    """Spike agreement at one LIF: neuron-steps compared, spikes that differ, and how many of
    those lie within float32 rounding of the threshold (|H − θ| < FLOAT32_NEAR_TIE) or on an
    exact tie (|H − θ| < 1e-9, where our ≥ and snnTorch's > disagree by definition)."""

    node: str
    compared: int
    differ: int
    differ_near_tie: int
    differ_exact_tie: int


def compare_with_executor(graph: nir.NIRGraph, part: str, x: Tensor) -> list[LifAgreement]:
    """Run `part` of `graph` in snnTorch (float32) and in our executor (float64) on the static
    input `x [B, ...]`, and count spike differences per LIF."""
    part_graph = standard_part(graph, part)
    timesteps = graph_meta(part_graph).discretization.timesteps
    ours = from_nir(part_graph)(x.double(), record=True)
    net = import_snntorch(standard_part(graph, part))
    _, theirs = run_snntorch(net, x.float(), timesteps)
    out = []
    for node in ours.spikes:
        key = node.replace(".", "_")  # nirtorch's module names
        if key not in theirs:
            raise GraphStructureError(f"snnTorch module for LIF {node!r} not found")
        mine, h = ours.spikes[node], ours.membranes[node]
        theta = torch.as_tensor(part_graph.nodes[node].v_threshold, dtype=h.dtype)
        diff = mine != theirs[key].double()
        gap = (h - theta).abs()
        out.append(
            LifAgreement(
                node=node,
                compared=diff.numel(),
                differ=int(diff.sum()),
                differ_near_tie=int((diff & (gap < FLOAT32_NEAR_TIE)).sum()),
                differ_exact_tie=int((diff & (gap < 1e-9)).sum()),
            )
        )
    return out
