"""`from_nir`: run any graph `to_nir` writes, in logical time, as a torch module.

This module must not import `spikeclip` (a test checks it): everything it runs comes from the
graph — standard nodes by their NIR fields, extensions by their `schema` specs, the LIF update
and the readout by ``graph.metadata["spikeclip"]``. Semantics are those of `export.nir.schema`
(module docstring): T steps from zero state, nodes in topological order, no edge delay, several
incoming edges summed in edge order, forward-Euler LIF.

Tensors: every node output is `[T, B, *shape]` (shape as in the graph, no batch axis). Inputs
are `[B, *shape]` (presented unchanged at every step) or `[T, B, *shape]`. Stateless nodes run
on the `T·B`-flattened tensor at once; only LIF nodes loop over T.

Lowering is a dispatch table: `NODE_OPS[type(node)]` builds a module for a standard node,
`EXTENSION_OPS[spec.op]` for an extension; anything else raises `UnknownExtensionError`
naming the node.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import nir
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from export.nir.errors import GraphStructureError, UnknownExtensionError
from export.nir.schema import (
    AttentionSpec,
    Discretization,
    ExtensionSpec,
    MaxPoolSpec,
    ReadoutDecoding,
    StaticInputSpec,
    extension_spec,
    graph_meta,
)


@dataclass(frozen=True, kw_only=True, eq=False)
class NIRRun:
    """What one executor call produced.

    outputs: Output node → `[T, B, *shape]` per-step values; features: Output node → decoded
    `[B, F]` (only Outputs with a readout decoding); spikes / membranes: LIF node → `[T, B,
    *shape]` spikes (0/1) and pre-reset membranes H (filled only with ``record=True``).
    """

    outputs: dict[str, Tensor]
    features: dict[str, Tensor]
    spikes: dict[str, Tensor] = field(default_factory=dict)
    membranes: dict[str, Tensor] = field(default_factory=dict)


def _param(array: np.ndarray, dtype: torch.dtype) -> Tensor:
    return torch.as_tensor(np.asarray(array, dtype=np.float64)).to(dtype)


def _pair(value) -> tuple[int, int] | str:
    if isinstance(value, str):
        return value
    arr = np.atleast_1d(np.asarray(value)).astype(np.int64)
    return (int(arr[0]), int(arr[-1]))


class _TimeFlat(nn.Module):
    """Base of stateless ops: `fn` runs on `[T·B, *shape]` and the time axis is restored."""

    def per_sample(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        """`[T, B, *in]` → `[T, B, *out]`."""
        return self.per_sample(x.flatten(0, 1)).unflatten(0, x.shape[:2])


class _Identity(_TimeFlat):
    def per_sample(self, x: Tensor) -> Tensor:
        return x


class _Conv(_TimeFlat):
    """nir.Conv1d / nir.Conv2d: torch cross-correlation with bias."""

    def __init__(self, node: nir.Conv1d | nir.Conv2d, dtype: torch.dtype) -> None:
        super().__init__()
        self.register_buffer("weight", _param(node.weight, dtype))
        self.register_buffer("bias", _param(node.bias, dtype))
        self.two_d = isinstance(node, nir.Conv2d)
        conv_args = (node.stride, node.padding, node.dilation)
        if self.two_d:
            self.stride, self.padding, self.dilation = (_pair(a) for a in conv_args)
        else:
            self.stride, self.padding, self.dilation = (
                a if isinstance(a, str) else int(np.asarray(a).reshape(-1)[0]) for a in conv_args
            )
        self.groups = int(node.groups)

    def per_sample(self, x: Tensor) -> Tensor:
        conv = F.conv2d if self.two_d else F.conv1d
        return conv(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )


class _Affine(_TimeFlat):
    """nir.Affine / nir.Linear with a 2-D weight: y = x Wᵀ (+ b)."""

    def __init__(self, name: str, node: nir.Affine | nir.Linear, dtype: torch.dtype) -> None:
        super().__init__()
        if np.ndim(node.weight) != 2:
            raise UnknownExtensionError(
                name, f"{type(node).__name__} weight of shape {np.shape(node.weight)} (only 2-D)"
            )
        self.register_buffer("weight", _param(node.weight, dtype))
        bias = getattr(node, "bias", None)
        self.register_buffer("bias", None if bias is None else _param(bias, dtype))

    def per_sample(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)


class _Scale(_TimeFlat):
    def __init__(self, node: nir.Scale, dtype: torch.dtype) -> None:
        super().__init__()
        self.register_buffer("scale", _param(node.scale, dtype))

    def per_sample(self, x: Tensor) -> Tensor:
        return x * self.scale


class _Flatten(_TimeFlat):
    """nir.Flatten: dims count without the batch axis."""

    def __init__(self, node: nir.Flatten) -> None:
        super().__init__()
        self.start = int(node.start_dim) + 1
        end = int(node.end_dim)
        self.end = end + 1 if end >= 0 else end

    def per_sample(self, x: Tensor) -> Tensor:
        return x.flatten(self.start, self.end)


class _MaxPool(_TimeFlat):
    """max_pool2d extension: torch's max-pool, whose padding is −∞."""

    def __init__(self, spec: MaxPoolSpec) -> None:
        super().__init__()
        self.spec = spec

    def per_sample(self, x: Tensor) -> Tensor:
        s = self.spec
        return F.max_pool2d(x, s.kernel_size, s.stride, s.padding)


