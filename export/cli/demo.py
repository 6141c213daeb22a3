"""`make demo`: the main job on the default model.

Runs ``spikeclip-export examples/spikeclip-digits.pt --target loihi --out demo-out`` (the
default model: a SpikeCLIP trained on sklearn's bundled digits, see examples/README.md), then
prints the summary: accuracy of the float model vs the fixed-point simulation, the Lava check,
cores and chips, and the energy ranges.
"""

from __future__ import annotations

import sys
from pathlib import Path

from export.cli import export as cli

DEFAULT_MODEL = Path("examples/spikeclip-digits.pt")
OUT = Path("demo-out")


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns spikeclip-export's exit status."""
    if not DEFAULT_MODEL.is_file():
        print(f"make demo: {DEFAULT_MODEL} is missing (see examples/README.md)", file=sys.stderr)
        return 3
    # The whole digits test split (450 images), as in examples/README.md.
    args = [str(DEFAULT_MODEL), "--target", "loihi", "--samples", "450", "--out", str(OUT)]
    args += argv or []
    print("$ spikeclip-export " + " ".join(args), flush=True)
    code = cli.main(args)
    if code == 0:
        print(f"\nFull report: {OUT / 'report.md'}")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
