"""The SpikeCLIP NIR metadata schema: what the graph means beyond NIR 1.0.8's 17 node types.

Everything the quantizer (or any other reader) needs besides the standard nodes lives in two
places, both written and read through this module only (`GraphMeta`, `extension_spec`):

1. ``graph.metadata["spikeclip"]`` (`GraphMeta`): format/version, the discretization, the list
   of extension nodes, the input encodings and the output decodings.
2. ``node.metadata["spikeclip_ext"]`` on every extension node (see "Extensions" below).

Why a schema: NIR metadata does not round-trip Python values (``None`` cannot be written, lists
of strings come back as byte arrays, bool/int/float come back as numpy scalars, dict order is
lost because HDF5 groups are sorted by name). Here every value is written as one of: ``str``,
``int`` (np.int64 on disk), ``float`` (np.float64), a numeric ``np.ndarray``, a ``dict`` with
``str`` keys, or a JSON string (for lists and tuples); absent optional values are omitted, never
``None``. Readers normalize back (`GraphMeta.from_metadata`), so ``nir.write``/``nir.read``
gives an equal `GraphMeta`.

Discretization (``metadata["spikeclip"]["discretization"]``, `Discretization`)
    Logical time: a sample runs ``timesteps`` steps t = 0 … T−1 from zero state; every node
    updates once per step, in topological order; edges carry no delay (a pipelined backend adds
    its own, DESIGN §4). Several edges into one node mean the sum of their sources (this is how
    the residual stream is written, below). Every ``nir.LIF`` is integrated by forward Euler
    with step ``dt`` (seconds; 1e-4, the value snnTorch's importer pins)::

        H[t] = V[t−1] + (dt/tau) · (v_leak − V[t−1] + r · I[t])      V[−1] = 0
        S[t] = H[t] >= v_threshold    (compare ">="; ">" when the model fires strictly)
        V[t] = v_reset where S[t] else H[t]                           (reset "zero": hard)

    The exporter writes tau = τ·dt (τ = 2 steps in SpikeCLIP, so dt/tau = 0.5 exactly), r = 1,
    v_leak = 0, v_reset = 0 (per-neuron arrays of the neuron shape), which makes this exactly
    the model's ``H = V + (X − V)/τ`` (the identity holds only under forward Euler; an
    exponential discretization would give a different decay).
    Spikes are 0/1 currents for the next node. Other NIR neuron types are not written.

Residual stream
    The image tower's real-valued residual stream X has no node of its own: every consumer of X
    (each block's ``attn.in_lif`` and ``mlp.in_lif``, and the image Output) has one incoming edge
    from each branch that has been added to X so far: ``tokenizer.conv4`` and, for every earlier
    block, ``attn.proj_conv`` and ``mlp.fc2_conv``, in that order (the edge order is the
    summation order). The sum of those sources is X. All stream tensors have shape (D, h, w);
    the N = h·w tokens are the row-major grid positions n = i·w + j, and every token-shared
    linear layer is a 1×1 ``nir.Conv2d`` on that grid.

Standard nodes and their parameters (all float64 in the graph, BatchNorm folded in float64)
    ``nir.Conv2d`` (weight (C_out, C_in, kH, kW), bias (C_out,), stride/padding/dilation pairs,
    groups, ``input_shape`` set) — torch cross-correlation; 1×1 convs are token-shared linears.
    ``nir.Affine`` (weight (F_out, F_in), bias (F_out,)). ``nir.LIF`` as above. Per-layer
    parameters are the node's own arrays; each node's ``metadata["source"]`` is a JSON list of
    the model's module paths it was made from (e.g. the conv and the BN folded into it). LIF
    nodes carry no bias (v_leak = 0): a neuron's constant input is the bias of the synapse
    node(s) feeding it — for a stream consumer, the sum of all its sources' biases.

Extensions (``metadata["spikeclip"]["extensions"]``: JSON list of {"node", "op"})
    NIR cannot express them, and a standard node type carrying them would be *run wrongly* by
    foreign importers (a max-pool as SumPool2d, attention as Affine). So each extension is a
    nested ``nir.NIRGraph`` node whose ``metadata`` holds ``spikeclip_ext`` = the op name, the
    schema version ``spikeclip_ext_version`` and the op's parameters (the spec classes below).
    Inside: ``input`` (nir.Input, the op's input shape) → ``op`` (a ``nir.Delay`` whose delays
    are NaN: nirtorch and snnTorch refuse Delay, and a NaN delay is invalid for anyone who does
    not) → ``shape`` (only when the output shape differs: a standard node whose only job is to
    give NIR's type checker the output shape; its parameters are placeholders, never executed)
    → ``output`` (nir.Output, the op's output shape). Readers take the semantics from the spec,
    never from the inner nodes. The ops:

    ``static_input`` (`StaticInputSpec`), shape-preserving: the tower's input is presented
        unchanged at every step (direct encoding). The node fed by it (image: ``conv0``; text:
        ``lif1``) sees a real-valued current that is constant over t — DESIGN §5 runs that
        first layer on the host and injects its current as a per-neuron bias.
    ``max_pool2d`` (`MaxPoolSpec`), (C, H, W) → (C, H', W'): y = max over each kernel window of
        the real-valued input current, windows placed by stride/padding as in torch; padded
        positions count as −∞ (``pad_value``), never 0. BN is already folded into the conv
        before it (exact, also for negative γ).
    ``spiking_attention`` (`AttentionSpec`), (3D, h, w) → (D, h, w): the input is the spike
        tensor of one LIF node holding q | k | v concatenated on the channel axis (edges into a
        node mean a sum, so three operands travel as one tensor). With channel c = head·d + j
        within each of q, k, v and tokens n = i·w + j, per head:
        ``Y_h = scale · Q_h (K_hᵀ V_h)`` with Q_h, K_h, V_h of shape (N, d), no softmax; the
        output current Y (channel = head·d + j) feeds the attention LIF (v_threshold 0.5).

Output decoding (``metadata["spikeclip"]["decodings"][<Output node>]``, `ReadoutDecoding`)
    The time-weighted readout is not a per-step node. The Output node delivers a per-step
    tensor O[t] (image: the residual stream (D, h, w); text: fc2's current (F,)). The tower's
    feature is ``y = head_weight · (Σ_t time_weights[t] · mean_{token_axes} O[t]) + head_bias``
    (``token_axes`` are axes of O[t] without the batch axis; head omitted when absent).

Input encoding (``metadata["spikeclip"]["encodings"][<Input node>]``, `InputEncoding`)
    What the host does before the graph: image — the CLIP-normalized image (C, H, W); text —
    ``flatten(token_embedding[ids] + position_embedding)``, i.e. ``TextEncoder.embed`` (no
    Flatten node is needed anywhere). ``model.nir`` leaves the tables in the checkpoint; the
    standalone ``text_encoder.nir`` (`export.nir.parts`) carries them under
    ``encodings["input"]["embedding"]`` (`TextEmbedding`: ``token_embedding`` [V, W],
    ``position_embedding`` [L, W] in the model's dtype, ``rule``, ``tokenizer``).

Standard parts (`export.nir.parts`; files ``text_encoder.nir`` and ``image_stem.nir``)
    Graphs cut from the above that hold standard nodes only (Input, Affine, Conv2d, LIF,
    Output), for foreign importers: the same discretization record, no extensions, an Input
    named ``input`` and an Output named ``output``; decodings/encodings re-keyed to them.
    Importer conventions and quirks (snnTorch, Norse, sinabs): ``export/nir/FOREIGN.md``.

Node names (module paths below the SpikeCLIP root; P = a block's ``attn``/``mlp`` path)
    ``image_encoder.input`` (Input) → ``image_encoder.encode`` (static_input) →
    ``image_encoder.tokenizer.conv{i}`` (Conv2d, bn{i} folded), ``…tokenizer.pool{2,3}``
    (max_pool2d), ``…tokenizer.lif{0..3}`` (LIF); per block b, P = ``image_encoder.blocks.b``:
    ``P.attn.in_lif``, ``P.attn.qkv_conv`` (q|k|v 1×1 convs with their BNs, stacked on the
    output channels: weight (3D, D, 1, 1)), ``P.attn.qkv_lif`` (shape (3D, h, w)),
    ``P.attn.core`` (spiking_attention), ``P.attn.attn_lif`` (θ = 0.5), ``P.attn.proj_conv``,
    ``P.mlp.in_lif``, ``P.mlp.fc1_conv``, ``P.mlp.fc1_lif``, ``P.mlp.fc2_conv`` (1×1 Conv2d);
    ``image_encoder.output`` (Output). Text: ``text_encoder.input`` → ``.encode`` → ``.lif1``
    → ``.fc1`` (Affine) → ``.lif2`` → ``.fc2`` (Affine) → ``.output``.

Reading a graph (what the quantizer does)::

    graph = export.nir.read_nir(path)            # type-checked, one-line errors
    meta = graph_meta(graph)                     # discretization, decodings, encodings
    for name in export.nir.from_nir.topological_order(graph):
        node = graph.nodes[name]
        if is_extension(node):
            spec = extension_spec(name, node)    # StaticInputSpec | MaxPoolSpec | AttentionSpec
            in_shape, out_shape = extension_shapes(node)
        else:                                    # Conv2d / Affine / LIF / Input / Output
            ...                                  # parameters are the node's own float64 arrays
        inputs = [src for src, dst in graph.edges if dst == name]   # summed, in this order
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import nir
import numpy as np

from export.nir.errors import MetadataError, UnknownExtensionError

FORMAT = "spikeclip-nir"
FORMAT_VERSION = 1
GRAPH_KEY = "spikeclip"
"""Key of the graph-level metadata dict in ``NIRGraph.metadata``."""
EXT_KEY = "spikeclip_ext"
"""Key of the op name in an extension node's metadata."""
EXT_VERSION_KEY = "spikeclip_ext_version"
DT = 1e-4
"""Seconds per step (snnTorch's importer hard-codes this dt); LIF tau = 2·DT means τ = 2 steps."""


