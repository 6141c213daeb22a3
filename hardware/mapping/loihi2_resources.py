"""A Loihi 2 per-core resource model calibrated on Intel's compiler output (lava-loihi).

Intel's compiler prints, per layer, what one core of that layer uses and how many cores the
layer takes (lava-dl tutorial notebooks; the PilotNet SNN table is in
``shared/fixtures/lava-dl/README.md``). This module computes the same six columns from a layer's
geometry, with the limits and costs in ``hardware/mapping/targets/loihi2-resources.json`` (every
number with its source, derivations in ``hardware/mapping/targets/loihi2-resources.md``):

=================  ======================================================  ============
column             what one core of the layer uses                         limit
=================  ======================================================  ============
``axon_in``        input axons: dense: one per presynaptic neuron (all      16,000
                   inputs, zero weights included); shared-weight conv:
                   ``stride_x`` per conv input; input layer: 1 (host)
``neuron_groups``  neuron groups (profiles): 1 per layer on the core         8
``neurons``        compartments allocated; a conv/input core allocates      4,095
                   its full tile, ``tile_w = 2**k`` columns (calibrated)
``syn_mem_words``  synaptic memory, 64-bit words, one row per dense input   12,000 (2022)
                   axon or per ``(c_in, ky, kx)`` of a shared kernel:       16,000 (2023+)
                   ``ceil((n * bits + header) / 64)`` words per row
``axon_map``       output map entries: 1 per neuron when the consumer is    16,000
                   dense or the host, 1 per output position (x its own
                   ``stride_x`` in the 2022 compiler) when it is a conv
``axon_mem``       output axon memory: estimate, positions x destination    16,000
                   cores per position for a conv consumer, 0 otherwise      (inferred)
=================  ======================================================  ============

Bits per stored weight: dense ``num_weight_bits + 12`` (a 12-bit target index); shared conv
kernel ``num_weight_bits + ceil(log2(stride_x))``. ``num_weight_bits`` is Lava's: the stored
mantissa width including the sign (``optimize_weight_bits`` of netx or Lava, 1..8).

Geometry is torch's: shapes ``(C, H, W)``, kernels ``(kH, kW)``, strides and paddings
``(y, x)``. A *split* gives the tile a core holds, ``(tile_c, tile_h, tile_w)`` output
channels x rows x columns (a dense layer is a flat ``(N, 1, 1)`` population); the layer takes
``ceil(C/tile_c) * ceil(H/tile_h) * ceil(W/tile_w)`` cores. Two ways to choose a split:

- ``"intel"``: what Intel's 2022 compiler does (its logs: ``Violation ... SynMem
  allocation=61440 ... Final max_ratio=6``): start from one core, multiply the split ratio by
  ``ceil(demand / limit)`` of the worst violation and re-split, until nothing is violated. A
  dense layer is cut into ``ceil(N / ratio)``-neuron chunks; a conv or input layer first halves
  its power-of-two column tile (while neurons or map entries are over), then its rows, then its
  channels (channels first when synaptic memory is over), each by a power of two.
- ``"tight"``: the fewest cores any tile sizes allow (no power-of-two columns, actual neurons
  allocated): a lower bound for a better compiler.

``load_core_model("calibrated")`` with the ``"intel"`` strategy reproduces Intel's PilotNet SNN
table (74 cores) core for core, and its AxonIn, Neurons, Synapses and AxonMap columns exactly;
AxonMem is an upper estimate (Intel's figures are 1.2-3.3x smaller). PilotNet's last conv:

>>> model = load_core_model("calibrated")
>>> conv5 = LayerGeometry(name="conv5", kind="conv", in_shape=(64, 4, 22),
...                       out_shape=(64, 2, 20), kernel=(3, 3), weight_bits=4)
>>> result = map_layer(conv5, model)
>>> result.cores, result.split.tile_w, result.mean.neurons, result.mean.syn_mem_words
(2, 16, 2048.0, 2880.0)

A :class:`Population` is the general case the mapper uses: one neuron population with any
number of incoming synapse layers (:class:`SynapseInput`: dense, shared conv, depthwise pool;
a delay costs ``ceil(log2(delay + 1))`` bits per weight, assumed) and consumers
(:class:`Output`): per core, the axons and rows of every input add up, and so do the map
entries of every consumer. A :class:`LayerGeometry` is the one-input population of Intel's
tables. The limits and costs are :class:`~hardware.mapping.loihi2_model.Loihi2CoreModel`.

Raises :class:`~hardware.mapping.loihi2_model.ResourceModelError` (usage, exit 2) for an
invalid geometry or split and :class:`~hardware.mapping.design_rules.DesignRuleError` (does not
fit, exit 5) naming the layer, resource, demand and limit when no split fits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from typing import Literal

from hardware.mapping.design_rules import DesignRuleError
from hardware.mapping.loihi2_model import (
    MAX_WEIGHT_BITS,
    RESOURCES,
    RULES,
    Loihi2CoreModel,
    ResourceModelError,
    ceil_log2,
    is_int,
    next_pow2,
    row_words,
)
from hardware.mapping.specs import delay_bits

Kind = Literal["dense", "conv", "pool", "input"]
Consumer = Literal["dense", "conv", "host"]
Strategy = Literal["intel", "tight"]
PopulationKind = Literal["dense", "conv", "input"]

KINDS: tuple[str, ...] = ("dense", "conv", "pool", "input")
CONSUMERS: tuple[str, ...] = ("dense", "conv", "host")
STRATEGIES: tuple[str, ...] = ("intel", "tight")


# --------------------------------------------------------------------------------------------
# Populations


@dataclass(frozen=True, kw_only=True)
class SynapseInput:
    """One synapse layer feeding a population, as its cores store it.

    kind: ``dense`` (a row per presynaptic neuron, a target index per synapse), ``conv`` (a
    shared kernel: a row per ``(c_in/groups, ky, kx)`` and channel group), ``pool`` (the same,
    depthwise). in_shape: ``(C, H, W)`` of the presynaptic population (dense: flattened);
    kernel, stride: ``(y, x)``; groups: conv groups; weight_bits: Lava ``num_weight_bits``;
    sparse_synapses / sparsity: a dense layer stored sparse (only non-zero weights cost memory);
    delay: synaptic delay in steps (0: none).
    """

    name: str = ""
    kind: Literal["dense", "conv", "pool"]
    in_shape: tuple[int, int, int]
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    groups: int = 1
    weight_bits: int = MAX_WEIGHT_BITS
    sparse_synapses: bool = False
    sparsity: float = 0.0
    delay: int = 0


@dataclass(frozen=True, kw_only=True)
class Output:
    """One consumer of a population's spikes: ``dense`` or ``host`` (one map entry per neuron)
    or ``conv`` (one per output position, x the population's own x-stride in the 2022
    compiler); ``cores_per_position``: destination cores one position reaches (axon memory)."""

    consumer: Consumer
    cores_per_position: int = 1


@dataclass(frozen=True, kw_only=True)
class Population:
    """A neuron population with its incoming synapse layers and its consumers.

    kind: how its cores allocate compartments: ``dense`` (a flat ``(N, 1, 1)`` grid, the
    neurons each core holds), ``conv`` or ``input`` (a ``(C, H, W)`` grid whose cores allocate
    whole power-of-two-column tiles where the model says so; ``input``: driven by the host
    through one axon, no synapses). stride_x: the x-stride of its conv input (map entries per
    position).
    """

    name: str
    kind: PopulationKind
    grid: tuple[int, int, int]
    inputs: tuple[SynapseInput, ...] = ()
    outputs: tuple[Output, ...] = ()
    stride_x: int = 1

    def __post_init__(self) -> None:
        if self.kind == "dense" and self.grid[1:] != (1, 1):
            raise ResourceModelError(f"population {self.name!r}: a dense grid is (N, 1, 1)")
        if len(self.grid) != 3 or any(not is_int(v) or v < 1 for v in self.grid):
            raise ResourceModelError(f"population {self.name!r}: grid must be 3 integers >= 1")


# --------------------------------------------------------------------------------------------
# Layer geometry (one-input populations: the rows of Intel's tables)


@dataclass(frozen=True, kw_only=True)
class LayerGeometry:
    """What the resource model needs to know of one layer (one population and its input).

    kind: ``dense`` (every input to every neuron; netx Dense), ``conv`` (a shared kernel; Lava
    Conv), ``pool`` (sum pooling as a depthwise conv with a shared kernel: ``groups = C``),
    ``input`` (neurons driven by the host, no synapses). in_shape / out_shape: ``(C, H, W)`` of
    the presynaptic and of this layer's neurons (a dense layer's shapes are flattened).
    kernel, stride, padding: ``(y, x)`` pairs (torch conv2d, dilation 1). groups: conv groups.
    weight_bits: Lava ``num_weight_bits`` (stored mantissa bits incl. sign, 1..8).
    sparse_synapses / sparsity: a dense layer stored as a sparse matrix (netx
    ``sparse_fc_layer``): only the ``1 - sparsity`` non-zero weights cost memory (an estimate:
    every input is assumed to hit the same fraction). Intel's compiler stores zero weights of a
    plain Dense layer, and a shared kernel is stored whole, so ``sparsity`` is ignored otherwise.
    consumer: what the layer's spikes feed (``dense`` or ``host``: one map entry per neuron;
    ``conv``: per output position). consumer_cores_per_position: destination cores one output
    position reaches (the consumer's channel groups x overlapping tiles), for ``axon_mem``.
    """

    name: str
    kind: Kind
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    groups: int = 1
    weight_bits: int = MAX_WEIGHT_BITS
    sparse_synapses: bool = False
    sparsity: float = 0.0
    consumer: Consumer = "dense"
    consumer_cores_per_position: int = 1

    def __post_init__(self) -> None:
        where = f"layer {self.name!r}"
        if self.kind not in KINDS:
            raise ResourceModelError(f"{where}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.consumer not in CONSUMERS:
            raise ResourceModelError(
                f"{where}: consumer must be one of {CONSUMERS}, got {self.consumer!r}"
            )
        for label, value, n, low in (
            ("in_shape", self.in_shape, 3, 1),
            ("out_shape", self.out_shape, 3, 1),
            ("kernel", self.kernel, 2, 1),
            ("stride", self.stride, 2, 1),
            ("padding", self.padding, 2, 0),
        ):
            if len(value) != n or any(not is_int(v) or v < low for v in value):
                raise ResourceModelError(
                    f"{where}: {label} must be {n} integers >= {low}, got {value!r}"
                )
        for label, value, low in (
            ("groups", self.groups, 1),
            ("weight_bits", self.weight_bits, 1),
            ("consumer_cores_per_position", self.consumer_cores_per_position, 1),
        ):
            if not is_int(value) or value < low:
                raise ResourceModelError(f"{where}: {label} must be an integer >= {low}")
        if self.weight_bits > MAX_WEIGHT_BITS:
            raise ResourceModelError(
                f"{where}: weight_bits {self.weight_bits} > {MAX_WEIGHT_BITS} (Loihi 2 maximum)"
            )
        if not 0.0 <= self.sparsity < 1.0:
            raise ResourceModelError(f"{where}: sparsity must be in [0, 1), got {self.sparsity}")
        if self.sparse_synapses and self.kind != "dense":
            raise ResourceModelError(f"{where}: sparse_synapses applies to dense layers only")
        if self.kind in ("conv", "pool"):
            self._check_conv(where)

    def _check_conv(self, where: str) -> None:
        c_in, h_in, w_in = self.in_shape
        c_out, h, w = self.out_shape
        if self.kind == "pool" and not (c_in == c_out == self.groups):
            raise ResourceModelError(
                f"{where}: a pool is depthwise: in channels, out channels and groups must be "
                f"equal, got {c_in}, {c_out}, {self.groups}"
            )
        if c_in % self.groups or c_out % self.groups:
            raise ResourceModelError(
                f"{where}: groups {self.groups} must divide in channels {c_in} and out "
                f"channels {c_out}"
            )
        expect = tuple(
            (size + 2 * pad - k) // s + 1
            for size, pad, k, s in zip(
                (h_in, w_in), self.padding, self.kernel, self.stride, strict=True
            )
        )
        if expect != (h, w):
            raise ResourceModelError(
                f"{where}: out_shape {self.out_shape} does not follow from in_shape "
                f"{self.in_shape}, kernel {self.kernel}, stride {self.stride}, padding "
                f"{self.padding} (expected H, W = {expect})"
            )

    def population(self) -> Population:
        """This layer as a one-input :class:`Population`."""
        shared = self.kind in ("conv", "pool")
        inputs: tuple[SynapseInput, ...] = ()
        if self.kind != "input":
            inputs = (
                SynapseInput(
                    name=self.name,
                    kind=self.kind,  # type: ignore[arg-type]
                    in_shape=self.in_shape,
                    kernel=self.kernel,
                    stride=self.stride,
                    groups=self.groups,
                    weight_bits=self.weight_bits,
                    sparse_synapses=self.sparse_synapses,
                    sparsity=self.sparsity,
                ),
            )
        return Population(
            name=self.name,
            kind="conv" if shared else self.kind,  # type: ignore[arg-type]
            grid=self.grid,
            inputs=inputs,
            outputs=(
                Output(
                    consumer=self.consumer,
                    cores_per_position=self.consumer_cores_per_position,
                ),
            ),
            stride_x=self.stride[1] if shared else 1,
        )

    @property
    def grid(self) -> tuple[int, int, int]:
        """The ``(C, H, W)`` population a split cuts: ``(N, 1, 1)`` for a dense layer."""
        if self.kind == "dense":
            return (math.prod(self.out_shape), 1, 1)
        return self.out_shape

    @property
    def neurons(self) -> int:
        return math.prod(self.out_shape)


# --------------------------------------------------------------------------------------------
# Costs


def bits_per_weight(inp: SynapseInput, model: Loihi2CoreModel) -> int:
    """Bits one stored weight of `inp` costs: dense ``weight_bits + dense_index_bits``; shared
    conv or pool kernel ``weight_bits + ceil(log2(stride_x))`` (or ``+ 0`` without stride-phase
    bits); plus ``ceil(log2(delay + 1))`` delay bits where the model stores them."""
    if inp.kind == "dense":
        bits = inp.weight_bits + model.dense_index_bits
    else:
        extra = ceil_log2(inp.stride[1]) if model.conv_stride_phase_bits else 0
        bits = inp.weight_bits + extra
    if model.delay_bits_per_weight:
        bits += delay_bits(inp.delay)
    return bits


def input_cost(
    inp: SynapseInput, c: int, n: int, c_out: int, model: Loihi2CoreModel
) -> tuple[int, int]:
    """(input axons, synaptic-memory words) of `inp` on a core holding `c` of the population's
    `c_out` channels and `n` of its neurons."""
    if inp.kind == "dense":
        axon_in = math.prod(inp.in_shape)
        per_axon = math.ceil(n * (1.0 - inp.sparsity)) if inp.sparse_synapses else n
        return axon_in, axon_in * row_words(per_axon, bits_per_weight(inp, model), model)
    axon_in = inp.stride[1] if model.conv_axon_in_per_stride_phase else 1
    c_in_g = inp.in_shape[0] // inp.groups
    c_out_g = c_out // inp.groups
    rows = -(-c // c_out_g) * c_in_g * inp.kernel[0] * inp.kernel[1]
    return axon_in, rows * row_words(min(c, c_out_g), bits_per_weight(inp, model), model)


def output_cost(
    pop: Population, out: Output, h: int, w: int, n: int, model: Loihi2CoreModel
) -> tuple[int, int]:
    """(map entries, axon memory) for consumer `out` of a core holding ``h x w`` positions and
    `n` neurons."""
    if out.consumer != "conv":
        return n, 0
    phases = pop.stride_x if model.axon_map_per_stride_phase else 1
    return h * w * phases, h * w * out.cores_per_position


@dataclass(frozen=True, kw_only=True)
class CoreDemand:
    """What one core uses, per resource (see the module table; ints, or means as floats)."""

    axon_in: float
    neuron_groups: float
    neurons: float
    syn_mem_words: float
    axon_map: float
    axon_mem: float

    def items(self) -> Iterator[tuple[str, float]]:
        for r in RESOURCES:
            yield r, getattr(self, r)


def _core(
    pop: Population, c: int, h: int, w: int, alloc: int, model: Loihi2CoreModel
) -> CoreDemand:
    """Demand of a core holding ``c x h x w`` of the population's grid and allocating `alloc`
    neurons (a population without inputs is driven by the host through one axon)."""
    n = c * h * w
    axon_in = syn = 0
    for inp in pop.inputs:
        a, s = input_cost(inp, c, n, pop.grid[0], model)
        axon_in, syn = axon_in + a, syn + s
    axon_map = axon_mem = 0
    for out in pop.outputs:
        m, mem = output_cost(pop, out, h, w, n, model)
        axon_map, axon_mem = axon_map + m, axon_mem + mem
    return CoreDemand(
        axon_in=axon_in if pop.inputs else 1,
        neuron_groups=1,
        neurons=alloc,
        syn_mem_words=syn,
        axon_map=axon_map,
        axon_mem=axon_mem,
    )


# --------------------------------------------------------------------------------------------
# Splits


@dataclass(frozen=True, kw_only=True)
class CoreSplit:
    """The tile one core holds: ``tile_c`` channels x ``tile_h`` rows x ``tile_w`` columns of the
    layer's grid (a dense layer: ``tile_c`` neurons, ``tile_h = tile_w = 1``)."""

    tile_c: int
    tile_h: int = 1
    tile_w: int = 1

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not is_int(value) or value < 1:
                raise ResourceModelError(f"split {f.name} must be an integer >= 1, got {value!r}")

    def cores(self, grid: tuple[int, int, int]) -> int:
        """Cores a ``(C, H, W)`` grid takes under this split."""
        c, h, w = grid
        return -(-c // self.tile_c) * -(-h // self.tile_h) * -(-w // self.tile_w)


@dataclass(frozen=True, kw_only=True)
class SplitResult:
    """A layer under one split: cores, the worst core (max per resource), the mean over its
    cores (what Intel's table prints for most columns) and the resources over their limit."""

    layer: str
    split: CoreSplit
    cores: int
    worst: CoreDemand
    mean: CoreDemand
    over: tuple[str, ...]

    def utilization(self, model: Loihi2CoreModel) -> dict[str, float]:
        """Worst-core demand / limit per resource."""
        return {r: v / model.limit(r) for r, v in self.worst.items()}

    def binding(self, model: Loihi2CoreModel) -> str:
        """The resource closest to (or furthest over) its limit on the worst core."""
        util = self.utilization(model)
        return max(util, key=util.__getitem__)


def _parts(n: int, tile: int) -> list[tuple[int, int]]:
    """``(extent, count)`` of the pieces an axis of `n` is cut into by tiles of `tile`."""
    if tile >= n:
        return [(n, 1)]
    full, rem = divmod(n, tile)
    return [(tile, full)] + ([(rem, 1)] if rem else [])


def _population(layer: LayerGeometry | Population) -> Population:
    return layer if isinstance(layer, Population) else layer.population()


def evaluate_split(
    layer: LayerGeometry | Population, split: CoreSplit, model: Loihi2CoreModel
) -> SplitResult:
    """Per-core demand of `layer` cut by `split`: worst core, mean core, cores, violations.

    A conv, pool or input core allocates ``tile_c' x tile_h' x tile_w`` neurons (``tile_c'``,
    ``tile_h'`` clipped to the layer) when ``model.conv_tile_x_power_of_two``, else the neurons
    it holds; a dense core allocates the neurons it holds.
    """
    pop = _population(layer)
    c_all, h_all, w_all = pop.grid
    if pop.kind == "dense" and (split.tile_h, split.tile_w) != (1, 1):
        raise ResourceModelError(f"layer {pop.name!r}: a dense split has tile_h = tile_w = 1")
    full_x = pop.kind != "dense" and model.conv_tile_x_power_of_two
    cores = 0
    worst = dict.fromkeys(RESOURCES, 0.0)
    total = dict.fromkeys(RESOURCES, 0.0)
    for c, nc in _parts(c_all, split.tile_c):
        for h, nh in _parts(h_all, split.tile_h):
            for w, nw in _parts(w_all, split.tile_w):
                alloc = c * h * (split.tile_w if full_x else w)
                demand = _core(pop, c, h, w, alloc, model)
                count = nc * nh * nw
                cores += count
                for r, v in demand.items():
                    worst[r] = max(worst[r], v)
                    total[r] += v * count
    over = tuple(r for r in RESOURCES if worst[r] > model.limit(r))
    return SplitResult(
        layer=pop.name,
        split=split,
        cores=cores,
        worst=CoreDemand(**{r: int(v) for r, v in worst.items()}),
        mean=CoreDemand(**{r: v / cores for r, v in total.items()}),
        over=over,
    )


def _error(result: SplitResult, model: Loihi2CoreModel) -> DesignRuleError:
    r = result.over[0]
    return DesignRuleError(
        rule=RULES[r],
        layer=result.layer,
        resource=r,
        demand=int(getattr(result.worst, r)),
        limit=model.limit(r),
    )


def _ratio(result: SplitResult, model: Loihi2CoreModel) -> int:
    """``max(ceil(demand / limit))`` over the violated resources (>= 2)."""
    return max(-(-int(getattr(result.worst, r)) // model.limit(r)) for r in result.over)


def _intel_split(layer: Population, model: Loihi2CoreModel) -> SplitResult:
    """Intel's 2022 partitioner (see the module docstring), which raises when a violation cannot
    be removed by splitting (input axons, or a single neuron or kernel row over a limit)."""
    c_all, h_all, w_all = layer.grid
    if layer.kind == "dense":
        ratio = 1
        while True:
            chunk = -(-c_all // ratio)
            result = evaluate_split(layer, CoreSplit(tile_c=chunk), model)
            if not result.over:
                return result
            if chunk == 1 or "axon_in" in result.over:
                raise _error(result, model)
            ratio *= _ratio(result, model)
    pow2 = model.conv_tile_x_power_of_two
    tile = [c_all, h_all, next_pow2(w_all) if pow2 else w_all]
    while True:
        result = evaluate_split(
            layer, CoreSplit(tile_c=tile[0], tile_h=tile[1], tile_w=tile[2]), model
        )
        if not result.over:
            return result
        if "axon_in" in result.over or tile == [1, 1, 1]:
            raise _error(result, model)
        # Synaptic memory depends on the channels a core holds only: cut channels by its own
        # ratio first; then positions (columns, rows, channels) for neurons and map entries.
        focus = ("syn_mem_words",) if "syn_mem_words" in result.over else result.over
        factor = _ratio(replace(result, over=focus), model)
        if pow2:
            factor = next_pow2(factor)
        if focus[0] != "syn_mem_words" and tile[2] > 1:
            axis = 2
        elif focus[0] != "syn_mem_words" and tile[1] > 1:
            axis = 1
        elif tile[0] > 1:
            axis = 0
        else:
            raise _error(result, model)
        tile[axis] = max(1, -(-tile[axis] // factor))


def _axis_options(n: int) -> list[int]:
    """Distinct tile extents ``ceil(n / k)`` for ``k = 1..n``, largest first."""
    return sorted({-(-n // k) for k in range(1, n + 1)}, reverse=True)


def _largest_fitting(
    layer: Population, make: Callable[[int], CoreSplit], hi: int, model: Loihi2CoreModel
) -> SplitResult | None:
    """The fitting split ``make(t)`` with the largest ``t`` in ``1..hi`` (demand grows with t)."""
    if evaluate_split(layer, make(1), model).over:
        return None
    lo = 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if evaluate_split(layer, make(mid), model).over:
            hi = mid - 1
        else:
            lo = mid
    return evaluate_split(layer, make(lo), model)


def _tight_key(result: SplitResult, channels: int) -> tuple[int, int]:
    """Order of preference: fewest cores, then fewest channel groups (less fan-out)."""
    return (result.cores, -(-channels // result.split.tile_c))


def _tight_split(layer: Population, model: Loihi2CoreModel) -> SplitResult:
    """The fewest cores any tile sizes give (ties: fewer channel groups), without power-of-two
    columns; raises the violation of the finest split when nothing fits."""
    model = replace(model, conv_tile_x_power_of_two=False)
    c_all, h_all, w_all = layer.grid
    best: SplitResult | None = None
    for th in _axis_options(h_all):
        for tw in _axis_options(w_all):
            spatial = -(-h_all // th) * -(-w_all // tw)
            if best is not None and spatial > best.cores:
                continue
            found = _largest_fitting(
                layer,
                lambda tc, th=th, tw=tw: CoreSplit(tile_c=tc, tile_h=th, tile_w=tw),
                c_all,
                model,
            )
            if found is None:
                continue
            if best is None or _tight_key(found, c_all) < _tight_key(best, c_all):
                best = found
    if best is None:
        raise _error(evaluate_split(layer, CoreSplit(tile_c=1), model), model)
    return best


def map_layer(
    layer: LayerGeometry | Population, model: Loihi2CoreModel, strategy: Strategy = "intel"
) -> SplitResult:
    """The split `strategy` chooses for `layer` and its demand (``"intel"`` or ``"tight"``)."""
    if strategy == "intel":
        return _intel_split(_population(layer), model)
    if strategy == "tight":
        return _tight_split(_population(layer), model)
    raise ResourceModelError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
