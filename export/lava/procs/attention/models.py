"""Fixed-point model of :class:`SpikeAttention` (vectorized numpy, tag ``fixed_pt``)."""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from export.lava.procs.attention.process import SpikeAttention
from export.lava.procs.pipeline import OutputPipeline


@implements(proc=SpikeAttention, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySpikeAttentionModelFixed(PyLoihiProcessModel):
    """``M = KᵀV``, ``P = Q·M`` per head in float64 BLAS (exact: every entry ≤ d·N² < 2⁵³)."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, bool, precision=1)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        p = self.proc_params
        self._pipe = OutputPipeline(p["latency"] + p["delay"], (p["channels"], p["tokens"]))

    def run_spk(self) -> None:
        p = self.proc_params
        c, n, h = p["channels"], p["tokens"], p["heads"]
        s = self.s_in.recv().astype(np.float64).reshape(3, h, c // h, n)
        q, k, v = s[0], s[1], s[2]  # [heads, d, N]
        m = k @ v.transpose(0, 2, 1)  # M[h, i, j] = Σ_n k[h, i, n] v[h, j, n]
        prod = m.transpose(0, 2, 1) @ q  # P[h, j, n] = Σ_i M[h, i, j] q[h, i, n]
        a = np.left_shift(prod.reshape(c, n).astype(np.int64), p["p_shift"])
        self.a_out.send(self._pipe.push(a))
