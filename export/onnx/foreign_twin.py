"""The ANN twin of a foreign NIR graph, exported to ONNX for its MAC count (issue 24).

The twin is the same graph with each neuron a ReLU: every ``Affine``, ``Linear``, ``Scale``,
``Flatten``, ``Conv1d``, ``Conv2d``, ``SumPool2d`` and ``AvgPool2d`` node is kept as the NIR
specification defines it (the importer's own ops, :data:`hardware.lower.from_foreign_nir.LINEAR`,
one source of truth), several edges into a node sum, and each neuron node (``LIF``, ``CubaLIF``,
``IF``, ``LI``, ``CubaLI``, ``Threshold``) becomes ``y = ReLU(x)`` of its summed input (its τ,
``r``, ``w_in``, ``v_leak`` and threshold are no part of an ANN, and do not change a MAC); a
``Delay`` passes its input on (an ANN has no time).
It runs once (T = 1, as the SpikeCLIP ANN twin), so the edges that close a recurrent loop carry
nothing and are left out; nodes that reach no ``Output`` are left out too. Input ``[B, *shape]``
float32 (``input``), outputs ``[B, *shape]`` float32, one per NIR ``Output`` node in the graph's
order (``output_0`` …).

Each kept linear node is a submodule named after its NIR node, so the ONNX exporter scopes its
nodes ``/<key>/…`` and :func:`onnx_macs_per_neuron` can give each MAC node back to the
neuron its chain feeds: the energy report prices each synapse layer with those MACs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import reduce
from operator import add
from pathlib import Path

import nir
import torch
from torch import Tensor, nn

from export.onnx.ann_twin import export_onnx
from export.onnx.macs import OnnxMacs
from hardware.energy.counts import LayerCounts
from hardware.energy.network_counts import RECURRENT_SUFFIX
from hardware.ir.layers import LIFLayer
from hardware.ir.network import LoihiNetwork
from hardware.lower.from_foreign_nir import LINEAR, REGISTRY, forward_order
from spikeclip.errors import SpikeCLIPError

INPUT_NAME = "input"


class ForeignTwinError(SpikeCLIPError, RuntimeError):
    """An ONNX MAC node that no NIR node of the twin owns (a bug: exit 7)."""


def _key(name: str) -> str:
    """A submodule name for NIR node ``name`` (no dots; unique per graph by its index)."""
    return re.sub(r"\W", "_", name)


class _Op(nn.Module):
    """One NIR linear node: its bias-free op, then its bias (float32)."""

    def __init__(self, name: str, node) -> None:
        super().__init__()
        self.op = LINEAR[type(node)](name, node)

    def forward(self, x: Tensor) -> Tensor:
        y = self.op.lin(x)
        return y if self.op.bias is None else y + self.op.bias.to(y.dtype)


class ReluTwin(nn.Module):
    """The ReLU twin of ``graph`` (module doc); ``input_shape`` the Input's shape without a
    batch axis (the importer's, :attr:`hardware.lower.float_graph.FloatGraph.input_shape`)."""

    def __init__(self, graph: nir.NIRGraph, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        order, forward, _ = forward_order(graph)
        outputs = [n for n in order if REGISTRY[type(graph.nodes[n])] == "output"]
        needed = _reaching(forward, set(outputs))
        self.input_shape = tuple(input_shape)
        self.roles = {n: REGISTRY[type(graph.nodes[n])] for n in order if n in needed}
        self.inputs = {n: [s for s, d in forward if d == n and s in needed] for n in self.roles}
        self.keys = {n: f"{i}_{_key(n)}" for i, n in enumerate(self.roles)}
        self.ops = nn.ModuleDict({self.keys[n]: _Op(n, graph.nodes[n])
                                  for n, r in self.roles.items() if r == "linear"})
        self.outputs = outputs

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        vals: dict[str, Tensor] = {}
        for name, role in self.roles.items():
            v = x if role == "input" else reduce(add, (vals[s] for s in self.inputs[name]))
            if role == "linear":
                v = self.ops[self.keys[name]](v)
            elif role == "neuron":
                v = torch.relu(v)
            vals[name] = v
        return tuple(vals[o] for o in self.outputs)


def _reaching(edges: list[tuple[str, str]], targets: set[str]) -> set[str]:
    """The nodes with a path (over ``edges``) to one of ``targets``, the targets included."""
    found, todo = set(targets), list(targets)
    while todo:
        dst = todo.pop()
        for s, d in edges:
            if d == dst and s not in found:
                found.add(s)
                todo.append(s)
    return found


def export_foreign_twin(twin: ReluTwin, path: str | os.PathLike) -> Path:
    """Write ``twin`` as ONNX (batch 1, float32, opset of :func:`export_onnx`, checked by
    ``onnx.checker``) to ``path``, atomically."""
    example = torch.zeros(1, *twin.input_shape)
    names = [f"output_{i}" for i in range(len(twin.outputs))]
    return export_onnx(twin, example, path, input_name=INPUT_NAME, output_names=names)


def _owner(twin: ReluTwin, node_name: str) -> str:
    """The NIR node whose submodule scope holds ONNX node ``node_name`` (``/<key>/MatMul``;
    ``/ops.<key>/…`` with other torch versions)."""
    scopes = set(node_name.split("/"))
    for name, key in twin.keys.items():
        if key in scopes or f"ops.{key}" in scopes:
            return name
    raise ForeignTwinError(f"ONNX node {node_name!r} belongs to no NIR node of the twin")


def consumers(twin: ReluTwin) -> dict[str, str]:
    """Each kept linear NIR node → the neuron (or ``Output``) its chain of linear nodes feeds."""
    succ: dict[str, list[str]] = {}
    for dst, srcs in twin.inputs.items():
        for s in srcs:
            succ.setdefault(s, []).append(dst)
    found = {}
    for name, role in twin.roles.items():
        if role != "linear":
            continue
        n = name
        while twin.roles[n] in ("linear", "delay"):
            n = succ[n][0]
        found[name] = n
    return found


def onnx_macs_per_neuron(twin: ReluTwin, macs: OnnxMacs) -> Mapping[str, int]:
    """``{neuron or Output node: MACs per sample}``: each ONNX MAC node (batch 1) given to the
    neuron its NIR linear node feeds (:func:`consumers`)."""
    feeds = consumers(twin)
    per: dict[str, int] = {}
    for node in macs.nodes:
        target = feeds[_owner(twin, node.name)]
        per[target] = per.get(target, 0) + node.macs
    return per


def with_onnx_ann_macs(network: LoihiNetwork, layers: Sequence[LayerCounts],
                       per_neuron: Mapping[str, int], *, samples: int) -> list[LayerCounts]:
    """``layers`` with each synapse layer's ``ann_macs`` taken from the ONNX twin: neuron ``X``'s
    MACs per sample (``per_neuron``) × ``samples`` on its first synapse layer ``X.syn``/``X.syn0``
    (the importer's names; a neuron fed by several sources has its MACs on the first), 0 on
    every other layer (neurons), except a recurrent LIF's feedback synapse ``<lif>.rec``, which
    keeps its own count: the ONNX file leaves loop edges out (T = 1, they would carry zeros),
    and its ANN twin is one step of an RNN cell with the same N×N matrix, N² MACs per sample
    (:func:`hardware.energy.counts.recurrent_counts`).
    Raises :class:`ForeignTwinError` when a neuron with MACs has no synapse layer."""
    first: dict[str, str] = {}
    for layer in network.layers:
        for edge in network.out_edges(layer.name):
            if layer.name in (f"{edge.dst}.syn", f"{edge.dst}.syn0"):
                first[edge.dst] = layer.name
    missing = sorted(set(per_neuron) - set(first))
    if missing:
        raise ForeignTwinError(f"ONNX twin MACs for {missing}, which have no synapse layer")
    macs = {first[n]: m * samples for n, m in per_neuron.items()}
    rec = {ly.name + RECURRENT_SUFFIX for ly in network.layers
           if isinstance(ly, LIFLayer) and ly.rec_weights is not None}
    return [replace(c, ann_macs=c.ann_macs if c.name in rec else macs.get(c.name, 0))
            for c in layers]