class _Attention(_TimeFlat):
    """spiking_attention extension: q|k|v `[3D, *grid]` → scale·Q(KᵀV) per head `[D, *grid]`."""

    def __init__(self, spec: AttentionSpec) -> None:
        super().__init__()
        self.spec = spec

    def per_sample(self, x: Tensor) -> Tensor:
        s = self.spec
        n, grid = x.shape[0], x.shape[2:]
        d_model = s.num_heads * s.head_dim
        # [n, 3, heads, d, N] → q, k, v as [n, heads, N, d]
        qkv = x.reshape(n, 3, s.num_heads, s.head_dim, -1).transpose(-2, -1)
        q, k, v = qkv.unbind(1)
        y = q @ (k.transpose(-2, -1) @ v) * s.scale
        return y.transpose(-2, -1).reshape(n, d_model, *grid)


class _LIF(nn.Module):
    """nir.LIF under the graph's `Discretization` (forward Euler, hard reset, compare)."""

    def __init__(self, node: nir.LIF, disc: Discretization, dtype: torch.dtype) -> None:
        super().__init__()
        self.register_buffer("coef", _param(disc.dt / np.asarray(node.tau, np.float64), dtype))
        for key in ("r", "v_leak", "v_threshold", "v_reset"):
            self.register_buffer(key, _param(getattr(node, key), dtype))
        self.strict = disc.compare == ">"

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """`x [T, B, *shape]` currents → (spikes, pre-reset membranes H), both `[T, B, *shape]`."""
        v = torch.zeros_like(x[0])
        spikes, hs = [], []
        for x_t in x:
            h = v + self.coef * (self.v_leak - v + self.r * x_t)
            s = h > self.v_threshold if self.strict else h >= self.v_threshold
            v = torch.where(s, self.v_reset, h)
            spikes.append(s.to(x.dtype))
            hs.append(h)
        return torch.stack(spikes), torch.stack(hs)


NODE_OPS: dict[type, Callable[[str, nir.NIRNode, Discretization, torch.dtype], nn.Module]] = {
    nir.Input: lambda name, node, disc, dt: _Identity(),
    nir.Output: lambda name, node, disc, dt: _Identity(),
    nir.Conv1d: lambda name, node, disc, dt: _Conv(node, dt),
    nir.Conv2d: lambda name, node, disc, dt: _Conv(node, dt),
    nir.Affine: lambda name, node, disc, dt: _Affine(name, node, dt),
    nir.Linear: lambda name, node, disc, dt: _Affine(name, node, dt),
    nir.Scale: lambda name, node, disc, dt: _Scale(node, dt),
    nir.Flatten: lambda name, node, disc, dt: _Flatten(node),
    nir.LIF: lambda name, node, disc, dt: _LIF(node, disc, dt),
}
"""Standard NIR node type → executor module builder (nested graphs go to `EXTENSION_OPS`)."""

EXTENSION_OPS: dict[str, Callable[[ExtensionSpec], nn.Module]] = {
    StaticInputSpec.op: lambda spec: _Identity(),
    MaxPoolSpec.op: _MaxPool,
    AttentionSpec.op: _Attention,
}
"""Extension op name → executor module builder."""


def _lower(name: str, node: nir.NIRNode, disc: Discretization, dtype: torch.dtype) -> nn.Module:
    if isinstance(node, nir.NIRGraph):
        spec = extension_spec(name, node)
        if spec.op not in EXTENSION_OPS:
            raise UnknownExtensionError(name, f"extension {spec.op!r} has no executor op")
        return EXTENSION_OPS[spec.op](spec)
    builder = NODE_OPS.get(type(node))
    if builder is None:
        raise UnknownExtensionError(
            name, f"node type {type(node).__name__} is not part of what to_nir writes"
        )
    return builder(name, node, disc, dtype)


def topological_order(graph: nir.NIRGraph) -> list[str]:
    """Node names so that every edge goes forward; ties keep the graph's node order."""
    names = list(graph.nodes)
    indegree = {n: 0 for n in names}
    succ: dict[str, list[str]] = {n: [] for n in names}
    for src, dst in graph.edges:
        if src not in indegree or dst not in indegree:
            raise GraphStructureError(f"edge ({src!r}, {dst!r}) names a node not in the graph")
        succ[src].append(dst)
        indegree[dst] += 1
    ready = [n for n in names if indegree[n] == 0]
    order: list[str] = []
    while ready:
        node = ready.pop(0)
        order.append(node)
        for nxt in succ[node]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
    if len(order) != len(names):
        stuck = sorted(set(names) - set(order))
        raise GraphStructureError(
            f"graph has a cycle through {stuck[:3]} (logical time needs a DAG)"
        )
    return order


