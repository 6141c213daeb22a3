"""snnTorch interop: the standard parts of a `to_nir` graph, run by snnTorch's own importer.

The parts (``text_encoder``, ``image_stem``) are cut by `export.nir.parts.cut_part`;
`import_snntorch` hands one to ``snntorch.import_nir.import_from_nir``, `run_snntorch` steps the
imported network, and `compare_with_executor` runs a part in snnTorch (float32) and in our
executor (float64) on the same input and counts where their spikes differ.

snnTorch 1.0.0 (with nirtorch 2.6) reads our LIF as ``Leaky(beta = 1 − dt/tau = 0.5,
threshold = v_threshold / (r·dt/tau) = 2θ, reset "zero", reset_delay False)``: mem = 2H, so it
fires like our model except on exact ties (it fires on mem > thr, we on H ≥ θ) and float32
rounding. What this module works around (details and source lines: export/nir/FOREIGN.md):
dt is hard-coded to 1e-4 (a graph with another dt is refused here); the importer prints on
stdout (captured); its neurons keep state inside the modules (``init_hidden=True``), so every
Leaky is reset before each sample; it runs float32 only.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import nir
import torch
from torch import Tensor, nn

from export.nir.errors import GraphStructureError
from export.nir.from_nir import from_nir
from export.nir.parts import cut_part
from export.nir.schema import DT, graph_meta

FLOAT32_NEAR_TIE = 1e-4
"""|H − θ| below this (in input units) is within float32 rounding of the threshold."""


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
    part_graph = cut_part(graph, part)
    timesteps = graph_meta(part_graph).discretization.timesteps
    ours = from_nir(part_graph)(x.double(), record=True)
    net = import_snntorch(cut_part(graph, part))
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
