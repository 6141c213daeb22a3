"""Placeholder entry point for console scripts whose issue has not landed yet."""

from __future__ import annotations

import sys

EXIT_NOT_IMPLEMENTED = 2


def not_implemented(command: str) -> int:
    """Print a one-line reason on stderr and return exit status 2."""
    print(f"{command}: not implemented yet", file=sys.stderr)
    return EXIT_NOT_IMPLEMENTED
