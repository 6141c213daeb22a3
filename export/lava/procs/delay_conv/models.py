"""Fixed-point model of :class:`DelayConv` (vectorized numpy, tag ``fixed_pt``)."""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from export.lava.procs.delay_conv.process import DelayConv
from export.lava.procs.pipeline import OutputPipeline
from export.lava.procs.synapse_model import PySpikeSynapseModel
from hardware.ir import fixed


def conv_spikes(s: np.ndarray, w: np.ndarray, p: dict) -> np.ndarray:
    """``conv2d(s, w)`` for 0/1 spikes ``s`` ``(C_in, H, W)`` and integer weights ``w`` (float64)
    as int64 ``(C_out, H_out, W_out)``, one kernel offset at a time (float64 products and sums
    of integers below 2⁵³ are exact: every partial sum is bounded by Σ|w| per output)."""
    c_out, c_grp, kh, kw = w.shape
    _, ho, wo = p["out_shape"]
    (sy, sx), (py, px), (dy, dx) = p["stride"], p["padding"], p["dilation"]
    padded = np.pad(s, ((0, 0), (py, py), (px, px)))
    per_group = c_out // p["groups"]
    out = np.zeros((c_out, ho * wo))
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dy, kx * dx
            patch = padded[:, y0:y0 + sy * (ho - 1) + 1:sy, x0:x0 + sx * (wo - 1) + 1:sx]
            patch = patch.reshape(patch.shape[0], ho * wo)
            for g in range(p["groups"]):
                rows = slice(g * per_group, (g + 1) * per_group)
                out[rows] += w[rows, :, ky, kx] @ patch[g * c_grp:(g + 1) * c_grp]
    return out.reshape(c_out, ho, wo).astype(np.int64)


@implements(proc=DelayConv, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyDelayConvModelFixed(PySpikeSynapseModel):
    """``a = wrap_s24(conv2d(s, W_eff))``, sent ``1 + delay`` steps later."""

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._pipe: OutputPipeline | None = None

    def run_spk(self) -> None:
        p = self.proc_params
        if self._w64 is None:
            self._w64 = np.asarray(self.weights, dtype=np.float64)
            self._pipe = OutputPipeline(1 + p["delay"], p["out_shape"])
        s = self.s_in.recv().astype(np.float64)
        a = fixed.wrap_s24(conv_spikes(s, self._w64, p))
        self.a_out.send(self._pipe.push(a))
