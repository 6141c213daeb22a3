"""Split every core group, consumers first: a producer's output cost depends on how its
consumers are cut (fan-out-aware splitting).

A Loihi 1-style core pays one output axon per neuron per destination core, so a producer is
split knowing the cores each of its neurons reaches in every consumer
(`core_split.fanout_reach`); a population whose neurons reach more destination cores than one
core can route even at one neuron per core gets fan-out repeaters (`core_split.repeater_split`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hardware.ir.network import LoihiNetwork
from hardware.mapping.core_split import fanout_reach, repeater_split, split_group
from hardware.mapping.grouping import CoreGroup, offcore_spike_consumers
from hardware.mapping.profiles import CoreLimits
from hardware.mapping.specs import GroupSplit


@dataclass(frozen=True, kw_only=True)
class Placed:
    """A group with its split; ``repeaters``: the fan-out repeater cores (or None) and
    ``repeat_fanout`` the repeaters each neuron spikes to."""

    group: CoreGroup
    split: GroupSplit
    repeaters: GroupSplit | None = None
    repeat_fanout: int = 0


def _fanout(
    net: LoihiNetwork, g: CoreGroup, groups: list[CoreGroup], placed: dict[str, Placed]
) -> int:
    """Destination cores one neuron of `g` reaches (off-core consumers count one each)."""
    if g.kind == "relay":
        return 1
    fanout = offcore_spike_consumers(net, g.anchor)
    for other in groups:
        done = placed.get(other.spec.name)
        if done is None:
            continue
        for spec in other.spec.inputs:
            if spec.source == g.anchor:
                fanout += fanout_reach(spec, other.spec, done.split.split)
    return fanout


def split_all(net: LoihiNetwork, groups: list[CoreGroup], limits: CoreLimits) -> list[Placed]:
    """Every group split (in the order of `groups`), consumers split before producers."""
    placed: dict[str, Placed] = {}
    for g in reversed(groups):
        fanout = _fanout(net, g, groups, placed)
        if fanout <= limits.output_axons:
            placed[g.spec.name] = Placed(group=g, split=split_group(g.spec, limits, fanout))
            continue
        r, repeaters = repeater_split(math.prod(g.spec.shape), fanout, limits)
        placed[g.spec.name] = Placed(
            group=g, split=split_group(g.spec, limits, r), repeaters=repeaters, repeat_fanout=r
        )
    return [placed[g.spec.name] for g in groups]
