"""Model of :class:`SpikeRecorder` (tag ``fixed_pt``)."""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from export.lava.procs.recorder.process import MAX_POPULATIONS, SpikeRecorder, pack_spikes


@implements(proc=SpikeRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySpikeRecorderModel(PyLoihiProcessModel):
    """Each step: receive every used port, ``words[time_step − 1] = pack(concat(spikes))``
    (steps beyond ``n_steps`` are received and dropped)."""

    words: np.ndarray = LavaPyType(np.ndarray, np.float64)

    def run_spk(self) -> None:
        n_used = len(self.proc_params["sizes"])
        # One recv per population (ports, not neurons); the unused ports are not connected.
        spikes = [getattr(self, f"s_in_{i}").recv() for i in range(n_used)]
        row = self.time_step - 1
        if row < self.proc_params["n_steps"]:
            self.words[row] = pack_spikes(np.concatenate(spikes).astype(np.float64))


# The process has s_in_0 … s_in_63; the builder looks each port's type up on the model.
for _i in range(MAX_POPULATIONS):
    setattr(PySpikeRecorderModel, f"s_in_{_i}", LavaPyType(PyInPort.VEC_DENSE, bool, precision=1))
