"""The stages of `spikeclip-export`, each one small function from the context to a summary line.

A stage reads what earlier stages put on the :class:`ExportContext`, writes its files into the
staging folder and returns one line for the progress display. Which stages run depends on the
target (:data:`TARGETS`). The CLI (:mod:`export.cli.export`) runs them in order.
"""

from __future__ import annotations

import dataclasses
import json
import platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from export.cli.checks import (
    CheckResult,
    Requirements,
    collect_checks,
    evaluate,
    lava_skipped,
    lava_verdict,
)
from export.cli.output_dir import sha256_file
from hardware.energy.report import EnergyReport
from hardware.ir.network import LoihiNetwork
from hardware.quantize.record import QuantRecord
from spikeclip.atomic_io import write_text_atomic
from spikeclip.checkpoint import Checkpoint, load
from spikeclip.errors import SpikeCLIPError, UsageError
from spikeclip.memory import format_bytes
from spikeclip.parallel import workers_for

if TYPE_CHECKING:
    # Types only: the stages that make these products import their modules when they run, so
    # that `--help`, `--target nir/onnx` and `spikeclip-energy` without --data do not load
    # them. Together they cost 0.4-0.7 s per start on this machine (measured with -X importtime
    # on top of the CLI's own imports: nir + h5py 0.18-0.27 s, the simulator/lowering behind
    # hardware.fidelity 0.14-0.25 s, the mapper 0.10-0.21 s).
    import nir

    from hardware.fidelity.report import FidelityReport
    from hardware.mapping import mapper

MANIFEST_FORMAT_VERSION = 1
TARGETS = ("loihi", "loihi1", "sim", "nir", "onnx")
BIT_ACCURACY_STATEMENT = (
    "Bit-accurate here means bit-exact to Lava 0.10's CPU fixed-point models "
    "(PyLifModelBitAcc, PyDenseModelBitAcc; Loihi-1-style). It has not been verified against "
    "Loihi 2 silicon (lava#322, lava#829)."
)


@dataclass(frozen=True, kw_only=True)
class ExportOptions:
    """What the user asked for (parsed command line)."""

    model_path: Path
    target: str
    out: Path
    calib: str | None = None
    data_root: Path = Path("data")
    samples: int = 256
    run_lava: int = 2
    requirements: Requirements = field(default_factory=Requirements)
    presets: tuple[str, ...] | None = None
    classes: tuple[str, ...] | None = None
    templates: tuple[str, ...] | None = None
    argv: tuple[str, ...] = ()


@dataclass(kw_only=True)
class ExportContext:
    """Mutable state passed from stage to stage; ``folder`` is the staging output folder.

    Each product is None until the stage that makes it has run: ``checkpoint`` and its
    ``checkpoint_sha256`` (load), ``nir_graph`` (nir), ``ann_macs`` (onnx), ``data`` (data),
    ``network`` and ``quant_record`` (quantize), ``mapping`` (map), ``fidelity`` (simulate),
    ``lava_check`` (lava), ``energy`` (energy), ``checks``/``check_results`` (report).
    """

    options: ExportOptions
    folder: Path
    checkpoint: Checkpoint | None = None
    checkpoint_sha256: str = ""
    nir_graph: nir.NIRGraph | None = None
    data: EvalData | None = None
    network: LoihiNetwork | None = None
    quant_record: QuantRecord | None = None
    mapping: mapper.Mapping | None = None
    fidelity: FidelityReport | None = None
    lava_check: dict[str, Any] | None = None  # export.cli.checks.lava_verdict / lava_skipped
    checks: dict[str, Any] = field(default_factory=dict)  # manifest.json "checks"
    check_results: tuple[CheckResult, ...] = ()  # one per --require-* gate
    energy: EnergyReport | None = None
    ann_macs: int | None = None
    timings: dict[str, float] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)  # file name -> what it is
    summary_lines: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Stage:
    """One pipeline stage: ``run(context) -> summary line``, for the listed targets."""

    name: str
    title: str
    run: Callable[[ExportContext], str]
    targets: frozenset[str]


