"""Quantized network → Lava 0.10 process graph, run bit-exactly on CPU (DESIGN §4–§5).

- :func:`to_lava` plans a `LoihiNetwork` as a :class:`LavaGraph` (stock ``LIFReset``, Dense,
  DelayDense, Conv, DelaySparse; the project's processes in :mod:`export.lava.procs`);
- :mod:`hardware.ir.timing`: pipeline depths, aligning delays, ``LIFReset`` offsets;
- :func:`run_lava` / :func:`run_in_lava` stream samples through it and return per-sample
  features and per-node spikes aligned to logical time; :func:`compare_to_sim` checks them
  against the bit-accurate simulator. Failures raise :class:`LavaRunError`.

"Bit-accurate" means bit-exact to Lava 0.10's CPU fixed-point models, not to Loihi silicon.
"""

from export.lava import compat as _compat

_compat.install()  # before anything below imports Lava

# ruff: noqa: E402  (the imports below need the shim installed first)

from export.lava.errors import LavaLoweringError
from export.lava.graph import LavaBuild, LavaGraph, LavaNode, to_lava
from export.lava.runner import (
    LavaResult,
    LavaRunError,
    LavaSession,
    SimComparison,
    compare_to_sim,
    run_in_lava,
    run_lava,
)
from hardware.ir.timing import Timing, align_delays

__all__ = [
    "LavaBuild",
    "LavaGraph",
    "LavaLoweringError",
    "LavaNode",
    "LavaResult",
    "LavaRunError",
    "LavaSession",
    "SimComparison",
    "Timing",
    "align_delays",
    "compare_to_sim",
    "run_in_lava",
    "run_lava",
    "to_lava",
]
