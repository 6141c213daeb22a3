"""Predicted dynamic energy per inference of Intel's PilotNet SNN (netx) under the Loihi 2
proxy preset: the number is computed from simulated activity and priced with Davies et al.
2018's per-operation energies; the comparison with Intel's measured 1.094 mJ lives in
``benchmarks/report_paper_mapping.py`` (``examples/mapping-paper/pilotnet-energy.md``)."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
from _paths import PILOTNET_NET

from hardware.energy.errors import EnergyUsageError
from hardware.energy.inference import netx_inference_energy
from hardware.energy.presets import PRESETS
from hardware.lower.from_netx import load_netx
from hardware.mapping.mapper import map_network
from hardware.mapping.profiles import load_target
from spikeclip.errors import UsageError

# Davies et al., IEEE Micro 2018, Table 2 (the loihi2-proxy preset): pJ.
E_SYN, E_ACTIVE, E_IDLE, E_SPIKE, E_HOP = 23.6, 81.0, 52.0, 1.7, 3.5


def _neurons_in_file() -> int:
    """Neurons of every spiking block, read from the netx file itself (flatten holds none)."""
    with h5py.File(PILOTNET_NET, "r") as f:
        layers = f["layer"]
        return sum(
            int(np.prod(layers[k]["shape"][()]))
            for k in layers
            if layers[k]["type"][()][0] != b"flatten"
        )


@pytest.fixture(scope="module")
def grey_energy():
    net = load_netx(PILOTNET_NET)
    mapping = map_network(net, load_target("loihi2"))
    frame = np.full((1, 3, 66, 200), 0.5)
    return net, netx_inference_energy(net, frame, PRESETS["loihi2-proxy"], mapping=mapping)


def test_pilotnet_energy_per_inference_is_priced_from_the_simulated_activity(grey_energy) -> None:
    net, e = grey_energy
    assert e.images == 1 and e.steps == 16 == net.T
    # Every neuron of the file is updated once per step.
    assert e.neuron_updates == _neurons_in_file() * 16
    assert 0 < e.spikes < e.neuron_updates and e.synaptic_events > e.spikes
    assert e.mean_hops > 0  # priced over the pessimistic mapping's mesh routes
    by_hand = (
        e.synaptic_events * E_SYN
        + e.spikes * E_ACTIVE
        + (e.neuron_updates - e.spikes) * E_IDLE
        + e.spikes * (E_SPIKE + e.mean_hops * E_HOP)
    )
    assert math.isclose(e.total_pj, by_hand, rel_tol=1e-9)
    # Plausibility, not a target: within a decade of Intel's measured 1.094 mJ.
    assert 0.1 < e.total_mj < 10.0


def test_energy_without_a_mapping_prices_no_hops_and_refuses_other_rules(grey_energy) -> None:
    net, with_hops = grey_energy
    frame = np.full((1, 3, 66, 200), 0.5)
    e = netx_inference_energy(net, frame, PRESETS["loihi2-proxy"])
    assert e.mean_hops == 0.0 and e.spikes == with_hops.spikes
    assert math.isclose(with_hops.total_pj - e.total_pj, e.spikes * with_hops.mean_hops * E_HOP)
    with pytest.raises(EnergyUsageError, match="paper-45nm") as err:
        netx_inference_energy(net, frame, PRESETS["paper-45nm"])
    assert isinstance(err.value, UsageError)