def stage_load(ctx: ExportContext) -> str:
    """Load the checkpoint safely (weights_only)."""
    ctx.checkpoint = load(ctx.options.model_path)
    ctx.checkpoint_sha256 = sha256_file(ctx.options.model_path)
    cfg = ctx.checkpoint.config
    n_params = sum(p.numel() for p in ctx.checkpoint.model.image_encoder.parameters())
    return (
        f"T={cfg.T}, image {cfg.in_channels}x{cfg.img_size}x{cfg.img_size}, embed {cfg.embed_dim},"
        f" depth {cfg.depth}, {n_params:,} image-encoder parameters"
    )


def stage_nir(ctx: ExportContext) -> str:
    """Export both towers to NIR and write model.nir."""
    from export.nir import to_nir, write_nir
    from export.nir.parts import write_standard_parts

    ctx.nir_graph = to_nir(ctx.checkpoint.model, tower="both")
    write_nir(ctx.nir_graph, ctx.folder / "model.nir")
    ctx.artifacts["model.nir"] = "NIR graph of both towers (standard nodes + marked extensions)"
    tokenizer = str(ctx.checkpoint.metadata.get("tokenizer") or "")
    parts = write_standard_parts(ctx.checkpoint.model, ctx.folder, tokenizer=tokenizer)
    for name, path in parts.items():
        ctx.artifacts[path.name] = f"{PART_NOTES[name]}: standard NIR nodes only (snnTorch, Norse)"
    files = ", ".join(["model.nir", *(path.name for path in parts.values())])
    return f"{len(ctx.nir_graph.nodes)} nodes, {len(ctx.nir_graph.edges)} edges -> {files}"


#: What each standard-only part file holds (`export.nir.parts.PARTS`).
PART_NOTES = {
    "text_encoder": "text tower, its embedding tables in the metadata as a host input",
    "image_stem": "image stem (conv-LIF layers; conv2's current out, before the first max-pool)",
}


class ExportUsageError(UsageError):
    """The command line asks for something this checkpoint or installation cannot give."""


@dataclass(frozen=True, kw_only=True)
class EvalData:
    """Images the export calibrates on and evaluates with.

    calib: ``[N, C, H, W]`` float32 (training split; chooses the quantization scales).
    images / labels: ``[M, C, H, W]`` / ``[M]`` int64 (held-out test split).
    """

    name: str
    calib: torch.Tensor
    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]
    templates: tuple[str, ...]


CALIBRATION_IMAGES = 256


def stage_data(ctx: ExportContext) -> str:
    """Pick the calibration/evaluation data: --calib, else the checkpoint's own dataset; images
    preprocessed as the checkpoint was trained (`spikeclip.training.model_data`) at its size."""
    from PIL import UnidentifiedImageError

    from spikeclip.training import model_data

    name = ctx.options.calib or checkpoint_dataset(ctx.checkpoint.metadata)
    if not name:
        raise ExportUsageError(
            f"{ctx.options.model_path}: the checkpoint names no dataset; pass --calib digits "
            "(bundled) or --calib DATASET (files under --data-root)"
        )
    cfg = ctx.checkpoint.config
    seed = int(ctx.checkpoint.metadata.get("split_seed", 0))
    root = Path(ctx.options.data_root).absolute()
    try:
        splits = model_data.model_splits(
            name, metadata=ctx.checkpoint.metadata, img_size=cfg.img_size, root=root, seed=seed
        )
        calib = model_data.first_images(splits.train, CALIBRATION_IMAGES, cfg.img_size)[0]
        images, labels = model_data.first_images(splits.test, ctx.options.samples, cfg.img_size)
    except SpikeCLIPError:
        raise
    except (FileNotFoundError, UnidentifiedImageError) as err:  # torchvision/PIL reading files
        raise ExportUsageError(f"{name} under {root}: cannot read the dataset: {err}") from err
    if len(calib) == 0 or len(images) == 0:
        raise ExportUsageError(
            f"{name} under {root}: {len(calib)} training and {len(images)} test images; "
            "both splits need at least one"
        )
    ctx.data = EvalData(
        name=name,
        calib=calib,
        images=images,
        labels=labels,
        class_names=tuple(ctx.checkpoint.class_names or splits.class_names),
        templates=tuple(ctx.checkpoint.templates or splits.templates),
    )
    return f"{name}: {len(calib)} calibration images (train), {len(images)} test images"


