"""`spikeclip-export` for foreign networks: a NIR graph (snnTorch, Norse, … exports) or a lava-dl
netx ``.net`` file, recognised by content (:func:`export.cli.model_file.model_kind`), not by
extension.

    load → inputs → quantize (NIR) / imported as is (netx) → map → simulate (+ fidelity) → Lava
    check → energy (+ the ONNX ReLU twin, NIR) → report

The SpikeCLIP-only stages are skipped and the report says so: no text tower, no zero-shot
classes. The ANN baseline of the energy report is the NIR graph with each neuron a ReLU,
exported to ``model.onnx`` and its MACs counted from that file
(:mod:`export.onnx.foreign_twin`); a netx file has no float graph, so its ANN MACs come from
the layer shapes. NIR graphs
become a float graph (:mod:`hardware.lower.from_foreign_nir`) that the quantizer maps to
integers; netx files are already fixed point and are imported exactly
(:func:`hardware.lower.from_netx.load_netx`, no re-quantization). Inputs: ``--calib FILE.npz``
(one array ``[N, T, *input_shape]`` of spikes, or integer currents for a netx current input),
else Bernoulli spikes at ``--rate`` for ``--steps`` steps (netx with an input transform:
Bernoulli 0/1 frames encoded as lava-dl's PilotNet dataset encodes images, held for T steps),
seeded by ``--seed``; the report states which.
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from export.cli.args import nonnegative_int, positive_int, probability
from export.cli.checks import Requirements, foreign_float_sim
from export.cli.model_file import check_nir_node_types
from export.cli.stages import (
    ExportContext,
    ExportUsageError,
    Stage,
    mapping_summary,
    stage_map,
    stage_report,
)
from hardware.ir.layers import CurrentInputLayer, LIFLayer, SpikeInputLayer
from spikeclip.atomic_io import write_text_atomic
from spikeclip.errors import ModelFileError

FOREIGN_TARGETS = frozenset({"loihi", "loihi1", "sim"})
DEFAULT_STEPS = 16
#: ``hardware.lower.from_foreign_nir``'s conventions and resets, spelled here so that ``--help``
#: does not import nir (tests/export/cli/test_cli_foreign.py checks they agree).
CONVENTIONS = ("nir", "snntorch", "norse", "sinabs", "rockpool")
RESETS = ("zero", "subtract", "subtract-delayed")


def add_foreign_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that only NIR / netx inputs use."""
    g = parser.add_argument_group("NIR graphs and lava-dl netx files (MODEL is recognised by "
                                  "content; --calib then takes FILE.npz, [N, T, *input_shape])")
    g.add_argument("--rate", type=probability, default=0.1,
                   help="Bernoulli input spike rate when there is no --calib file")
    g.add_argument("--steps", type=positive_int, default=None,
                   help=f"time steps T (default: the --calib file's, netx: the file's tSample, "
                        f"else {DEFAULT_STEPS})")
    g.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the Bernoulli inputs")
    g.add_argument("--dt", type=float, default=None,
                   help="NIR: the step in seconds (default: the graph's, or the convention's)")
    g.add_argument("--nir-convention", choices=CONVENTIONS, default="nir",
                   help="NIR: how the exporter wrote τ, r, w_in (export/nir/FOREIGN.md)")
    g.add_argument("--reset", choices=RESETS, default="zero",
                   help="NIR: the neurons' reset (files record only v_reset; Loihi resets to 0)")


@dataclass(frozen=True, kw_only=True)
class ForeignOptions:
    """The foreign-network options (:func:`add_foreign_arguments`)."""

    kind: str
    rate: float = 0.1
    steps: int | None = None
    seed: int = 0
    dt: float | None = None
    convention: str = "nir"
    reset: str = "zero"

    @classmethod
    def from_args(cls, kind: str, args: argparse.Namespace) -> ForeignOptions:
        return cls(kind=kind, rate=args.rate, steps=args.steps, seed=args.seed, dt=args.dt,
                   convention=args.nir_convention, reset=args.reset)


