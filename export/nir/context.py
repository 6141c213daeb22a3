"""`GraphBuilder`: the mutable workspace the per-module builders write NIR nodes into.

A `Signal` is a per-step tensor of the graph: the node names whose outputs sum to it (several
names = fan-in edges, e.g. the residual stream) and its shape without batch/time axes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nir
import numpy as np

from export.nir.errors import UnsupportedModuleError
from export.nir.schema import (
    Discretization,
    ExtensionEntry,
    ExtensionSpec,
    GraphMeta,
    InputEncoding,
    ReadoutDecoding,
    make_extension_node,
)


@dataclass(frozen=True)
class Signal:
    """A per-step tensor: sum of the outputs of `sources`, of shape `shape` (no B/T axes)."""

    sources: tuple[str, ...]
    shape: tuple[int, ...]

    def plus(self, other: Signal) -> Signal:
        """The sum of two signals of one shape (fan-in: the source lists are concatenated)."""
        if self.shape != other.shape:
            raise ValueError(f"cannot add signals of shapes {self.shape} and {other.shape}")
        return Signal(self.sources + other.sources, self.shape)


def _out_shape(node: nir.NIRNode) -> tuple[int, ...]:
    (shape,) = node.output_type.values()
    return tuple(int(s) for s in np.asarray(shape).reshape(-1))


@dataclass
class GraphBuilder:
    """Nodes, edges and graph-level records collected while the builders walk the model."""

    timesteps: int
    nodes: dict[str, nir.NIRNode] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    extensions: list[ExtensionEntry] = field(default_factory=list)
    decodings: list[ReadoutDecoding] = field(default_factory=list)
    encodings: list[InputEncoding] = field(default_factory=list)
    towers: list[str] = field(default_factory=list)
    compares: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, node: nir.NIRNode, inputs: Signal | None) -> Signal:
        """Add `node` fed by every source of `inputs` (None for an Input node)."""
        if name in self.nodes:
            raise ValueError(f"duplicate NIR node name {name!r}")
        self.nodes[name] = node
        if inputs is not None:
            self.edges.extend((src, name) for src in inputs.sources)
        return Signal((name,), _out_shape(node))

    def add_extension(
        self, name: str, spec: ExtensionSpec, inputs: Signal, source: tuple[str, ...] = ()
    ) -> Signal:
        """Add an extension carrier (schema.make_extension_node) and list it in the metadata."""
        self.extensions.append(ExtensionEntry(node=name, op=spec.op))
        return self.add(name, make_extension_node(spec, inputs.shape, source=source), inputs)

    def note_compare(self, path: str, compare: str) -> None:
        """Record a LIF's spike comparison; the graph allows only one for all neurons."""
        self.compares[path] = compare
        if len(set(self.compares.values())) > 1:
            raise UnsupportedModuleError(
                path,
                "LIF",
                f"fires with {compare!r} but other LIFs use "
                f"{sorted(set(self.compares.values()) - {compare})}: one compare per graph",
            )

    def meta(self) -> GraphMeta:
        """The graph-level metadata record."""
        compare = next(iter(self.compares.values()), ">=")
        return GraphMeta(
            discretization=Discretization(timesteps=self.timesteps, compare=compare),
            extensions=tuple(self.extensions),
            decodings=tuple(self.decodings),
            encodings=tuple(self.encodings),
            towers=tuple(self.towers),
        )
