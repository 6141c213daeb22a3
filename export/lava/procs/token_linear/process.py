"""``TokenLinear``: a linear layer shared by all tokens (Conv1d, kernel 1), with a delay line.

Per Lava step, for spikes ``s`` ``(C_in, N)`` (channels × tokens)::

    a[:, n] = (W_grid @ s[:, n]) << weight_exp        (floor shift of the sum, as Lava's Dense)

with ``W_grid`` the weights after Lava's 8-bit clip and ``num_weight_bits`` truncation
(``hardware.ir.fixed.weight_on_grid_8``: the identity for weights already on the grid). The result
is sent ``1 + delay`` steps later: 1 is a synapse's latency (a stock Dense sends at t + 1 what
it summed at t), ``delay`` (0 … 62) the extra steps of this consumer's copy (DESIGN §4: each
consumer of the residual stream gets its own delayed replica). The integer semantics equal a
stock ``DelayDense`` with weights ``kron(W, I_N)`` and uniform ``delays = delay``, which is
N² times larger; hence this process.
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var

from hardware.ir import fixed


class TokenLinear(AbstractProcess):
    """Ports: ``s_in`` spikes ``(C_in, N)``; ``a_out`` current (wu) ``(C_out, N)``.

    Vars: ``weights`` int ``(C_out, C_in)`` (8-bit Loihi weights, see module doc).
    Parameters: ``tokens`` N; ``weight_exp`` (−8 … 7); ``num_weight_bits`` (1 … 8);
    ``sign_mode`` (``"mixed"``, ``"excitatory"``, ``"inhibitory"``); ``delay`` (extra steps,
    0 … 62); ``placement`` (default ``"neurocore"``).
    """

    def __init__(
        self,
        *,
        weights: np.ndarray,
        tokens: int,
        weight_exp: int = 0,
        num_weight_bits: int = fixed.NUM_WEIGHT_BITS_MAX,
        sign_mode: str = "mixed",
        delay: int = 0,
        placement: str = "neurocore",
        name: str | None = None,
    ) -> None:
        w = np.asarray(weights)
        if w.ndim != 2:
            raise ValueError(f"TokenLinear {name!r}: weights must be 2-D, got {w.shape}")
        if not 0 <= int(delay) <= fixed.MAX_DELAY:
            raise ValueError(f"TokenLinear {name!r}: delay {delay} outside [0, {fixed.MAX_DELAY}]")
        if sign_mode not in fixed.SIGN_MODES:
            raise ValueError(
                f"TokenLinear {name!r}: sign_mode {sign_mode!r} not in {fixed.SIGN_MODES}"
            )
        super().__init__(
            tokens=int(tokens),
            weight_exp=int(weight_exp),
            num_weight_bits=int(num_weight_bits),
            sign_mode=sign_mode,
            delay=int(delay),
            placement=placement,
            name=name,
        )
        c_out, c_in = w.shape
        self.s_in = InPort(shape=(c_in, int(tokens)))
        self.a_out = OutPort(shape=(c_out, int(tokens)))
        self.weights = Var(shape=w.shape, init=w.astype(np.int32))
