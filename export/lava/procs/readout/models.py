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
from hardware.ir.readout import decode_readout


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
        """One sample's ``[T, *in_shape]`` currents → features, by the simulator's own decode
        (`hardware.ir.readout.decode_readout`, batch-invariant), so the two agree bit for bit."""
        p = self.proc_params
        _, features = decode_readout(
            a[:, None],
            input_scale=p["input_scale"],
            input_bias=self.input_bias,
            token_axis=p["token_axis"],
            time_weights=self.time_weights,
            head_weight=self.head_weight,
            head_bias=self.head_bias,
        )
        return features[0]
