"""Fixed-point model of :class:`CurrentMaxPool` (vectorized numpy, tag ``fixed_pt``)."""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from export.lava.procs.maxpool.process import CurrentMaxPool, pool_out_hw
from export.lava.procs.pipeline import OutputPipeline

#: The padding value: below every int32 current, so a padded position never wins.
_NEG_INF = np.iinfo(np.int64).min


@implements(proc=CurrentMaxPool, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyCurrentMaxPoolModelFixed(PyLoihiProcessModel):
    """Window max on a −∞-padded int64 copy via a strided window view (no Python loops)."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        p = self.proc_params
        c, h, w = p["in_shape"]
        self._out_shape = (c, *pool_out_hw((h, w), p["kernel"], p["stride"], p["padding"]))
        self._pipe = OutputPipeline(p["latency"] + p["delay"], self._out_shape)

    def run_spk(self) -> None:
        p = self.proc_params
        (kh, kw), (sh, sw), (ph, pw) = p["kernel"], p["stride"], p["padding"]
        a = self.a_in.recv().astype(np.int64)
        padded = np.pad(a, ((0, 0), (ph, ph), (pw, pw)), constant_values=_NEG_INF)
        win = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw), axis=(1, 2))
        pooled = win[:, ::sh, ::sw].max(axis=(-2, -1))  # [C, H', W'] (torch's sizes)
        self.a_out.send(self._pipe.push(pooled))