def checkpoint_dataset(metadata: Mapping[str, Any]) -> str | None:
    """The dataset a checkpoint was trained on: ``metadata["dataset"]``, else the last training
    stage's record (``metadata["stages"][-1]["dataset"]``, written by spikeclip-train)."""
    if metadata.get("dataset"):
        return str(metadata["dataset"])
    stages = metadata.get("stages") or []
    if stages and isinstance(stages[-1], dict) and stages[-1].get("dataset"):
        return str(stages[-1]["dataset"])
    return None


def stage_onnx(ctx: ExportContext) -> str:
    """Export the ANN twin's image tower to ONNX (checked in onnxruntime) and count its MACs."""
    from export.onnx.ann_twin import export_ann_twin_image_encoder
    from export.onnx.macs import count_onnx_macs
    from spikeclip.ann_twin import build_ann_twin

    twin = build_ann_twin(ctx.checkpoint.config)  # structure only: MACs do not depend on weights
    path = export_ann_twin_image_encoder(twin, ctx.folder / "model.onnx")
    macs = count_onnx_macs(path)
    ctx.ann_macs = int(macs.total)
    ctx.artifacts["model.onnx"] = "ANN twin's image tower (LIF → ReLU, T = 1) as ONNX"
    return f"ANN twin: {ctx.ann_macs:,} MACs per image -> model.onnx"


def stage_quantize(ctx: ExportContext) -> str:
    """Quantize the image tower of the model.nir just written (the file is the contract between
    stages; without one, the checkpoint's image encoder converted in memory) to Loihi fixed
    point, scales from the calibration images streamed in batches sized before anything runs
    (not enough memory for one batch: InsufficientMemoryError, exit 9)."""
    from export.nir import read_nir, to_nir
    from hardware.quantize.calibrate import plan_batches
    from hardware.quantize.image import image_graph, quantize_graph

    written = ctx.folder / "model.nir"
    if written.is_file():  # the export: read back what stage_nir wrote
        graph = image_graph(read_nir(written))
    else:  # spikeclip-energy --data writes no model.nir: the same graph, in memory
        graph = image_graph(to_nir(ctx.checkpoint.model.image_encoder))
    batching = plan_batches(graph, len(ctx.data.calib), workers=workers_for(len(ctx.data.calib)))
    ctx.network, record = quantize_graph(graph, ctx.data.calib, batch_size=batching.batch_size)
    ctx.quant_record = record
    ctx.network.save(ctx.folder / "network.npz")
    record.write(ctx.folder)
    if not record.exact:
        ctx.summary_lines.append(exactness_warning(record.T))
    ctx.artifacts["network.npz"] = "the quantized integer network (LoihiNetwork v1)"
    ctx.artifacts["quantization.md"] = "per-layer scales, bits, clipping, ranges vs 24-bit limits"
    n_layers = len(ctx.network.layers)
    grid = _grid_note(ctx.checkpoint.metadata, {n.name: n.scale for n in record.neurons})
    return (f"{n_layers} integer layers -> network.npz, quantization.md/json ("
            f"{batching.describe()}){grid}")