@dataclass(kw_only=True)
class ForeignContext(ExportContext):
    """:class:`ExportContext` plus the foreign network: ``foreign`` (its float graph, NIR only),
    ``nir_graph`` (the NIR graph read, NIR only), ``inputs`` (the simulator's ``[T, N, *shape]``),
    ``input_note`` (how they were made) and ``sim`` (the simulator's run on them)."""

    foreign_options: ForeignOptions
    foreign: Any = None
    nir_graph: Any = None
    inputs: np.ndarray | None = None
    input_note: str = ""
    sim: Any = None
    skipped: list[str] = field(default_factory=list)


def _opts(ctx: ForeignContext) -> ForeignOptions:
    return ctx.foreign_options


def _calib(ctx: ForeignContext) -> np.ndarray | None:
    """The ``--calib`` file's one array ``[N, T, *shape]`` (``np.load``, no pickles)."""
    if ctx.options.calib is None:
        return None
    path = Path(ctx.options.calib)
    if not path.is_file():
        raise ExportUsageError(f"--calib {path}: for a NIR/netx model --calib is a .npz file "
                               "holding one array [N, T, *input_shape]")
    with np.load(path, allow_pickle=False) as data:
        names = list(data.keys())
        if len(names) != 1:
            raise ExportUsageError(f"--calib {path}: holds {names}; expected exactly one array")
        arr = np.asarray(data[names[0]])
    if arr.ndim < 3:
        raise ExportUsageError(f"--calib {path}: array of shape {arr.shape}; expected "
                               "[N, T, *input_shape]")
    return arr


def _steps(ctx: ForeignContext) -> int | None:
    calib = _calib(ctx)
    return _opts(ctx).steps or (int(calib.shape[1]) if calib is not None else None)


def stage_foreign_load(ctx: ForeignContext) -> str:
    """Read the NIR graph (lowered to a float graph) or the netx file (imported exactly)."""
    from hardware.lower.from_foreign_nir import float_graph_from_foreign
    from hardware.lower.from_netx import load_netx

    opts, path = _opts(ctx), ctx.options.model_path
    ctx.checkpoint_sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    if opts.kind == "netx":
        ctx.network = load_netx(path, steps=_steps(ctx))
        n = sum(isinstance(ly, LIFLayer) for ly in ctx.network.layers)
        return f"lava-dl netx: {len(ctx.network.layers)} layers ({n} LIF), T = {ctx.network.T}"
    import nir

    from hardware.lower.from_foreign_nir import NIR_NODE_TYPES

    check_nir_node_types(path, NIR_NODE_TYPES)
    try:
        graph = nir.read(path, type_check=False)  # Norse/Rockpool keep a batch axis
    except (KeyError, ValueError, TypeError, AssertionError, OSError) as err:
        # nir.read validates the file's fields with asserts and KeyErrors: a bad file, not a bug
        raise ModelFileError(f"{path}: an HDF5 file with a 'node' group that is not a readable "
                             f"NIR 1.0.8 graph: {err!r}") from err
    ctx.nir_graph = graph
    ctx.foreign = float_graph_from_foreign(graph, T=_steps(ctx) or DEFAULT_STEPS, dt=opts.dt,
                                           convention=opts.convention, reset=opts.reset)
    ctx.summary_lines.extend(f"- {note}" for note in ctx.foreign.notes)
    fg = ctx.foreign.graph
    return (f"NIR: {len(graph.nodes)} nodes → {len(fg.nodes)} float nodes, input "
            f"{fg.input_shape}, T = {fg.T}, outputs {list(ctx.foreign.outputs)}")


