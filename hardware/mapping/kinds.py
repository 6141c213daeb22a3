"""What the mapper does with each layer kind: one table, keyed by the record's ``KIND``.

Every layer record of :mod:`hardware.ir.layers` has a ``KIND`` string. The mapper reads the
role of a kind, its dense-equivalent operations per image, how a synapse kind is stored on the
cores of the population it feeds, and its traffic category from :data:`MAPPING_KINDS` and
nowhere else: a new layer kind is one entry here. Looking up a kind that has no entry raises
:class:`MissingKindError` naming the kind and the backend (exit 4).

Roles:

- ``neurons``: a population of compartments (LIF), placed on neurocores;
- ``synapse``: spikes × static weights, stored on the cores of the population it feeds;
- ``op``: an operation no neurocore computes (spike × spike attention, max over currents),
  run on the embedded x86 cores or the host;
- ``source``: input from the host (spikes, graded currents, or per-image biases);
- ``sink``: the host readout.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Generic, Literal, TypeVar, cast

from hardware.ir.layers import (
    AttentionLayer,
    ConvLayer,
    CurrentInputLayer,
    DenseLayer,
    HostInputLayer,
    Layer,
    LIFLayer,
    MaxPoolLayer,
    ReadoutLayer,
    SpikeInputLayer,
    TokenLinearLayer,
)
from hardware.ir.network import LoihiNetwork
from hardware.mapping.design_rules import MappingError
from hardware.mapping.specs import InputSpec, conv_connections
from spikeclip.errors import UnsupportedError

T = TypeVar("T")

Role = Literal["neurons", "synapse", "op", "source", "sink"]
Geometry = tuple[int, int, int]


OFFLOAD_CATEGORY = "offload_category"
"""``Layer.meta`` key of a layer moved off the neurocores: the traffic category of the op it
serves (:mod:`hardware.mapping.offload`)."""


class MissingKindError(UnsupportedError):
    """A layer kind has no entry in a backend's table (exit 4); names both."""

    def __init__(self, kind: str, backend: str) -> None:
        self.kind = kind
        self.backend = backend
        super().__init__(
            f"layer kind {kind!r} has no entry in the {backend} table: the {backend} backend "
            "cannot handle it (add one entry for the kind there)"
        )


class KindTable(Generic[T]):
    """A read-only table ``KIND -> T`` of one backend; a missing kind raises
    :class:`MissingKindError` naming the kind and ``backend``."""

    def __init__(self, backend: str, entries: Mapping[str, T]) -> None:
        self.backend = backend
        self._entries = MappingProxyType(dict(entries))

    def __getitem__(self, kind: str) -> T:
        try:
            return self._entries[kind]
        except KeyError:
            raise MissingKindError(kind, self.backend) from None

    def of(self, layer: Layer) -> T:
        """The entry of ``layer``'s kind."""
        return self[layer.KIND]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def geometry(shape: tuple[int, ...]) -> Geometry:
    """``(C, H, W)`` of a neuron layout: ``(C, H, W)`` as is, ``(C, N)`` → ``(C, N, 1)``,
    flat → ``(N, 1, 1)``."""
    if len(shape) == 3:
        return (shape[0], shape[1], shape[2])
    if len(shape) == 2:
        return (shape[0], shape[1], 1)
    return (math.prod(shape), 1, 1)


SynapseSpec = Callable[[Layer, str, int, Geometry], InputSpec]
"""``(synapse layer, source name, delay, consumer geometry) -> InputSpec`` of one replica."""


@dataclass(frozen=True, kw_only=True)
class KindRule:
    """How the mapper treats one layer kind.

    role: see the module docstring. ops: dense-equivalent operations of the layer for one
    image (synapse replicas counted). synapse: how one replica of a synapse kind is stored
    (None for other roles). category: the traffic category of data crossing to or from it.
    feedback: a population's synapse from its own spikes back into itself, stored on its own
    cores (None: the kind has none).
    """

    role: Role
    ops: Callable[[LoihiNetwork, Layer], int]
    synapse: SynapseSpec | None = None
    category: str = "other"
    feedback: Callable[[Layer], InputSpec | None] | None = None


def _replicas(net: LoihiNetwork, layer: Layer) -> int:
    return max(len(net.out_edges(layer.name)), 1)


def _dense_spec(syn: Layer, source: str, delay: int, _: Geometry) -> InputSpec:
    syn = cast(DenseLayer, syn)
    return InputSpec(
        name=syn.name,
        source=source,
        kind="dense",
        in_shape=(math.prod(syn.in_shape), 1, 1),
        weight_bits=syn.num_weight_bits,
        delay=delay,
    )


def _conv_spec(syn: Layer, source: str, delay: int, consumer: Geometry) -> InputSpec:
    syn = cast(ConvLayer, syn)
    if geometry(syn.out_shape) != consumer:
        raise MappingError(
            f"layer {syn.name!r}: conv output {syn.out_shape} does not match the consumer "
            f"layout {consumer}"
        )
    return InputSpec(
        name=syn.name,
        source=source,
        kind="conv",
        in_shape=tuple(syn.in_shape),  # type: ignore[arg-type]
        kernel=syn.kernel_size,
        stride=syn.stride,
        padding=syn.padding,
        dilation=syn.dilation,
        groups=syn.groups,
        weight_bits=syn.num_weight_bits,
        delay=delay,
        shared=True,
    )