def exactness_warning(T: int) -> str:
    """The summary line for a network past the quantizer's exactness bound."""
    return (
        f"- WARNING: T = {T} is past the quantizer's exactness bound (T ≤ 7, biases on the "
        "2^(T−1) grid; quantization.md: exact twin: False): the fake-quant twin is not exact by "
        "construction and float vs simulator may differ beyond rounding (attention ties); "
        "retrain with T ≤ 7 for an exact deployment"
    )


def _grid_note(metadata: Mapping[str, Any], scales: dict[str, float]) -> str:
    """For a model that `finetune --hardware-aware` snapped onto a grid: whether this export
    chose the same scales (then the float model is the network the hardware runs)."""
    stages = metadata.get("stages") if isinstance(metadata, dict) else None
    last = stages[-1] if isinstance(stages, list) and stages else {}
    snapped = last.get("scales") if isinstance(last, dict) and last.get("grid_snap") else None
    if not isinstance(snapped, dict):
        return ""
    differ = [k for k, v in snapped.items() if scales.get(k) != v]  # the plan's (graph) order
    if not differ:
        return "; on the grid the model was snapped to (hardware-aware fine-tuning)"
    return (f"; WARNING: the model was snapped to another grid ({len(differ)} scale(s) differ, "
            f"first {differ[0]}): float vs simulation will agree less; re-run "
            "`spikeclip-train finetune --hardware-aware` on this dataset")


def stage_map(ctx: ExportContext) -> str:
    """Map the integer network onto cores and chips of the target generation."""
    from hardware.ir.timing import align_delays
    from hardware.mapping.mapper import map_network
    from hardware.mapping.plots import write_plots
    from hardware.mapping.profiles import load_target
    from hardware.mapping.report import write_report

    target = load_target("loihi1" if ctx.options.target == "loihi1" else "loihi2")
    # The pipelined hardware needs the residual stream's aligning delays (DESIGN §4); the
    # mapper prices them as synaptic delays (and materializes shared sums where cheaper).
    ctx.mapping = map_network(align_delays(ctx.network), target)
    title = f"Mapping onto {target.name}"
    write_report(ctx.mapping, target, ctx.folder, title=title)
    write_plots(ctx.mapping, ctx.folder, title=title)
    ctx.artifacts["mapping.md"] = f"cores, chips, placement, latency and I/O on {target.name}"
    ctx.artifacts["mapping_cores.png"] = "cores per core group vs each group's lower bound"
    line = mapping_summary(ctx.mapping)
    ctx.summary_lines.append(f"- mapping ({target.name}): {line}")
    ctx.summary_lines.append("- what runs where: " + placement_summary(ctx.mapping))
    return line


def _span(lo: int, hi: int | None) -> str:
    if hi is None:
        return f"{lo:,} (optimistic limits; no fit under pessimistic limits)"
    return f"{lo:,}" if lo == hi else f"{lo:,}–{hi:,}"


def mapping_summary(mapping: Any) -> str:
    """Cores and chips (ranges over the target's uncertain limits), the binding resource and
    the distance to the lower bound."""
    optimistic = mapping.scenarios["optimistic"]
    cores, chips = _span(*mapping.cores_range()), _span(*mapping.chips_range())
    image_ms = 1e3 * optimistic.latency.image_s
    bound = optimistic.lower.cores if optimistic.lower is not None else 0
    ratio = f", {optimistic.cores / bound:.2f}× the lower bound" if bound else ""
    return (
        f"{cores} cores on {chips} chip{'' if chips == '1' else 's'} "
        f"(binds: {optimistic.binding}{ratio}); "
        f"≈{image_ms:.2f} ms per image at the optimistic timing"
    )


def placement_summary(mapping: Any) -> str:
    """Fraction of operations (and neurons) per placement label, and what a target without
    graded spikes moved off the neurocores."""
    line = ", ".join(
        f"{share.placement} {100 * share.op_fraction:.2f}% of ops"
        f" ({100 * share.neuron_fraction:.1f}% of neurons)"
        for share in mapping.placement
    )
    if mapping.offloaded:
        line += f"; {len(mapping.offloaded)} layer(s) moved off the neurocores (see mapping.md)"
    return line


