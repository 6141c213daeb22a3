"""Fixed-point model of :class:`RecurrentDense` (vectorized numpy, tag ``fixed_pt``)."""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from export.lava.procs.recurrent.process import RecurrentDense
from export.lava.procs.synapse_model import PySpikeSynapseModel
from hardware.ir import fixed


@implements(proc=RecurrentDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyRecurrentDenseModelFixed(PySpikeSynapseModel):
    """Sends last step's ``(W_grid @ s) << weight_exp`` (0 at the target's reset steps).

    The product of 0/1 spikes and integer weights is computed in float64 BLAS: exact, every
    partial sum is bounded by Σ|w| per row ≤ 256·N < 2⁵³.
    """

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._buf: np.ndarray | None = None

    def run_spk(self) -> None:
        p = self.proc_params
        if self._w64 is None:
            grid = fixed.weight_on_grid_8(self.weights, p["sign_mode"], p["num_weight_bits"])
            self._w64 = grid.astype(np.float64)
            self._buf = np.zeros(grid.shape[0], np.int64)
        every = p["reset_interval"]
        first_step = self.time_step % every == p["reset_offset"] % every
        self.a_out.send(np.zeros_like(self._buf) if first_step else self._buf)
        s = self.s_in.recv().astype(np.float64)
        self._buf = fixed.shift_weight_exp_floor((self._w64 @ s).astype(np.int64),
                                                 p["weight_exp"])
