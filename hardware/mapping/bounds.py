"""Lower bounds on cores: what any mapping of the network onto the target's cores needs.

Each bound counts one per-core resource over the whole network and divides by its per-core
limit, so no split, packing or encoding can go below it:

- **compartments**: every neuron of every population placed on neurocores (relays and
  accumulators are choices of this mapper, not needs of the network);
- **synaptic memory**: every on-core synapse layer stored once at its weight width and nothing
  more: a shared conv or token-wise kernel its ``C_out·C_in/groups·kH·kW`` weights where the
  cores share kernels (Loihi 2), every connection where they do not (Loihi 1), a dense layer its
  non-zero weights (a sparse encoding could skip zeros); no row headers, index or delay bits;
- **axons**: every presynaptic neuron of every on-core synapse layer enters at least one core
  through an input axon (a shared kernel: one per stride phase, as Intel's compiler counts).

The mapped cores over the largest bound is how far the mapping is from what the limits prove.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hardware.ir.layers import Layer
from hardware.ir.network import LoihiNetwork
from hardware.mapping.grouping import is_core_synapse, is_population
from hardware.mapping.kinds import geometry, rule
from hardware.mapping.profiles import CoreLimits
from hardware.mapping.specs import ceil_div, conv_connections


@dataclass(frozen=True, kw_only=True)
class LowerBound:
    """One resource's demand over the network, its per-core limit and the cores it forces."""

    resource: str
    demand: int
    per_core: int
    unit: str

    @property
    def cores(self) -> int:
        return ceil_div(self.demand, self.per_core) if self.demand else 0


@dataclass(frozen=True, kw_only=True)
class LowerBounds:
    """The bounds of one scenario; ``cores`` is the largest, ``chips`` its chips."""

    bounds: tuple[LowerBound, ...]
    cores_per_chip: int

    @property
    def cores(self) -> int:
        return max((b.cores for b in self.bounds), default=0)

    @property
    def chips(self) -> int:
        return ceil_div(self.cores, self.cores_per_chip) if self.cores else 0

    @property
    def binding(self) -> str:
        """The resource that gives the largest bound."""
        return max(self.bounds, key=lambda b: b.cores).resource if self.bounds else "none"


def _stored_bits(net: LoihiNetwork, syn: Layer, shared: bool) -> int:
    """The fewest bits any encoding stores `syn` in (see the module docstring)."""
    bits = int(syn.num_weight_bits)  # type: ignore[attr-defined]
    weights = np.asarray(syn.weights)  # type: ignore[attr-defined]
    if syn.KIND == "dense":
        return int(np.count_nonzero(weights)) * bits
    if shared:
        return int(weights.size) * bits
    spec = rule(syn).synapse(syn, "", 0, geometry(syn.out_shape))  # type: ignore[misc]
    return conv_connections(spec, geometry(syn.out_shape)) * bits


def _axons(syn: Layer, shared: bool) -> int:
    """Input axons one copy of `syn` needs at least."""
    if syn.KIND != "dense" and shared:
        return int(getattr(syn, "stride", (1, 1))[1])
    return math.prod(syn.in_shape)


def lower_bounds(net: LoihiNetwork, limits: CoreLimits) -> LowerBounds:
    """The compartment, synaptic-memory and input-axon bounds of `net` on `limits`' cores."""
    shared = limits.conv_weight_sharing
    neurons = sum(math.prod(x.out_shape) for x in net.layers if is_population(x))
    synapses = [x for x in net.layers if is_core_synapse(x)]
    memory = sum(_stored_bits(net, s, shared) for s in synapses)
    axons = sum(_axons(s, shared) for s in synapses)
    return LowerBounds(
        bounds=(
            LowerBound(
                resource="compartments", demand=neurons, per_core=limits.neurons, unit="neurons"
            ),
            LowerBound(
                resource="synaptic memory",
                demand=memory,
                per_core=limits.synaptic_memory_bits,
                unit="bits",
            ),
            LowerBound(
                resource="axons", demand=axons, per_core=limits.input_axons, unit="input axons"
            ),
        ),  # fmt: skip
        cores_per_chip=limits.cores_per_chip,
    )


def group_lower_bound(neurons: int, stored_bits: int, limits: CoreLimits) -> int:
    """The fewest cores one group of `neurons` storing `stored_bits` of weights can take."""
    return max(
        ceil_div(neurons, limits.neurons), ceil_div(stored_bits, limits.synaptic_memory_bits), 1
    )