# --------------------------------------------------------------------------- value normalizers


def _norm_str(value: Any, key: str) -> str:
    if isinstance(value, bytes):
        return value.decode("utf8")
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "SUO":
        return _norm_str(value.item(), key)
    raise MetadataError(key, f"expected a string, got {type(value).__name__}")


def _norm_int(value: Any, key: str) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise MetadataError(key, f"expected an integer, got {value!r}")
    return int(value)


def _norm_float(value: Any, key: str) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
        raise MetadataError(key, f"expected a number, got {value!r}")
    return float(value)


def _norm_array(
    value: Any, key: str, ndim: int | None = None, dtype: type | None = np.float64
) -> np.ndarray:
    """A numeric array (of `ndim` dimensions if given) as `dtype` (None: dtype kept)."""
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
        raise MetadataError(key, f"expected a numeric array, got {type(value).__name__}")
    if ndim is not None and value.ndim != ndim:
        raise MetadataError(key, f"expected {ndim} dimension(s), got shape {value.shape}")
    return np.asarray(value, dtype=dtype)


def _norm_json(value: Any, key: str) -> Any:
    text = _norm_str(value, key)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise MetadataError(key, f"not valid JSON ({err.msg})") from None


def _get(mapping: Mapping[str, Any], key: str, where: str) -> Any:
    if not isinstance(mapping, Mapping):
        raise MetadataError(where, f"expected a dict, got {type(mapping).__name__}")
    if key not in mapping:
        raise MetadataError(f"{where}.{key}", "missing")
    return mapping[key]


