"""`LoihiNetwork` schema v1: the integer network every backend reads (simulator, Lava, mapper).

A network is a DAG of layer records (:mod:`hardware.ir.layers`) joined by :class:`Edge` s, plus the
number of steps per sample ``T`` and free-form JSON ``provenance`` (toolchain version, per-layer
float scales, the checkpoint hash …). It is frozen, validated on construction, and saved as one
``.npz`` file (:meth:`LoihiNetwork.save` / :meth:`LoihiNetwork.load`, format version checked).

Signals (what flows on an edge) are typed by the source layer's ``OUTPUT``: ``spikes`` feed
synapses and attention; ``current`` (integer wu) feeds LIFs, max-pools and readouts, several
current edges into one layer being summed; a ``bias`` edge (host input injection) writes one LIF's
bias per sample. An edge carries ``delay`` extra steps (0 … ``fixed.MAX_DELAY``) on top of the
source's own ``latency``.

Time. Logical time: a sample runs T steps from zero state, all layers within one logical step.
Lava is pipelined: a layer at ``depth(n)`` processes logical step t (0-based) at Lava
``time_step = t + depth(n) + 1`` (Lava's time starts at 1), i.e. a Monitor trace index
``t + depth(n)``. ``depth(n) = max over non-bias in-edges e = (m → n) of depth(m) + latency(m) +
delay(e)``; 0 for a layer without such edges. Where paths of unequal depth meet,
:meth:`LoihiNetwork.misaligned` lists the edges that arrive early (the delay pass fixes them). A
``LIFReset`` gets ``reset_interval = T`` and ``reset_offset = depth + 1``
(:meth:`hardware.ir.timing.Timing.reset_offset`; netx does the same).

Example::

    net = LoihiNetwork(T=4, layers=(
        SpikeInputLayer(name="in", shape=(3,)),
        DenseLayer(name="fc", weights=[[4, -8, 12]], num_weight_bits=7, weight_exp=-1),
        LIFLayer(name="lif", shape=(1,), du=4095, dv=2048, vth=10)),
        edges=(Edge(src="in", dst="fc"), Edge(src="fc", dst="lif")))
    net.depth("lif")  # 1
    net.save("net.npz"); LoihiNetwork.load("net.npz") == net  # True
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from hardware.ir import fixed
from hardware.ir.layers import (
    LAYER_TYPES,
    AttentionLayer,
    ConvLayer,
    DenseLayer,
    HostInputLayer,
    Layer,
    LIFLayer,
    MaxPoolLayer,
    NetworkValidationError,
    ReadoutLayer,
    SpikeInputLayer,
    TokenLinearLayer,
    json_mapping,
)
from spikeclip.atomic_io import open_atomic
from spikeclip.errors import ModelFileError

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "AttentionLayer",
    "ConvLayer",
    "DenseLayer",
    "Edge",
    "HostInputLayer",
    "Layer",
    "LIFLayer",
    "LoihiNetwork",
    "MaxPoolLayer",
    "NetworkFormatError",
    "NetworkValidationError",
    "ReadoutLayer",
    "SpikeInputLayer",
    "TokenLinearLayer",
]

FORMAT_NAME = "spikeclip-loihi-network"
FORMAT_VERSION = 1
_HEADER_KEY = "__header__"


class NetworkFormatError(ModelFileError, ValueError):
    """A network file cannot be read: not ours, a different format version, or damaged."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True, kw_only=True)
class Edge:
    """``src`` feeds ``dst`` with ``delay`` extra steps (0 … 62, Lava DelayDense's range)."""

    src: str
    dst: str
    delay: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.delay, bool) or not isinstance(self.delay, int | np.integer):
            raise NetworkValidationError(
                self.dst,
                "delay",
                f"edge from {self.src!r}: expected an integer, got {self.delay!r}",
            )
        if not 0 <= int(self.delay) <= fixed.MAX_DELAY:
            raise NetworkValidationError(
                self.dst,
                "delay",
                f"edge from {self.src!r}: {self.delay} outside [0, {fixed.MAX_DELAY}]",
            )
        object.__setattr__(self, "delay", int(self.delay))


