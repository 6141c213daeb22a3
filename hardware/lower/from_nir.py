"""Lower an ``export.nir`` graph (image tower) to a :class:`FloatGraph` for the quantizer.

Reads only the NIR graph and its SpikeCLIP metadata schema (`export.nir.schema`): standard
``Conv2d`` (BN already folded, float64) and ``LIF`` nodes, the ``static_input``, ``max_pool2d``
and ``spiking_attention`` extensions, and the Output node's readout decoding.

Lowering rules: the Conv2d fed by the static input becomes the host input (DESIGN §5); other
Conv2d nodes become synapses: 1×1 / stride 1 / no padding ones are token-linear (shared by all
tokens), the rest convs. A conv's bias moves to its consumers (every LIF, or the readout, it
feeds, through max-pools: exact, the bias is per channel), summed where several branches meet.
LIFs must be the forward-Euler ``LIF(tau = τ·dt, r = 1, v_leak = 0, v_reset = 0)`` with one
threshold per layer. Anything else raises :class:`FloatGraphError` naming the node.
"""

from __future__ import annotations

import nir
import numpy as np
import torch

from export.nir.schema import (
    AttentionSpec,
    MaxPoolSpec,
    StaticInputSpec,
    extension_spec,
    graph_meta,
    is_extension,
)
from hardware.lower.float_graph import (
    FLIF,
    FAttention,
    FHostInput,
    FloatGraph,
    FloatGraphError,
    FMaxPool,
    FNode,
    FReadout,
    FSynapse,
)


def _pair(v) -> tuple[int, int]:
    arr = np.atleast_1d(np.asarray(v)).astype(int)
    return (int(arr[0]), int(arr[-1]))


def nir_order(
    graph: nir.NIRGraph, edges: list[tuple[str, str]] | None = None
) -> tuple[list[str], list[str]]:
    """Kahn's topological order of ``graph``'s nodes (ties in insertion order) and the nodes
    left out of it (on or behind a cycle; empty for an acyclic graph). ``edges``: use these
    instead of the graph's (e.g. without its recurrent edges)."""
    edges = list(graph.edges) if edges is None else edges
    indeg = dict.fromkeys(graph.nodes, 0)
    for _, d in edges:
        indeg[d] += 1
    ready = [n for n in graph.nodes if indeg[n] == 0]
    order = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for s, d in edges:
            if s == n:
                indeg[d] -= 1
                if indeg[d] == 0:
                    ready.append(d)
    return order, [n for n in graph.nodes if n not in set(order)]


def _order(graph: nir.NIRGraph) -> list[str]:
    order, left = nir_order(graph)
    if left:
        raise FloatGraphError("lower_nir: the NIR graph has a cycle")
    return order


def _uniform(node_name: str, field: str, arr) -> float:
    a = np.asarray(arr, dtype=np.float64)
    if a.size == 0 or not np.all(a == a.flat[0]):
        raise FloatGraphError(f"lower_nir: LIF {node_name!r}: {field} must be uniform per layer")
    return float(a.flat[0])


