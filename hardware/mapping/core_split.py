"""Per-layer resource arithmetic and the core split search (functions of shapes alone).

A *core group* is what one or more neurocores hold for one neuron population: its
compartments plus the synapses of every incoming edge (synaptic memory lives on the
destination core, so an edge fanning out to k populations is stored k times: the replicas).
Its geometry is ``(C, H, W)``: channels × spatial positions (tokens are ``(C, N, 1)``, a flat
population ``(N, 1, 1)``).

A split cuts the group into ``channel_groups`` slices of ``ceil(C / channel_groups)`` channels
and ``tiles_y × tiles_x`` spatial tiles of ``ceil(H / tiles_y) × ceil(W / tiles_x)`` positions;
each (slice, tile) is one core. Per-core demand (worst core; a sum over inputs of each input's
worst tile, exact when the tiling has an interior tile):

- neurons = channels × positions on the core;
- input axons = distinct presynaptic neurons per incoming edge that reach the core
  (dense: every input; conv: the input halo of the tile × input channels of the slice);
- synapses = connections stored (shared kernel: ``C_in/groups · kH · kW`` per output channel);
- memory bits: explicit synapses use nengo-loihi's layout (per axon, groups of
  ``synapses_per_block`` synapses cost ``ceil_word(n · bits + header)`` bits; dense layout, no
  index bits, so a lower bound for sparse conv connectivity); a shared kernel costs
  ``ceil_word(weights · bits)``; ``bits = num_weight_bits + delay_bits(delay)``;
- output axons = neurons × destination cores reached per neuron (given by the caller).

The search returns the fewest cores that satisfy every per-core design rule; it is bounded
(binary search over channels per core for each candidate tiling), and an impossible layer
raises the `DesignRuleError` of its finest split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

from hardware.mapping.design_rules import CoreDemand, DesignRuleError, core_violations
from hardware.mapping.profiles import CoreLimits

InputKind = Literal["dense", "conv"]


@dataclass(frozen=True, kw_only=True)
class InputSpec:
    """One incoming synapse edge of a core group.

    kind ``dense``: every one of ``prod(in_shape)`` inputs connects to every neuron.
    kind ``conv``: torch conv2d geometry from ``in_shape = (C_in, H_in, W_in)`` onto the
    group's ``(C, H, W)``; a token-shared linear is a 1×1 conv over ``(C_in, N, 1)``, and a
    one-to-one current input is a 1×1 conv with ``groups = C``. ``shared``: the kernel is
    stored once per core (Loihi 2 conv weight sharing) instead of once per connection.
    ``weight_bits``: stored bits per weight; ``delay``: steps (0 = none).
    """

    name: str
    source: str
    kind: InputKind
    in_shape: tuple[int, int, int]
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    weight_bits: int = 8
    delay: int = 0
    shared: bool = False


@dataclass(frozen=True, kw_only=True)
class GroupSpec:
    """A core group: neuron geometry ``shape = (C, H, W)``, its inputs and profile count."""

    name: str
    shape: tuple[int, int, int]
    inputs: tuple[InputSpec, ...]
    neuron_groups: int = 1


@dataclass(frozen=True, kw_only=True)
class Split:
    """How a group is cut: channel slices × spatial tiles (each pair is one core)."""

    channel_groups: int
    tiles_y: int
    tiles_x: int

    @property
    def cores(self) -> int:
        return self.channel_groups * self.tiles_y * self.tiles_x


def delay_bits(delay: int) -> int:
    """Bits to store a delay of `delay` steps: ``ceil(log2(delay + 1))`` (0 for no delay)."""
    return int(delay).bit_length()


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


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


@lru_cache(maxsize=4096)
def axis_tile_counts(
    out_len: int, tiles: int, in_len: int, kernel: int, stride: int, padding: int, dilation: int
) -> tuple[np.ndarray, int]:
    """Per-tile connection counts along one axis, distinct patterns only (up to translation).

    Returns ``(patterns, reach)``: ``patterns`` int64 ``[P, L]`` where entry ``[p, i]`` is the
    number of (output position in the tile, kernel tap) pairs reading the i-th input of the
    tile's input span (zero padded to the longest span); ``reach``
    is the largest number of tiles any one input position feeds.
    """
    size = ceil_div(out_len, tiles)
    o = np.arange(out_len)
    tile = o // size
    n_tiles = int(tile[-1]) + 1
    i = o[:, None] * stride - padding + np.arange(kernel)[None, :] * dilation
    valid = (i >= 0) & (i < in_len)
    flat = (np.broadcast_to(tile[:, None], i.shape) * in_len + i)[valid]
    counts = np.bincount(flat, minlength=n_tiles * in_len).reshape(n_tiles, in_len)
    reach = int((counts > 0).sum(axis=0).max())
    # Distinct patterns up to translation: trim each row to its non-zero span.
    trimmed: dict[bytes, np.ndarray] = {}
    for row in counts:
        nz = np.flatnonzero(row)
        span = row[nz[0] : nz[-1] + 1] if nz.size else row[:0]
        trimmed.setdefault(span.tobytes(), span)
    width = max((len(v) for v in trimmed.values()), default=0)
    patterns = np.zeros((len(trimmed), width), dtype=np.int64)
    for k, span in enumerate(trimmed.values()):
        patterns[k, : len(span)] = span
    patterns.setflags(write=False)
    return patterns, reach


def _tile_size(length: int, tiles: int) -> int:
    return ceil_div(length, tiles)


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
    c_out, h, w = group.shape
    c_in, h_in, w_in = spec.in_shape
    cin_per_group = c_in // spec.groups
    cout_per_group = c_out // spec.groups
    in_channels = min(c_in, cin_per_group * ceil_div(c_core, cout_per_group))
    pairs = _pair_stats(
        (h, split.tiles_y, h_in, spec.kernel[0], spec.stride[0], spec.padding[0], spec.dilation[0]),
        (w, split.tiles_x, w_in, spec.kernel[1], spec.stride[1], spec.padding[1], spec.dilation[1]),
    )
    bits = spec.weight_bits + delay_bits(spec.delay)
    axons = in_channels * max(p[0] for p in pairs)
    if spec.shared:
        stored = c_core * cin_per_group * spec.kernel[0] * spec.kernel[1]
        words = ceil_div(stored * bits, limits.memory_word_bits)
        return axons, stored, words * limits.memory_word_bits
    syn = c_core * cin_per_group * max(p[1] for p in pairs)
    # Per input axon, the synapses into the core are (tap count at that position) × (output
    # channels it feeds on the core).
    fed = min(c_core, cout_per_group)
    mem = in_channels * max(int(bits_per_axon(p[2] * fed, bits, limits).sum()) for p in pairs)
    return axons, syn, mem


def core_demand(
    group: GroupSpec, split: Split, fanout_cores: int, limits: CoreLimits
) -> CoreDemand:
    """Worst-core demand of `group` cut by `split`; `fanout_cores` = out axons per neuron."""
    c, h, w = group.shape
    c_core = _tile_size(c, split.channel_groups)
    positions = _tile_size(h, split.tiles_y) * _tile_size(w, split.tiles_x)
    neurons = c_core * positions
    axons = syn = mem = 0
    for spec in group.inputs:
        if spec.kind == "dense":
            n_in = math.prod(spec.in_shape)
            bits = spec.weight_bits + delay_bits(spec.delay)
            a, s = n_in, n_in * neurons
            m = n_in * int(bits_per_axon(np.array([neurons]), bits, limits)[0])
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


def fanout_reach(spec: InputSpec, consumer: GroupSpec, split: Split) -> int:
    """Destination cores of `consumer` that one source neuron of `spec` reaches (worst case)."""
    if spec.kind == "dense":
        return split.cores
    c_out, h, w = consumer.shape
    _, h_in, w_in = spec.in_shape
    _, ry = axis_tile_counts(
        h, split.tiles_y, h_in, spec.kernel[0], spec.stride[0], spec.padding[0], spec.dilation[0]
    )
    _, rx = axis_tile_counts(
        w, split.tiles_x, w_in, spec.kernel[1], spec.stride[1], spec.padding[1], spec.dilation[1]
    )
    slices = split.channel_groups
    if spec.groups > 1:
        slices = min(slices, ceil_div(c_out // spec.groups, _tile_size(c_out, slices)) + 1)
    return slices * ry * rx


@dataclass(frozen=True, kw_only=True)
class GroupSplit:
    """The chosen split, its worst-core demand and the most utilized resource."""

    split: Split
    demand: CoreDemand
    binding: str


UTILIZATION_FIELDS = (
    ("neurons", "neurons"),
    ("input_axons", "input_axons"),
    ("output_axons", "output_axons"),
    ("memory_bits", "synaptic_memory_bits"),
    ("neuron_groups", "neuron_groups"),
)
"""(CoreDemand field, CoreLimits field) pairs reported as utilization."""


def utilization(demand: CoreDemand, limits: CoreLimits) -> dict[str, float]:
    """Worst-core demand / limit per resource, as fractions."""
    return {d: getattr(demand, d) / getattr(limits, lim) for d, lim in UTILIZATION_FIELDS}


def split_group(group: GroupSpec, limits: CoreLimits, fanout_cores: int) -> GroupSplit:
    """Fewest cores for `group` such that every per-core rule holds.

    Candidate tilings are tried in order of tile count; for each, a binary search finds the
    most channels per core that fit (demand never decreases with channels per core); ties in
    core count go to the split with fewer channel slices (less fan-out for producers). Raises
    the `DesignRuleError` of the finest split when nothing fits.
    """
    c, h, w = group.shape
    tilings = sorted(
        (
            (ty, tx)
            for ty in _axis_tile_options(h)
            for tx in _axis_tile_options(w)
            if max(ty, tx) <= 2 * min(ty, tx) or min(h, w) == 1
        ),
        key=lambda t: (t[0] * t[1], t),
    )
    best: GroupSplit | None = None
    finest_error: DesignRuleError | None = None
    for ty, tx in tilings:
        if best is not None and ty * tx > best.split.cores:
            break
        positions = _tile_size(h, ty) * _tile_size(w, tx)
        per_core = limits.neurons // positions
        if best is not None and per_core and ty * tx * ceil_div(c, per_core) > best.split.cores:
            continue  # the neuron bound alone cannot beat the best split found

        def fits(c_core: int, ty: int = ty, tx: int = tx) -> CoreDemand | None:
            split = Split(channel_groups=ceil_div(c, c_core), tiles_y=ty, tiles_x=tx)
            demand = core_demand(group, split, fanout_cores, limits)
            return None if core_violations(group.name, demand, limits) else demand

        if fits(1) is None:
            split1 = Split(channel_groups=c, tiles_y=ty, tiles_x=tx)
            demand1 = core_demand(group, split1, fanout_cores, limits)
            finest_error = core_violations(group.name, demand1, limits)[0]
            continue
        lo, hi = 1, c  # fits(lo) holds; find the largest c_core that fits
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(mid) is not None:
                lo = mid
            else:
                hi = mid - 1
        split = Split(channel_groups=ceil_div(c, lo), tiles_y=ty, tiles_x=tx)
        demand = core_demand(group, split, fanout_cores, limits)
        # Fewest cores; among equal counts, fewest channel slices: a producer neuron reaches
        # every channel slice of its consumer but only the tiles around its position.
        key = (split.cores, split.channel_groups)
        if best is None or key < (best.split.cores, best.split.channel_groups):
            util = utilization(demand, limits)
            best = GroupSplit(split=split, demand=demand, binding=max(util, key=util.get))
    if best is None:
        if finest_error is None:  # pragma: no cover - every tiling sets it
            raise DesignRuleError(
                rule="fits_neurons_per_core",
                layer=group.name,
                resource="neurons",
                demand=c * h * w,
                limit=limits.neurons,
            )
        raise finest_error
    return best


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
    return r, GroupSplit(split=split, demand=demand, binding="output_axons")