class NIRExecutor(nn.Module):
    """Torch module executing a `to_nir` graph (see the module docstring for the semantics)."""

    def __init__(self, graph: nir.NIRGraph, *, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        meta = graph_meta(graph)
        self.discretization = meta.discretization
        self.timesteps = meta.discretization.timesteps
        self.order = topological_order(graph)
        self.sources: dict[str, list[str]] = {n: [] for n in graph.nodes}
        for src, dst in graph.edges:
            self.sources[dst].append(src)
        self.ops = nn.ModuleDict()
        self._keys: dict[str, str] = {}
        for i, name in enumerate(self.order):
            key = f"n{i}"
            self._keys[name] = key
            self.ops[key] = _lower(name, graph.nodes[name], meta.discretization, dtype)
        self.input_shapes = {
            name: tuple(int(s) for s in node.input_type["input"])
            for name, node in graph.nodes.items()
            if isinstance(node, nir.Input)
        }
        self.output_names = [n for n, node in graph.nodes.items() if isinstance(node, nir.Output)]
        self.lif_names = [n for n, node in graph.nodes.items() if isinstance(node, nir.LIF)]
        self.decodings: dict[str, ReadoutDecoding] = {d.output: d for d in meta.decodings}
        self.dtype = dtype

    def _time_input(self, name: str, x: Tensor) -> Tensor:
        shape = self.input_shapes[name]
        if tuple(x.shape[-len(shape) :]) != shape or x.ndim not in (len(shape) + 1, len(shape) + 2):
            raise GraphStructureError(
                f"input {name!r} expects [B, {', '.join(map(str, shape))}] or [T, B, ...], "
                f"got {list(x.shape)}"
            )
        x = x.to(self.dtype)
        if x.ndim == len(shape) + 1:
            return x.unsqueeze(0).expand(self.timesteps, *x.shape)
        if x.shape[0] != self.timesteps:
            raise GraphStructureError(
                f"input {name!r} has T={x.shape[0]}, graph T={self.timesteps}"
            )
        return x

    def _decode(self, dec: ReadoutDecoding, out: Tensor) -> Tensor:
        if dec.token_axes:
            out = out.mean(dim=tuple(a + 2 for a in dec.token_axes))
        weights = torch.as_tensor(dec.time_weights, dtype=out.dtype)
        y = torch.einsum("t,tbf->bf", weights, out.flatten(2))
        if dec.head_weight is not None:
            bias = None if dec.head_bias is None else torch.as_tensor(dec.head_bias, dtype=y.dtype)
            y = F.linear(y, torch.as_tensor(dec.head_weight, dtype=y.dtype), bias)
        return y

    @torch.no_grad()
    def forward(self, inputs: Tensor | Mapping[str, Tensor], *, record: bool = False) -> NIRRun:
        """Run T steps from zero state; `inputs` is one tensor (single-input graph) or a dict."""
        if isinstance(inputs, Tensor):
            if len(self.input_shapes) != 1:
                raise GraphStructureError(
                    f"graph has inputs {sorted(self.input_shapes)}: pass a dict of tensors"
                )
            inputs = {next(iter(self.input_shapes)): inputs}
        missing = sorted(set(self.input_shapes) - set(inputs))
        if missing:
            raise GraphStructureError(f"missing graph input(s) {missing}")
        values: dict[str, Tensor] = {}
        spikes: dict[str, Tensor] = {}
        membranes: dict[str, Tensor] = {}
        for name in self.order:
            op = self.ops[self._keys[name]]
            if name in self.input_shapes:
                values[name] = self._time_input(name, inputs[name])
                continue
            srcs = self.sources[name]
            if not srcs:
                raise GraphStructureError(f"node {name!r} has no incoming edge")
            total = values[srcs[0]]
            for src in srcs[1:]:
                total = total + values[src]
            if isinstance(op, _LIF):
                values[name], h = op(total)
                if record:
                    spikes[name], membranes[name] = values[name], h
            else:
                values[name] = op(total)
        outputs = {n: values[n] for n in self.output_names}
        features = {n: self._decode(d, outputs[n]) for n, d in self.decodings.items()}
        return NIRRun(outputs=outputs, features=features, spikes=spikes, membranes=membranes)


def from_nir(graph: nir.NIRGraph, *, dtype: torch.dtype = torch.float64) -> NIRExecutor:
    """Build the executor of `graph` (a `to_nir` graph, possibly read back with ``nir.read``).

    Raises `UnknownExtensionError` naming the node for an unknown marker or node type,
    `MetadataError` when the ``spikeclip`` graph metadata is missing or malformed.
    """
    return NIRExecutor(graph, dtype=dtype)
