"""`map_network(network, target) -> Mapping`: layers → cores → chips, placement, latency, I/O.

Core groups (what neurocores hold, see `hardware.mapping.core_split`):

- one per LIF placed on a neurocore: its compartments plus one synapse *replica* of every
  synapse layer (Dense, Conv, TokenLinear) feeding it; an edge delay is stored per synapse
  (``delay_bits``). A current arriving from an off-neurocore op (max-pool, attention) is a
  one-to-one graded input (needs Loihi 2 graded spikes);
- one *relay* per off-neurocore current consumer (max-pool, readout) fed by neurocore synapse
  layers: graded compartments that forward the summed current (needs graded spikes);
- *repeaters* for a population whose neurons reach more destination cores than one core can
  route even at one neuron per core (`core_split.repeater_split`).

Each group is split until no per-core design rule fails (`hardware.mapping.design_rules`), groups
are split consumers first (a producer's output axons depend on its consumers' cores), then packed
onto chips in topological order (a producer's cores sit next to its consumers'). A target
with low/high limits is mapped twice (`optimistic`, `pessimistic`); a design rule that fails
under the optimistic limits raises, one that fails only under the pessimistic limits is
recorded in `Mapping.failures` (the upper end of the range is then "does not fit").

Counts are functions of shapes only: ops are dense-equivalent (every connection every step;
activity is applied only in the latency estimate, `spike_rate`), replicas counted. Not verified
against Loihi hardware or Intel's compiler.
"""

from __future__ import annotations

