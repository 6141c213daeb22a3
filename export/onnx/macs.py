"""Count multiply-accumulates (MACs) per node of an ONNX file, from the file alone.

Procedure (research/energy_digest §5): fix every symbolic dimension, run
``onnx.shape_inference.infer_shapes(strict_mode=True, data_prop=True)``, build a shape table
and count per node (one MAC = one multiply-accumulate; FLOPs would be 2·MACs):

- ``Conv``: ``prod(Y) · prod(W.shape[1:])`` (W is ``[C_out, C_in/g, k…]``); bias adds ``prod(Y)``;
- ``ConvTranspose``: ``prod(X) · prod(W.shape[1:])``;
- ``Gemm``: ``M·N·K`` honouring ``transA``/``transB``; bias adds ``M·N`` when C is given;
- ``MatMul``: ``prod(Y) · K`` (numpy broadcasting and 1-D rules included), tagged
  ``act_x_act`` when neither operand is static (an initializer, a constant, a declared static
  graph input, or computed from static values only): the attention products;
- ``Einsum`` (two operands, no ellipsis): the product of the sizes of all distinct indices.

Bias adds, normalization, softmax and activations are not MACs; other op types are listed with
their node counts. Control flow (``Loop``, ``Scan``, ``If``) is refused with a typed error.
Where static inference leaves a shape unknown (torch's exporter emits shape arithmetic such as
``Expand(…, Where(Equal(…)))`` that ``data_prop`` cannot fold), the shapes are taken from one
onnxruntime run of the same file on zero inputs with every intermediate exposed as an output
(onnx-opcounter's fallback); `OnnxMacs.shapes_from` says which.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import shape_inference

from spikeclip.errors import UnsupportedError

MAC_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul", "Einsum")
REFUSED_OPS = ("Loop", "Scan", "If")


class OnnxMacsError(UnsupportedError, ValueError):
    """The ONNX graph cannot be counted (unknown dimension, missing shape, refused op)."""


@dataclass(frozen=True, kw_only=True)
class NodeMacs:
    """MACs of one ONNX node for the whole input batch; ``out_shape`` of its first output."""

    name: str
    op_type: str
    macs: int
    bias_adds: int
    act_x_act: bool
    out_shape: tuple[int, ...]


@dataclass(frozen=True, kw_only=True)
class OnnxMacs:
    """Per-node MAC counts of one graph; ``other_ops`` counts nodes of non-MAC op types."""

    nodes: tuple[NodeMacs, ...]
    other_ops: tuple[tuple[str, int], ...]
    shapes_from: str  # "shape_inference" or "onnxruntime"

    @property
    def total(self) -> int:
        """All MACs of the graph (bias adds excluded)."""
        return sum(n.macs for n in self.nodes)

    @property
    def act_x_act(self) -> int:
        """MACs of products of two activations (attention)."""
        return sum(n.macs for n in self.nodes if n.act_x_act)

    @property
    def bias_adds(self) -> int:
        """Bias additions of Conv/Gemm nodes (not MACs)."""
        return sum(n.bias_adds for n in self.nodes)


def _fix_dims(model: onnx.ModelProto, dims: Mapping[str, int]) -> None:
    """Replace every symbolic input/output dimension by its value in ``dims`` (in place)."""
    for vi in (*model.graph.input, *model.graph.output):
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_param"):
                if d.dim_param not in dims:
                    raise OnnxMacsError(
                        f"graph {vi.name!r}: symbolic dimension {d.dim_param!r} has no value; "
                        f"pass dims={{{d.dim_param!r}: N}}"
                    )
                d.dim_value = int(dims[d.dim_param])


def _shape_table(model: onnx.ModelProto) -> dict[str, tuple[int, ...] | None]:
    """Tensor name → concrete shape (None where any dimension is unknown)."""
    table: dict[str, tuple[int, ...] | None] = {}
    g = model.graph
    for vi in (*g.input, *g.value_info, *g.output):
        t = vi.type.tensor_type
        if not t.HasField("shape"):
            table[vi.name] = None
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        table[vi.name] = None if None in dims else tuple(int(d) for d in dims)
    for init in g.initializer:
        table[init.name] = tuple(int(d) for d in init.dims)
    return table


def _runtime_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...] | None]:
    """Shapes of every node output from one onnxruntime run on zero inputs (dims fixed)."""
    run = onnx.ModelProto()
    run.CopyFrom(model)
    known = {o.name for o in run.graph.output}
    for node in run.graph.node:
        run.graph.output.extend(
            onnx.ValueInfoProto(name=o) for o in node.output if o and o not in known
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(run.SerializeToString(), options, ["CPUExecutionProvider"])
    feeds = {}
    for vi in session.get_inputs():
        dtype = np.int64 if "int64" in vi.type else np.float32
        feeds[vi.name] = np.zeros(vi.shape, dtype=dtype)
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, feeds)
    table = _shape_table(model)
    table.update(
        {n: tuple(int(d) for d in np.shape(v)) for n, v in zip(names, values, strict=True)}
    )
    return table


def _static_names(model: onnx.ModelProto, static_inputs: Collection[str]) -> set[str]:
    """Tensors that are not activations: weights, constants and values computed from them."""
    static = {i.name for i in model.graph.initializer} | set(static_inputs)
    for node in model.graph.node:  # nodes are topologically sorted in a valid model
        ins = [i for i in node.input if i]
        if node.op_type in ("Constant", "Shape", "Size") or all(i in static for i in ins):
            static.update(o for o in node.output if o)
    return static


def _shape(table: Mapping[str, tuple[int, ...] | None], name: str, node: onnx.NodeProto):
    shape = table.get(name)
    if shape is None:
        raise OnnxMacsError(
            f"node {node.name or node.op_type!r} ({node.op_type}): no concrete shape for "
            f"tensor {name!r} after shape inference"
        )
    return shape


def _einsum_macs(node: onnx.NodeProto, shapes: list[tuple[int, ...]]) -> int:
    eq = next(a.s.decode() for a in node.attribute if a.name == "equation").replace(" ", "")
    lhs = eq.split("->")[0].split(",")
    if len(lhs) != 2 or "..." in eq:
        raise OnnxMacsError(f"node {node.name!r} (Einsum): only 2-operand, no-ellipsis equations")
    sizes: dict[str, int] = {}
    for letters, shape in zip(lhs, shapes, strict=True):
        sizes.update(zip(letters, shape, strict=True))
    return int(np.prod(list(sizes.values()), dtype=np.int64))


def _node_macs(node, table, static) -> NodeMacs:
    op = node.op_type
    y = _shape(table, node.output[0], node)
    ins = [_shape(table, i, node) for i in node.input if i]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    n_y = int(np.prod(y, dtype=np.int64))
    bias = 0
    if op == "Conv":
        macs = n_y * int(np.prod(ins[1][1:], dtype=np.int64))
        bias = n_y if len(ins) > 2 else 0
    elif op == "ConvTranspose":
        macs = int(np.prod(ins[0], dtype=np.int64)) * int(np.prod(ins[1][1:], dtype=np.int64))
        bias = n_y if len(ins) > 2 else 0
    elif op == "Gemm":
        a, b = ins[0], ins[1]
        m, k = (a[1], a[0]) if attrs.get("transA", 0) else (a[0], a[1])
        n = b[0] if attrs.get("transB", 0) else b[1]
        macs = m * n * k
        bias = m * n if len(ins) > 2 else 0
    elif op == "MatMul":
        macs = n_y * ins[0][-1]
    else:
        macs = _einsum_macs(node, ins)
    both_dynamic = all(i not in static for i in list(node.input)[:2] if i)
    return NodeMacs(
        name=node.name or f"{op}:{node.output[0]}",
        op_type=op,
        macs=int(macs),
        bias_adds=int(bias),
        act_x_act=op in ("MatMul", "Einsum") and both_dynamic,
        out_shape=tuple(y),
    )


def count_onnx_macs(
    model: onnx.ModelProto | str | PathLike,
    *,
    dims: Mapping[str, int] | None = None,
    static_inputs: Collection[str] = (),
) -> OnnxMacs:
    """MACs per node of an ONNX model (a proto or a file path; the proto is not modified).

    ``dims`` gives a value to each symbolic dimension (batch, T, tokens). ``static_inputs`` names
    graph inputs that are weights rather than activations (for graphs built with weights as
    inputs). Raises `OnnxMacsError` naming the node or tensor when it cannot count.
    """
    proto = onnx.load(Path(model)) if isinstance(model, str | PathLike) else model
    work = onnx.ModelProto()
    work.CopyFrom(proto)
    _fix_dims(work, dims or {})
    try:
        work = shape_inference.infer_shapes(work, check_type=True, strict_mode=True, data_prop=True)
    except onnx.shape_inference.InferenceError as err:
        raise OnnxMacsError(f"ONNX shape inference failed: {err}") from err
    table = _shape_table(work)
    shapes_from = "shape_inference"
    mac_outputs = [n.output[0] for n in work.graph.node if n.op_type in MAC_OPS]
    if any(table.get(o) is None for o in mac_outputs):
        table = _runtime_shapes(work)
        shapes_from = "onnxruntime"
    static = _static_names(work, static_inputs)
    nodes, other = [], Counter()
    for node in work.graph.node:
        if node.op_type in REFUSED_OPS:
            raise OnnxMacsError(f"node {node.name!r}: control flow {node.op_type} is not counted")
        if node.op_type in MAC_OPS and node.domain in ("", "ai.onnx"):
            nodes.append(_node_macs(node, table, static))
        else:
            other[node.op_type] += 1
    return OnnxMacs(
        nodes=tuple(nodes), other_ops=tuple(sorted(other.items())), shapes_from=shapes_from
    )
