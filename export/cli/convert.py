"""`spikeclip-convert`: turn checkpoints of the paper's official code into a `model.pt`.

    spikeclip-convert IMAGE.pth.tar [TEXT.pth.tar] --out model.pt [--num-heads 8] [--img-size 32]

Each input is an official `Vision_Encoder` or `Language_Encoder` checkpoint (timm
CheckpointSaver dict or raw state dict; the tower is detected from its keys), read by
`spikeclip.safe_load` (weights_only, CRC-32 checked, finite tensors). The head count is not
stored in official files: --num-heads is required unless a stored `args` gives it or the image
encoder is exactly the paper's configuration (then 8).

Exit status: the error's own code (`spikeclip.errors`), with a one-line reason on stderr: 0
written, 2 bad usage (including a missing --num-heads), 3 an input file that cannot be used
(missing, unreadable, corrupt, unsafe, non-finite, not official), 8 the output cannot be
written, 9 not enough memory.
`--out` may replace only an existing SpikeCLIP checkpoint, never an input or any other file
(exit 2); 128+n when ended by signal n.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from export.cli.args import HelpFormatter, help_epilog, output_path, positive_int
from spikeclip import checkpoint, official
from spikeclip.errors import SpikeCLIPError
from spikeclip.interrupts import Interrupted, exit_on_signals, exit_process
from spikeclip.outputs import check_output_file, is_torch_file_of, write_errors

PROG = "spikeclip-convert"
WRITES = (
    "--out model.pt (a SpikeCLIP checkpoint), written atomically, replacing only a SpikeCLIP "
    "checkpoint and never an input."
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Convert official SpikeCLIP checkpoints (Lvchangze/SpikeCLIP) to model.pt.",
        epilog=help_epilog(writes=WRITES),
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "inputs",
        nargs="+",
        type=Path,
        metavar="OFFICIAL",
        help="one image and/or one text encoder checkpoint (model_best.pth.tar or state dict)",
    )
    p.add_argument("--out", required=True, type=output_path, help="model.pt to write")
    p.add_argument(
        "--num-heads",
        type=positive_int,
        default=None,
        help="attention heads of the image encoder (not stored in official checkpoints): "
        "required unless the file stores its training args or its configuration is exactly the "
        f"paper's (then {official.PAPER_NUM_HEADS})",
    )
    p.add_argument(
        "--img-size",
        type=positive_int,
        default=None,
        help=f"input side in pixels (not stored; default {official.PAPER_IMG_SIZE})",
    )
    return p


def _is_checkpoint(path: Path) -> bool:
    """True if ``path`` is a ``model.pt`` written by :func:`spikeclip.checkpoint.save`."""
    return is_torch_file_of(path, checkpoint.FORMAT_NAME)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = _parser().parse_args(argv)
    if len(args.inputs) > 2:
        print(f"{PROG}: error: at most two inputs (one image, one text)", file=sys.stderr)
        return 2
    try:
        with exit_on_signals():
            out = check_output_file(
                args.out, inputs=args.inputs, replaceable=_is_checkpoint, kind="SpikeCLIP model.pt"
            )
            result = official.convert_files(
                args.inputs, num_heads=args.num_heads, img_size=args.img_size
            )
            with write_errors(args.out):
                checkpoint.save(out, result.model, metadata=official.conversion_metadata(result))
    except SpikeCLIPError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return err.exit_code
    except Interrupted as stop:
        print(f"{PROG}: {stop}; nothing written", file=sys.stderr)
        if argv is None:
            exit_process(stop.exit_code)
        return stop.exit_code
    print(official.conversion_message(result))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
