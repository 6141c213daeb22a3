"""A tiny recurrent integer network for hand-derived mapping and energy counts."""

from __future__ import annotations

import numpy as np

from hardware.ir.layers import DenseLayer, LIFLayer, SpikeInputLayer
from hardware.ir.network import Edge, LoihiNetwork

#: out × in, 8-bit mixed grid (step 2); 5 nonzeros. Column nonzeros (each source neuron's
#: fan-out): j=0 → 1 (row 1), j=1 → 1 (row 0), j=2 → 2 (rows 0 and 2).
W_REC = np.array([[0, 2, -4], [6, 0, 0], [0, 0, 8]])


def recurrent_net(rec: bool = True) -> LoihiNetwork:
    """in (2) → fc (dense 2→3) → lif (3 neurons, feedback ``W_REC`` when ``rec``), T = 4."""
    lif = LIFLayer(name="lif", shape=(3,), du=4095, dv=2048, vth=10,
                   rec_weights=W_REC if rec else None, rec_sign_mode="mixed" if rec else None)
    return LoihiNetwork(
        T=4,
        layers=(SpikeInputLayer(name="in", shape=(2,)),
                DenseLayer(name="fc", weights=np.full((3, 2), 2), sign_mode="mixed"), lif),
        edges=(Edge(src="in", dst="fc"), Edge(src="fc", dst="lif")),
    )
