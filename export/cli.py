"""`spikeclip-export MODEL.pt --target loihi`: the whole pipeline, one output folder.

    load → NIR → quantize → map → simulate (+ fidelity) → Lava check → energy → reports

Each stage is a small function in :mod:`export.stages`; this module parses the command line,
runs the stages the target needs with progress and timings, maps typed errors to exit codes and
writes the folder atomically (a failure leaves no output folder behind).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from export.atomic_dir import atomic_directory
from export.exit_codes import EXIT_OK, ExportFailure, classify, exit_codes_epilog
from export.stages import STAGES, TARGETS, ExportContext, ExportOptions
from spikeclip.errors import SpikeCLIPError
from spikeclip.interrupts import Interrupted, exit_on_signals, exit_process
from spikeclip.outputs import as_output_error

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
Everything is written to one folder (default: <MODEL stem>-<target>/), atomically.
"""

EPILOG = """\
examples:
  spikeclip-export examples/spikeclip-digits.pt --target loihi
  spikeclip-export model.pt --target sim --calib digits --samples 256 --out out/
  spikeclip-export model.pt --target nir

""" + exit_codes_epilog()


def build_parser() -> argparse.ArgumentParser:
    """The command line (documented in --help)."""
    parser = argparse.ArgumentParser(
        prog="spikeclip-export",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", type=Path, help="a SpikeCLIP checkpoint (model.pt)")
    parser.add_argument(
        "--target", choices=sorted(TARGETS), default="loihi", help="what to produce (see above)"
    )
    parser.add_argument("--out", type=Path, help="output folder (replaced atomically)")
    parser.add_argument(
        "--calib",
        help="calibration/evaluation data: 'digits' (sklearn's bundled digits) or a dataset "
        "name known to spikeclip.data; default: the checkpoint's own dataset when bundled",
    )
    parser.add_argument(
        "--samples", type=int, default=256, help="samples simulated for fidelity/energy"
    )
    parser.add_argument(
        "--run-lava",
        type=int,
        default=2,
        metavar="N",
        help="samples also run in Lava and compared with the simulator (0 skips; Lava is slow)",
    )
    parser.add_argument(
        "--preset",
        action="append",
        help="energy price preset(s) to report (default: all); repeat the option for several",
    )
    parser.add_argument("--classes", nargs="+", help="class names for zero-shot prompts")
    parser.add_argument("--templates", nargs="+", help="prompt templates with '{}' for the class")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the export; returns the exit status (0 only when every stage succeeded)."""
    args = build_parser().parse_args(argv)
    options = ExportOptions(
        model_path=args.model,
        target=args.target,
        out=args.out or Path(f"{args.model.stem}-{args.target}"),
        calib=args.calib,
        samples=args.samples,
        run_lava=args.run_lava,
        presets=tuple(args.preset) if args.preset else None,
        classes=tuple(args.classes) if args.classes else None,
        templates=tuple(args.templates) if args.templates else None,
        argv=tuple(sys.argv[1:] if argv is None else argv),
    )
    say = (lambda _msg: None) if args.quiet else (lambda msg: print(msg, flush=True))
    stages = [s for s in STAGES if options.target in s.targets]
    try:
        with (
            exit_on_signals(),
            atomic_directory(options.out, inputs=(options.model_path,)) as staging,
        ):
            context = ExportContext(options=options, folder=staging)
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
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
