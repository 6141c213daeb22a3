"""`make demo`: the main job on the default model.

PLACEHOLDER until the default model (examples/spikeclip-digits.pt) and the `spikeclip-export`
pipeline land: it says so and exits 0, so that `make demo` is already a working command.
"""

from __future__ import annotations

import sys


def main() -> int:
    print(
        "[placeholder] make demo will run `spikeclip-export examples/spikeclip-digits.pt "
        "--target loihi` once the default model and the export pipeline have landed."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