def class_matrix_for(ctx: ExportContext) -> tuple[torch.Tensor | None, str]:
    """The zero-shot class matrix ``[classes, out_dim]`` and how it was made.

    With a tokenizer named in the checkpoint's metadata: the float text tower on the prompts.
    Without one (e.g. a randomly initialised test model): ``None``, and the fidelity run uses
    the per-label means of the float features of the test images it computes anyway (said in
    the report).
    """
    model = ctx.checkpoint.model
    if ctx.checkpoint.metadata.get("tokenizer"):
        from spikeclip.evaluate import class_matrix
        from spikeclip.training.teachers import load_tokenizer

        tokenizer = load_tokenizer(str(ctx.checkpoint.metadata["tokenizer"]))
        with torch.no_grad():
            matrix = class_matrix(model, tokenizer, ctx.data.class_names, ctx.data.templates)
        return matrix, "text tower on the class prompts (float, host)"
    return None, "class means of the float image features (no tokenizer in the checkpoint)"


def stage_simulate(ctx: ExportContext) -> str:
    """Float model vs fake-quant twin vs bit-accurate simulation on the test images."""
    from hardware.fidelity.report import fidelity
    from hardware.fidelity.stream import plan_fidelity
    from hardware.lower.from_torch import graph_from_image_encoder

    encoder = ctx.checkpoint.model.image_encoder
    n = len(ctx.data.images)
    workers = workers_for(n)
    batching = plan_fidelity(graph_from_image_encoder(encoder), n, workers=workers)
    matrix, how = class_matrix_for(ctx)
    report = fidelity(encoder, ctx.network, ctx.data.images, ctx.data.labels, matrix,
                      batch_size=batching.batch_size, workers=workers)
    report.write(ctx.folder)
    ctx.fidelity = report
    ctx.artifacts["fidelity.md"] = "float vs fake-quant twin vs simulator (and Lava) per layer"
    line = (
        f"top-1 float {100 * report.top1_float:.1f}% / twin {100 * report.top1_twin:.1f}% / "
        f"simulator {100 * report.top1_sim:.1f}% on {report.samples} images; prediction "
        f"agreement float-sim {100 * report.agreement_float_sim:.1f}%; twin == simulator bit "
        f"for bit: {report.twin_sim_bit_exact}"
    )
    ctx.summary_lines.append(f"- fidelity ({how}): {line}")
    return (f"{line} ({batching.describe()} on {workers} worker process(es); noise floor on "
            f"the first {report.noise_floor_samples} images)")


