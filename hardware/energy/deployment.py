"""Energy of moving data in a multi-chip deployment: mesh hops, chip-crossing spikes, host and
embedded-core traffic, priced per hop and per bit (each price with its source).

Counts come from a `Mapping` (where every group's cores sit: :mod:`hardware.mapping.mesh`) and
from activity (spikes per population and sample, from the energy counts):

- **on-chip routing**: every spike travels to each consumer group over the mesh; the mean hops
  per message (spike-weighted over the routes) is what a Loihi preset's ``hops`` prices
  (``spikes · (E_spike + hops · E_hop)``). An accumulator sends a graded message per neuron
  per step (dense).
- **chip crossings**: each message of a route that crosses chip boundaries costs
  ``message bits × boundaries × E_link`` on the chip-to-chip links.
- **host and embedded traffic**: the mapping's off-neurocore bits per image (every element every
  step: an upper bound), host bits at the host link's price, embedded bits as graded messages
  (``GRADED_PAYLOAD_BITS`` each) over the mean route hops of the mesh.

Prices are proxies where Intel publishes nothing (every one says so in its source).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hardware.energy.counts import LayerCounts
from hardware.energy.presets import Preset
from hardware.mapping.mesh import routes
from hardware.mapping.records import Mapping, ScenarioMapping
from hardware.mapping.traffic import GRADED_PAYLOAD_BITS


@dataclass(frozen=True, kw_only=True)
class Price:
    """A low/high price per unit, with its source."""

    low: float
    high: float
    unit: str
    source: str


SPIKE_MESSAGE_BITS = 40
"""PROXY: bits of one spike message on a chip-to-chip link. Loihi's spike message format is not
public; SpiNNaker's multicast packets are 40 bits (72 with a 32-bit payload) (Furber et al.;
probsee.com/p/SpiNNaker summary)."""
GRADED_MESSAGE_BITS = 72
"""PROXY: bits of one graded message (a SpiNNaker packet with its 32-bit payload, as above)."""

CHIP_LINK = Price(
    low=1.4,
    high=1.9,
    unit="pJ/bit",
    source="PROXY: IBM 32 nm SOI 16×12 Gb/s source-synchronous chip-to-chip I/O, 1.4 pJ/b over "
    "0.75-inch and 1.9 pJ/b over 20-inch PCB traces (research.ibm.com, 'A 1.4-pJ/b, "
    "power-scalable 16×12-Gb/s source-synchronous I/O with DFE receiver in 32nm SOI CMOS'); "
    "Loihi 2's chip-to-chip links are not public",
)
HOST_LINK = Price(
    low=1.9,
    high=5800.0,
    unit="pJ/bit",
    source="PROXY: low, a board-level serial link as above (1.9 pJ/b); high, a whole Ethernet "
    "controller: Intel 82559 (10/100 Mbit/s) reports 580 mW in D0 (its developer manual's "
    "power register), 5.8 nJ/bit at 100 Mbit/s. Kapoho Point talks to its host over Ethernet "
    "(Loihi 2 adds high-speed Ethernet, eenewseurope); its per-bit energy is not public",
)


@dataclass(frozen=True, kw_only=True)
class DeploymentEnergy:
    """Data movement of one mapping scenario, per sample, and its energy in pJ (low, high).

    mean_hops: mesh hops per routed message (spike-weighted); messages: routed messages;
    crossing_bits: bits on chip-to-chip links; host_bits / embedded_bits: off-neurocore traffic
    (dense upper bound); *_pj: (low, high) energy of each.
    """

    scenario: str
    chips: int
    mean_hops: float
    messages: float
    crossing_bits: float
    host_bits: float
    embedded_bits: float
    routing_pj: float
    crossing_pj: tuple[float, float]
    host_pj: tuple[float, float]
    embedded_pj: float

    def total_pj(self, end: int) -> float:
        """Data-movement energy at the low (0) or high (1) end of the prices."""
        return (
            self.routing_pj + self.crossing_pj[end] + self.host_pj[end] + self.embedded_pj
        )


def population_spikes(layers: Sequence[LayerCounts]) -> dict[str, float]:
    """Spikes per sample of every neuron layer, also under the deployed network's fused
    ``….qkv_lif`` name (Q, K and V spikes summed)."""
    out: dict[str, float] = {}
    for layer in layers:
        if layer.op != "lif":
            continue
        n = layer.per_sample("spikes_out")
        out[layer.name] = n
        for part in ("q_lif", "k_lif", "v_lif"):
            if layer.name.endswith("." + part):
                fused = layer.name.removesuffix(part) + "qkv_lif"
                out[fused] = out.get(fused, 0.0) + n
    return out


def _messages(s: ScenarioMapping, spikes: dict[str, float], T: int) -> dict[str, float]:
    """Messages per sample each route source sends (an accumulator: one per neuron per step)."""
    out = dict(spikes)
    for g in s.groups:
        if g.kind == "accumulator":
            out[g.source] = float(g.neurons * T)
    return out


def deployment_energy(
    mapping: Mapping, bound: str, spikes: dict[str, float], preset: Preset
) -> DeploymentEnergy:
    """The data movement of scenario `bound` given `spikes` per population and sample, priced
    with `preset`'s spike and hop energies and the link prices of this module."""
    s = mapping.scenarios[bound]
    sent = _messages(s, spikes, mapping.T)
    messages = hops = crossing = 0.0
    for r in routes(s):
        n = sent.get(r.source, 0.0)
        messages += n
        hops += n * r.hops
        bits = GRADED_MESSAGE_BITS if r.source.startswith("acc:") else SPIKE_MESSAGE_BITS
        crossing += n * r.chips_crossed * bits
    mean_hops = hops / messages if messages else 0.0
    host = float(mapping.traffic.host_total_bits)
    embedded = float(mapping.traffic.embedded_total_bits)
    per_message = preset.e_spike + mean_hops * preset.e_hop
    return DeploymentEnergy(
        scenario=bound,
        chips=s.chips,
        mean_hops=mean_hops,
        messages=messages,
        crossing_bits=crossing,
        host_bits=host,
        embedded_bits=embedded,
        routing_pj=messages * per_message,
        crossing_pj=(crossing * CHIP_LINK.low, crossing * CHIP_LINK.high),
        host_pj=(host * HOST_LINK.low, host * HOST_LINK.high),
        embedded_pj=embedded / GRADED_PAYLOAD_BITS * per_message,
    )
