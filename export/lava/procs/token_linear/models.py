"""Fixed-point model of :class:`TokenLinear` (vectorized numpy, tag ``fixed_pt``)."""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from export.lava.procs.pipeline import OutputPipeline
from export.lava.procs.synapse_model import PySpikeSynapseModel
from export.lava.procs.token_linear.process import TokenLinear
from hardware.ir import fixed


@implements(proc=TokenLinear, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyTokenLinearModelFixed(PySpikeSynapseModel):
    """``a = (W_grid @ s) << weight_exp`` per token, sent ``1 + delay`` steps later.

    The product of 0/1 spikes and integer weights is computed in float64 BLAS: exact, because
    every partial sum is bounded by Σ|w| per row ≤ 256·C_in < 2⁵³.
    """

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._pipe: OutputPipeline | None = None

    def _setup(self) -> None:
        p = self.proc_params
        grid = fixed.weight_on_grid_8(self.weights, p["sign_mode"], p["num_weight_bits"])
        self._w64 = grid.astype(np.float64)
        self._pipe = OutputPipeline(1 + p["delay"], (grid.shape[0], p["tokens"]))

    def run_spk(self) -> None:
        if self._w64 is None:
            self._setup()
        s = self.s_in.recv().astype(np.float64)
        acc = (self._w64 @ s).astype(np.int64)
        a = fixed.shift_weight_exp_floor(acc, self.proc_params["weight_exp"])
        self.a_out.send(self._pipe.push(a))