def _int_pair(value: Any, key: str) -> tuple[int, int]:
    items = _norm_json(value, key)
    if not (isinstance(items, list) and len(items) == 2 and all(isinstance(i, int) for i in items)):
        raise MetadataError(key, f"expected a JSON pair of integers, got {items!r}")
    return int(items[0]), int(items[1])


def source_metadata(*module_paths: str) -> dict[str, str]:
    """Node metadata naming the model modules a node was made from (JSON list of paths)."""
    return {"source": json.dumps(list(module_paths))}


def node_sources(node: nir.NIRNode) -> tuple[str, ...]:
    """The module paths recorded by `source_metadata` (empty if none)."""
    if "source" not in node.metadata:
        return ()
    return tuple(_norm_json(node.metadata["source"], "source"))


# --------------------------------------------------------------------------- discretization


@dataclass(frozen=True, kw_only=True)
class Discretization:
    """How every node is stepped (see the module docstring for the equations).

    dt: seconds per step; timesteps: T; method: "forward_euler"; reset: "zero" (hard reset to
    v_reset); compare: ">=" or ">" (spike when H `compare` v_threshold); time: "logical".
    """

    timesteps: int
    dt: float = DT
    method: str = "forward_euler"
    reset: str = "zero"
    compare: str = ">="
    time: str = "logical"

    COMPARES: ClassVar[tuple[str, ...]] = (">=", ">")

    def __post_init__(self) -> None:
        if self.timesteps < 1:
            raise MetadataError("discretization.timesteps", f"must be >= 1, got {self.timesteps}")
        if not (math.isfinite(self.dt) and self.dt > 0):
            raise MetadataError("discretization.dt", f"must be finite and > 0, got {self.dt}")
        for key, value, allowed in (
            ("method", self.method, ("forward_euler",)),
            ("reset", self.reset, ("zero",)),
            ("compare", self.compare, self.COMPARES),
            ("time", self.time, ("logical",)),
        ):
            if value not in allowed:
                raise MetadataError(
                    f"discretization.{key}", f"must be one of {allowed}, got {value!r}"
                )

    def to_metadata(self) -> dict[str, Any]:
        """Writable dict (see the module docstring for the value rules)."""
        return {
            "timesteps": int(self.timesteps),
            "dt": float(self.dt),
            "method": self.method,
            "reset": self.reset,
            "compare": self.compare,
            "time": self.time,
        }

    @classmethod
    def from_metadata(cls, md: Mapping[str, Any], where: str = "discretization") -> Discretization:
        """Inverse of `to_metadata`, accepting what ``nir.read`` returns."""
        return cls(
            timesteps=_norm_int(_get(md, "timesteps", where), f"{where}.timesteps"),
            dt=_norm_float(_get(md, "dt", where), f"{where}.dt"),
            method=_norm_str(_get(md, "method", where), f"{where}.method"),
            reset=_norm_str(_get(md, "reset", where), f"{where}.reset"),
            compare=_norm_str(_get(md, "compare", where), f"{where}.compare"),
            time=_norm_str(_get(md, "time", where), f"{where}.time"),
        )


