"""The ports and weights every project synapse model shares (spikes in, current out)."""

from __future__ import annotations

import numpy as np
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType


class PySpikeSynapseModel(PyLoihiProcessModel):
    """Base of the fixed-point synapse models (not a model itself: no ``@implements``):
    ``s_in`` 0/1 spikes, ``a_out`` int32 current (wu, 24-bit), Var ``weights`` 8-bit integers;
    ``_w64``: the weights as float64 BLAS operands, set by the subclass on its first step."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, bool, precision=1)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    weights: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=8)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._w64: np.ndarray | None = None