def _bernoulli(ctx: ForeignContext, shape: tuple[int, ...], T: int) -> np.ndarray:
    rng = np.random.default_rng(_opts(ctx).seed)
    n, rate = ctx.options.samples, _opts(ctx).rate
    meta = _netx_meta(ctx)
    if meta is not None and isinstance(ctx.network.layer(meta.input_layer), CurrentInputLayer):
        from hardware.lower.from_netx import encode_frames, static_currents

        if meta.transform is None:
            raise ExportUsageError(f"{ctx.options.model_path}: a current input without an input "
                                   "transform; pass --calib FILE.npz with integer currents")
        frames = (rng.random((n, *shape)) < rate).astype(np.float64)
        ctx.input_note = (f"{n} Bernoulli({rate}) 0/1 frames (seed {_opts(ctx).seed}) encoded "
                          f"by the file's input transform {dict(meta.transform)}, held {T} steps")
        return np.ascontiguousarray(static_currents(encode_frames(frames, meta.transform), T))
    ctx.input_note = f"{n} samples of Bernoulli({rate}) spikes, {T} steps, seed {_opts(ctx).seed}"
    return (rng.random((T, n, *shape)) < rate).astype(np.float64)


def _netx_meta(ctx: ForeignContext):
    if _opts(ctx).kind != "netx":
        return None
    from hardware.lower.from_netx import netx_metadata

    return netx_metadata(ctx.network)


def stage_foreign_inputs(ctx: ForeignContext) -> str:
    """The inputs: ``--calib FILE.npz`` or seeded Bernoulli spikes (module doc)."""
    meta = _netx_meta(ctx)
    shape = meta.input_shape if meta is not None else ctx.foreign.graph.input_shape
    T = ctx.network.T if meta is not None else ctx.foreign.graph.T
    calib = _calib(ctx)
    if calib is None:
        ctx.inputs = _bernoulli(ctx, tuple(shape), T)
    else:
        if tuple(calib.shape[1:]) != (T, *shape):
            raise ExportUsageError(f"--calib {ctx.options.calib}: shape {calib.shape}, expected "
                                   f"[N, {T}, {', '.join(map(str, shape))}]")
        ctx.inputs = np.ascontiguousarray(np.swapaxes(calib, 0, 1))
        ctx.input_note = f"{calib.shape[0]} samples from {ctx.options.calib}, {T} steps"
    ctx.summary_lines.append(f"- inputs: {ctx.input_note}")
    return ctx.input_note


def stage_foreign_quantize(ctx: ForeignContext) -> str:
    """NIR: quantize the float graph, calibrated on the inputs; netx: already integers."""
    if _opts(ctx).kind == "netx":
        ctx.network.save(ctx.folder / "network.npz")
        ctx.artifacts["network.npz"] = "the imported integer network (LoihiNetwork v1)"
        return "netx is fixed point: imported exactly, no re-quantization -> network.npz"
    from hardware.lower.from_foreign_nir import ForeignNIRError
    from hardware.quantize.image import quantize_graph

    refusals = ctx.foreign.deploy_refusals()
    if refusals:
        raise ForeignNIRError(*refusals[0])
    calib = torch.as_tensor(np.swapaxes(ctx.inputs, 0, 1))
    ctx.network, record = quantize_graph(ctx.foreign.graph, calib)
    ctx.quant_record = record
    ctx.network.save(ctx.folder / "network.npz")
    record.write(ctx.folder)
    ctx.artifacts["network.npz"] = "the quantized integer network (LoihiNetwork v1)"
    ctx.artifacts["quantization.md"] = "per-layer scales, bits, clipping, ranges vs 24-bit limits"
    return f"{len(ctx.network.layers)} integer layers -> network.npz, quantization.md/json"


@dataclass(frozen=True, kw_only=True)
class LayerAgreement:
    """One spiking layer: neuron-steps compared, differing, simulator spikes."""

    name: str
    neuron_steps: int
    differ: int
    spikes: int


