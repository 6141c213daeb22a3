"""`spikeclip-export MODEL.pt --target loihi`: the whole pipeline, one output folder.

    load → NIR → quantize → map → simulate (+ fidelity) → Lava check → energy → reports

Each stage is a small function in :mod:`export.cli.stages`; this module parses the command line,
runs the stages the target needs with progress and timings, maps typed errors to exit codes and
writes the folder atomically (a failure leaves no output folder behind).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from export.cli.args import (
    HelpFormatter,
    help_epilog,
    nonnegative_float,
    nonnegative_int,
    output_path,
    positive_int,
    probability,
)
from export.cli.checks import Requirements
from export.cli.exit_codes import (
    EXIT_CHECK_FAILED,
    EXIT_OK,
    ExportFailure,
    classify,
)
from export.cli.foreign import (
    ForeignContext,
    ForeignOptions,
    add_foreign_arguments,
    foreign_stages,
)
from export.cli.model_file import model_kind
from export.cli.output_dir import atomic_directory
from export.cli.stages import STAGES, TARGETS, ExportContext, ExportOptions
from spikeclip import progress
from spikeclip.errors import SpikeCLIPError
from spikeclip.interrupts import Interrupted, exit_on_signals, exit_process
from spikeclip.outputs import as_output_error
from spikeclip.training.data import DATASETS

DESCRIPTION = """\
Export a trained SpikeCLIP checkpoint (model.pt) to Loihi-style neuromorphic hardware.

Targets:
  loihi    everything, for Loihi 2: NIR graph, integer network, bit-accurate simulation,
           a short Lava run compared with the simulator, core/chip mapping, energy report
  loihi1   the same for Loihi 1 (its core limits and per-op energy)
  sim      NIR, integer network and bit-accurate simulation (+ fidelity and energy), no Lava
  nir      only the NIR graph (model.nir)
  onnx     only the ANN twin as ONNX (model.onnx) and its MAC count

The number of time steps T comes from the checkpoint (its time weights are learned per step).

MODEL may also be a NIR graph (.nir, e.g. from snnTorch or Norse) or a lava-dl netx network
(.net), recognised by content: targets loihi, loihi1 and sim, with the SpikeCLIP-only stages
(text tower, zero-shot) skipped and said so in the report; a NIR graph's ANN twin (each neuron
a ReLU) is written to model.onnx for the energy report's MAC count.
"""

EXAMPLES = """\
examples:
  spikeclip-export examples/spikeclip-digits.pt --target loihi
  spikeclip-export model.pt --target sim --calib digits --samples 256 --out out/
  spikeclip-export model.pt --target nir
  spikeclip-export model.pt --target sim --require-agreement 0.99 --require-twin-exact
  spikeclip-export net.nir --nir-convention snntorch --target loihi --rate 0.2 --steps 16
  spikeclip-export pilotnet.net --target loihi --samples 4 --run-lava 0