def _token_spec(syn: Layer, source: str, delay: int, consumer: Geometry) -> InputSpec:
    syn = cast(TokenLinearLayer, syn)
    if consumer[1] * consumer[2] != syn.tokens:
        raise MappingError(
            f"layer {syn.name!r}: {syn.tokens} tokens do not match the consumer layout {consumer}"
        )
    return InputSpec(
        name=syn.name,
        source=source,
        kind="conv",
        in_shape=(int(syn.weights.shape[1]), consumer[1], consumer[2]),
        weight_bits=syn.num_weight_bits,
        delay=delay,
        shared=True,
    )


RECURRENT_INPUT = ":rec"
"""Suffix of the group input name of a population's recurrent synapse (``<lif>:rec``)."""


def _lif_feedback(layer: Layer) -> InputSpec | None:
    """A recurrent LIF's ``rec_weights``: a dense N×N input from the population itself (its N
    neurons are N input axons of its own cores), one-step latency as every synapse edge."""
    layer = cast(LIFLayer, layer)
    if layer.rec_weights is None:
        return None
    n = math.prod(layer.shape)
    return InputSpec(name=layer.name + RECURRENT_INPUT, source=layer.name, kind="dense",
                     in_shape=(n, 1, 1), weight_bits=layer.rec_num_weight_bits)


def _lif_ops(net: LoihiNetwork, layer: Layer) -> int:
    """Neuron updates, and the recurrent synapse's N² dense operations, every step."""
    n = math.prod(layer.out_shape)
    rec = n * n if cast(LIFLayer, layer).rec_weights is not None else 0
    return (n + rec) * net.T


def _dense_ops(net: LoihiNetwork, layer: Layer) -> int:
    layer = cast(DenseLayer, layer)
    return int(layer.weights.size) * net.T * _replicas(net, layer)


def _conv_ops(net: LoihiNetwork, layer: Layer) -> int:
    layer = cast(ConvLayer, layer)
    spec = _conv_spec(layer, "", 0, geometry(layer.out_shape))
    return conv_connections(spec, geometry(layer.out_shape)) * net.T * _replicas(net, layer)


def _token_ops(net: LoihiNetwork, layer: Layer) -> int:
    layer = cast(TokenLinearLayer, layer)
    return int(layer.weights.size) * layer.tokens * net.T * _replicas(net, layer)


def _attention_ops(net: LoihiNetwork, layer: Layer) -> int:
    """``2·heads·N·d²`` per step (M = KᵀV, then Q·M)."""
    layer = cast(AttentionLayer, layer)
    d = layer.channels // layer.heads
    return 2 * layer.heads * layer.tokens * d * d * net.T


def _maxpool_ops(net: LoihiNetwork, layer: Layer) -> int:
    layer = cast(MaxPoolLayer, layer)
    return math.prod(layer.out_shape) * layer.kernel[0] * layer.kernel[1] * net.T


def _host_input_ops(_: LoihiNetwork, layer: Layer) -> int:
    """conv0 MACs (or one embedding add per element), once per image."""
    layer = cast(HostInputLayer, layer)
    if layer.op == "conv2d":
        return math.prod(layer.out_shape) * math.prod(layer.weight.shape[1:])
    return math.prod(layer.out_shape)


def _readout_ops(net: LoihiNetwork, layer: Layer) -> int:
    """Token mean and time weights every step, the head once."""
    layer = cast(ReadoutLayer, layer)
    d = layer.in_shape[0]
    return (math.prod(layer.in_shape) + d) * net.T + int(layer.head_weight.size)


def _no_ops(_: LoihiNetwork, __: Layer) -> int:
    return 0


MAPPING_KINDS: KindTable[KindRule] = KindTable(
    "mapping",
    {
        LIFLayer.KIND: KindRule(role="neurons", ops=_lif_ops, feedback=_lif_feedback),
        DenseLayer.KIND: KindRule(role="synapse", ops=_dense_ops, synapse=_dense_spec),
        ConvLayer.KIND: KindRule(role="synapse", ops=_conv_ops, synapse=_conv_spec),
        TokenLinearLayer.KIND: KindRule(role="synapse", ops=_token_ops, synapse=_token_spec),
        AttentionLayer.KIND: KindRule(role="op", ops=_attention_ops, category="attention"),
        MaxPoolLayer.KIND: KindRule(role="op", ops=_maxpool_ops, category="maxpool"),
        SpikeInputLayer.KIND: KindRule(role="source", ops=_no_ops, category="input"),
        CurrentInputLayer.KIND: KindRule(role="source", ops=_no_ops, category="input"),
        HostInputLayer.KIND: KindRule(role="source", ops=_host_input_ops, category="input"),
        ReadoutLayer.KIND: KindRule(role="sink", ops=_readout_ops, category="readout"),
    },
)
"""The mapping backend's table: one :class:`KindRule` per layer kind."""


def rule(layer: Layer) -> KindRule:
    """The mapping rule of ``layer``'s kind (raises :class:`MissingKindError`)."""
    return MAPPING_KINDS.of(layer)


def role(layer: Layer) -> Role:
    return rule(layer).role


def category(layer: Layer) -> str:
    """The traffic category of data to or from `layer`: its kind's, or for a layer moved off
    the neurocores, that of the op it serves."""
    own = rule(layer).category
    if own == "other" and layer.meta:
        return str(layer.meta.get(OFFLOAD_CATEGORY, own))
    return own


def feedback(layer: Layer) -> InputSpec | None:
    """The synapse from ``layer``'s own spikes back into it (a recurrent LIF), or None."""
    fb = rule(layer).feedback
    return None if fb is None else fb(layer)


def layer_ops_per_image(net: LoihiNetwork, layer: Layer) -> int:
    """Dense-equivalent operations of ``layer`` for one image of T steps (replicas counted)."""
    return rule(layer).ops(net, layer)
