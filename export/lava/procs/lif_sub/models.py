"""Fixed-point model of :class:`LIFResetSub`: Lava's bit-accurate ``LIFReset`` model with the
reset replaced by a subtraction (tag ``fixed_pt``)."""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.lif.models import PyLifResetModelBitAcc

from export.lava.procs.lif_sub.process import LIFResetSub


@implements(proc=LIFResetSub, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyLifResetSubModelBitAcc(PyLifResetModelBitAcc):
    """``PyLifResetModelBitAcc`` (u, v updates, periodic reset, ``v > vth << 6``) with
    ``v ← v − reset_sub`` where the neuron spiked."""

    # The stock model's class attributes name its own process and tags: cleared here so that
    # Lava's decorators bind this subclass to LIFResetSub alone.
    implements_process = None
    tags: list[str] = []
    reset_sub: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)

    def reset_voltage(self, spike_vector: np.ndarray) -> None:
        self.v[spike_vector] -= self.reset_sub[0]
