"""`spikeclip-energy MODEL.pt [--data NAME]`: energy report of the image tower.

Writes ``energy.md``, ``energy.json``, ``energy_per_layer.png``, ``energy_firing_rate.png`` and
(unless ``--no-onnx``) ``ann_twin.onnx`` into ``--out``.
- With ``--data`` (e.g. ``digits``): the image tower is quantized (scales from the training
  split) and the bit-accurate simulator runs ``--samples`` test images; its spikes give exact
  synaptic-op counts (``network.npz`` and ``quantization.md`` are written beside the report).
- Without: **structure only** — every neuron taken to spike at every step (the dense upper
  bound), labelled as such.
ANN-twin MACs are counted from the twin's ONNX file. The folder is written atomically with a
``manifest.json`` (``"format": "spikeclip-energy"``, every file written with its sha256) and
replaces only a folder this project wrote that holds nothing else
(:func:`export.cli.output_dir.atomic_directory`). Exit status: 0 on success, else the error's
own code with a one-line reason (the table in --help: 2 bad option, refused ``--out`` or missing
dataset files, 3 bad checkpoint, 8 output not writable, 128+n ended by signal n).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from export.cli.args import HelpFormatter, help_epilog, output_path, positive_int
from export.cli.output_dir import atomic_directory
from export.cli.stages import (
    ExportContext,
    ExportOptions,
    simulated_counts,
    stage_data,
    stage_quantize,
)
from hardware.energy.presets import PRESETS
from spikeclip.atomic_io import write_text_atomic
from spikeclip.checkpoint import Checkpoint, load
from spikeclip.config import SpikeCLIPConfig
from spikeclip.errors import SpikeCLIPError
from spikeclip.interrupts import Interrupted, exit_on_signals, exit_process

#: ``manifest.json`` of an energy folder: what marks it as this tool's (it may be replaced).
MANIFEST_FORMAT = "spikeclip-energy"

WRITES = (
    "one folder, --out, written atomically: energy.md, energy.json, energy_per_layer.png, "
    "energy_firing_rate.png, ann_twin.onnx (unless --no-onnx), network.npz and "
    "quantization.md/json (with --data), and manifest.json (every file written with its "
    "sha256). An existing folder is replaced only if this tool wrote it and it holds nothing "
    "else."
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spikeclip-energy",
        description="Energy report of a SpikeCLIP image tower (structure only: dense upper "
        "bound; measured activity comes with the simulator).",
        epilog=help_epilog(writes=WRITES),
        formatter_class=HelpFormatter,
    )
    p.add_argument("model", type=Path, help="model.pt checkpoint")
    p.add_argument("--out", type=output_path, default=Path("energy_report"),
                   help="output folder; an existing one is replaced only if this tool wrote it")
    p.add_argument(
        "--order",
        choices=("q_ktv", "qkt_v"),
        default="q_ktv",
        help="attention evaluation order: Q(KᵀV) (deployed) or (QKᵀ)V (paper code)",
    )
    p.add_argument(
        "--first-layer-every-step",
        action="store_true",
        help="count conv0/head once per step (T×) instead of once per sample",
    )
    p.add_argument(
        "--preset",
        action="append",
        choices=sorted(PRESETS),
        help="price preset (repeatable; default: all)",
    )
    p.add_argument("--no-onnx", action="store_true", help="skip the ANN-twin ONNX MAC count")
    p.add_argument(
        "--data",
        help="measure activity with the bit-accurate simulator on this dataset's test split, "
        "preprocessed as the checkpoint was trained ('digits' is bundled; others are read from "
        "--data-root); without it the report is structure only",
    )
    p.add_argument("--data-root", type=Path, default=Path("data"),
                   help="folder holding the dataset files (with --data)")
    p.add_argument("--samples", type=positive_int, default=64,
                   help="test images simulated (with --data)")
    return p  # fmt: skip


def _onnx_macs(config: SpikeCLIPConfig, out: Path) -> int:
    """Export a freshly initialized ANN twin (MACs depend on shapes only) and count its file."""
    from export.onnx.ann_twin import export_ann_twin_image_encoder
    from export.onnx.macs import count_onnx_macs
    from spikeclip.ann_twin import build_ann_twin

    path = export_ann_twin_image_encoder(build_ann_twin(config), out / "ann_twin.onnx")
    return count_onnx_macs(path).total


def _measured_data(
    args: argparse.Namespace, ckpt: Checkpoint, folder: Path
) -> ExportContext | None:
    """With ``--data``: a context holding the dataset's calibration (train) and ``--samples``
    test images, preprocessed as the checkpoint was trained (`export.cli.stages.stage_data`); its
    files go to ``folder`` (the staging folder). A missing dataset exits 2 naming where its
    files must go, and leaves no output behind."""
    if not args.data:
        return None
    options = ExportOptions(
        model_path=args.model, target="sim", out=args.out, calib=args.data, samples=args.samples,
        data_root=args.data_root,
    )
    ctx = ExportContext(options=options, folder=folder, checkpoint=ckpt)
    stage_data(ctx)
    return ctx


def _simulated(args: argparse.Namespace, ctx: ExportContext) -> tuple[list, int, str]:
    """Quantize on the dataset's training split (network.npz, quantization.md/json into the
    output folder; the image encoder is converted to NIR in memory), count the simulation of
    ``args.samples`` test images (streamed)."""
    stage_quantize(ctx)
    dense_runs = ctx.checkpoint.config.T if args.first_layer_every_step else 1
    return simulated_counts(ctx, args.samples, order=args.order, dense_runs=dense_runs)


def run(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    """Load, count, write the folder atomically; returns the exit status."""
    from hardware.energy.files import write_report
    from hardware.energy.pipeline import model_report

    with atomic_directory(args.out, inputs=(args.model,)) as folder:
        ckpt = load(args.model)
        data_ctx = _measured_data(args, ckpt, folder)
        onnx_macs = None if args.no_onnx else _onnx_macs(ckpt.config, folder)
        measured = {}
        title = f"{args.model.name}: image encoder energy (STRUCTURE ONLY)"
        if data_ctx is not None:
            layers, samples, activity = _simulated(args, data_ctx)
            measured = {"layers": layers, "samples": samples, "activity": activity}
            title = f"{args.model.name}: image encoder energy ({activity})"
        rep = model_report(
            ckpt.model,
            order=args.order,
            dense_runs=ckpt.config.T if args.first_layer_every_step else 1,
            presets=args.preset,
            ann_onnx_macs=onnx_macs,
            title=title,
            **measured,
        )
        written = [p.relative_to(folder) for p in write_report(rep, folder)]
        manifest = {
            "format": MANIFEST_FORMAT,
            "format_version": 1,
            "checkpoint": str(args.model),
            "argv": list(sys.argv[1:] if argv is None else argv),
        }
        write_text_atomic(folder / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    for name in written:
        print(args.out / name)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status (the error's own code, see --help)."""
    args = _parser().parse_args(argv)
    try:
        with exit_on_signals():
            return run(args, argv)
    except SpikeCLIPError as err:
        print(f"spikeclip-energy: {err}", file=sys.stderr)
        return err.exit_code
    except Interrupted as stop:
        print(f"spikeclip-energy: {stop}; no partial output left behind", file=sys.stderr)
        if argv is None:  # the command itself: end now (see spikeclip.interrupts.exit_process)
            exit_process(stop.exit_code)
        return stop.exit_code


if __name__ == "__main__":
    sys.exit(main())
