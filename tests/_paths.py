"""Where the tests find the repository and its data (one home for these paths)."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
"""The ``tests/`` folder."""
REPO = TESTS.parent
"""The repository root (``setup.cfg``, ``README.md``, ``examples/``)."""
FIXTURES = TESTS / "fixtures"
"""Committed reference data: ``official/`` (paper-code checkpoints), ``lava-dl/`` (PilotNet)."""
DEFAULT_MODEL = REPO / "examples" / "spikeclip-digits.pt"
"""The committed default model."""
PILOTNET_NET = FIXTURES / "lava-dl" / "pilotnet_snn" / "network.net"
"""Intel's PilotNet SNN (netx HDF5), unchanged from lava-dl's tutorials."""
