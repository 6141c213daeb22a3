"""Small hand-built integer networks shared by the simulator and Lava runner tests (not a test
module): their parameters are what the tests derive their expected states from by hand."""

from __future__ import annotations

from hardware.ir.layers import DenseLayer, LIFLayer, SpikeInputLayer
from hardware.ir.network import Edge, LoihiNetwork


def residual_net() -> LoihiNetwork:
    """in(2) → d1 → lif1 → d2 → lif2, plus the skip in → skip → lif2 (residual fan-in; the skip
    needs a 1-step delay on pipelined hardware). T = 3."""
    layers = (
        SpikeInputLayer(name="in", shape=(2,)),
        DenseLayer(name="d1", weights=[[4, -2]], weight_exp=1),
        LIFLayer(name="lif1", shape=(1,), du=4095, dv=2048, vth=5, bias_mant=3, bias_exp=3),
        DenseLayer(name="d2", weights=[[10]]),
        DenseLayer(name="skip", weights=[[3, 5]], weight_exp=-1),
        LIFLayer(name="lif2", shape=(1,), du=4095, dv=2048, vth=4),
    )
    edges = (
        Edge(src="in", dst="d1"),
        Edge(src="d1", dst="lif1"),
        Edge(src="lif1", dst="d2"),
        Edge(src="d2", dst="lif2"),
        Edge(src="in", dst="skip"),
        Edge(src="skip", dst="lif2"),
    )
    return LoihiNetwork(layers=layers, edges=edges, T=3)