# --------------------------------------------------------------------------- extension specs


@dataclass(frozen=True, kw_only=True)
class StaticInputSpec:
    """The tower input, presented unchanged at every step. Shape-preserving."""

    op: ClassVar[str] = "static_input"

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Same as the input shape."""
        return tuple(in_shape)

    def to_metadata(self) -> dict[str, Any]:
        """No parameters."""
        return {}

    @classmethod
    def from_metadata(cls, md: Mapping[str, Any], where: str) -> StaticInputSpec:
        """No parameters to read."""
        return cls()


@dataclass(frozen=True, kw_only=True)
class MaxPoolSpec:
    """Max over kernel windows of a real-valued current (C, H, W); padding counts as −∞."""

    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    pad_value: str = "-inf"
    op: ClassVar[str] = "max_pool2d"

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        """(C, H', W') with H' = ⌊(H + 2p − k)/s⌋ + 1 (torch's rule, no ceil mode)."""
        c, *hw = in_shape
        side = [
            (n + 2 * p - k) // s + 1
            for n, k, s, p in zip(hw, self.kernel_size, self.stride, self.padding)
        ]
        return (c, *side)

    def to_metadata(self) -> dict[str, Any]:
        """kernel_size/stride/padding as JSON pairs (H, W); pad_value "-inf"."""
        return {
            "kernel_size": json.dumps(list(self.kernel_size)),
            "stride": json.dumps(list(self.stride)),
            "padding": json.dumps(list(self.padding)),
            "pad_value": self.pad_value,
        }

    @classmethod
    def from_metadata(cls, md: Mapping[str, Any], where: str) -> MaxPoolSpec:
        """Inverse of `to_metadata`."""
        pad_value = _norm_str(_get(md, "pad_value", where), f"{where}.pad_value")
        if pad_value != "-inf":
            raise MetadataError(f"{where}.pad_value", f"only '-inf' is defined, got {pad_value!r}")
        return cls(
            kernel_size=_int_pair(_get(md, "kernel_size", where), f"{where}.kernel_size"),
            stride=_int_pair(_get(md, "stride", where), f"{where}.stride"),
            padding=_int_pair(_get(md, "padding", where), f"{where}.padding"),
            pad_value=pad_value,
        )


@dataclass(frozen=True, kw_only=True)
class AttentionSpec:
    """Spiking self-attention core: q|k|v spikes (3D, h, w) → scale·Q(KᵀV) per head (D, h, w)."""

    num_heads: int
    head_dim: int
    scale: float
    operand_order: str = "q|k|v"
    channel_order: str = "head-major"
    op: ClassVar[str] = "spiking_attention"

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        """(D, h, w) from (3D, h, w); raises if the channel count does not fit the heads."""
        c3 = in_shape[0]
        if c3 != 3 * self.num_heads * self.head_dim:
            raise MetadataError(
                "spiking_attention",
                f"input has {c3} channels, expected 3·heads·head_dim = "
                f"{3 * self.num_heads * self.head_dim}",
            )
        return (c3 // 3, *in_shape[1:])

    def to_metadata(self) -> dict[str, Any]:
        """num_heads, head_dim (ints), scale (float), operand/channel order strings."""
        return {
            "num_heads": int(self.num_heads),
            "head_dim": int(self.head_dim),
            "scale": float(self.scale),
            "operand_order": self.operand_order,
            "channel_order": self.channel_order,
        }

    @classmethod
    def from_metadata(cls, md: Mapping[str, Any], where: str) -> AttentionSpec:
        """Inverse of `to_metadata`."""
        spec = cls(
            num_heads=_norm_int(_get(md, "num_heads", where), f"{where}.num_heads"),
            head_dim=_norm_int(_get(md, "head_dim", where), f"{where}.head_dim"),
            scale=_norm_float(_get(md, "scale", where), f"{where}.scale"),
            operand_order=_norm_str(_get(md, "operand_order", where), f"{where}.operand_order"),
            channel_order=_norm_str(_get(md, "channel_order", where), f"{where}.channel_order"),
        )
        if spec.operand_order != "q|k|v" or spec.channel_order != "head-major":
            raise MetadataError(where, "only operand_order 'q|k|v', channel_order 'head-major'")
        return spec


ExtensionSpec = StaticInputSpec | MaxPoolSpec | AttentionSpec
EXTENSION_SPECS: dict[str, type[ExtensionSpec]] = {
    cls.op: cls for cls in (StaticInputSpec, MaxPoolSpec, AttentionSpec)
}
"""op name → spec class: the only extension ops this schema version defines."""


def _shape_placeholder(spec: ExtensionSpec, in_shape: tuple[int, ...]) -> nir.NIRNode | None:
    """A standard node giving NIR's type checker the op's output shape (never executed)."""
    out = spec.out_shape(in_shape)
    if tuple(out) == tuple(in_shape):
        return None
    if isinstance(spec, MaxPoolSpec):
        return nir.SumPool2d(
            kernel_size=np.array(spec.kernel_size),
            stride=np.array(spec.stride),
            padding=np.array(spec.padding),
        )
    # Channel change on an unchanged grid: a 1×1 conv placeholder (zeros, int8 to stay small).
    return nir.Conv2d(
        input_shape=tuple(int(s) for s in in_shape[1:]),
        weight=np.zeros((out[0], in_shape[0], 1, 1), dtype=np.int8),
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        bias=np.zeros(out[0], dtype=np.int8),
    )


def make_extension_node(
    spec: ExtensionSpec, in_shape: tuple[int, ...], *, source: tuple[str, ...] = ()
) -> nir.NIRGraph:
    """The nested-graph carrier of one extension op (layout in the module docstring)."""
    in_shape = tuple(int(s) for s in in_shape)
    nodes: dict[str, nir.NIRNode] = {
        "input": nir.Input(input_type=np.array(in_shape)),
        "op": nir.Delay(delay=np.full(in_shape, np.nan)),
    }
    edges = [("input", "op")]
    last = "op"
    placeholder = _shape_placeholder(spec, in_shape)
    if placeholder is not None:
        nodes["shape"] = placeholder
        edges.append(("op", "shape"))
        last = "shape"
    nodes["output"] = nir.Output(output_type=np.array(spec.out_shape(in_shape)))
    edges.append((last, "output"))
    metadata: dict[str, Any] = {EXT_KEY: spec.op, EXT_VERSION_KEY: FORMAT_VERSION}
    metadata.update(spec.to_metadata())
    if source:
        metadata.update(source_metadata(*source))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def is_extension(node: nir.NIRNode) -> bool:
    """True when `node` is a nested graph carrying a ``spikeclip_ext`` marker."""
    return isinstance(node, nir.NIRGraph) and EXT_KEY in (node.metadata or {})


def extension_spec(name: str, node: nir.NIRNode) -> ExtensionSpec:
    """Parse the extension carried by `node`; `UnknownExtensionError` (naming it) otherwise."""
    md = node.metadata or {}
    if not isinstance(node, nir.NIRGraph) or EXT_KEY not in md:
        raise UnknownExtensionError(name, f"{type(node).__name__} carries no {EXT_KEY} marker")
    op = _norm_str(md[EXT_KEY], f"{name}.{EXT_KEY}")
    if op not in EXTENSION_SPECS:
        raise UnknownExtensionError(
            name, f"unknown extension {op!r} (known: {', '.join(sorted(EXTENSION_SPECS))})"
        )
    version = _norm_int(_get(md, EXT_VERSION_KEY, name), f"{name}.{EXT_VERSION_KEY}")
    if version != FORMAT_VERSION:
        raise UnknownExtensionError(name, f"extension version {version}, this reader knows 1")
    return EXTENSION_SPECS[op].from_metadata(md, name)


def extension_shapes(node: nir.NIRGraph) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(input shape, output shape) of an extension carrier, from its Input/Output nodes."""
    (inp,) = node.inputs.values()
    (out,) = node.outputs.values()
    return (
        tuple(int(s) for s in inp.input_type["input"]),
        tuple(int(s) for s in out.output_type["output"]),
    )


