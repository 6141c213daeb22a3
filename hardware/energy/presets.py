"""Price presets (pJ per counted operation), each with its source, and the pricing rules.

Counts are exact; prices carry the uncertainty (research/energy_digest §2-§4, §7.B). Three
pricing rules, named by ``Preset.rule``:

- ``compute`` (the literature's method): SNN = ``sop_exact·E_AC + dense_macs·E_MAC``;
  ANN = ``ann_macs·E_MAC``. Arithmetic only: no memory, neuron updates, routing, static power.
- ``memory`` (Lemaire-style, this toolchain's simplification): int32 ops (add 0.1, mul 3.1 pJ)
  plus SRAM traffic priced by `sram_pj_per_byte` of the buffer size. SNN: per synaptic event one
  add and one weight read (no reuse); per MAC one mul+add and one weight read; per neuron update
  one mul + one add and a state read + write; per spike one write. ANN (maximal reuse): per MAC
  one mul+add; each weight read once per sample; each input and output activation moved once.
- ``loihi``: SNN = ``sop_exact·E_syn + active·E_act + (updates − active)·E_inact +
  spikes_out·(E_spike + hops·E_hop)`` with active = spiked; dense MACs (conv0, head) run on the
  host and are not priced; no static power. No ANN price (``ann_energy_pj`` returns None).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hardware.energy.counts import LayerCounts
from hardware.energy.errors import UnknownPresetError

#: SRAM energy per 32-bit word vs buffer size (bytes → pJ), linear between points, clamped:
#: spikingjelly's Lemaire config (energy_digest §4): 8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ.
SRAM_CURVE_BYTES: tuple[float, ...] = (0.0, 8 * 1024, 32 * 1024, 1024 * 1024)
SRAM_CURVE_PJ_PER_WORD: tuple[float, ...] = (0.0, 10.0, 20.0, 100.0)


@dataclass(frozen=True, kw_only=True)
class Preset:
    """One price list. Energies in pJ; ``weight_bytes``/``state_bytes``/``act_bytes`` in bytes."""

    name: str
    rule: str  # "compute" | "memory" | "loihi"
    source: str
    e_mac: float = 0.0
    e_ac: float = 0.0
    e_add: float = 0.0
    e_mul: float = 0.0
    e_syn: float = 0.0
    e_update_active: float = 0.0
    e_update_inactive: float = 0.0
    e_spike: float = 0.0
    e_hop: float = 0.0
    hops: float = 0.0
    weight_bytes: int = 1
    state_bytes: int = 4
    act_bytes: int = 1
    label: str = ""


#: Loihi 1 per-op prices; also the (labelled) Loihi 2 proxy, so the numbers live only here.
_LOIHI1_TABLE2 = Preset(
    name="loihi1-table2",
    rule="loihi",
    e_syn=23.6,
    e_update_active=81.0,
    e_update_inactive=52.0,
    e_spike=1.7,
    e_hop=3.5,  # mean of the 3.0 / 4.0 pJ hop energies
    source="Davies et al. IEEE Micro 2018 Table 2 (pre-silicon, 0.75 V): 23.6 pJ/synop "
    "(min), neuron update 81/52 pJ active/inactive, 1.7 pJ in-tile spike, hop 3.0/4.0 pJ",
)

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="paper-45nm",
            rule="compute",
            e_mac=4.6,
            e_ac=0.9,
            source="Horowitz ISSCC 2014, 45 nm fp32: MAC 3.7+0.9 pJ, add 0.9 pJ "
            "(as used by Spikformer/Spikingformer/SDT)",
        ),
        Preset(
            name="int8-45nm",
            rule="compute",
            e_mac=0.23,
            e_ac=0.03,
            source="Horowitz ISSCC 2014, 45 nm int8: mul 0.2 + add 0.03 pJ; add 0.03 pJ",
        ),
        Preset(
            name="int32-45nm",
            rule="compute",
            e_mac=3.2,
            e_ac=0.1,
            source="Horowitz ISSCC 2014, 45 nm int32: mul 3.1 + add 0.1 pJ; add 0.1 pJ",
        ),
        Preset(
            name="memory-lemaire",
            rule="memory",
            e_add=0.1,
            e_mul=3.1,
            source="Lemaire et al. ICONIP 2022 as implemented in spikingjelly: int32 add 0.1, "
            "mul 3.1 pJ; SRAM 10/20/100 pJ per 32-bit word at 8 KB/32 KB/1 MB",
            label="toolchain simplification (see rule 'memory')",
        ),
        _LOIHI1_TABLE2,
        Preset(
            name="loihi1-sanafe",
            rule="loihi",
            e_syn=35.5,
            e_update_active=69.3 + 76.8,
            e_update_inactive=51.2,
            e_hop=3.6,
            source="SANA-FE arch/loihi.yaml (Boyle et al. TCAD 2025): synapse 35.5 pJ, soma "
            "inactive 51.2, spiking 69.3 pJ + axon-out 76.8 pJ per spike; hops 3.0/4.2 pJ",
        ),
        replace(
            _LOIHI1_TABLE2,
            name="loihi2-proxy",
            source="PROXY: Loihi 1 Table 2 values; no public per-op Loihi 2 constants exist",
            label="Loihi 2 proxy (Loihi 1 numbers, not a Loihi 2 measurement)",
        ),
    )
}


def get_preset(name: str) -> Preset:
    """The preset called ``name``; raises `UnknownPresetError` listing the valid names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise UnknownPresetError(f"preset {name!r} not in {sorted(PRESETS)}") from None


