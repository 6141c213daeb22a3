"""``LIFResetSub``: Lava's ``LIFReset`` whose spiking neurons lose ``reset_sub`` v-units instead
of resetting to 0 (reset by subtraction: sinabs' IAF/LIF, snnTorch's default, Rockpool).

Stock Lava 0.10 has no such neuron (its ``LIF`` family resets v to 0, ``TernaryLIF`` to 0 from
either side); on Loihi 2 it is a microcode neuron program: the same CUBA update
(``hardware.ir.layers.LIFLayer``) with ``v ← v − reset_sub`` where ``v > vth << 6``. Since the
neuron spiked, ``v > 0`` and ``v − reset_sub > −2²³``: no wrap or saturation. ``reset_sub``
(unsigned 23-bit v-units, one per population) is a Var; every other port, Var and parameter is
``LIFReset``'s (the periodic reset of u and v between samples included). Placement
``neurocore``.
"""

from __future__ import annotations

from typing import Any

from lava.magma.core.process.variable import Var
from lava.proc.lif.process import LIFReset

from hardware.ir import fixed


class LIFResetSub(LIFReset):
    """``LIFReset(**kwargs)`` plus Var ``reset_sub`` (int, 0 … 2²³ − 1 v-units)."""

    def __init__(self, *, reset_sub: int, **kwargs: Any) -> None:
        if not 0 <= int(reset_sub) <= fixed.V_MAX:
            raise ValueError(f"LIFResetSub {kwargs.get('name')!r}: reset_sub {reset_sub} "
                             f"outside [0, {fixed.V_MAX}]")
        super().__init__(**kwargs)
        self.reset_sub = Var(shape=(1,), init=int(reset_sub))