def _foreign_fidelity(ctx: ForeignContext) -> tuple[list[LayerAgreement], bool]:
    """Float executor (the framework's spike rule) and fake-quant twin vs the simulator, per
    spiking layer."""
    from hardware.lower.graph_run import run_graph
    from hardware.quantize.twin import run_twin

    x = torch.as_tensor(np.swapaxes(ctx.inputs, 0, 1))
    flt = run_graph(ctx.foreign.graph, x, compare=ctx.foreign.graph.compare, keep_states=True)
    twin = run_twin(ctx.network, x, keep_states=True)
    rows, twin_exact = [], True
    for name, s in ctx.sim.spikes.items():
        s = np.asarray(s)
        twin_exact &= bool(np.array_equal(twin.spikes[name].numpy(), s))
        rows.append(LayerAgreement(name=name, neuron_steps=int(s.size), spikes=int(s.sum()),
                                   differ=int((flt.spikes[name].numpy() != s).sum())))
    return rows, twin_exact


def _write_fidelity(ctx: ForeignContext, rows: list[LayerAgreement], twin_exact: bool) -> float:
    from hardware.quantize.build import rounded_decay_notes

    notes = rounded_decay_notes(ctx.network)  # decays with no exact 12-bit value
    total = sum(r.neuron_steps for r in rows)
    agreement = 1.0 - sum(r.differ for r in rows) / max(total, 1)
    data = {"samples": int(ctx.inputs.shape[1]), "inputs": ctx.input_note,
            "float_vs_simulator_neuron_step_agreement": agreement,
            "twin_equals_simulator": twin_exact,
            "layers": [r.__dict__ for r in rows], "notes": list(notes)}
    import json

    write_text_atomic(ctx.folder / "fidelity.json", json.dumps(data, indent=2) + "\n")
    lines = ["# Fidelity: float NIR executor vs bit-accurate simulator", "",
             f"Inputs: {ctx.input_note}. Float executor: the NIR graph's forward-Euler semantics "
             f"in float64, spike `H {ctx.foreign.graph.compare} θ`; the simulator (Loihi) "
             "fires on `>`; differences come from weight, bias and threshold rounding (and "
             "ties).", "",
             f"Fake-quant twin == simulator bit for bit: {twin_exact}.", "",
             "| layer | neuron-steps | simulator spikes | differing | agreement |",
             "|---|---:|---:|---:|---:|",
             *(f"| {r.name} | {r.neuron_steps:,} | {r.spikes:,} | {r.differ:,} | "
               f"{100 * (1 - r.differ / max(r.neuron_steps, 1)):.3f}% |" for r in rows),
             f"| **all** | {total:,} | | {sum(r.differ for r in rows):,} | "
             f"**{100 * agreement:.3f}%** |", "",
             *(["## Notes", "", *(f"- {n}" for n in notes), ""] if notes else [])]
    write_text_atomic(ctx.folder / "fidelity.md", "\n".join(lines))
    ctx.artifacts["fidelity.md"] = "float NIR executor vs fake-quant twin vs simulator per layer"
    return agreement


def stage_foreign_simulate(ctx: ForeignContext) -> str:
    """Simulate every input bit-accurately; for NIR graphs compare with the float executor."""
    from hardware.simulate.engine import simulate

    nir_in = _opts(ctx).kind == "nir"
    ctx.sim = simulate(ctx.network, ctx.inputs, keep_states=nir_in)
    n = ctx.inputs.shape[1]
    if not nir_in:
        ctx.skipped.append("fidelity (a netx file has no float model to compare with)")
        return f"{n} samples simulated (no float reference for a netx file)"
    rows, twin_exact = _foreign_fidelity(ctx)
    agreement = _write_fidelity(ctx, rows, twin_exact)
    line = (f"{n} samples: float vs simulator {100 * agreement:.3f}% of neuron-steps agree; "
            f"twin == simulator bit for bit: {twin_exact}")
    ctx.summary_lines.append(f"- fidelity: {line}")
    ctx.checks["float_vs_simulator"] = foreign_float_sim(samples=n, agreement=agreement)
    ctx.checks["twin_equals_simulator"] = twin_exact
    return line