def sram_pj_per_byte(buffer_bytes: float) -> float:
    """SRAM access energy per byte for a buffer of ``buffer_bytes`` (curve ÷ 4 bytes/word)."""
    return float(np.interp(buffer_bytes, SRAM_CURVE_BYTES, SRAM_CURVE_PJ_PER_WORD)) / 4.0


@dataclass(frozen=True, kw_only=True)
class MemoryTraffic:
    """Bytes moved by one layer over all its samples and steps (memory rule's assumptions).

    ``weights``: weight bytes read (SNN: one per synaptic event or MAC, no reuse; ANN: each
    weight once per sample); ``state``: membrane state read + written per neuron update;
    ``spikes``: one byte written per spike; ``activations``: ANN inputs read + outputs written.
    """

    weights: int
    state: int
    spikes: int
    activations: int


def snn_traffic(layer: LayerCounts, preset: Preset) -> MemoryTraffic:
    """Memory traffic of the spiking layer under ``preset``'s byte widths."""
    return MemoryTraffic(
        weights=(layer.sop_exact + layer.dense_macs) * preset.weight_bytes,
        state=layer.neuron_updates * 2 * preset.state_bytes,
        spikes=layer.spikes_out,
        activations=0,
    )


def ann_traffic(layer: LayerCounts, preset: Preset) -> MemoryTraffic:
    """Memory traffic of the ANN twin's layer (maximal reuse) under ``preset``'s byte widths."""
    if layer.ann_macs == 0:
        return MemoryTraffic(weights=0, state=0, spikes=0, activations=0)
    acts = (layer.in_numel + layer.out_numel) * preset.act_bytes
    return MemoryTraffic(
        weights=layer.samples * layer.weights * preset.weight_bytes,
        state=0,
        spikes=0,
        activations=layer.samples * acts,
    )


def snn_energy_pj(layer: LayerCounts, preset: Preset) -> float:
    """Energy of the spiking layer's counted work over all its samples and steps, in pJ."""
    p = preset
    if p.rule == "compute":
        return layer.sop_exact * p.e_ac + layer.dense_macs * p.e_mac
    if p.rule == "loihi":
        active = layer.spikes_out
        inactive = layer.neuron_updates - active
        return (
            layer.sop_exact * p.e_syn
            + active * p.e_update_active
            + inactive * p.e_update_inactive
            + layer.spikes_out * (p.e_spike + p.hops * p.e_hop)
        )
    ops = (
        layer.sop_exact * p.e_add
        + layer.dense_macs * (p.e_mul + p.e_add)
        + layer.neuron_updates * (p.e_mul + p.e_add)
    )
    mem = snn_traffic(layer, p)
    c_w = sram_pj_per_byte(layer.weights * p.weight_bytes)
    c_s = sram_pj_per_byte(layer.out_numel * p.state_bytes)
    return ops + mem.weights * c_w + (mem.state + mem.spikes) * c_s


def ann_energy_pj(layer: LayerCounts, preset: Preset) -> float | None:
    """Energy of the ANN twin's layer over the same samples (T = 1), in pJ; None for Loihi."""
    p = preset
    if p.rule == "compute":
        return layer.ann_macs * p.e_mac
    if p.rule == "loihi":
        return None
    mem = ann_traffic(layer, p)
    c_w = sram_pj_per_byte(layer.weights * p.weight_bytes)
    c_a = sram_pj_per_byte(max(layer.in_numel, layer.out_numel) * p.act_bytes)
    return layer.ann_macs * (p.e_mul + p.e_add) + mem.weights * c_w + mem.activations * c_a
