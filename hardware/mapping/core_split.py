"""Loihi 1-style cores (explicit synapses, nengo-loihi's layout): per-core demand and the split.

For the core groups of :mod:`hardware.mapping.specs`: a split cuts a group into
``channel_groups`` slices and ``tiles_y × tiles_x`` spatial tiles, each (slice, tile) one core.
Per-core demand (worst core; a sum over inputs of each input's
worst tile, exact when the tiling has an interior tile):

- neurons = channels × positions on the core;
- input axons = distinct presynaptic neurons per incoming edge that reach the core
  (dense: every input; conv: the input halo of the tile × input channels of the slice);
- synapses = connections stored (shared kernel: ``C_in/groups · kH · kW`` per output channel);
- memory bits: explicit synapses use nengo-loihi's layout (per axon, groups of
  ``synapses_per_block`` synapses cost ``ceil_word(n · bits + header)`` bits; dense layout, no
  index bits, so a lower bound for sparse conv connectivity); a shared kernel, where the
  target has ``conv_weight_sharing``, costs ``ceil_word(weights · bits)``;
  ``bits = num_weight_bits + delay_bits(delay)``;
- output axons = neurons × destination cores reached per neuron (given by the caller).

The search returns the fewest cores that satisfy every per-core design rule; it is bounded
(binary search over channels per core for each candidate tiling), and an impossible layer
raises the `DesignRuleError` of its finest split.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np

from hardware.mapping.design_rules import CoreDemand, DesignRuleError, core_violations
from hardware.mapping.profiles import CoreLimits
from hardware.mapping.specs import (
    GroupSpec,
    GroupSplit,
    InputSpec,
    Split,
    axis_args,
    axis_tile_counts,
    ceil_div,
    delay_bits,
)


def bits_per_axon(n_synapses: np.ndarray, bits_per_synapse: int, limits: CoreLimits) -> np.ndarray:
    """Synaptic memory bits of axons with `n_synapses` explicit synapses each (int64 array).

    Groups of ``limits.synapses_per_block`` synapses each cost
    ``ceil_word(n · bits_per_synapse + header)`` bits (nengo-loihi ``bits_per_axon`` layout).
    """
    n = np.asarray(n_synapses, dtype=np.int64)
    block, word = limits.synapses_per_block, limits.memory_word_bits
    header = limits.synapse_block_header_bits
    full, rem = n // block, n % block
    full_bits = ceil_div(block * bits_per_synapse + header, word) * word
    rem_bits = -(-(rem * bits_per_synapse + header) // word) * word
    return full * full_bits + np.where(rem > 0, rem_bits, 0)


@lru_cache(maxsize=8192)
def _pair_stats(
    y: tuple[int, int, int, int, int, int, int], x: tuple[int, int, int, int, int, int, int]
) -> tuple[tuple[int, int, np.ndarray], ...]:
    """Per distinct (y pattern, x pattern): (input positions, taps, non-zero tap counts)."""
    py, _ = axis_tile_counts(*y)
    px, _ = axis_tile_counts(*x)
    out = []
    for cy in py:
        for cx in px:
            taps = np.outer(cy, cx)
            nz = taps[taps > 0]
            nz.setflags(write=False)
            out.append((int(nz.size), int(nz.sum()), nz))
    return tuple(out)


def _conv_core(
    spec: InputSpec, group: GroupSpec, c_core: int, split: Split, limits: CoreLimits
) -> tuple[int, int, int]:
    """(input axons, synapses, memory bits) of the worst core for one conv input."""
    c_in = spec.in_shape[0]
    cin_per_group = c_in // spec.groups
    cout_per_group = group.shape[0] // spec.groups
    in_channels = min(c_in, cin_per_group * ceil_div(c_core, cout_per_group))
    pairs = _pair_stats(*axis_args(spec, group.shape, (split.tiles_y, split.tiles_x)))
    bits = spec.weight_bits + delay_bits(spec.delay)
    axons = in_channels * max(p[0] for p in pairs)
    if spec.shared and limits.conv_weight_sharing:
        stored = c_core * cin_per_group * spec.kernel[0] * spec.kernel[1]
        words = ceil_div(stored * bits, limits.memory_word_bits)
        return axons, stored, words * limits.memory_word_bits
    syn = c_core * cin_per_group * max(p[1] for p in pairs)
    # Per input axon, the synapses into the core are (tap count at that position) × (output
    # channels it feeds on the core).
    fed = min(c_core, cout_per_group)
    mem = in_channels * max(int(bits_per_axon(p[2] * fed, bits, limits).sum()) for p in pairs)
    return axons, syn, mem


def _dense_core(spec: InputSpec, neurons: int, limits: CoreLimits) -> tuple[int, int, int]:
    """(input axons, synapses, memory bits) of one dense input into a core of `neurons`."""
    n_in = math.prod(spec.in_shape)
    bits = spec.weight_bits + delay_bits(spec.delay)
    mem = n_in * int(bits_per_axon(np.array([neurons]), bits, limits)[0])
    return n_in, n_in * neurons, mem


def core_demand(
    group: GroupSpec, split: Split, fanout_cores: int, limits: CoreLimits
) -> CoreDemand:
    """Worst-core demand of `group` cut by `split`; `fanout_cores` = out axons per neuron."""
    c, h, w = group.shape
    c_core = ceil_div(c, split.channel_groups)
    neurons = c_core * ceil_div(h, split.tiles_y) * ceil_div(w, split.tiles_x)
    axons = syn = mem = 0
    for spec in group.inputs:
        if spec.kind == "dense":
            a, s, m = _dense_core(spec, neurons, limits)
        else:
            a, s, m = _conv_core(spec, group, c_core, split, limits)
        axons, syn, mem = axons + a, syn + s, mem + m
    return CoreDemand(
        neurons=neurons,
        input_axons=axons,
        output_axons=neurons * fanout_cores,
        synapses=syn,
        memory_bits=mem,
        neuron_groups=min(group.neuron_groups, neurons),
    )


def _axis_tile_options(length: int) -> list[int]:
    """Distinct achievable tile counts along an axis of `length` positions, ascending."""
    return sorted({ceil_div(length, ceil_div(length, t)) for t in range(1, length + 1)})


LIMIT_FIELDS = (
    ("neurons", "neurons"),
    ("input_axons", "input_axons"),
    ("output_axons", "output_axons"),
    ("memory_bits", "synaptic_memory_bits"),
    ("neuron_groups", "neuron_groups"),
)
"""(CoreDemand field, CoreLimits field) pairs: the limited per-core resources of a Loihi 1-style
core, in the order the report prints them."""


def resource_limits(limits: CoreLimits) -> dict[str, int]:
    """Per-core limit of each resource of :data:`LIMIT_FIELDS`."""
    return {d: int(getattr(limits, lim)) for d, lim in LIMIT_FIELDS}


def group_split(split: Split, demand: CoreDemand, limits: CoreLimits) -> GroupSplit:
    """`split` with its worst-core `demand` and most utilized resource."""
    return GroupSplit.of(split, demand.as_dict(), resource_limits(limits))


def _tilings(h: int, w: int) -> list[tuple[int, int]]:
    """Candidate ``(tiles_y, tiles_x)``, fewest tiles first, roughly square tiles only."""
    return sorted(
        (
            (ty, tx)
            for ty in _axis_tile_options(h)
            for tx in _axis_tile_options(w)
            if max(ty, tx) <= 2 * min(ty, tx) or min(h, w) == 1
        ),
        key=lambda t: (t[0] * t[1], t),
    )


def _most_channels(c: int, fits: Callable[[int], bool]) -> int:
    """The largest ``c_core`` in ``1..c`` with ``fits(c_core)`` (given ``fits(1)``; demand
    never decreases with channels per core)."""
    lo, hi = 1, c
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def split_group(group: GroupSpec, limits: CoreLimits, fanout_cores: int) -> GroupSplit:
    """Fewest cores for `group` such that every per-core rule holds.

    Candidate tilings are tried in order of tile count; for each, a binary search finds the
    most channels per core that fit; ties in core count go to the split with fewer channel
    slices (a producer neuron reaches every channel slice of its consumer but only the tiles
    around its position). Raises the `DesignRuleError` of the finest split when nothing fits.
    """
    c, h, w = group.shape
    best: Split | None = None
    finest_error: DesignRuleError | None = None
    for ty, tx in _tilings(h, w):
        if best is not None and ty * tx > best.cores:
            break
        per_core = limits.neurons // (ceil_div(h, ty) * ceil_div(w, tx))
        if best is not None and per_core and ty * tx * ceil_div(c, per_core) > best.cores:
            continue  # the neuron bound alone cannot beat the best split found

        def split_of(c_core: int, ty: int = ty, tx: int = tx) -> Split:
            return Split(channel_groups=ceil_div(c, c_core), tiles_y=ty, tiles_x=tx)

        def violations(c_core: int) -> list[DesignRuleError]:
            demand = core_demand(group, split_of(c_core), fanout_cores, limits)
            return core_violations(group.name, demand, limits)

        if violations(1):
            finest_error = violations(1)[0]
            continue
        split = split_of(_most_channels(c, lambda k: not violations(k)))
        if best is None or (split.cores, split.channel_groups) < (best.cores, best.channel_groups):
            best = split
    if best is None:
        raise finest_error or DesignRuleError(
            rule="fits_neurons_per_core",
            layer=group.name,
            resource="neurons",
            demand=c * h * w,
            limit=limits.neurons,
        )
    return group_split(best, core_demand(group, best, fanout_cores, limits), limits)


REPEATER_DESTINATIONS = 64
"""Destination cores served by one fan-out repeater compartment (a modelling choice)."""


def repeater_split(n_neurons: int, fanout: int, limits: CoreLimits) -> tuple[int, GroupSplit]:
    """Fan-out repeaters for a population whose neurons reach more cores than a core can route.

    Each source neuron spikes to ``r = ceil(fanout / REPEATER_DESTINATIONS)`` repeater
    compartments (its new fan-out), each repeating to ``REPEATER_DESTINATIONS`` destination
    cores; a repeater core holds ``k = min(output_axons // REPEATER_DESTINATIONS, neurons)``
    repeaters, so the repeaters take ``ceil(n_neurons · r / k)`` cores (≈ the bound
    ``n_neurons · fanout / output_axons``). Returns ``(r, split of the repeater cores)``; raises
    `DesignRuleError` when even ``r`` exceeds the output-axon limit. Adds one step of latency.
    """
    r = ceil_div(fanout, REPEATER_DESTINATIONS)
    k = min(limits.output_axons // REPEATER_DESTINATIONS, limits.neurons)
    if r > limits.output_axons or k < 1:
        raise DesignRuleError(
            rule="fan_out_within_axons",
            layer="<repeaters>",
            resource="output_axons",
            demand=r,
            limit=limits.output_axons,
        )
    cores = ceil_div(n_neurons * r, k)
    per_core = min(k, n_neurons * r)
    demand = CoreDemand(
        neurons=per_core,
        input_axons=per_core,
        output_axons=per_core * REPEATER_DESTINATIONS,
        synapses=per_core,
        memory_bits=per_core * int(bits_per_axon(np.array([1]), 1, limits)[0]),
        neuron_groups=1,
    )
    split = Split(channel_groups=cores, tiles_y=1, tiles_x=1)
    return r, GroupSplit.of(split, demand.as_dict(), resource_limits(limits), "output_axons")