def stage_foreign_lava(ctx: ForeignContext) -> str:
    """Run the first ``--run-lava`` samples in Lava and compare every spike with the simulator."""
    from export.cli.checks import lava_skipped, lava_verdict
    from export.lava.runner import LavaRunError, compare_to_sim, run_lava, to_lava
    from hardware.simulate.engine import simulate

    folder = ctx.folder / "lava"
    folder.mkdir()
    graph = to_lava(ctx.network)
    write_text_atomic(folder / "network.md", "# Lava process graph\n\n" + graph.table() + "\n")
    ctx.artifacts["lava/network.md"] = "the network's Lava processes, delays, depths"
    n = min(ctx.options.run_lava, ctx.inputs.shape[1])
    if n <= 0:
        ctx.lava_check = lava_skipped(f"--run-lava {ctx.options.run_lava}")
        return f"lava/ written; run skipped (--run-lava {ctx.options.run_lava})"
    few = ctx.inputs[:, :n]
    lava = run_lava(graph, few)
    cmp = compare_to_sim(lava, simulate(ctx.network, few, keep_states=True), ctx.network)
    ctx.lava_check = verdict = lava_verdict(n, cmp)
    text = ("every spike identical" if verdict["identical"]
            else f"DIFFERS: {verdict['spike_mismatches']} neuron-steps")
    line = f"{n} samples, Lava vs simulator: {text}; {lava.wall_s:.1f} s in Lava"
    ctx.summary_lines.append(f"- Lava check: {line}")
    if not verdict["identical"]:
        raise LavaRunError(f"Lava and the simulator disagree: {text}")
    return line


def _onnx_twin(ctx: ForeignContext, layers: list) -> tuple[list, int]:
    """Export the NIR graph's ReLU twin to ``model.onnx``, count its MACs, and put them on the
    synapse layers (:mod:`export.onnx.foreign_twin`); returns the layers and MACs per sample."""
    from export.onnx.foreign_twin import (
        ReluTwin,
        export_foreign_twin,
        onnx_macs_per_neuron,
        with_onnx_ann_macs,
    )
    from export.onnx.macs import count_onnx_macs

    twin = ReluTwin(ctx.nir_graph, ctx.foreign.graph.input_shape)
    path = export_foreign_twin(twin, ctx.folder / "model.onnx")
    macs = count_onnx_macs(path)
    ctx.artifacts["model.onnx"] = "the ANN twin (the NIR graph, each neuron a ReLU, T = 1)"
    per_neuron = onnx_macs_per_neuron(twin, macs)
    n = int(ctx.inputs.shape[1])
    return with_onnx_ann_macs(ctx.network, layers, per_neuron, samples=n), int(macs.total)


def stage_foreign_energy(ctx: ForeignContext) -> str:
    """Exact operation counts of the network from the simulated spikes, priced by the presets;
    the ANN baseline's MACs from the ONNX ReLU twin (NIR) or the layer shapes (netx)."""
    from export.cli.stages import energy_summary
    from hardware.energy.files import write_report
    from hardware.energy.network_counts import count_network
    from hardware.energy.pipeline import deployment
    from hardware.energy.report import build_report, default_assumptions

    n = int(ctx.inputs.shape[1])
    counts = dict(ctx.sim.spike_counts)  # LIFs; a spike input's raster is ours: [T, *shape]
    counts.update({ly.name: ctx.inputs.sum(axis=1) for ly in ctx.network.layers
                   if isinstance(ly, SpikeInputLayer)})
    layers = count_network(ctx.network, counts, samples=n)
    onnx_macs = None
    if ctx.nir_graph is not None:
        layers, onnx_macs = _onnx_twin(ctx, layers)
    moved, preset = deployment(layers, ctx.mapping)
    hops = moved[0].mean_hops if moved else 0.0
    assumptions = default_assumptions(steps=ctx.network.T, samples=n, order="q_ktv",
                                      activity=f"bit-accurate simulator, {ctx.input_note}",
                                      dense_runs=1, hops=hops)
    assumptions["ANN baseline"] = (
        "the same graph with each neuron a ReLU (T = 1), its MACs counted from its ONNX file "
        "model.onnx, per layer (each synapse layer: the MACs of the NIR nodes it fuses)"
        if onnx_macs is not None else
        "the same layers with each neuron a ReLU, MACs counted from the layer shapes (a netx "
        "file has no float graph to export)")
    report = build_report(layers, assumptions=assumptions, presets=ctx.options.presets,
                          ann_onnx_macs=onnx_macs,
                          title=f"{ctx.options.model_path.name}: energy", hops=hops,
                          deployment=moved, deployment_preset=preset)
    write_report(report, ctx.folder)
    ctx.energy = report
    ctx.artifacts["energy.md"] = "per-layer operation counts and energy per preset (+ .json)"
    ctx.summary_lines.append(f"- energy per sample: {energy_summary(report)}")
    return energy_summary(report)


