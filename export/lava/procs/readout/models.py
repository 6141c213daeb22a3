"""Model of :class:`HostReadout` (numpy float64 decode; tag ``fixed_pt`` like the rest)."""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from export.lava.procs.readout.process import HostReadout


@implements(proc=HostReadout, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyHostReadoutModel(PyLoihiProcessModel):
    """Stores each logical step's current; decodes a sample when its last step arrives."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    stream: np.ndarray = LavaPyType(np.ndarray, np.int32)
    features: np.ndarray = LavaPyType(np.ndarray, np.float64)
    time_weights: np.ndarray = LavaPyType(np.ndarray, np.float64)
    input_bias: np.ndarray = LavaPyType(np.ndarray, np.float64)
    head_weight: np.ndarray = LavaPyType(np.ndarray, np.float64)
    head_bias: np.ndarray = LavaPyType(np.ndarray, np.float64)

    def run_spk(self) -> None:
        a = self.a_in.recv()
        p = self.proc_params
        T = p["T"]
        index = self.time_step - p["depth"] - 1
        if not 0 <= index < p["n_samples"] * T:
            return
        k, t = divmod(index, T)
        self.stream[k, t] = a
        if t == T - 1:
            self.features[k] = self._decode(self.stream[k])

    def _decode(self, a: np.ndarray) -> np.ndarray:
        """``head_weight @ Σ_t w_t · mean_tokens(a_t · scale + bias) + head_bias`` (float64)."""
        p = self.proc_params
        lead = (-1, *([1] * (a.ndim - 2)))
        xs = a.astype(np.float64) * p["input_scale"] + self.input_bias.reshape(lead)
        if p["token_axis"] is not None:
            xs = xs.mean(axis=p["token_axis"] + 1)
        pooled = np.einsum("t,tf->f", self.time_weights, xs)
        return self.head_weight @ pooled + self.head_bias