# --------------------------------------------------------------------------- graph-level


@dataclass(frozen=True, kw_only=True)
class ExtensionEntry:
    """One extension node of the graph: its node name and op name."""

    node: str
    op: str


@dataclass(frozen=True, kw_only=True, eq=False)
class ReadoutDecoding:
    """Graph-level decoding of one Output node into a feature vector per sample.

    y = head_weight · (Σ_t time_weights[t] · mean over token_axes of O[t]) + head_bias.
    time_weights: [T] float64; token_axes: axes of O[t] (no batch axis), () for none;
    head_weight: [F_out, F_in] or None; head_bias: [F_out] or None; feature: "image" | "text".
    """

    output: str
    feature: str
    time_weights: np.ndarray
    token_axes: tuple[int, ...] = ()
    head_weight: np.ndarray | None = None
    head_bias: np.ndarray | None = None

    def to_metadata(self) -> dict[str, Any]:
        """Writable dict; absent head arrays are omitted."""
        md: dict[str, Any] = {
            "feature": self.feature,
            "time_weights": np.asarray(self.time_weights, dtype=np.float64),
            "token_axes": json.dumps([int(a) for a in self.token_axes]),
            "rule": "y = head_weight @ (sum_t time_weights[t] * mean(O[t], token_axes)) "
            "+ head_bias",
        }
        if self.head_weight is not None:
            md["head_weight"] = np.asarray(self.head_weight, dtype=np.float64)
        if self.head_bias is not None:
            md["head_bias"] = np.asarray(self.head_bias, dtype=np.float64)
        return md

    @classmethod
    def from_metadata(cls, output: str, md: Mapping[str, Any], where: str) -> ReadoutDecoding:
        """Inverse of `to_metadata`."""
        axes = _norm_json(_get(md, "token_axes", where), f"{where}.token_axes")
        if not (isinstance(axes, list) and all(isinstance(a, int) for a in axes)):
            raise MetadataError(f"{where}.token_axes", f"expected a list of ints, got {axes!r}")
        weight = md.get("head_weight")
        bias = md.get("head_bias")
        return cls(
            output=output,
            feature=_norm_str(_get(md, "feature", where), f"{where}.feature"),
            time_weights=_norm_array(
                _get(md, "time_weights", where), f"{where}.time_weights", ndim=1
            ),
            token_axes=tuple(axes),
            head_weight=None if weight is None else _norm_array(weight, f"{where}.head_weight", 2),
            head_bias=None if bias is None else _norm_array(bias, f"{where}.head_bias", 1),
        )


