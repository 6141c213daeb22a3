"""Dynamic energy per inference of a network imported from a lava-dl netx file (e.g. Intel's
PilotNet SNN), as a Loihi preset predicts it from simulated activity.

Each image is encoded as lava-dl's dataset does (:func:`hardware.lower.from_netx.encode_frames`)
and held for the network's T steps as graded input currents (Intel's benchmark writes one
frame as the input layer's bias: the same drive). The bit-accurate simulator gives every
layer's spikes; :func:`hardware.energy.network_counts.count_network` turns them into exact
synaptic events, neuron updates and spikes; a ``rule = "loihi"`` preset prices them
(:func:`hardware.energy.presets.snn_energy_pj`), with the mean mesh hops per spike of a mapping
scenario (:func:`hardware.energy.deployment.deployment_energy`) when a mapping is given.
What it leaves out (static power, the embedded x86 cores, barriers) is the caller's to state.
"""

from __future__ import annotations

from collections import abc
from dataclasses import dataclass, replace
from types import MappingProxyType

import numpy as np

from hardware.energy.deployment import deployment_energy, population_spikes
from hardware.energy.errors import EnergyUsageError
from hardware.energy.network_counts import count_network
from hardware.energy.presets import Preset, snn_energy_pj
from hardware.ir.network import LoihiNetwork
from hardware.lower.from_netx import encode_frames, netx_metadata, static_currents
from hardware.mapping.records import Mapping
from hardware.simulate.engine import simulate


@dataclass(frozen=True, kw_only=True)
class InferenceEnergy:
    """Predicted dynamic energy of one inference (T steps, one image), means over the images.

    input_rate: spikes per neuron per step of the first neuron layer (netx's input block);
    synaptic_events, neuron_updates, spikes: counts per inference (all layers);
    events_by_layer: synaptic events per inference of each synapse layer; mean_hops: mesh hops
    per spike priced;
    total_pj: the preset's energy per inference in pJ.
    """

    preset: str
    images: int
    steps: int
    input_rate: float
    synaptic_events: float
    neuron_updates: float
    spikes: float
    events_by_layer: abc.Mapping[str, float]
    mean_hops: float
    total_pj: float

    @property
    def total_mj(self) -> float:
        """``total_pj`` in mJ."""
        return self.total_pj * 1e-9


def netx_inference_energy(
    net: LoihiNetwork,
    images: np.ndarray,
    preset: Preset,
    *,
    mapping: Mapping | None = None,
    bound: str = "pessimistic",
) -> InferenceEnergy:
    """Energy per inference of `net` (from :func:`~hardware.lower.from_netx.load_netx`) on
    `images` (float ``[B, C, H, W]`` in [0, 1]) under the Loihi-rule `preset`; hops from
    `mapping`'s scenario `bound` (else the preset's own ``hops``).

    Raises `EnergyUsageError` (exit 2) for a preset of another rule or no images.
    """
    if preset.rule != "loihi":
        raise EnergyUsageError(f"preset {preset.name!r} does not price Loihi operations (rule "
                          f"{preset.rule!r})")  # fmt: skip
    n = len(images)
    if n == 0:
        raise EnergyUsageError("no images to run")
    meta = netx_metadata(net)
    sim = simulate(net, static_currents(encode_frames(images, meta.transform), net.T))
    counts = count_network(net, sim.spike_counts, samples=n)
    if mapping is not None:
        spikes = population_spikes(counts)
        hops = deployment_energy(mapping, bound, spikes, preset).mean_hops
        preset = replace(preset, hops=hops)
    source = next(c for c in counts if c.op == "lif")  # netx's input block (topological order)
    return InferenceEnergy(
        preset=preset.name,
        images=n,
        steps=net.T,
        input_rate=source.spikes_out / (source.out_numel * net.T * n),
        synaptic_events=sum(c.sop_exact for c in counts) / n,
        neuron_updates=sum(c.neuron_updates for c in counts) / n,
        spikes=sum(c.spikes_out for c in counts) / n,
        events_by_layer=MappingProxyType({c.name: c.sop_exact / n for c in counts if c.sop_exact}),
        mean_hops=preset.hops,
        total_pj=sum(snn_energy_pj(c, preset) for c in counts) / n,
    )