def stage_foreign_report(ctx: ForeignContext) -> str:
    """What was skipped, then the shared manifest and report."""
    ctx.skipped.append("text tower and zero-shot classes (SpikeCLIP only)")
    if ctx.nir_graph is None:
        ctx.skipped.append("ONNX ANN twin (a netx file has no float graph; energy counts the "
                           "ANN MACs from the layers)")
    ctx.summary_lines.append("- skipped: " + "; ".join(ctx.skipped))
    if ctx.mapping is not None:
        ctx.checks["mapping"] = mapping_summary(ctx.mapping)
    return stage_report(ctx)


_HW = frozenset({"loihi", "loihi1"})
FOREIGN_STAGES: tuple[Stage, ...] = (
    Stage("load", "load the network", stage_foreign_load, FOREIGN_TARGETS),
    Stage("data", "inputs", stage_foreign_inputs, FOREIGN_TARGETS),
    Stage("quantize", "quantize to Loihi fixed point", stage_foreign_quantize, FOREIGN_TARGETS),
    Stage("map", "map onto cores and chips", stage_map, _HW),
    Stage("simulate", "simulate bit-accurately, fidelity", stage_foreign_simulate,
          FOREIGN_TARGETS),
    Stage("lava", "run in Lava, compare", stage_foreign_lava, _HW),
    Stage("energy", "count operations, price energy", stage_foreign_energy, FOREIGN_TARGETS),
    Stage("report", "write manifest and report", stage_foreign_report, FOREIGN_TARGETS),
)


def check_foreign_requirements(kind: str, req: Requirements, model: Path) -> None:
    """The --require-* gates a foreign network can measure: ``--require-agreement`` and
    ``--require-twin-exact`` (NIR: float executor / fake-quant twin vs simulator) and
    ``--require-lava-exact``; the others are usage errors before anything runs."""
    if req.top1_drop_pp is not None:
        raise ExportUsageError(f"--require-top1-delta needs a SpikeCLIP checkpoint (labels and "
                               f"classes); {model} is a {kind} network: gate its fidelity with "
                               "--require-agreement FRACTION (spike agreement over neuron-steps)")
    if kind == "netx" and (req.agreement is not None or req.twin_exact):
        raise ExportUsageError(f"--require-agreement/--require-twin-exact compare with a float "
                               f"model; {model} is a lava-dl netx network (fixed point, no float "
                               "model): use --require-lava-exact")


def foreign_stages(target: str, model: Path, kind: str, req: Requirements) -> list[Stage]:
    """The stages for ``target``; targets that need a SpikeCLIP checkpoint, and gates the
    network cannot measure (:func:`check_foreign_requirements`), are usage errors."""
    if target not in FOREIGN_TARGETS:
        raise ExportUsageError(f"--target {target} needs a SpikeCLIP checkpoint; {model} is a "
                               f"NIR/netx network (targets: {', '.join(sorted(FOREIGN_TARGETS))})")
    check_foreign_requirements(kind, req, model)
    return [s for s in FOREIGN_STAGES if target in s.targets]