@dataclass(frozen=True, kw_only=True, eq=False)
class TextEmbedding:
    """The text tower's host-side embedding, stored with a standard part (`export.nir.parts`).

    token_embedding: [V, W] and position_embedding: [L, W], in the model's dtype (float32: sum
    in that dtype to reproduce the model bit for bit); tokenizer: the spec of the tokenizer that
    makes the ids (e.g. "minilm"; "" when unknown). The Input receives, at every step,
    ``x[b, l·W + w] = token_embedding[ids[b, l], w] + position_embedding[l, w]`` (`RULE`).
    """

    token_embedding: np.ndarray
    position_embedding: np.ndarray
    tokenizer: str = ""
    RULE: ClassVar[str] = (
        "x[b, l*W + w] = token_embedding[ids[b, l], w] + position_embedding[l, w] "
        "(ids [B, L] int64; x [B, L*W], the same at every step)"
    )

    def __eq__(self, other: object) -> bool:
        """Equal tables (values and dtypes) and tokenizer."""
        if not isinstance(other, TextEmbedding):
            return NotImplemented
        return self.tokenizer == other.tokenizer and all(
            a.dtype == b.dtype and np.array_equal(a, b)
            for a, b in (
                (self.token_embedding, other.token_embedding),
                (self.position_embedding, other.position_embedding),
            )
        )

    __hash__ = None  # type: ignore[assignment]  # arrays: not hashable

    def __post_init__(self) -> None:
        tok, pos = self.token_embedding, self.position_embedding
        if tok.ndim != 2 or pos.ndim != 2 or tok.shape[1] != pos.shape[1]:
            raise MetadataError(
                "embedding", f"tables must be [V, W] and [L, W], got {tok.shape} and {pos.shape}"
            )

    def to_metadata(self) -> dict[str, Any]:
        """Writable dict: both tables (dtype kept), the rule, the tokenizer if known."""
        md: dict[str, Any] = {
            "token_embedding": np.asarray(self.token_embedding),
            "position_embedding": np.asarray(self.position_embedding),
            "rule": self.RULE,
        }
        if self.tokenizer:
            md["tokenizer"] = self.tokenizer
        return md

    @classmethod
    def from_metadata(cls, md: Mapping[str, Any], where: str) -> TextEmbedding:
        """Inverse of `to_metadata` (the tables keep their stored dtype)."""
        tables = {
            key: _norm_array(_get(md, key, where), f"{where}.{key}", ndim=2, dtype=None)
            for key in ("token_embedding", "position_embedding")
        }
        tokenizer = md.get("tokenizer")
        return cls(
            **tables,
            tokenizer="" if tokenizer is None else _norm_str(tokenizer, f"{where}.tokenizer"),
        )