@dataclass(frozen=True, kw_only=True, eq=False)
class LoihiNetwork:
    """An integer network: ``layers`` (unique names), ``edges`` (a DAG), ``T`` steps per sample.

    Validated on construction (:class:`NetworkValidationError` naming the layer and field):
    edge endpoints exist, signal kinds match (``src.OUTPUT in dst.ACCEPTS``), element counts
    match (``prod(src.out_shape) == prod(dst.in_shape)``; C-order reshapes are free), no cycle,
    a ``bias`` edge targets a LIF whose static ``bias_mant`` is 0 and ``bias_exp`` equals the
    input's, readout ``time_weights`` have length T. ``format_version`` is the schema version
    this object follows (always :data:`FORMAT_VERSION`).
    """

    layers: tuple[Layer, ...]
    edges: tuple[Edge, ...]
    T: int
    provenance: Mapping[str, Any] = field(default_factory=dict)

    format_version = FORMAT_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "edges", tuple(self.edges))
        object.__setattr__(
            self, "provenance", json_mapping("<network>", "provenance", self.provenance)
        )
        if isinstance(self.T, bool) or not isinstance(self.T, int | np.integer) or self.T < 1:
            raise NetworkValidationError("<network>", "T", f"must be an integer ≥ 1: {self.T!r}")
        object.__setattr__(self, "T", int(self.T))
        by_name: dict[str, Layer] = {}
        for layer in self.layers:
            if not isinstance(layer, Layer):
                raise NetworkValidationError(str(layer), "layers", "not a Layer record")
            if layer.name in by_name:
                raise NetworkValidationError(layer.name, "name", "duplicate layer name")
            by_name[layer.name] = layer
        for e in self.edges:
            self._check_edge(by_name, e)
        for layer in self.layers:
            if isinstance(layer, ReadoutLayer) and len(layer.time_weights) != self.T:
                raise NetworkValidationError(
                    layer.name, "time_weights", f"length {len(layer.time_weights)} != T={self.T}"
                )
        self.topological_order()  # raises on a cycle

    @staticmethod
    def _check_edge(by_name: Mapping[str, Layer], e: Edge) -> None:
        if not isinstance(e, Edge):
            raise NetworkValidationError("<network>", "edges", f"not an Edge: {e!r}")
        for end in (e.src, e.dst):
            if end not in by_name:
                raise NetworkValidationError(
                    end, "edges", f"edge {e.src!r} → {e.dst!r} names an unknown layer"
                )
        src, dst = by_name[e.src], by_name[e.dst]
        if src.OUTPUT not in dst.ACCEPTS:
            raise NetworkValidationError(
                dst.name,
                "edges",
                f"{dst.KIND} does not accept {src.OUTPUT!r} from {src.KIND} {src.name!r}",
            )
        if math.prod(src.out_shape) != math.prod(dst.in_shape):
            raise NetworkValidationError(
                dst.name,
                "in_shape",
                f"{dst.in_shape} does not match {src.name!r} out_shape {src.out_shape}",
            )
        if isinstance(src, HostInputLayer) and isinstance(dst, LIFLayer):
            if e.delay:
                raise NetworkValidationError(dst.name, "delay", "a bias edge cannot be delayed")
            if np.any(dst.bias_mant != 0) or np.any(dst.bias_exp != src.bias_exp):
                raise NetworkValidationError(
                    dst.name,
                    "bias_mant",
                    f"fed by host input {src.name!r}: static bias_mant "
                    f"must be 0 and bias_exp must equal {src.bias_exp}",
                )

    # -----------------------------------------------------------------------------------------
    # Lookup and graph helpers.
    # -----------------------------------------------------------------------------------------

    @cached_property
    def _by_name(self) -> Mapping[str, Layer]:
        return {layer.name: layer for layer in self.layers}

    def layer(self, name: str) -> Layer:
        """The layer called ``name``; ``KeyError`` naming it if absent."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"LoihiNetwork has no layer {name!r}") from None

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def in_edges(self, name: str) -> tuple[Edge, ...]:
        """Edges into ``name`` (in declaration order)."""
        self.layer(name)
        return tuple(e for e in self.edges if e.dst == name)

    def out_edges(self, name: str) -> tuple[Edge, ...]:
        """Edges out of ``name`` (in declaration order)."""
        self.layer(name)
        return tuple(e for e in self.edges if e.src == name)

    def topological_order(self) -> tuple[str, ...]:
        """Layer names, every source before its destinations; ties keep declaration order.

        Raises :class:`NetworkValidationError` naming a layer on a cycle.
        """
        indeg = {layer.name: 0 for layer in self.layers}
        for e in self.edges:
            indeg[e.dst] += 1
        order: list[str] = []
        ready = [layer.name for layer in self.layers if indeg[layer.name] == 0]
        while ready:
            name = ready.pop(0)
            order.append(name)
            for e in self.edges:
                if e.src == name:
                    indeg[e.dst] -= 1
                    if indeg[e.dst] == 0:
                        ready.append(e.dst)
        if len(order) != len(self.layers):
            stuck = next(layer.name for layer in self.layers if indeg[layer.name] > 0)
            raise NetworkValidationError(stuck, "edges", "the graph has a cycle through this layer")
        return tuple(order)

    @cached_property
    def _depths(self) -> Mapping[str, int]:
        depths: dict[str, int] = {}
        for name in self.topological_order():
            arrivals = [
                self._arrival(e, depths)
                for e in self.in_edges(name)
                if self.layer(e.src).OUTPUT != "bias"
            ]
            depths[name] = max(arrivals, default=0)
        return depths

    def _arrival(self, e: Edge, depths: Mapping[str, int]) -> int:
        return depths[e.src] + self.layer(e.src).latency + e.delay

    def depth(self, name: str) -> int:
        """Pipeline depth: Lava processes logical step t of ``name`` at time_step t + depth + 1."""
        self.layer(name)
        return self._depths[name]

    def arrival(self, edge: Edge) -> int:
        """Depth at which ``edge`` delivers logical step 0: depth(src) + latency(src) + delay."""
        return self._arrival(edge, self._depths)

    def misaligned(self) -> tuple[Edge, ...]:
        """Non-bias edges that arrive before their destination's depth (they need more delay)."""
        return tuple(
            e
            for e in self.edges
            if self.layer(e.src).OUTPUT != "bias" and self.arrival(e) != self.depth(e.dst)
        )

    @property
    def max_depth(self) -> int:
        """Largest depth in the network (Lava needs T + max_depth steps for one sample)."""
        return max(self._depths.values(), default=0)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LoihiNetwork):
            return NotImplemented
        return (
            self.T == other.T
            and self.edges == other.edges
            and dict(self.provenance) == dict(other.provenance)
            and len(self.layers) == len(other.layers)
            and all(a == b for a, b in zip(self.layers, other.layers))
        )

    __hash__ = None  # type: ignore[assignment]

    # -----------------------------------------------------------------------------------------
    # Serialization: one .npz with a JSON header and one array entry per array field.
    # -----------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write the network to ``path`` (``.npz``) atomically (temp file + ``os.replace``).

        Layout: ``__header__`` is a 0-d unicode array holding JSON ``{format, format_version, T,
        provenance, edges: [[src, dst, delay]], layers: [{kind, fields, arrays}]}``; array field
        ``f`` of layer ``i`` is stored as ``layer{i}.{f}``. Loads without pickle.
        """
        path = Path(path)
        header_layers = []
        arrays: dict[str, np.ndarray] = {}
        for i, layer in enumerate(self.layers):
            scalars: dict[str, Any] = {}
            array_names = []
            for f in fields(layer):
                value = getattr(layer, f.name)
                if isinstance(value, np.ndarray):
                    arrays[f"layer{i}.{f.name}"] = value
                    array_names.append(f.name)
                elif isinstance(value, Mapping):
                    scalars[f.name] = dict(value)
                else:
                    scalars[f.name] = list(value) if isinstance(value, tuple) else value
            header_layers.append({"kind": layer.KIND, "fields": scalars, "arrays": array_names})
        header = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "T": self.T,
            "provenance": dict(self.provenance),
            "edges": [[e.src, e.dst, e.delay] for e in self.edges],
            "layers": header_layers,
        }
        with open_atomic(path) as fh:
            np.savez(fh, **{_HEADER_KEY: np.array(json.dumps(header))}, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> LoihiNetwork:
        """Read a file written by :meth:`save`; the result is validated as on construction.

        Raises :class:`NetworkFormatError` if the file is not a LoihiNetwork file, has another
        format version, or misses an entry; :class:`NetworkValidationError` if its content
        violates the schema.
        """
        try:
            with np.load(path, allow_pickle=False) as data:
                if _HEADER_KEY not in data.files:
                    raise NetworkFormatError(
                        path, f"no {_HEADER_KEY!r} entry: not a {FORMAT_NAME} file"
                    )
                header = json.loads(str(data[_HEADER_KEY]))
                if header.get("format") != FORMAT_NAME:
                    raise NetworkFormatError(
                        path, f"format {header.get('format')!r}, expected {FORMAT_NAME!r}"
                    )
                version = header.get("format_version")
                if version != FORMAT_VERSION:
                    raise NetworkFormatError(
                        path,
                        f"format_version {version!r}; this toolchain "
                        f"reads version {FORMAT_VERSION}: re-export the "
                        "network with a matching toolchain",
                    )
                layers = []
                for i, entry in enumerate(header["layers"]):
                    kind = entry["kind"]
                    if kind not in LAYER_TYPES:
                        raise NetworkFormatError(path, f"layer {i}: unknown kind {kind!r}")
                    kwargs = dict(entry["fields"])
                    for name in entry["arrays"]:
                        key = f"layer{i}.{name}"
                        if key not in data.files:
                            raise NetworkFormatError(path, f"missing array {key!r}")
                        kwargs[name] = data[key]
                    layers.append(LAYER_TYPES[kind](**kwargs))
                edges = tuple(Edge(src=s, dst=d, delay=k) for s, d, k in header["edges"])
                return cls(
                    layers=tuple(layers),
                    edges=edges,
                    T=header["T"],
                    provenance=header["provenance"],
                )
        except (OSError, ValueError, KeyError, TypeError) as err:
            if isinstance(err, NetworkFormatError | NetworkValidationError):
                raise
            raise NetworkFormatError(path, f"unreadable network file: {err}") from err
