"""The fake-quant twin: a `LoihiNetwork` evaluated in float64 torch with dequantized parameters.

:func:`dequantize` turns the integer network back into a :class:`FloatGraph` in the float model's
units, using each LIF's scale ``s`` (``meta["scale"]``) and τ = 4096/dv:
``Ŵ = τ·w·2^weight_exp/s``, ``b̂ = τ·(bias_mant << bias_exp)/(64·s)``, ``θ̂ = vth/s``; host inputs
keep their float conv and are fake-quantized onto the injected bias grid; the attention LIF's
tie-break bias (1 v-unit, DESIGN §5) becomes the rule ``H ≥ θ̂`` with bias 0.
:func:`run_twin` runs it with Loihi's strict ``>``. Where DESIGN §4's conditions hold (scales
powers of two, biases multiples of 2^(T−1), T ≤ 7, no overflow or saturation) the twin equals
:func:`hardware.simulate.engine.simulate` bit for bit: the same spikes, and ``v = 64·s·V̂``
(attention LIFs: ``v − [v > 0] = 64·s·V̂``).
"""

from __future__ import annotations

import numpy as np
import torch

from hardware.ir import fixed
from hardware.ir.layers import (
    AttentionLayer,
    ConvLayer,
    DenseLayer,
    HostInputLayer,
    LIFLayer,
    MaxPoolLayer,
    ReadoutLayer,
    TokenLinearLayer,
)
from hardware.ir.network import LoihiNetwork
from hardware.lower.float_graph import (
    FLIF,
    FAttention,
    FHostInput,
    FloatGraph,
    FloatGraphError,
    FMaxPool,
    FNode,
    FReadout,
    FSynapse,
)
from hardware.lower.graph_run import GraphRun, run_graph
from hardware.quantize.plan import V_PER_WU

_SYNAPSE_KIND = {ConvLayer: "conv", TokenLinearLayer: "token_linear", DenseLayer: "dense"}


def _t(x) -> torch.Tensor:
    return torch.tensor(np.asarray(x), dtype=torch.float64)


def _tau(layer: LIFLayer) -> float:
    if layer.du != fixed.DECAY_MAX:
        raise FloatGraphError(
            f"twin: LIF {layer.name!r} has du={layer.du}; the twin needs du = 4095 (no u memory)"
        )
    return fixed.DECAY_UNITY / layer.dv


def _scale(net: LoihiNetwork, name: str) -> float:
    layer = net.layer(name)
    if "scale" not in layer.meta:
        raise FloatGraphError(f"twin: layer {name!r} has no meta['scale'] (not from quantize)")
    return float(layer.meta["scale"])


def _consumers(net: LoihiNetwork, name: str) -> list[str]:
    out = []
    for e in net.out_edges(name):
        dst = net.layer(e.dst)
        out.extend(_consumers(net, e.dst) if isinstance(dst, MaxPoolLayer) else [e.dst])
    return out


def dequantize(network: LoihiNetwork) -> FloatGraph:
    """The network as a FloatGraph of dequantized float64 parameters (see module doc)."""
    taus = {_tau(ly) for ly in network.layers if isinstance(ly, LIFLayer)}
    if len(taus) != 1:
        raise FloatGraphError(f"twin: LIFs use several time constants {sorted(taus)}")
    tau = taus.pop()
    nodes: list[FNode] = []
    input_shape: tuple[int, ...] = ()
    for name in network.topological_order():
        ly = network.layer(name)
        if isinstance(ly, HostInputLayer):
            input_shape = ly.in_shape
            nodes.append(FHostInput(
                name=name, weight=_t(ly.weight), bias=_t(ly.bias), in_shape=ly.in_shape,
                out_shape=ly.out_shape, stride=ly.stride, padding=ly.padding,
                bias_scale=ly.bias_scale, bias_exp=ly.bias_exp, op=ly.op,
            ))
        elif isinstance(ly, ConvLayer | TokenLinearLayer | DenseLayer):
            scales = {_scale(network, c) for c in _consumers(network, name)}
            if len(scales) != 1:
                raise FloatGraphError(f"twin: consumers of {name!r} have scales {scales}")
            s = scales.pop()
            exp = getattr(ly, "weight_exp", 0)
            w = _t(ly.weights) * (tau * 2.0**exp / s)
            nodes.append(FSynapse(
                name=name, kind=_SYNAPSE_KIND[type(ly)],
                weight=w, in_shape=ly.in_shape, out_shape=ly.out_shape,
                stride=getattr(ly, "stride", (1, 1)), padding=getattr(ly, "padding", (0, 0)),
            ))
        elif isinstance(ly, MaxPoolLayer):
            nodes.append(FMaxPool(name=name, in_shape=ly.in_shape, out_shape=ly.out_shape,
                                  kernel=ly.kernel, stride=ly.stride, padding=ly.padding))
        elif isinstance(ly, AttentionLayer):
            if ly.p_shift:
                raise FloatGraphError(f"twin: attention {name!r} with p_shift is not supported")
            nodes.append(FAttention(name=name, channels=ly.channels, heads=ly.heads,
                                    qk_scale=ly.qk_scale, in_shape=ly.in_shape,
                                    out_shape=ly.out_shape))
        elif isinstance(ly, LIFLayer):
            s = _scale(network, name)
            beta = _t(fixed.bias_s13e3(ly.bias_mant, ly.bias_exp))
            role = str(ly.meta.get("role", "lif"))
            if role == "attention" and bool((beta == 1).all()):
                nodes.append(FLIF(name=name, shape=ly.shape, theta=ly.vth / s, tau=tau,
                                  bias=beta * 0.0, role=role, compare=">="))
            else:
                nodes.append(FLIF(name=name, shape=ly.shape, theta=ly.vth / s, tau=tau,
                                  bias=beta * (tau / (V_PER_WU * s)), role=role))
        elif isinstance(ly, ReadoutLayer):
            s = _scale(network, name)
            if abs(ly.input_scale - tau / s) > 0:
                raise FloatGraphError(f"twin: readout {name!r} input_scale != τ/s")
            nodes.append(FReadout(
                name=name, in_shape=ly.in_shape, bias=_t(ly.input_bias),
                time_weights=_t(ly.time_weights), head_weight=_t(ly.head_weight),
                head_bias=_t(ly.head_bias),
                token_axes=() if ly.token_axis is None else (ly.token_axis,),
            ))
        else:
            raise FloatGraphError(f"twin: no float counterpart for {ly.KIND} {name!r}")
    edges = tuple((e.src, e.dst) for e in network.edges)
    order = {n.name: i for i, n in enumerate(nodes)}
    edges = tuple(sorted(edges, key=lambda e: order[e[1]]))
    return FloatGraph(nodes=tuple(nodes), edges=edges, T=network.T, tau=tau,
                      input_shape=input_shape)


def run_twin(network: LoihiNetwork, images, *, keep_states: bool = False) -> GraphRun:
    """Run the fake-quant twin of ``network`` on ``images [B, C, H, W]`` (token ids ``[B, L]``
    for an ``embedding`` host input) with Loihi's strict ``>``."""
    with torch.no_grad():
        return run_graph(dequantize(network), torch.as_tensor(images), compare=">",
                         keep_states=keep_states)