@dataclass(frozen=True, kw_only=True)
class InputEncoding:
    """What the host hands the graph's Input node every step (see the module docstring);
    `embedding` holds the text tables where the graph carries them (standard parts only)."""

    input: str
    feature: str
    preprocessing: str
    embedding: TextEmbedding | None = None

    def to_metadata(self) -> dict[str, Any]:
        """Writable dict."""
        md: dict[str, Any] = {"feature": self.feature, "preprocessing": self.preprocessing}
        if self.embedding is not None:
            md["embedding"] = self.embedding.to_metadata()
        return md

    @classmethod
    def from_metadata(cls, name: str, md: Mapping[str, Any], where: str) -> InputEncoding:
        """Inverse of `to_metadata`."""
        embedding = md.get("embedding")
        return cls(
            input=name,
            feature=_norm_str(_get(md, "feature", where), f"{where}.feature"),
            preprocessing=_norm_str(_get(md, "preprocessing", where), f"{where}.preprocessing"),
            embedding=None
            if embedding is None
            else TextEmbedding.from_metadata(embedding, f"{where}.embedding"),
        )


@dataclass(frozen=True, kw_only=True, eq=False)
class GraphMeta:
    """Everything in ``graph.metadata["spikeclip"]`` (see the module docstring)."""

    discretization: Discretization
    extensions: tuple[ExtensionEntry, ...]
    decodings: tuple[ReadoutDecoding, ...] = ()
    encodings: tuple[InputEncoding, ...] = ()
    towers: tuple[str, ...] = ()
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def to_metadata(self) -> dict[str, Any]:
        """Writable dict for ``graph.metadata["spikeclip"]``."""
        return {
            "format": self.format,
            "format_version": int(self.format_version),
            "discretization": self.discretization.to_metadata(),
            "extensions": json.dumps([{"node": e.node, "op": e.op} for e in self.extensions]),
            "decodings": {d.output: d.to_metadata() for d in self.decodings},
            "encodings": {e.input: e.to_metadata() for e in self.encodings},
            "towers": json.dumps(list(self.towers)),
        }

    @classmethod
    def from_metadata(cls, md: Mapping[str, Any]) -> GraphMeta:
        """Parse ``graph.metadata["spikeclip"]`` (as written, or as ``nir.read`` returns it)."""
        where = GRAPH_KEY
        fmt = _norm_str(_get(md, "format", where), f"{where}.format")
        version = _norm_int(_get(md, "format_version", where), f"{where}.format_version")
        if fmt != FORMAT or version != FORMAT_VERSION:
            raise MetadataError(
                where, f"format {fmt!r} v{version}; this reader knows {FORMAT!r} v{FORMAT_VERSION}"
            )
        raw_ext = _norm_json(_get(md, "extensions", where), f"{where}.extensions")
        if not isinstance(raw_ext, list) or not all(
            isinstance(e, dict) and set(e) == {"node", "op"} for e in raw_ext
        ):
            raise MetadataError(f"{where}.extensions", "expected a list of {node, op} objects")
        decodings = _get(md, "decodings", where) if "decodings" in md else {}
        encodings = _get(md, "encodings", where) if "encodings" in md else {}
        towers = _norm_json(_get(md, "towers", where), f"{where}.towers")
        meta = cls(
            format=fmt,
            format_version=version,
            discretization=Discretization.from_metadata(
                _get(md, "discretization", where), f"{where}.discretization"
            ),
            extensions=tuple(ExtensionEntry(node=e["node"], op=e["op"]) for e in raw_ext),
            decodings=tuple(
                ReadoutDecoding.from_metadata(k, v, f"{where}.decodings.{k}")
                for k, v in sorted(decodings.items())
            ),
            encodings=tuple(
                InputEncoding.from_metadata(k, v, f"{where}.encodings.{k}")
                for k, v in sorted(encodings.items())
            ),
            towers=tuple(towers),
        )
        T = meta.discretization.timesteps
        for dec in meta.decodings:
            if dec.time_weights.shape != (T,):
                raise MetadataError(
                    f"{where}.decodings.{dec.output}.time_weights",
                    f"has {dec.time_weights.shape[0]} weights for T = {T} steps",
                )
        return meta


def graph_meta(graph: nir.NIRGraph) -> GraphMeta:
    """The `GraphMeta` of a graph written by `to_nir`; `MetadataError` if it has none."""
    md = graph.metadata or {}
    if GRAPH_KEY not in md:
        raise MetadataError(GRAPH_KEY, "missing: the graph was not written by export.nir.to_nir")
    return GraphMeta.from_metadata(md[GRAPH_KEY])
