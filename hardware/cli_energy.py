"""`spikeclip-energy MODEL.pt`: energy report of the image tower (structure only, for now).

Writes ``energy.md``, ``energy.json``, ``energy_per_layer.png``, ``energy_firing_rate.png`` and
(unless ``--no-onnx``) ``ann_twin.onnx`` into ``--out``. Until the bit-accurate simulator feeds
measured activity, the report is labelled **structure only**: dense ops per step, ANN-twin MACs
(also counted from the twin's ONNX file) and the dense upper bound of synaptic ops.
Exit status: 0 on success, 1 with a one-line reason on a bad checkpoint or count error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hardware.energy.errors import EnergyError
from hardware.energy.presets import PRESETS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spikeclip-energy",
        description="Energy report of a SpikeCLIP image tower (structure only: dense upper "
        "bound; measured activity comes with the simulator).",
    )
    p.add_argument("model", type=Path, help="model.pt checkpoint")
    p.add_argument("--out", type=Path, default=Path("energy_report"), help="output folder")
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
    return p  # fmt: skip


def _onnx_macs(config, out: Path) -> int:
    """Export a freshly initialized ANN twin (MACs depend on shapes only) and count its file."""
    from export.onnx_export import export_ann_twin_image_encoder
    from export.onnx_macs import count_onnx_macs
    from spikeclip.ann_twin import build_ann_twin

    path = export_ann_twin_image_encoder(build_ann_twin(config), out / "ann_twin.onnx")
    return count_onnx_macs(path).total


def run(args: argparse.Namespace) -> int:
    """Load, count, write; returns the exit status."""
    from hardware.energy.pipeline import model_report
    from hardware.energy.report import write_report
    from spikeclip.checkpoint import load

    ckpt = load(args.model)
    args.out.mkdir(parents=True, exist_ok=True)
    onnx_macs = None if args.no_onnx else _onnx_macs(ckpt.config, args.out)
    rep = model_report(
        ckpt.model,
        order=args.order,
        dense_runs=ckpt.config.T if args.first_layer_every_step else 1,
        presets=args.preset,
        ann_onnx_macs=onnx_macs,
        title=f"{args.model.name}: image encoder energy (STRUCTURE ONLY)",
    )
    for path in write_report(rep, args.out):
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = _parser().parse_args(argv)
    from export.onnx_export import OnnxExportError
    from export.onnx_macs import OnnxMacsError
    from spikeclip.errors import SpikeCLIPError

    try:
        return run(args)
    except (SpikeCLIPError, EnergyError, OnnxExportError, OnnxMacsError) as err:
        print(f"spikeclip-energy: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