def float_graph_from_nir(graph: nir.NIRGraph) -> FloatGraph:
    """The image tower of a ``to_nir`` graph as a FloatGraph (node names are the NIR names)."""
    meta = graph_meta(graph)
    disc = meta.discretization
    if disc.method != "forward_euler" or disc.reset != "zero":
        raise FloatGraphError(
            f"lower_nir: discretization {disc.method}/{disc.reset}; need forward_euler/zero"
        )
    decodings = {d.output: d for d in meta.decodings if d.feature == "image"}
    if len(decodings) != 1:
        raise FloatGraphError("lower_nir: expected exactly one image-tower output decoding")
    srcs: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for s, d in graph.edges:
        srcs[d].append(s)
    kind: dict[str, str] = {}
    nodes: list[FNode] = []
    edges: list[tuple[str, str]] = []
    conv_bias: dict[str, torch.Tensor] = {}
    taus: set[float] = set()
    input_shape: tuple[int, ...] = ()

    def bias_into(name: str, n_ch: int) -> torch.Tensor:
        """Sum of the biases of the convs feeding ``name`` (through max-pools)."""
        total = torch.zeros(n_ch, dtype=torch.float64)
        stack = list(srcs[name])
        while stack:
            s = stack.pop()
            if kind.get(s) == "pool":
                stack.extend(srcs[s])
            elif s in conv_bias:
                total = total + conv_bias[s]
        return total

    for name in _order(graph):
        node = graph.nodes[name]
        ins = srcs[name]
        if isinstance(node, nir.Input):
            kind[name] = "input"
            input_shape = tuple(int(x) for x in node.input_type["input"])
        elif is_extension(node):
            spec = extension_spec(name, node)
            if isinstance(spec, StaticInputSpec):
                kind[name] = "input"
            elif isinstance(spec, MaxPoolSpec):
                kind[name] = "pool"
                in_shape = tuple(int(x) for x in node.input_type["input"])
                out_shape = tuple(int(x) for x in node.output_type["output"])
                nodes.append(FMaxPool(name=name, in_shape=in_shape, out_shape=out_shape,
                                      kernel=spec.kernel_size, stride=spec.stride,
                                      padding=spec.padding))
                edges.extend((s, name) for s in ins)
            elif isinstance(spec, AttentionSpec):
                kind[name] = "attention"
                in_shape = tuple(int(x) for x in node.input_type["input"])
                out_shape = tuple(int(x) for x in node.output_type["output"])
                nodes.append(FAttention(name=name, channels=spec.num_heads * spec.head_dim,
                                        heads=spec.num_heads, qk_scale=spec.scale,
                                        in_shape=in_shape, out_shape=out_shape))
                edges.extend((s, name) for s in ins)
            else:
                raise FloatGraphError(f"lower_nir: node {name!r}: extension {spec.op} unsupported")
        elif isinstance(node, nir.Conv2d):
            w = torch.as_tensor(np.asarray(node.weight, np.float64))
            b = torch.as_tensor(np.asarray(node.bias, np.float64)).reshape(-1)
            in_shape = tuple(int(x) for x in node.input_type["input"])
            out_shape = tuple(int(x) for x in node.output_type["output"])
            stride, padding = _pair(node.stride), _pair(node.padding)
            if node.groups != 1 or _pair(node.dilation) != (1, 1):
                raise FloatGraphError(f"lower_nir: conv {name!r}: groups/dilation unsupported")
            if all(kind.get(s) == "input" for s in ins):
                kind[name] = "host"
                nodes.append(FHostInput(name=name, weight=w, bias=b, in_shape=in_shape,
                                        out_shape=out_shape, stride=stride, padding=padding))
                continue
            kind[name] = "synapse"
            conv_bias[name] = b
            if tuple(w.shape[2:]) == (1, 1) and stride == (1, 1) and padding == (0, 0):
                nodes.append(FSynapse(name=name, kind="token_linear", weight=w[:, :, 0, 0],
                                      in_shape=in_shape, out_shape=out_shape))
            else:
                nodes.append(FSynapse(name=name, kind="conv", weight=w, in_shape=in_shape,
                                      out_shape=out_shape, stride=stride, padding=padding))
            edges.extend((s, name) for s in ins)
        elif isinstance(node, nir.LIF):
            kind[name] = "lif"
            tau = _uniform(name, "tau", node.tau) / disc.dt
            taus.add(round(tau, 9))
            if _uniform(name, "r", node.r) != 1.0 or _uniform(name, "v_leak", node.v_leak) != 0:
                raise FloatGraphError(f"lower_nir: LIF {name!r}: need r = 1 and v_leak = 0")
            if node.v_reset is not None and np.any(np.asarray(node.v_reset) != 0):
                raise FloatGraphError(f"lower_nir: LIF {name!r}: need v_reset = 0")
            theta = _uniform(name, "v_threshold", node.v_threshold)
            shape = tuple(int(x) for x in np.shape(node.v_threshold))
            role = "attention" if any(kind.get(s) == "attention" for s in ins) else "lif"
            bias = bias_into(name, shape[0]).view(-1, *([1] * (len(shape) - 1))).expand(*shape)
            nodes.append(FLIF(name=name, shape=shape, theta=theta, tau=round(tau, 9), bias=bias,
                              role=role))
            edges.extend((s, name) for s in ins)
        elif isinstance(node, nir.Output) and name in decodings:
            dec = decodings[name]
            kind[name] = "readout"
            in_shape = tuple(int(x) for x in node.output_type["output"])
            hw = None if dec.head_weight is None else torch.as_tensor(dec.head_weight)
            hb = None if dec.head_bias is None else torch.as_tensor(dec.head_bias)
            nodes.append(FReadout(name=name, in_shape=in_shape, bias=bias_into(name, in_shape[0]),
                                  time_weights=torch.as_tensor(dec.time_weights),
                                  head_weight=hw, head_bias=hb, token_axes=dec.token_axes))
            edges.extend((s, name) for s in ins)
        else:
            raise FloatGraphError(
                f"lower_nir: node {name!r} ({type(node).__name__}) is not part of the image tower"
            )
    if len(taus) != 1:
        raise FloatGraphError(f"lower_nir: LIFs must share one τ, got {sorted(taus)}")
    return FloatGraph(nodes=tuple(nodes), edges=tuple(edges), T=disc.timesteps, tau=taus.pop(),
                      input_shape=input_shape, compare=disc.compare)
