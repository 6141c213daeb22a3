"""PNG figures of an `EnergyReport` (matplotlib `Figure` objects: no pyplot, no backend switch).

``{stem}_per_layer.png``: SNN energy per layer per preset (nJ per sample, log scale).
``{stem}_firing_rate.png``: output firing rate (spikes per neuron per step) of each neuron layer.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from hardware.energy.report import EnergyReport
from spikeclip.atomic_io import write_bytes_atomic


def _save(fig: Figure, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    write_bytes_atomic(path, buf.getvalue())
    return path


def _short(name: str) -> str:
    return name.removeprefix("image_encoder.").replace("blocks.", "b")


def energy_per_layer_figure(rep: EnergyReport) -> Figure:
    """Figure: one marker series per preset over the layers that cost energy."""
    layers = [layer for layer in rep.layers if layer.op != "lif" or layer.neuron_updates]
    x = np.arange(len(layers))
    fig = Figure(figsize=(max(6.0, 0.22 * len(layers) + 2), 4.5))
    ax = fig.subplots()
    for p in rep.presets:
        y = np.array([rep.layer_energy_pj(layer, p)[0] / 1e3 for layer in layers])
        y = np.where(y > 0, y, np.nan)
        ax.plot(x, y, marker="o", ms=3, ls="none", label=p.name)
    ax.set_yscale("log")
    ax.set_ylabel("SNN energy per sample (nJ)")
    ax.set_xticks(x, [_short(layer.name) for layer in layers], rotation=90, fontsize=6)
    ax.set_title(f"{rep.title}: energy per layer per preset")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def firing_rate_figure(rep: EnergyReport) -> Figure:
    """Figure: output firing rate of every neuron layer."""
    neurons = [layer for layer in rep.layers if layer.op == "lif"]
    fig = Figure(figsize=(max(6.0, 0.22 * len(neurons) + 2), 4.0))
    ax = fig.subplots()
    ax.bar(np.arange(len(neurons)), [layer.fr_out for layer in neurons], color="tab:blue")
    ax.set_xticks(np.arange(len(neurons)), [_short(n.name) for n in neurons], rotation=90,
                  fontsize=6)  # fmt: skip
    ax.set_ylabel("spikes per neuron per step")
    ax.set_title(f"{rep.title}: firing rate per neuron layer")
    fig.tight_layout()
    return fig


def write_plots(rep: EnergyReport, out_dir: Path, stem: str = "energy") -> list[Path]:
    """Write both figures as PNG into ``out_dir``; returns their paths."""
    return [
        _save(energy_per_layer_figure(rep), Path(out_dir) / f"{stem}_per_layer.png"),
        _save(firing_rate_figure(rep), Path(out_dir) / f"{stem}_firing_rate.png"),
    ]
