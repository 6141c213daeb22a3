"""Split every core group, consumers first: a producer's output cost depends on how its
consumers are cut (fan-out-aware splitting).

- Loihi 1-style cores (explicit synapses) pay one output axon per neuron per destination core,
  so a producer is split knowing the cores each of its neurons reaches in every consumer
  (`specs.fanout_reach`); a population whose neurons reach more destination cores than one core
  can route even at one neuron per core gets fan-out repeaters (`core_split.repeater_split`).
- Loihi 2 cores (a calibrated core model) pay axon-map entries per neuron or per position for
  each consumer and axon memory per destination core a position reaches
  (:mod:`hardware.mapping.loihi2_groups`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hardware.ir.network import LoihiNetwork
from hardware.mapping.core_split import repeater_split, split_group
from hardware.mapping.grouping import CoreGroup, offcore_spike_consumers
from hardware.mapping.loihi2_groups import split_loihi2
from hardware.mapping.loihi2_resources import Output
from hardware.mapping.profiles import CoreLimits
from hardware.mapping.specs import GroupSplit, InputSpec, fanout_reach


@dataclass(frozen=True, kw_only=True)
class Placed:
    """A group with its split; ``repeaters``: the fan-out repeater cores (or None) and
    ``repeat_fanout`` the repeaters each neuron spikes to."""

    group: CoreGroup
    split: GroupSplit
    repeaters: GroupSplit | None = None
    repeat_fanout: int = 0


def _consumers(
    g: CoreGroup, groups: list[CoreGroup], placed: dict[str, Placed]
) -> list[tuple[InputSpec, CoreGroup, Placed]]:
    """Every split group input fed by `g`'s population (or relay), with its group."""
    out = []
    for other in groups:
        done = placed.get(other.spec.name)
        if done is None:
            continue
        out += [(spec, other, done) for spec in other.spec.inputs if spec.source == g.source]
    return out


def _fanout(
    net: LoihiNetwork, g: CoreGroup, groups: list[CoreGroup], placed: dict[str, Placed]
) -> int:
    """Destination cores one neuron of `g` reaches (off-core consumers count one each)."""
    if g.kind == "relay" and not g.feeds_cores:
        return 1
    fanout = offcore_spike_consumers(net, g.anchor) if g.kind == "lif" else 0
    for spec, other, done in _consumers(g, groups, placed):
        fanout += fanout_reach(spec, other.spec, done.split.split)
    return fanout


def _feeds_itself(g: CoreGroup) -> bool:
    """A population with a recurrent synapse: one of its inputs is its own spikes."""
    return g.kind == "lif" and any(spec.source == g.source for spec in g.spec.inputs)


def _with_own_cores(g: CoreGroup, base: int, limits: CoreLimits, rounds: int = 8) -> int:
    """Fan-out `base` plus the group's own cores, which its recurrent (dense) synapse reaches
    from every neuron: the split depends on the fan-out, so iterate to a fixed point (bounded;
    the last, largest value otherwise)."""
    fanout = base
    for _ in range(rounds):
        cores = split_group(g.spec, limits, min(fanout, limits.output_axons)).split.cores
        if base + cores == fanout:
            break
        fanout = base + cores
    return fanout


def _outputs(
    net: LoihiNetwork, g: CoreGroup, groups: list[CoreGroup], placed: dict[str, Placed]
) -> tuple[Output, ...]:
    """The consumers of `g` as a Loihi 2 core counts them (see the module docstring)."""
    outs = []
    if g.kind == "relay" and not g.feeds_cores:
        outs.append(Output(consumer="host"))
    if g.kind == "lif":
        # A population nothing consumes is the network's output: the host reads its spikes.
        routes = offcore_spike_consumers(net, g.anchor) if net.out_edges(g.anchor) else 1
        outs += [Output(consumer="host")] * routes
    if _feeds_itself(g):
        outs.append(Output(consumer="dense"))  # its recurrent synapse, on its own cores
    for spec, other, done in _consumers(g, groups, placed):
        if spec.kind == "dense":
            outs.append(Output(consumer="dense"))
        else:
            reach = fanout_reach(spec, other.spec, done.split.split)
            outs.append(Output(consumer="conv", cores_per_position=reach))
    return tuple(outs)


def _split_explicit(
    net: LoihiNetwork, g: CoreGroup, groups: list[CoreGroup], placed: dict[str, Placed],
    limits: CoreLimits,
) -> Placed:  # fmt: skip
    """A Loihi 1-style split, with fan-out repeaters where one neuron reaches too many cores."""
    fanout = _fanout(net, g, groups, placed)
    if _feeds_itself(g):
        fanout = _with_own_cores(g, fanout, limits)
    if fanout <= limits.output_axons:
        return Placed(group=g, split=split_group(g.spec, limits, fanout))
    r, repeaters = repeater_split(math.prod(g.spec.shape), fanout, limits)
    return Placed(
        group=g, split=split_group(g.spec, limits, r), repeaters=repeaters, repeat_fanout=r
    )


def split_all(net: LoihiNetwork, groups: list[CoreGroup], limits: CoreLimits) -> list[Placed]:
    """Every group split (in the order of `groups`), consumers split before producers."""
    placed: dict[str, Placed] = {}
    for g in reversed(groups):
        if limits.core_model is None:
            placed[g.spec.name] = _split_explicit(net, g, groups, placed, limits)
        else:
            outputs = _outputs(net, g, groups, placed)
            placed[g.spec.name] = Placed(group=g, split=split_loihi2(g.spec, outputs, limits))
    return [placed[g.spec.name] for g in groups]
