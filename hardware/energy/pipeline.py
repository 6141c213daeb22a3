"""Model → `EnergyReport`: layer geometry, counts from activity (or the dense bound), assumptions.

The simulator (or any engine) hands its recorded spikes as described in `hardware.energy.activity`;
without them the report is **structure only**: every neuron is taken to spike at every step, so
synaptic-op counts are the dense upper bound and firing rates are 1 by construction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hardware.energy.activity import count_model, full_activity
from hardware.energy.counts import LayerCounts
from hardware.energy.deployment import DeploymentEnergy, deployment_energy, population_spikes
from hardware.energy.presets import PRESETS
from hardware.energy.report import EnergyReport, build_report, default_assumptions
from hardware.energy.structure import LayerSpec, layer_specs
from hardware.mapping.records import Mapping as ChipMapping
from spikeclip.model import SpikeCLIP

IMAGE_PREFIX = "image_encoder"
DEPLOYMENT_PRESETS = {"loihi1": "loihi1-table2", "loihi2": "loihi2-proxy"}
"""The preset whose spike and hop energies price a mapping's data movement, by generation."""
STRUCTURE_ONLY = (
    "NONE (structure only): every neuron assumed to spike at every step; synaptic ops are the "
    "dense upper bound, not a measurement"
)


def deployment(
    layers: Sequence[LayerCounts], mapping: ChipMapping | None
) -> tuple[tuple[DeploymentEnergy, ...], str]:
    """The data movement of every scenario of `mapping` (none without one) and its preset."""
    if mapping is None or mapping.generation not in DEPLOYMENT_PRESETS:
        return (), ""
    name = DEPLOYMENT_PRESETS[mapping.generation]
    spikes = population_spikes(layers)
    moved = tuple(
        deployment_energy(mapping, b, spikes, PRESETS[name]) for b in mapping.scenarios
    )
    return moved, name


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
    mapping: ChipMapping | None = None,
    layers: Sequence[LayerCounts] | None = None,
) -> EnergyReport:
    """The energy report of ``model``'s image tower.

    ``spikes``: neuron name → ``[T, B, *shape]`` spikes of ``samples`` samples (None: structure
    only). ``activity`` says where they came from (dataset, sample count, engine). ``mapping``:
    where the network sits on chips: the Loihi presets then route spikes over its mean hops,
    and the report prices its data movement (chip crossings, host and embedded traffic).
    ``layers``: counts already made from the activity (e.g. streamed over batches,
    :class:`hardware.energy.stream.CountAccumulator`); ``spikes`` is then not read.
    """
    steps = model.config.T
    specs = image_specs(model)
    if layers is None and spikes is None:
        spikes, samples, activity = full_activity(specs, samples=1, steps=steps), 1, STRUCTURE_ONLY
    if layers is None:
        layers = count_model(
            specs, spikes, samples=samples, steps=steps, order=order, dense_runs=dense_runs
        )
    moved, preset = deployment(layers, mapping)
    hops = moved[0].mean_hops if moved else 0.0
    assumptions = default_assumptions(
        steps=steps, samples=samples, activity=activity, order=order, dense_runs=dense_runs,
        hops=hops,
    )  # fmt: skip
    if moved:
        assumptions["off-chip"] = (
            "conv0, max-pool, readout/head and logits on host/embedded; their data movement "
            f"is priced in the deployment section ({mapping.target} mapping)"  # type: ignore[union-attr]
        )
        assumptions["routing"] = (
            f"mean hops per spike = {hops:.2f} (the {moved[0].scenario} mapping's routes)"
        )
    return build_report(
        layers,
        assumptions=assumptions,
        presets=presets,
        title=title,
        ann_onnx_macs=ann_onnx_macs,
        hops=hops,
        deployment=moved,
        deployment_preset=preset,
    )
