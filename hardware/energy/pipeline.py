"""Model → `EnergyReport`: layer geometry, counts from activity (or the dense bound), assumptions.

The simulator (or any engine) hands its recorded spikes as described in `hardware.energy.activity`;
without them the report is **structure only**: every neuron is taken to spike at every step, so
synaptic-op counts are the dense upper bound and firing rates are 1 by construction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hardware.energy.activity import count_model, full_activity
from hardware.energy.report import EnergyReport, build_report, default_assumptions
from hardware.energy.structure import LayerSpec, layer_specs
from spikeclip.model import SpikeCLIP

IMAGE_PREFIX = "image_encoder"
STRUCTURE_ONLY = (
    "NONE (structure only): every neuron assumed to spike at every step; synaptic ops are the "
    "dense upper bound, not a measurement"
)


def image_specs(model: SpikeCLIP) -> list[LayerSpec]:
    """Counted layers of the image tower, names ``image_encoder.…`` (module paths in ``model``)."""
    return layer_specs(model.image_encoder.describe(IMAGE_PREFIX, "image"))


def model_report(
    model: SpikeCLIP,
    *,
    spikes: Mapping[str, object] | None = None,
    samples: int = 1,
    activity: str = "",
    order: str = "q_ktv",
    dense_runs: int = 1,
    presets: Sequence[str] | None = None,
    ann_onnx_macs: int | None = None,
    title: str = "SpikeCLIP image encoder: energy",
) -> EnergyReport:
    """The energy report of ``model``'s image tower.

    ``spikes``: neuron name → ``[T, B, *shape]`` spikes of ``samples`` samples (None: structure
    only). ``activity`` says where they came from (dataset, sample count, engine).
    """
    steps = model.config.T
    specs = image_specs(model)
    if spikes is None:
        spikes, samples, activity = full_activity(specs, samples=1, steps=steps), 1, STRUCTURE_ONLY
    layers = count_model(
        specs, spikes, samples=samples, steps=steps, order=order, dense_runs=dense_runs
    )
    assumptions = default_assumptions(
        steps=steps, samples=samples, activity=activity, order=order, dense_runs=dense_runs
    )
    return build_report(
        layers,
        assumptions=assumptions,
        presets=presets,
        title=title,
        ann_onnx_macs=ann_onnx_macs,
    )
