"""Quantized network → Lava 0.10 process graph, run bit-exactly on CPU (DESIGN §4–§5).

- :func:`to_lava` plans a `LoihiNetwork` as a :class:`LavaGraph` (stock ``LIFReset``, Dense,
  DelayDense, Conv, DelaySparse; the project's processes in :mod:`export.lava.procs`);
- :mod:`hardware.ir.timing`: pipeline depths, aligning delays, ``LIFReset`` offsets;
- :func:`run_lava` / :func:`run_in_lava` stream samples through it and return per-sample
  features and per-node spikes aligned to logical time; :func:`compare_to_sim` checks them
  against the bit-accurate simulator. Failures raise :class:`LavaRunError`.

"Bit-accurate" means bit-exact to Lava 0.10's CPU fixed-point models, not to Loihi silicon.
"""

from __future__ import annotations

import importlib
from typing import Any

from export.lava import compat as _compat

_compat.install()  # before any module of this package imports Lava

#: public name -> the module that defines it (loaded on first use, so that importing
#: ``export.lava.compat`` alone does not pull in Lava).
_PUBLIC = {
    "LavaLoweringError": "export.lava.errors",
    "LavaBuild": "export.lava.graph",
    "LavaGraph": "export.lava.graph",
    "LavaNode": "export.lava.graph",
    "to_lava": "export.lava.graph",
    "LavaResult": "export.lava.runner",
    "LavaRunError": "export.lava.errors",
    "LavaSession": "export.lava.runner",
    "SimComparison": "export.lava.runner",
    "compare_to_sim": "export.lava.runner",
    "run_in_lava": "export.lava.runner",
    "run_lava": "export.lava.runner",
}


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'export.lava' has no attribute {name!r}")


__all__ = sorted(_PUBLIC)