def stage_lava(ctx: ExportContext) -> str:
    """Write lava/ (the process graph, the text tower as netx HDF5, the hardware-path check),
    then run the first --run-lava samples in Lava and compare with the simulator node by node."""
    from export.lava.hardware_path import hardware_path
    from export.lava.memory import check_lava_memory, estimate_lava_memory
    from export.lava.netx import export_text_tower
    from export.lava.runner import compare_to_sim, run_lava, to_lava
    from hardware.simulate.engine import simulate

    folder = ctx.folder / "lava"
    folder.mkdir()
    graph = to_lava(ctx.network)
    n = min(ctx.options.run_lava, len(ctx.data.images))
    if n > 0:  # before any Lava process starts: exit 9 rather than being killed
        estimate = estimate_lava_memory(graph, n)
        available = check_lava_memory(estimate, what=f"{ctx.options.model_path}: stage lava")
        ctx.summary_lines.append(
            f"- Lava stage: estimated peak {format_bytes(estimate.total_bytes)}, available "
            f"{format_bytes(available.bytes)}")
    write_text_atomic(
        folder / "image_encoder.md", "# Lava process graph: image tower\n\n" + graph.table() + "\n"
    )
    text_path, text_net, _ = export_text_tower(ctx.checkpoint.model.text_encoder,
                                               folder / "text_encoder.net")
    hw = hardware_path(graph, compile_graph=False)
    write_text_atomic(folder / "hardware_path.md", hw.markdown())
    ctx.artifacts["lava/image_encoder.md"] = "the image tower's Lava processes, delays, depths"
    ctx.artifacts["lava/text_encoder.net"] = "text tower LIF→Dense→LIF as a lava-dl netx HDF5"
    ctx.artifacts["lava/hardware_path.md"] = "Loihi 2 hardware path: what cannot run on chip"
    ctx.summary_lines.append(f"- hardware path: {hw.statement}")
    if n <= 0:
        ctx.lava_check = lava_skipped(f"--run-lava {ctx.options.run_lava}")
        _record_lava_in_fidelity(ctx)
        ctx.summary_lines.append(f"- Lava check: skipped (--run-lava {ctx.options.run_lava})")
        return f"lava/ written; run skipped (--run-lava {ctx.options.run_lava})"
    images = ctx.data.images[:n]
    lava = run_lava(graph, images)
    sim = simulate(ctx.network, images, keep_states=True)
    ctx.lava_check = verdict = lava_verdict(n, compare_to_sim(lava, sim, ctx.network))
    zero_shot = _zero_shot_in_lava(ctx, text_net, text_path, lava, sim)
    verdict["zero_shot"] = zero_shot
    _record_lava_in_fidelity(ctx)
    text = (
        f"every spike and readout stream identical (max |Δ feature| "
        f"{verdict['max_abs_feature_diff']:.1e})"
        if verdict["identical"]
        else f"DIFFERS: {verdict['spike_mismatches']} neuron-steps, "
        f"{verdict['stream_mismatches']} stream entries, shapes {verdict['shape_mismatches']}, "
        f"missing {verdict['missing']}"
    )
    line = f"{n} samples, Lava vs simulator: {text}; {lava.wall_s:.1f} s in Lava"
    ctx.summary_lines.append(f"- Lava check: {line}")
    ctx.summary_lines.append(f"- zero-shot in Lava: {_zero_shot_text(zero_shot)}")
    if not verdict["identical"] or zero_shot.get("identical") is False:
        from export.lava.runner import LavaRunError

        raise LavaRunError(f"Lava and the simulator disagree: {text}; zero-shot: "
                           f"{_zero_shot_text(zero_shot)}")
    return line


def _zero_shot_in_lava(ctx: ExportContext, text_net: Any, text_path: Path, lava: Any,
                       sim: Any) -> dict[str, Any]:
    """The text tower in Lava on the class prompts and the zero-shot logits from Lava's image
    and text features against the simulator's (`export.lava.zero_shot.check_zero_shot`); not
    run when the checkpoint names no tokenizer (no prompts to tokenize)."""
    if not ctx.checkpoint.metadata.get("tokenizer"):
        return {"ran": False, "reason": "the checkpoint names no tokenizer"}
    from export.lava.zero_shot import check_zero_shot
    from spikeclip.evaluate import prompt_ids
    from spikeclip.training.teachers import load_tokenizer

    tokenize = load_tokenizer(str(ctx.checkpoint.metadata["tokenizer"]))
    ids = prompt_ids(tokenize, ctx.data.class_names, ctx.data.templates,
                     ctx.checkpoint.config.text_len).numpy()
    (image_lava,) = lava.features.values()
    return {"ran": True, **check_zero_shot(text_net, text_path, ids, image_lava,
                                           sim.feature).to_dict()}


def _zero_shot_text(zero_shot: dict[str, Any]) -> str:
    """One line for the zero-shot verdict of :func:`_zero_shot_in_lava`."""
    if not zero_shot.get("ran"):
        return f"not run ({zero_shot.get('reason')})"
    if zero_shot["identical"]:
        return (f"text tower (netx) on {zero_shot['prompts']} prompts and image tower on "
                f"{zero_shot['samples']} samples: every text spike, text feature and zero-shot "
                f"logit identical to the simulator's (max |Δ logit| "
                f"{zero_shot['max_abs_logit_diff']:.1e}); Lava predicts "
                f"{zero_shot['predictions']}")
    return (f"DIFFERS: {zero_shot['text_spike_mismatches']} text neuron-steps, text features "
            f"identical {zero_shot['text_features_identical']}, logits identical "
            f"{zero_shot['logits_identical']} (max |Δ| {zero_shot['max_abs_logit_diff']:.1e})")


