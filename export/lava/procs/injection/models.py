"""Model of :class:`BiasInjection` (tag ``fixed_pt``)."""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyRefPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from export.lava.procs.injection.process import BiasInjection


@implements(proc=BiasInjection, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyBiasInjectionModel(PyLoihiProcessModel):
    """Post-management at steps ``k·T + depth`` (1 ≤ k < n_samples): ``bias ← mant[k]``,
    ``bias_exp ← exp[k]``."""

    mant: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=13)
    exp: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=3)
    bias: PyRefPort = LavaPyType(PyRefPort.VEC_DENSE, np.int32, precision=13)
    bias_exp: PyRefPort = LavaPyType(PyRefPort.VEC_DENSE, np.int32, precision=3)

    def _sample_due(self) -> tuple[int, int]:
        return divmod(self.time_step - self.proc_params["depth"], self.proc_params["T"])

    def post_guard(self) -> bool:
        k, r = self._sample_due()
        return r == 0 and 1 <= k < self.proc_params["n_samples"]

    def run_post_mgmt(self) -> None:
        k = self._sample_due()[0]
        self.bias.write(self.mant[k])
        self.bias_exp.write(self.exp[k])
        self.bias.wait()  # the writes have landed before the next step starts
        self.bias_exp.wait()
