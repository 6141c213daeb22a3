"""Energy: exact operation counts from activity, priced by presets, reported with assumptions.

Modules: `counts` (per-layer exact counts from spike arrays), `fanout` (exact conv fan-out),
`presets` (pJ price lists with sources and pricing rules), `structure` (layer geometry from a
model's `describe()` records; dense ops per step), `activity` (whole-model counts from recorded
spikes), `report` (Markdown/JSON tables), `plots` (PNG figures, imported on demand).
"""

from hardware.energy.counts import (
    LayerCounts,
    attention_counts,
    conv_counts,
    dense_counts,
    lif_counts,
    linear_counts,
    split_heads,
)
from hardware.energy.presets import PRESETS, Preset, ann_energy_pj, get_preset, snn_energy_pj

__all__ = [
    "PRESETS",
    "LayerCounts",
    "Preset",
    "ann_energy_pj",
    "attention_counts",
    "conv_counts",
    "dense_counts",
    "get_preset",
    "lif_counts",
    "linear_counts",
    "snn_energy_pj",
    "split_heads",
]
