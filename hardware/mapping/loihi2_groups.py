"""Core groups on Loihi 2 cores: a group as a calibrated :class:`Population`, split by the rule
of the target's bound (Intel's 2022 compiler, or the fewest cores).

The group's inputs become the population's synapse layers (dense rows, shared conv and
token-wise kernels, depthwise one-to-one graded inputs, each with its delay bits); a host-driven
input costs one axon and no synapses (Intel's input layer). Its consumers become outputs: a
population pays one axon-map entry per neuron for each dense or off-core consumer and one per
position (per x stride phase in the 2022 compiler) for each convolutional consumer, and axon
memory for the destination cores a position reaches (fan-out-aware: the consumers are split
first).
"""

from __future__ import annotations

import math

from hardware.mapping.design_rules import MappingError
from hardware.mapping.loihi2_model import Loihi2CoreModel
from hardware.mapping.loihi2_resources import (
    Output,
    Population,
    PopulationKind,
    SplitResult,
    SynapseInput,
    map_layer,
)
from hardware.mapping.profiles import CoreLimits
from hardware.mapping.specs import GroupSpec, GroupSplit, InputSpec, Split, ceil_div


def core_model(limits: CoreLimits) -> Loihi2CoreModel:
    """The calibrated core model of `limits` (a typed error for a target without one)."""
    if limits.core_model is None:
        raise MappingError("this target's cores have no calibrated Loihi 2 core model")
    return limits.core_model


def synapse_input(spec: InputSpec) -> SynapseInput:
    """How a Loihi 2 core stores one group input (dense rows, or a shared kernel)."""
    if spec.kind == "dense":
        return SynapseInput(
            name=spec.name,
            kind="dense",
            in_shape=(math.prod(spec.in_shape), 1, 1),
            weight_bits=spec.weight_bits,
            delay=spec.delay,
        )
    return SynapseInput(
        name=spec.name,
        kind="conv",
        in_shape=spec.in_shape,
        kernel=spec.kernel,
        stride=spec.stride,
        groups=spec.groups,
        weight_bits=spec.weight_bits,
        delay=spec.delay,
    )


def population(group: GroupSpec, outputs: tuple[Output, ...]) -> Population:
    """`group` as a calibrated population with consumers `outputs`."""
    stored = tuple(synapse_input(s) for s in group.inputs if not s.host)
    kind: PopulationKind = "input"
    grid = group.shape
    if stored and all(s.kind == "dense" for s in stored):
        kind, grid = "dense", (math.prod(group.shape), 1, 1)
    elif stored:
        kind = "conv"
    strides = [s.stride[1] for s in stored if s.kind != "dense"]
    return Population(
        name=group.name,
        kind=kind,
        grid=grid,
        inputs=stored,
        outputs=outputs,
        stride_x=max(strides, default=1),
    )


def group_split(result: SplitResult, pop: Population, limits: CoreLimits) -> GroupSplit:
    """A calibrated split as the mapper's `GroupSplit` (worst core, limits, allocation)."""
    model = core_model(limits)
    c, h, w = pop.grid
    split = Split(
        channel_groups=ceil_div(c, result.split.tile_c),
        tiles_y=ceil_div(h, result.split.tile_h),
        tiles_x=ceil_div(w, result.split.tile_w),
    )
    return GroupSplit.of(
        split,
        dict(result.worst.items()),
        {r: model.limit(r) for r, _ in result.worst.items()},
        binding=result.binding(model),
        allocated=round(result.mean.neurons * result.cores),
    )


def split_loihi2(group: GroupSpec, outputs: tuple[Output, ...], limits: CoreLimits) -> GroupSplit:
    """The split of `group` under the bound's core model and strategy (`limits`)."""
    pop = population(group, outputs)
    result = map_layer(pop, core_model(limits), limits.split_strategy)  # type: ignore[arg-type]
    return group_split(result, pop, limits)