def _record_lava_in_fidelity(ctx: ExportContext) -> None:
    """Rewrite fidelity.json/md with the Lava verdict (the simulate stage ran before Lava)."""
    if ctx.fidelity is not None:
        ctx.fidelity = dataclasses.replace(ctx.fidelity, lava=ctx.lava_check)
        ctx.fidelity.write(ctx.folder)


def simulated_counts(
    ctx: ExportContext, samples: int, *, order: str = "q_ktv", dense_runs: int = 1
) -> tuple[list[Any], int, str]:
    """Exact operation counts (`hardware.energy.counts.LayerCounts` per layer) of the first
    ``samples`` test images from the bit-accurate simulator, streamed in batches planned from
    the memory estimate (exit 9 before anything runs when one image does not fit):
    ``(layers, samples, description)``."""
    from hardware.energy.pipeline import image_specs
    from hardware.energy.stream import count_simulated
    from hardware.fidelity.stream import plan_simulation
    from hardware.lower.from_torch import graph_from_image_encoder

    n = min(len(ctx.data.images), samples)
    graph = graph_from_image_encoder(ctx.checkpoint.model.image_encoder)
    workers = workers_for(n)
    batching = plan_simulation(graph, n, workers=workers)
    layers = count_simulated(ctx.network, ctx.data.images[:n], image_specs(ctx.checkpoint.model),
                             batch_size=batching.batch_size, order=order, dense_runs=dense_runs,
                             workers=workers)
    return layers, n, f"bit-accurate simulator, {n} {ctx.data.name} test images"


def stage_energy(ctx: ExportContext) -> str:
    """Exact operation counts from simulated activity, priced by the presets."""
    from hardware.energy.files import write_report
    from hardware.energy.pipeline import model_report

    layers, n, activity = simulated_counts(ctx, ENERGY_SAMPLES)
    report = model_report(
        ctx.checkpoint.model,
        layers=layers,
        samples=n,
        activity=activity,
        presets=ctx.options.presets,
        ann_onnx_macs=ctx.ann_macs,
        mapping=ctx.mapping,
    )
    write_report(report, ctx.folder)  # energy.md, energy.json and the two PNG plots
    ctx.energy = report
    ctx.artifacts["energy.md"] = "per-layer operation counts and energy per preset (+ .json)"
    ctx.artifacts["energy_per_layer.png"] = "energy per layer per preset"
    ctx.artifacts["energy_firing_rate.png"] = "firing rate per layer"
    ctx.summary_lines.append(f"- energy per image: {energy_summary(report)}")
    return energy_summary(report)


def energy_summary(report: Any) -> str:
    """SNN (and ANN twin) energy per image for each preset, and the SNN/ANN ratio range."""
    from hardware.energy.report import format_energy

    parts = []
    for total in report.totals():
        ann = "" if total.ann_pj is None else f" vs ANN {format_energy(total.ann_pj)}"
        parts.append(f"{total.preset} SNN {format_energy(total.snn_pj)}{ann}")
    ratio = report.ratio_range()
    if ratio:
        parts.append(f"SNN/ANN ratio {ratio[0]:.3f}–{ratio[1]:.3f} over presets")
    for moved in report.deployment:
        parts.append(
            f"data movement ({moved.scenario}, {moved.chips} chip(s)) "
            f"{format_energy(moved.total_pj(0))}–{format_energy(moved.total_pj(1))}"
        )
    return "; ".join(parts)


