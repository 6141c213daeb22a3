"""`spikeclip-export` console script (placeholder until its issue lands)."""

from __future__ import annotations

import sys

from spikeclip._not_implemented import not_implemented


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    return not_implemented("spikeclip-export")


if __name__ == "__main__":
    sys.exit(main())