"""

WRITES = (
    "one folder, --out (default <MODEL stem>-<target>), written atomically: what the target "
    "makes (model.nir, model.onnx, network.npz, quantization.md/json, mapping.md, "
    "fidelity.md/json, lava/, energy.md/json and two PNG plots), report.md and manifest.json "
    "(versions, options, checks, and every file written with its sha256). An existing folder "
    "is replaced only if this tool wrote it and it holds nothing else."
)

EPILOG = help_epilog(writes=WRITES, examples=EXAMPLES)


def build_parser() -> argparse.ArgumentParser:
    """The command line (documented in --help)."""
    parser = argparse.ArgumentParser(
        prog="spikeclip-export",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("model", type=Path, help="a SpikeCLIP checkpoint (model.pt), a NIR graph "
                        "or a lava-dl netx file (recognised by content)")
    parser.add_argument(
        "--target", choices=sorted(TARGETS), default="loihi", help="what to produce (see above)"
    )
    parser.add_argument(
        "--out",
        type=output_path,
        help="output folder (default: <MODEL stem>-<target>), written atomically; an existing "
        "one is replaced only if this tool wrote it and it holds nothing else",
    )
    _add_data(parser)
    parser.add_argument(
        "--preset",
        action="append",
        help="energy price preset(s) to report (default: all); repeat the option for several",
    )
    parser.add_argument("--classes", nargs="+", help="class names for zero-shot prompts")
    parser.add_argument("--templates", nargs="+", help="prompt templates with '{}' for the class")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    _add_gates(parser)
    add_foreign_arguments(parser)
    return parser


def _add_data(parser: argparse.ArgumentParser) -> None:
    """The images calibrated on, simulated and run in Lava."""
    parser.add_argument(
        "--calib",
        help="calibration/evaluation data: 'digits' (sklearn's, bundled) or another dataset "
        f"the data layer knows ({', '.join(d for d in DATASETS if d != 'digits')}: files under "
        "--data-root, preprocessed as the checkpoint was trained); default: the checkpoint's "
        "own dataset",
    )
    parser.add_argument(
        "--data-root", type=Path, default=Path("data"), help="folder holding the dataset files"
    )
    parser.add_argument(
        "--samples",
        type=positive_int,
        default=256,
        help="test images simulated for fidelity/energy",
    )
    parser.add_argument(
        "--run-lava",
        type=nonnegative_int,
        default=2,
        metavar="N",
        help="samples also run in Lava and compared with the simulator (0 skips; Lava is slow)",
    )


def _add_gates(parser: argparse.ArgumentParser) -> None:
    """The --require-* checks (:mod:`export.cli.checks`)."""
    gates = parser.add_argument_group(
        "checks (exit 10 when one fails, after the folder is written; manifest.json 'checks')"
    )
    gates.add_argument(
        "--require-agreement",
        type=probability,
        metavar="FRACTION",
        help="minimum float↔simulator prediction agreement on the test images, e.g. 0.99 "
        "(a NIR network: spike agreement over every neuron-step of its spiking layers)",
    )
    gates.add_argument(
        "--require-top1-delta",
        type=nonnegative_float,
        metavar="PP",
        help="maximum top-1 drop from the float model to the simulator, in percentage points",
    )
    gates.add_argument(
        "--require-lava-exact",
        action="store_true",
        help="Lava must match the simulator spike for spike on the --run-lava samples",
    )
    gates.add_argument(
        "--require-twin-exact",
        action="store_true",
        help="the fake-quant twin must equal the simulator bit for bit and the quantizer's "
        "exactness bound (T ≤ 7) must hold",
    )


def _requirements(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Requirements:
    """The --require-* gates; a gate the chosen target (or --run-lava 0) cannot measure is a
    usage error (exit 2) before anything runs."""
    req = Requirements(
        agreement=args.require_agreement,
        top1_drop_pp=args.require_top1_delta,
        lava_exact=args.require_lava_exact,
        twin_exact=args.require_twin_exact,
    )
    if req.needs_simulation() and args.target not in _targets_with("simulate"):
        parser.error(f"--require-agreement/--require-top1-delta/--require-twin-exact need a "
                     f"target that simulates ({', '.join(_targets_with('simulate'))}), not "
                     f"--target {args.target}")
    if req.lava_exact and (args.target not in _targets_with("lava") or args.run_lava == 0):
        parser.error(f"--require-lava-exact needs a target with a Lava stage "
                     f"({', '.join(_targets_with('lava'))}) and --run-lava N ≥ 1")
    return req


def _targets_with(stage: str) -> tuple[str, ...]:
    """The targets that run the stage called ``stage``, in :data:`TARGETS` order."""
    runs = next(s.targets for s in STAGES if s.name == stage)
    return tuple(t for t in TARGETS if t in runs)


def _options(parser: argparse.ArgumentParser, args: argparse.Namespace,
             argv: Sequence[str] | None) -> ExportOptions:
    """The parsed command line as :class:`ExportOptions`."""
    return ExportOptions(
        model_path=args.model,
        target=args.target,
        out=args.out or Path(f"{args.model.stem}-{args.target}"),
        calib=args.calib,
        data_root=args.data_root,
        samples=args.samples,
        run_lava=args.run_lava,
        requirements=_requirements(parser, args),
        presets=tuple(args.preset) if args.preset else None,
        classes=tuple(args.classes) if args.classes else None,
        templates=tuple(args.templates) if args.templates else None,
        argv=tuple(sys.argv[1:] if argv is None else argv),
    )


def _checks_status(context: ExportContext) -> int:
    """After the folder is in place: exit 10 naming every failed --require-* gate, else 0."""
    failed = [r for r in context.check_results if not r.passed]
    for result in failed:
        print(f"spikeclip-export: check failed: {result.option}: {result.detail}",
              file=sys.stderr)
    return EXIT_CHECK_FAILED if failed else EXIT_OK


def _pipeline(options: ExportOptions, args: argparse.Namespace):
    """The stages and a context factory for MODEL's kind
    (:func:`export.cli.model_file.model_kind`)."""
    kind = model_kind(options.model_path)
    if kind == "checkpoint":
        stages = [s for s in STAGES if options.target in s.targets]
        return stages, lambda folder: ExportContext(options=options, folder=folder)
    foreign = ForeignOptions.from_args(kind, args)
    stages = foreign_stages(options.target, options.model_path, kind, options.requirements)
    return stages, lambda folder: ForeignContext(
        options=options, folder=folder, foreign_options=foreign)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the export; returns the exit status (0 only when every stage succeeded)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    options = _options(parser, args, argv)
    say = (lambda _msg: None) if args.quiet else (lambda msg: print(msg, flush=True))
    try:
        stages, make_context = _pipeline(options, args)
    except SpikeCLIPError as failure:
        print(f"spikeclip-export: {failure}", file=sys.stderr)
        return failure.exit_code
    try:
        with (
            exit_on_signals(),
            progress.quiet(args.quiet),
            atomic_directory(options.out, inputs=(options.model_path,)) as staging,
        ):
            context = make_context(staging)
            for number, stage in enumerate(stages, start=1):
                say(f"[{number}/{len(stages)}] {stage.title} ...")
                start = time.perf_counter()
                try:
                    summary = stage.run(context)
                except Exception as err:  # noqa: BLE001 - mapped to a typed failure below
                    err = as_output_error(err, staging, options.out)
                    raise classify(stage.name, err) from err
                seconds = time.perf_counter() - start
                context.timings[stage.name] = seconds
                say(f"      {summary}  ({seconds:.2f} s)")
    except (ExportFailure, SpikeCLIPError) as failure:
        print(f"spikeclip-export: {failure}", file=sys.stderr)
        return failure.exit_code
    except Interrupted as stop:
        print(f"spikeclip-export: {stop}; no partial output left behind", file=sys.stderr)
        if argv is None:  # the command itself (not a call from Python): end the process now
            exit_process(stop.exit_code)
        return stop.exit_code
    say(f"wrote {options.out}/")
    for line in context.summary_lines:
        say(line)
    return _checks_status(context)


if __name__ == "__main__":
    sys.exit(main())
