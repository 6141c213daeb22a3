"""What a core group is, independent of the core's encoding: neurons, incoming synapses, splits.

A *core group* is what one or more neurocores hold for one population: its compartments plus
the synapses of every incoming edge (synaptic memory lives on the destination core, so an edge
feeding k populations is stored k times: the replicas). Its geometry is ``(C, H, W)``:
channels × spatial positions (tokens ``(C, N, 1)`` or ``(C, h, w)``, a flat population
``(N, 1, 1)``). A :class:`Split` cuts it into ``channel_groups`` slices of
``ceil(C / channel_groups)`` channels and ``tiles_y × tiles_x`` spatial tiles; each (slice,
tile) is one core.

How much one core of a split costs depends on the core (Loihi 1's explicit synapses:
:mod:`hardware.mapping.core_split`; Loihi 2's calibrated encodings:
:mod:`hardware.mapping.loihi2_groups`). The geometry helpers here are shared by both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Literal

import numpy as np

InputKind = Literal["dense", "conv"]


@dataclass(frozen=True, kw_only=True)
class InputSpec:
    """One incoming synapse edge of a core group.

    kind ``dense``: every one of ``prod(in_shape)`` inputs connects to every neuron.
    kind ``conv``: torch conv2d geometry from ``in_shape = (C_in, H_in, W_in)`` onto the
    group's ``(C, H, W)``; a token-shared linear is a 1×1 conv over ``(C_in, h, w)``, and a
    one-to-one current input is a 1×1 conv with ``groups = C``. ``shared``: the kernel may be
    stored once per core (convolutional weight sharing) where the core supports it.
    ``weight_bits``: stored bits per weight; ``delay``: steps (0 = none); ``graded``: the
    input arrives as graded spikes (a current), not binary spikes; ``host``: the host writes
    it every step (no synapses where the core can take host input directly, as Intel's input
    layer does).
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
    graded: bool = False
    host: bool = False


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


def axis_args(
    spec: InputSpec, shape: tuple[int, int, int], tiles: tuple[int, int]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The ``axis_tile_counts`` arguments of `spec` onto a group of `shape` cut into
    ``tiles = (tiles_y, tiles_x)``: ``(y args, x args)``."""
    _, h, w = shape
    _, h_in, w_in = spec.in_shape
    y = (h, tiles[0], h_in, spec.kernel[0], spec.stride[0], spec.padding[0], spec.dilation[0])
    x = (w, tiles[1], w_in, spec.kernel[1], spec.stride[1], spec.padding[1], spec.dilation[1])
    return y, x


def conv_connections(spec: InputSpec, shape: tuple[int, int, int]) -> int:
    """Dense-equivalent connections of one input into a group of `shape` (exact, with padding)."""
    c, h, w = shape
    if spec.kind == "dense":
        return int(np.prod(spec.in_shape, dtype=np.int64)) * c * h * w
    y, x = axis_args(spec, shape, (1, 1))
    py, _ = axis_tile_counts(*y)
    px, _ = axis_tile_counts(*x)
    return c * (spec.in_shape[0] // spec.groups) * int(py[0].sum()) * int(px[0].sum())


def min_stored_bits(spec: InputSpec, shape: tuple[int, int, int], shared: bool) -> int:
    """The fewest bits one input can be stored in on its group's cores: its weights at their
    width (a shared kernel once, else every connection); no headers, index or delay bits."""
    if spec.host:
        return 0
    if spec.kind == "conv" and shared:
        kernel = shape[0] * (spec.in_shape[0] // spec.groups) * spec.kernel[0] * spec.kernel[1]
        return kernel * spec.weight_bits
    return conv_connections(spec, shape) * spec.weight_bits


def fanout_reach(spec: InputSpec, consumer: GroupSpec, split: Split) -> int:
    """Destination cores of `consumer` that one source neuron of `spec` reaches (worst case)."""
    if spec.kind == "dense":
        return split.cores
    y, x = axis_args(spec, consumer.shape, (split.tiles_y, split.tiles_x))
    _, ry = axis_tile_counts(*y)
    _, rx = axis_tile_counts(*x)
    c_out = consumer.shape[0]
    slices = split.channel_groups
    if spec.groups > 1:
        slices = min(slices, ceil_div(c_out // spec.groups, ceil_div(c_out, slices)) + 1)
    return slices * ry * rx


@dataclass(frozen=True, kw_only=True)
class GroupSplit:
    """A group cut by `split`: the worst core's demand and the per-core limit of every limited
    resource (names of the core's model), the most utilized resource (``binding``) and the
    compartments allocated over all its cores (``allocated``; 0: as many as it holds).

    ``demand`` may also hold unlimited quantities (e.g. ``synapses``); utilization is reported
    for the resources in ``limits`` only.
    """

    split: Split
    demand: Mapping[str, float]
    limits: Mapping[str, int]
    binding: str
    allocated: int = 0

    @classmethod
    def of(
        cls,
        split: Split,
        demand: Mapping[str, float],
        limits: Mapping[str, int],
        binding: str | None = None,
        allocated: int = 0,
    ) -> GroupSplit:
        """Bundle `split` and its `demand`; ``binding`` defaults to the most utilized resource."""
        util = utilization(demand, limits)
        return cls(
            split=split,
            demand=MappingProxyType(dict(demand)),
            limits=MappingProxyType(dict(limits)),
            binding=binding or max(util, key=util.__getitem__),
            allocated=allocated,
        )

    @property
    def utilization(self) -> dict[str, float]:
        """Worst-core demand / limit per limited resource."""
        return utilization(self.demand, self.limits)


def utilization(demand: Mapping[str, float], limits: Mapping[str, int]) -> dict[str, float]:
    """Worst-core demand / limit per resource of `limits`, as fractions."""
    return {r: demand[r] / lim for r, lim in limits.items()}