ENERGY_SAMPLES = 64


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for dist in ("spikeclip-loihi", "torch", "nir", "lava-nc", "lava-dl", "snntorch", "onnx"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def stage_report(ctx: ExportContext) -> str:
    """Evaluate the checks and --require-* gates, write manifest.json and report.md (links to
    every artifact). A failed gate is only recorded here; the CLI exits 10 after the folder is
    in place."""
    opts = ctx.options
    measured = collect_checks(
        fidelity=ctx.fidelity, quant_record=ctx.quant_record, lava=ctx.lava_check
    )
    # a section an earlier stage measured itself (a foreign network's fidelity, its mapping)
    # stands; collect_checks fills the rest
    ctx.checks = {**measured, **{k: v for k, v in ctx.checks.items() if v is not None}}
    ctx.check_results = evaluate(opts.requirements, ctx.checks)
    ctx.checks["requirements"] = [r.to_dict() for r in ctx.check_results]
    ctx.checks["passed"] = all(r.passed for r in ctx.check_results)
    if ctx.check_results:
        ctx.summary_lines.append("- checks: " + "; ".join(
            f"{r.option} {'passed' if r.passed else 'FAILED'} ({r.detail})"
            for r in ctx.check_results
        ))
    manifest = {
        "format": "spikeclip-export",
        "format_version": MANIFEST_FORMAT_VERSION,
        "versions": _versions(),
        "checkpoint": {"path": str(opts.model_path), "sha256": ctx.checkpoint_sha256},
        "target": opts.target,
        "options": {
            "calib": opts.calib,
            "data_root": str(opts.data_root),
            "samples": opts.samples,
            "run_lava": opts.run_lava,
            "presets": list(opts.presets) if opts.presets else None,
            "classes": list(opts.classes) if opts.classes else None,
            "templates": list(opts.templates) if opts.templates else None,
            "requirements": opts.requirements.to_dict(),
            "argv": list(opts.argv),
        },
        "checks": ctx.checks,
        "stage_seconds": {k: round(v, 4) for k, v in ctx.timings.items()},
        "artifacts": dict(ctx.artifacts),
    }
    write_text_atomic(ctx.folder / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    lines = [
        f"# SpikeCLIP export: `{opts.model_path.name}` → {opts.target}",
        "",
        f"> {BIT_ACCURACY_STATEMENT}",
        "",
        *ctx.summary_lines,
        "",
        "## Files",
        "",
        *(f"- [`{name}`]({name}): {what}" for name, what in ctx.artifacts.items()),
        "- [`manifest.json`](manifest.json): versions, checkpoint hash, options, checks "
        "(machine-readable verdicts), stage timings",
        "",
        "## Stage timings",
        "",
        "| stage | seconds |",
        "|---|---:|",
        *(f"| {name} | {sec:.2f} |" for name, sec in ctx.timings.items()),
        "",
    ]
    write_text_atomic(ctx.folder / "report.md", "\n".join(lines))
    return "manifest.json, report.md"


_ALL = frozenset(TARGETS)
_HW = frozenset({"loihi", "loihi1"})
_SIM = _HW | {"sim"}
STAGES: tuple[Stage, ...] = (
    Stage("load", "load checkpoint", stage_load, _ALL),
    Stage("nir", "export NIR graph", stage_nir, _SIM | {"nir"}),
    Stage("onnx", "export ANN twin to ONNX", stage_onnx, _SIM | {"onnx"}),
    Stage("data", "calibration and test data", stage_data, _SIM),
    Stage("quantize", "quantize to Loihi fixed point", stage_quantize, _SIM),
    Stage("map", "map onto cores and chips", stage_map, _HW),
    Stage("simulate", "simulate bit-accurately, fidelity", stage_simulate, _SIM),
    Stage("lava", "run in Lava, compare", stage_lava, _HW),
    Stage("energy", "count operations, price energy", stage_energy, _SIM),
    Stage("report", "write manifest and report", stage_report, _ALL),
)
