"""``RecurrentDense``: a LIF population's own spikes back into its input one step later, as a
stock ``Dense`` from its ``s_out`` to its ``a_in`` would, but silent at the first step of each
sample (``LIFLayer.rec_weights``).

Per Lava step, for the spikes ``s`` the population sent this step::

    a = (W_grid @ s) << weight_exp        (floor shift of the sum, as Lava's Dense)

is sent at the next step (a Dense's one-step latency: the recurrence's delay, as on Loihi),
except at the steps where the population's ``LIFReset`` zeroes u and v (``time_step %
reset_interval == reset_offset % reset_interval``): there it sends 0, so the last spikes of a
sample do not reach the first step of the next one (the float model starts every sample with
``s[−1] = 0``). A stock ``Dense`` cannot do that; the weights are a stock Dense's otherwise.
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var

from hardware.ir import fixed


class RecurrentDense(AbstractProcess):
    """Ports: ``s_in`` spikes ``(N,)``; ``a_out`` current (wu) ``(N,)``.

    Vars: ``weights`` int ``(N, N)`` (8-bit Loihi weights on the grid of ``sign_mode`` /
    ``num_weight_bits``). Parameters: ``weight_exp`` (−8 … 7), ``num_weight_bits`` (1 … 8),
    ``sign_mode``; ``reset_interval``, ``reset_offset``: the target ``LIFReset``'s;
    ``placement`` (default ``"neurocore"``).
    """

    def __init__(
        self,
        *,
        weights: np.ndarray,
        reset_interval: int,
        reset_offset: int,
        weight_exp: int = 0,
        num_weight_bits: int = fixed.NUM_WEIGHT_BITS_MAX,
        sign_mode: str = "mixed",
        placement: str = "neurocore",
        name: str | None = None,
    ) -> None:
        w = np.asarray(weights)
        if w.ndim != 2 or w.shape[0] != w.shape[1]:
            raise ValueError(f"RecurrentDense {name!r}: weights must be (N, N), got {w.shape}")
        if sign_mode not in fixed.SIGN_MODES:
            raise ValueError(
                f"RecurrentDense {name!r}: sign_mode {sign_mode!r} not in {fixed.SIGN_MODES}")
        super().__init__(
            weight_exp=int(weight_exp), num_weight_bits=int(num_weight_bits),
            sign_mode=sign_mode, reset_interval=int(reset_interval),
            reset_offset=int(reset_offset), placement=placement, name=name,
        )
        self.s_in = InPort(shape=(w.shape[1],))
        self.a_out = OutPort(shape=(w.shape[0],))
        self.weights = Var(shape=w.shape, init=w.astype(np.int32))