import math
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from hardware.ir import fixed
from hardware.ir.layers import (
    AttentionLayer,
    ConvLayer,
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
from hardware.mapping.core_split import (
    GroupSpec,
    GroupSplit,
    InputSpec,
    Split,
    axis_tile_counts,
    ceil_div,
    delay_bits,
    fanout_reach,
    repeater_split,
    split_group,
    utilization,
)
from hardware.mapping.design_rules import (
    ON_NEUROCORE,
    CoreDemand,
    DesignRuleError,
    MappingError,
    delay_within_limit,
    fits_system_chips,
    graded_spikes_supported,
    known_placement,
    weight_bits_within_limit,
)
from hardware.mapping.profiles import BOUNDS, Bound, CoreLimits, TargetProfile, Timing

SYNAPSE_TYPES = (DenseLayer, ConvLayer, TokenLinearLayer)
DEFAULT_SPIKE_RATE = 0.1
"""Assumed fraction of neurons spiking per step, used only by the latency estimate."""
GRADED_PAYLOAD_BITS = 24
"""Bits per current value sent off-core (Lava's graded messages: 24 bits)."""
IDENTITY_WEIGHT_BITS = 1
"""A one-to-one graded input is stored as one 1-bit unit weight per axon."""
BIAS_PAYLOAD_BITS = fixed.BIAS_MANT_BITS + fixed.BIAS_EXP_BITS
"""Bits per injected bias: 13-bit mantissa + 3-bit exponent = 16."""


# ---------------------------------------------------------------------------------------------
# Result records.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class GroupMapping:
    """One core group mapped: totals of the unsplit group and the chosen split.

    kind: ``lif`` or ``relay``; neurons: compartments; input_axons: Σ over incoming edges of
    presynaptic neurons (unsplit); synapses: connections (dense-equivalent, replicas of this
    group only); inputs: names of the synapse layers (or ops) feeding it; demand: worst core;
    utilization: worst-core demand / limit per resource; binding: the most utilized one;
    first_core: index of its first core in packing order; chips: (first, last) chip index.
    """

    name: str
    kind: str
    placement: str
    shape: tuple[int, int, int]
    inputs: tuple[str, ...]
    neurons: int
    input_axons: int
    synapses: int
    max_delay_bits: int
    split: Split
    demand: CoreDemand
    utilization: AbcMapping[str, float]
    binding: str
    first_core: int
    chips: tuple[int, int]

    @property
    def cores(self) -> int:
        return self.split.cores


@dataclass(frozen=True, kw_only=True)
class Latency:
    """Per-step and per-image time estimate (seconds) of one scenario.

    step_s = neurocore_s + embedded_s + host_s (the off-core ops sit on the per-step path);
    image_s = step_s × (T + depth); images_per_s = 1 / (step_s × T) when streaming.
    """

    neurocore_s: float
    embedded_s: float
    host_s: float
    step_s: float
    image_s: float
    images_per_s: float


@dataclass(frozen=True, kw_only=True)
class ScenarioMapping:
    """The mapping under one set of limits (`bound`)."""

    bound: Bound
    limits: CoreLimits
    timing: Timing
    groups: tuple[GroupMapping, ...]
    cores: int
    chips: int
    binding: str
    cores_by_binding: AbcMapping[str, int]
    interchip_edges: int
    latency: Latency


@dataclass(frozen=True, kw_only=True)
class PlacementShare:
    """Ops per image and neurons of one placement label, with their fractions of the total."""

    placement: str
    ops: int
    neurons: int
    op_fraction: float
    neuron_fraction: float


@dataclass(frozen=True, kw_only=True)
class Traffic:
    """Off-neurocore traffic of one image (bits, dense-equivalent: every element every step).

    host_bits: host↔chip bits per category (``input``, ``readout``, ``maxpool``, ``attention``,
    ``other``); embedded_bits: neurocore↔embedded bits per category; round_trips_per_step:
    off-neurocore ops on the per-step path (each a neurocore → x86/host → neurocore hop).
    """

    host_bits: AbcMapping[str, int]
    embedded_bits: AbcMapping[str, int]
    host_round_trips_per_step: int
    embedded_round_trips_per_step: int

    @property
    def host_total_bits(self) -> int:
        return sum(self.host_bits.values())

    @property
    def embedded_total_bits(self) -> int:
        return sum(self.embedded_bits.values())


@dataclass(frozen=True, kw_only=True)
class Mapping:
    """Result of `map_network`: per scenario core groups and chips, placement, traffic.

    scenarios: ``optimistic`` and ``pessimistic`` (the same object when the target's limits
    are exact); failures: scenario → the design rule that failed (pessimistic only; an
    optimistic failure raises); depth: pipeline depth in steps (``network.max_depth`` plus the
    last layer's latency).
    """

    target: str
    generation: str
    T: int
    depth: int
    spike_rate: float
    scenarios: AbcMapping[str, ScenarioMapping]
    failures: AbcMapping[str, DesignRuleError]
    placement: tuple[PlacementShare, ...]
    traffic: Traffic
    assumptions: tuple[str, ...] = field(default=())

    def chips_range(self) -> tuple[int, int | None]:
        """(chips under optimistic limits, chips under pessimistic limits or None = no fit)."""
        lo = self.scenarios["optimistic"].chips
        hi = self.scenarios["pessimistic"].chips if "pessimistic" in self.scenarios else None
        return lo, hi

    def cores_range(self) -> tuple[int, int | None]:
        """(cores optimistic, cores pessimistic or None = no fit)."""
        lo = self.scenarios["optimistic"].cores
        hi = self.scenarios["pessimistic"].cores if "pessimistic" in self.scenarios else None
        return lo, hi


# ---------------------------------------------------------------------------------------------
# Graph → core groups.
# ---------------------------------------------------------------------------------------------


def _geometry(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(C, H, W) of a neuron layout: (C, H, W) as is, (C, N) → (C, N, 1), flat → (N, 1, 1)."""
    if len(shape) == 3:
        return (shape[0], shape[1], shape[2])
    if len(shape) == 2:
        return (shape[0], shape[1], 1)
    return (math.prod(shape), 1, 1)


def _synapse_input(
    syn: Layer, source: str, delay: int, geometry: tuple[int, int, int], shared: bool
) -> InputSpec:
    """The InputSpec of one replica of synapse layer `syn` into a group of `geometry`."""
    if isinstance(syn, DenseLayer):
        return InputSpec(
            name=syn.name,
            source=source,
            kind="dense",
            in_shape=(math.prod(syn.in_shape), 1, 1),
            weight_bits=syn.num_weight_bits,
            delay=delay,
        )
    if isinstance(syn, ConvLayer):
        if _geometry(syn.out_shape) != geometry:
            raise MappingError(
                f"layer {syn.name!r}: conv output {syn.out_shape} does not match "
                f"the consumer layout {geometry}"
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
            shared=shared,
        )
    if not isinstance(syn, TokenLinearLayer):
        raise MappingError(f"layer {syn.name!r}: {syn.KIND} is not a synapse layer")
    c_in = int(syn.weights.shape[1])
    if geometry[1] * geometry[2] != syn.tokens:
        raise MappingError(
            f"layer {syn.name!r}: {syn.tokens} tokens do not match the consumer layout {geometry}"
        )
    return InputSpec(
        name=syn.name,
        source=source,
        kind="conv",
        in_shape=(c_in, geometry[1], geometry[2]),
        weight_bits=syn.num_weight_bits,
        delay=delay,
        shared=shared,
    )


def _identity_input(src: Layer, delay: int, geometry: tuple[int, int, int]) -> InputSpec:
    """A one-to-one graded current input (from an off-neurocore op) as a depthwise 1×1 conv."""
    return InputSpec(
        name=src.name,
        source=src.name,
        kind="conv",
        in_shape=geometry,
        groups=geometry[0],
        weight_bits=IDENTITY_WEIGHT_BITS,
        delay=delay,
    )


@dataclass(frozen=True, kw_only=True)
class _Group:
    spec: GroupSpec
    kind: str
    placement: str
    anchor: str  # the layer whose topological position orders the group (LIF or consumer)
    graded_in: bool
    graded_out: bool


def _on_core(layer: Layer) -> bool:
    return layer.placement in ON_NEUROCORE


def _groups(net: LoihiNetwork, limits: CoreLimits) -> list[_Group]:
    """Core groups in topological order; checks delays, weight bits and graded-spike needs."""
    groups: list[_Group] = []
    for name in net.topological_order():
        layer = net.layer(name)
        known_placement(name, layer.placement)
        is_lif_on_core = isinstance(layer, LIFLayer) and _on_core(layer)
        is_relay = isinstance(layer, LIFLayer | MaxPoolLayer | ReadoutLayer) and not is_lif_on_core
        if not (is_lif_on_core or is_relay):
            continue
        geometry = _geometry(layer.shape if isinstance(layer, LIFLayer) else layer.in_shape)
        convs = [
            net.layer(e.src)
            for e in net.in_edges(name)
            if isinstance(net.layer(e.src), ConvLayer) and _on_core(net.layer(e.src))
        ]
        if convs and math.prod(convs[0].out_shape) == math.prod(geometry):
            geometry = _geometry(convs[0].out_shape)
        inputs: list[InputSpec] = []
        graded_in = False
        for e in net.in_edges(name):
            src = net.layer(e.src)
            if isinstance(src, HostInputLayer):
                continue  # a bias edge: written once per image, no synapses
            if isinstance(src, SYNAPSE_TYPES) and _on_core(src):
                weight_bits_within_limit(src.name, src.num_weight_bits, limits)
                for feed in net.in_edges(src.name):
                    delay = feed.delay + e.delay
                    delay_within_limit(src.name, delay, limits)
                    shared = limits.conv_weight_sharing and not isinstance(src, DenseLayer)
                    inputs.append(_synapse_input(src, feed.src, delay, geometry, shared))
            elif is_lif_on_core:
                graded_in = True
                delay_within_limit(src.name, e.delay, limits)
                inputs.append(_identity_input(src, e.delay, geometry))
        if is_relay and not inputs:
            continue
        # One neuron profile per layer: du, dv and vth are per layer in the schema (bias is
        # per compartment state, not a profile).
        spec = GroupSpec(
            name=name if is_lif_on_core else f"relay:{name}",
            shape=geometry,
            inputs=tuple(inputs),
            neuron_groups=1,
        )
        placement = layer.placement if is_lif_on_core else "neurocore-L2"
        groups.append(
            _Group(
                spec=spec,
                kind="lif" if is_lif_on_core else "relay",
                placement=placement,
                anchor=name,
                graded_in=graded_in,
                graded_out=is_relay,
            )
        )
    for g in groups:
        if g.graded_in or g.graded_out:
            graded_spikes_supported(g.spec.name, "neurocore-L2", limits)
    return groups


def _offcore_spike_consumers(net: LoihiNetwork, name: str) -> int:
    """Routes from spike source `name` to consumers that are not neurocore synapses."""
    return sum(
        1
        for e in net.out_edges(name)
        if not (isinstance(net.layer(e.dst), SYNAPSE_TYPES) and _on_core(net.layer(e.dst)))
    )


@dataclass(frozen=True, kw_only=True)
class _Placed:
    group: _Group
    split: GroupSplit
    repeaters: GroupSplit | None = None
    repeat_fanout: int = 0


def _split_all(net: LoihiNetwork, groups: list[_Group], limits: CoreLimits) -> list[_Placed]:
    """Split every group, consumers first (a producer's out axons need its consumers' cores).

    A population whose neurons reach more destination cores than one core can route even at
    one neuron per core gets fan-out repeaters (`core_split.repeater_split`).
    """
    placed: dict[str, _Placed] = {}
    for g in reversed(groups):
        if g.kind == "relay":
            fanout = 1
        else:
            fanout = _offcore_spike_consumers(net, g.anchor)
            for other in groups:
                if other.spec.name not in placed:
                    continue
                for spec in other.spec.inputs:
                    if spec.source == g.anchor:
                        fanout += fanout_reach(
                            spec, other.spec, placed[other.spec.name].split.split
                        )

        if fanout <= limits.output_axons:
            placed[g.spec.name] = _Placed(group=g, split=split_group(g.spec, limits, fanout))
            continue
        r, repeaters = repeater_split(math.prod(g.spec.shape), fanout, limits)
        placed[g.spec.name] = _Placed(
            group=g, split=split_group(g.spec, limits, r), repeaters=repeaters, repeat_fanout=r
        )
    return [placed[g.spec.name] for g in groups]


def _connections(spec: InputSpec, shape: tuple[int, int, int]) -> int:
    """Dense-equivalent connections of one input into a group of `shape` (exact, with padding)."""
    c, h, w = shape
    if spec.kind == "dense":
        return math.prod(spec.in_shape) * c * h * w
    _, h_in, w_in = spec.in_shape
    py, _ = axis_tile_counts(
        h, 1, h_in, spec.kernel[0], spec.stride[0], spec.padding[0], spec.dilation[0]
    )
    px, _ = axis_tile_counts(
        w, 1, w_in, spec.kernel[1], spec.stride[1], spec.padding[1], spec.dilation[1]
    )
    return c * (spec.in_shape[0] // spec.groups) * int(py[0].sum()) * int(px[0].sum())


def _scenario(
    net: LoihiNetwork,
    target: TargetProfile,
    bound: Bound,
    spike_rate: float,
    traffic: Traffic,
    depth: int,
) -> ScenarioMapping:
    limits, timing = target.limits(bound), target.timing(bound)
    groups = _groups(net, limits)
    mapped: list[GroupMapping] = []
    core = 0

    def add(
        name: str,
        kind: str,
        placement: str,
        shape: tuple[int, int, int],
        inputs: tuple[InputSpec, ...],
        s: GroupSplit,
        neurons: int,
    ) -> None:
        nonlocal core
        mapped.append(
            GroupMapping(
                name=name,
                kind=kind,
                placement=placement,
                shape=shape,
                inputs=tuple(i.name for i in inputs),
                neurons=neurons,
                input_axons=sum(math.prod(i.in_shape) for i in inputs),
                synapses=sum(_connections(i, shape) for i in inputs),
                max_delay_bits=max((delay_bits(i.delay) for i in inputs), default=0),
                split=s.split,
                demand=s.demand,
                utilization=MappingProxyType(utilization(s.demand, limits)),
                binding=s.binding,
                first_core=core,
                chips=(
                    core // limits.cores_per_chip,
                    (core + s.split.cores - 1) // limits.cores_per_chip,
                ),
            )
        )
        core += s.split.cores

    for p in _split_all(net, groups, limits):
        g = p.group
        add(
            g.spec.name,
            g.kind,
            g.placement,
            g.spec.shape,
            g.spec.inputs,
            p.split,
            math.prod(g.spec.shape),
        )
        if p.repeaters is not None:
            n = math.prod(g.spec.shape) * p.repeat_fanout
            link = InputSpec(
                name=g.spec.name,
                source=g.anchor,
                kind="conv",
                in_shape=(n, 1, 1),
                groups=n,
                weight_bits=IDENTITY_WEIGHT_BITS,
            )
            add(f"repeat:{g.anchor}", "repeater", "neurocore", (n, 1, 1), (link,), p.repeaters, n)
    chips = ceil_div(core, limits.cores_per_chip) if core else 0
    fits_system_chips(chips, limits)
    by_binding: dict[str, int] = {}
    for m in mapped:
        by_binding[m.binding] = by_binding.get(m.binding, 0) + m.cores
    binding = max(by_binding, key=by_binding.get) if by_binding else "none"
    chip_of = {m.name: m.chips for m in mapped}
    group_of_source = {g.anchor: g.spec.name for g in groups if g.kind == "lif"}
    interchip = 0
    for g in groups:
        for spec in g.spec.inputs:
            src = group_of_source.get(spec.source)
            if src is not None and chip_of[src][1] < chip_of[g.spec.name][0]:
                interchip += 1
    latency = _latency(mapped, limits, timing, spike_rate, traffic, net, chips, depth)
    return ScenarioMapping(
        bound=bound,
        limits=limits,
        timing=timing,
        groups=tuple(mapped),
        cores=core,
        chips=chips,
        binding=binding,
        cores_by_binding=MappingProxyType(by_binding),
        interchip_edges=interchip,
        latency=latency,
    )


# ---------------------------------------------------------------------------------------------
# Ops, placement, traffic, latency.
# ---------------------------------------------------------------------------------------------


def layer_ops_per_image(net: LoihiNetwork, layer: Layer) -> int:
    """Dense-equivalent ops of one layer for one image of T steps (synapse replicas counted).

    LIF: neuron updates; synapses: connections × consumers; attention: 2·heads·N·d² per step
    (M = KᵀV, then Q·M); max-pool: outputs × window; host input: conv/embedding MACs once;
    readout: token mean and time weights per step, head once.
    """
    T = net.T
    if isinstance(layer, LIFLayer):
        return math.prod(layer.shape) * T
    if isinstance(layer, SYNAPSE_TYPES):
        replicas = max(len(net.out_edges(layer.name)), 1)
        if isinstance(layer, DenseLayer):
            conn = int(layer.weights.size)
        elif isinstance(layer, TokenLinearLayer):
            conn = int(layer.weights.size) * layer.tokens
        else:
            spec = _synapse_input(layer, "", 0, _geometry(layer.out_shape), False)
            conn = _connections(spec, _geometry(layer.out_shape))
        return conn * T * replicas
    if isinstance(layer, AttentionLayer):
        d = layer.channels // layer.heads
        return 2 * layer.heads * layer.tokens * d * d * T
    if isinstance(layer, MaxPoolLayer):
        return math.prod(layer.out_shape) * layer.kernel[0] * layer.kernel[1] * T
    if isinstance(layer, HostInputLayer):
        if layer.op == "conv2d":
            return math.prod(layer.out_shape) * math.prod(layer.weight.shape[1:])
        return math.prod(layer.out_shape)
    if isinstance(layer, ReadoutLayer):
        d = layer.in_shape[0]
        return (math.prod(layer.in_shape) + d) * T + int(layer.head_weight.size)
    return 0


def placement_summary(net: LoihiNetwork) -> tuple[PlacementShare, ...]:
    """Ops per image and neurons per placement label (relay compartments: `neurocore-L2`)."""
    ops = {p: 0 for p in ("neurocore", "neurocore-L2", "embedded", "host")}
    neurons = dict.fromkeys(ops, 0)
    for layer in net.layers:
        ops[layer.placement] += layer_ops_per_image(net, layer)
        if isinstance(layer, LIFLayer):
            neurons[layer.placement] += math.prod(layer.shape)
        if isinstance(layer, MaxPoolLayer | ReadoutLayer) and any(
            isinstance(net.layer(e.src), SYNAPSE_TYPES) and _on_core(net.layer(e.src))
            for e in net.in_edges(layer.name)
        ):
            relay = math.prod(layer.in_shape)
            neurons["neurocore-L2"] += relay
            ops["neurocore-L2"] += relay * net.T
    total_ops, total_neurons = sum(ops.values()) or 1, sum(neurons.values()) or 1
    return tuple(
        PlacementShare(
            placement=p,
            ops=ops[p],
            neurons=neurons[p],
            op_fraction=ops[p] / total_ops,
            neuron_fraction=neurons[p] / total_neurons,
        )
        for p in ops
    )


def _domain(layer: Layer) -> str:
    return "chip" if _on_core(layer) else layer.placement


def _category(src: Layer, dst: Layer) -> str:
    if isinstance(src, HostInputLayer | SpikeInputLayer):
        return "input"
    if isinstance(dst, ReadoutLayer):
        return "readout"
    for layer in (src, dst):
        if isinstance(layer, MaxPoolLayer):
            return "maxpool"
        if isinstance(layer, AttentionLayer):
            return "attention"
    return "other"


def traffic_per_image(net: LoihiNetwork) -> Traffic:
    """Bits crossing neurocore ↔ embedded and chip ↔ host for one image (every step, dense).

    Spikes cost 1 bit per neuron per step (a bitmap; event coding would cost spikes × address
    bits), currents GRADED_PAYLOAD_BITS per value per step, injected biases BIAS_PAYLOAD_BITS
    per neuron once per image. Currents of several on-chip synapse layers into one off-chip
    consumer are summed by its relay and sent once. Per-step exchanges count distinct
    off-neurocore layers that trade data with the chip every step.
    """
    host: dict[str, int] = {}
    embedded: dict[str, int] = {}
    host_layers: set[str] = set()
    embedded_layers: set[str] = set()
    relayed: set[str] = set()
    for e in net.edges:
        src, dst = net.layer(e.src), net.layer(e.dst)
        a, b = _domain(src), _domain(dst)
        if a == b:
            continue
        elements = math.prod(src.out_shape)
        if src.OUTPUT == "bias":
            bits = elements * BIAS_PAYLOAD_BITS
        elif src.OUTPUT == "spikes":
            bits = elements * net.T
        else:
            if a == "chip":
                if dst.name in relayed:
                    continue
                relayed.add(dst.name)
                elements = math.prod(dst.in_shape)
            bits = elements * GRADED_PAYLOAD_BITS * net.T
        cat = _category(src, dst)
        bucket = host if "host" in (a, b) else embedded
        bucket[cat] = bucket.get(cat, 0) + bits
        if src.OUTPUT != "bias":
            off = dst if a == "chip" else src
            (host_layers if off.placement == "host" else embedded_layers).add(off.name)
    return Traffic(
        host_bits=MappingProxyType(host),
        embedded_bits=MappingProxyType(embedded),
        host_round_trips_per_step=len(host_layers),
        embedded_round_trips_per_step=len(embedded_layers),
    )


def _latency(
    groups: list[GroupMapping],
    limits: CoreLimits,
    timing: Timing,
    spike_rate: float,
    traffic: Traffic,
    net: LoihiNetwork,
    chips: int,
    depth: int,
) -> Latency:
    """Per-step time: slowest core + barrier + mesh hops, then embedded and host work.

    Neurocore: max over groups of (connections/core × spike_rate × t_syn + neurons × t_update
    + out axons × spike_rate × t_spike), + barrier + 2·sqrt(cores/chip) hops. Embedded: the
    slowest embedded layer, its per-step ops spread over its share of the x86 cores of the
    chips used. Host: one round trip per host layer exchanging per-step data + its bits over
    the link (the once-per-image input is excluded: it overlaps the previous image).
    """
    core_s = 0.0
    for g in groups:
        syn_ops = g.synapses / g.cores * spike_rate
        t = (
            syn_ops * timing.synaptic_op_s
            + g.demand.neurons * timing.neuron_update_s
            + g.demand.output_axons * spike_rate * timing.spike_out_s
        )
        core_s = max(core_s, t)
    hops = 2 * math.isqrt(max(limits.cores_per_chip, 1))
    neuro = core_s + timing.barrier_s + hops * timing.hop_s if groups else 0.0
    embedded_layers = [layer for layer in net.layers if layer.placement == "embedded"]
    x86 = limits.embedded_cores_per_chip * max(chips, 1)
    per_layer = max(1, x86 // max(len(embedded_layers), 1))
    embedded = max(
        (
            layer_ops_per_image(net, layer) / net.T * timing.embedded_op_s / per_layer
            for layer in embedded_layers
        ),
        default=0.0,
    )
    per_step_bits = sum(bits for cat, bits in traffic.host_bits.items() if cat != "input") / net.T
    host = (
        traffic.host_round_trips_per_step * timing.host_round_trip_s
        + per_step_bits / timing.host_link_bits_per_s
    )
    step = neuro + embedded + host
    return Latency(
        neurocore_s=neuro,
        embedded_s=embedded,
        host_s=host,
        step_s=step,
        image_s=step * (net.T + depth),
        images_per_s=1.0 / (step * net.T),
    )


def _depth(net: LoihiNetwork) -> int:
    """Steps from a sample's first input to its last output: max over layers of depth+latency."""
    return max((net.depth(layer.name) + layer.latency for layer in net.layers), default=0)


ASSUMPTIONS = (
    "Bit-accuracy refers to Lava 0.10's CPU fixed-point models, not Loihi 2 silicon "
    "(lava#322, lava#829).",
    "Resource counts are functions of shapes only; not checked against Intel's compiler.",
    "Synaptic memory uses nengo-loihi's Loihi 1 layout (64-synapse groups, 10 header bits, "
    "64-bit words, no index bits): a lower bound for sparse conv connectivity.",
    "A shared (Loihi 2) kernel costs its weights once per core; per-core worst case is the "
    "sum over inputs of each input's worst tile.",
    "Every edge into a neurocore group is a synapse replica on the destination's cores; "
    "residual-stream consumers each store every upstream branch.",
    "Ops are dense-equivalent (every connection every step); latency applies `spike_rate`.",
    "Traffic counts every element every step (spike bitmaps, 24-bit currents).",
    "A population whose fan-out exceeds one core's output axons even at one neuron per core "
    "gets fan-out repeaters (64 destinations each; one extra step on those paths, not added "
    "to the depth).",
)


def map_network(
    network: LoihiNetwork, target: TargetProfile, *, spike_rate: float = DEFAULT_SPIKE_RATE
) -> Mapping:
    """Map `network` onto `target`: core groups, splits, chips, placement, traffic, latency.

    Raises `DesignRuleError` (layer, resource, demand, limit) when a rule fails under the
    optimistic limits (or under exact limits); `MappingError` for a layout it cannot read.
    """
    if not 0.0 <= spike_rate <= 1.0:
        raise MappingError(f"spike_rate must be in [0, 1], got {spike_rate}")
    traffic = traffic_per_image(network)
    depth = _depth(network)
    scenarios: dict[str, ScenarioMapping] = {}
    failures: dict[str, DesignRuleError] = {}
    for bound in BOUNDS:
        if bound == "pessimistic" and target.limits(bound) == target.limits("optimistic"):
            previous = scenarios["optimistic"]
            if target.timing(bound) == previous.timing:
                scenarios[bound] = previous
                continue
        try:
            scenarios[bound] = _scenario(network, target, bound, spike_rate, traffic, depth)
        except DesignRuleError as err:
            if bound == "optimistic":
                raise
            failures[bound] = err
    return Mapping(
        target=target.name,
        generation=target.generation,
        T=network.T,
        depth=depth,
        spike_rate=spike_rate,
        scenarios=MappingProxyType(scenarios),
        failures=MappingProxyType(failures),
        placement=placement_summary(network),
        traffic=traffic,
        assumptions=ASSUMPTIONS,
    )


def summary_dict(mapping: Mapping) -> dict[str, Any]:
    """A JSON-ready dict of `mapping` (used by the report writer)."""

    def group(g: GroupMapping) -> dict[str, Any]:
        return {
            "name": g.name,
            "kind": g.kind,
            "placement": g.placement,
            "shape": list(g.shape),
            "inputs": list(g.inputs),
            "neurons": g.neurons,
            "input_axons": g.input_axons,
            "synapses": g.synapses,
            "max_delay_bits": g.max_delay_bits,
            "split": {
                "channel_groups": g.split.channel_groups,
                "tiles_y": g.split.tiles_y,
                "tiles_x": g.split.tiles_x,
            },
            "cores": g.cores,
            "worst_core": vars(g.demand).copy(),
            "utilization": dict(g.utilization),
            "binding": g.binding,
            "chips": list(g.chips),
        }

    def scenario(s: ScenarioMapping) -> dict[str, Any]:
        return {
            "bound": s.bound,
            "limits": vars(s.limits).copy(),
            "timing": vars(s.timing).copy(),
            "cores": s.cores,
            "chips": s.chips,
            "binding": s.binding,
            "cores_by_binding": dict(s.cores_by_binding),
            "interchip_edges": s.interchip_edges,
            "latency": vars(s.latency).copy(),
            "groups": [group(g) for g in s.groups],
        }

    return {
        "target": mapping.target,
        "generation": mapping.generation,
        "T": mapping.T,
        "depth": mapping.depth,
        "spike_rate": mapping.spike_rate,
        "chips_range": list(mapping.chips_range()),
        "cores_range": list(mapping.cores_range()),
        "scenarios": {k: scenario(v) for k, v in mapping.scenarios.items()},
        "failures": {
            k: {
                "rule": e.rule,
                "layer": e.layer,
                "resource": e.resource,
                "demand": e.demand,
                "limit": e.limit,
            }
            for k, e in mapping.failures.items()
        },
        "placement": [vars(p).copy() for p in mapping.placement],
        "traffic": {
            "host_bits": dict(mapping.traffic.host_bits),
            "embedded_bits": dict(mapping.traffic.embedded_bits),
            "host_round_trips_per_step": mapping.traffic.host_round_trips_per_step,
            "embedded_round_trips_per_step": mapping.traffic.embedded_round_trips_per_step,
        },
        "assumptions": list(mapping.assumptions),
    }
