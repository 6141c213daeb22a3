"""The fake-quant twin: integers (or a plan's grid values) as float64 parameters of a FloatGraph.

The one home of dequantization. With each LIF's scale ``s``, τ̂ = 4096/dv (inf for dv = 0, an
IF neuron), τ̂_syn = 4096/(du + 1) (none for du = 4095) and the divisors ``D = D_v·τ̂_syn``,
``D_v = τ̂`` (1 for IF; :func:`hardware.quantize.plan.divisors`):
``Ŵ = D·w·2^weight_exp/s`` (:func:`dequantized_weight`), ``b̂ = D_v·β̂/(64·s)`` with
``β̂ = bias_mant << bias_exp`` (:func:`dequantized_lif`), ``θ̂ = vth/s``, reset by subtraction
``Δ̂ = reset_sub/(64·s)``; host inputs keep their
float conv / embedding and are fake-quantized onto the injected bias grid; the attention LIF's
tie-break bias (1 v-unit, DESIGN §5) becomes the rule ``H ≥ θ̂`` with bias 0. Two entry points:

- :func:`dequantize`: a built :class:`LoihiNetwork` → FloatGraph (table :data:`DEQUANTIZE`, by
  layer ``KIND``);
- :func:`fake_quantize`: a FloatGraph and a :class:`QuantPlan` → the FloatGraph of the network
  :func:`hardware.quantize.build.build_network` would build (table :data:`FAKE_QUANTIZE`, by
  float node kind); with ``ste=True`` its rounding passes gradients straight through, for
  hardware-aware fine-tuning.

:func:`run_twin` runs a network's twin with Loihi's strict ``>``. Where DESIGN §4's conditions
hold (scales powers of two, biases multiples of 2^(T−1), T ≤ 7, no overflow or saturation) the
twin equals :func:`hardware.simulate.engine.simulate` bit for bit: the same spikes, and
``v = 64·s·V̂`` (attention LIFs: ``v − [v > 0] = 64·s·V̂``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from hardware.ir import fixed
from hardware.ir.layers import Layer, LIFLayer, MaxPoolLayer
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
    FSpikeInput,
    FSynapse,
)
from hardware.lower.graph_run import GraphRun, run_graph
from hardware.quantize.plan import (
    QuantPlan,
    bias_divisor,
    bias_on_grid,
    consumer_scale,
    decay_taus,
    divisors,
    feeder_divisor,
    host_bias_scale,
    input_divisor,
    lif_decays,
    lif_vth,
    reset_sub_v,
    weight_mantissas,
)
from hardware.quantize.registry import rule_for
from hardware.quantize.scales import recurrent_key

# ---------------------------------------------------------------------------------------------
# The dequantization rules (both entry points call these).
# ---------------------------------------------------------------------------------------------


def dequantized_weight(mantissas: Tensor, weight_exp: int, s: float, tau: float) -> Tensor:
    """``Ŵ = D·w·2^weight_exp/s`` (float64) of weight mantissas ``w`` (wu); ``tau`` = ``D``, the
    consumer's input divisor (τ for SpikeCLIP's LIF)."""
    return mantissas * (2.0**weight_exp * tau / s)


def dequantized_lif(
    *, name: str, shape: tuple[int, ...], vth: int, beta: Tensor, s: float, tau: float,
    role: str, tie_break: bool, meta: Mapping | None = None, tau_syn: float | None = None,
    reset_sub: int | None = None, recurrent: Tensor | None = None,
) -> FLIF:
    """The float LIF of an integer one: ``θ̂ = vth/s``, ``b̂ = D_v·β̂/(64·s)`` (``beta`` = β̂ in
    v-units; ``D_v`` = τ, 1 for IF τ = inf), ``Δ̂ = reset_sub/(64·s)``, ``tau_syn`` and the
    dequantized ``recurrent`` matrix (:func:`dequantized_weight`) as given;
    with ``tie_break`` (an attention LIF's 1-v-unit bias) bias 0 and rule ``>=``."""
    if tie_break:
        return FLIF(name=name, shape=shape, theta=vth / s, tau=tau, bias=beta * 0.0, role=role,
                    compare=">=", meta=meta or {})
    d_v = 1.0 if tau == float("inf") else tau
    sub = None if reset_sub is None else reset_sub / (fixed.V_PER_WU * s)
    return FLIF(name=name, shape=shape, theta=vth / s, tau=tau, tau_syn=tau_syn, reset_sub=sub,
                bias=beta * (d_v / (fixed.V_PER_WU * s)), role=role, meta=meta or {},
                recurrent=recurrent)


# ---------------------------------------------------------------------------------------------
# dequantize: a LoihiNetwork → FloatGraph, one rule per layer KIND.
# ---------------------------------------------------------------------------------------------

BACKEND_DEQUANTIZE = "hardware.quantize.twin.dequantize"
BACKEND_FAKE_QUANTIZE = "hardware.quantize.twin.fake_quantize"


@dataclass(frozen=True)
class _Net:
    network: LoihiNetwork
    tau: float


def _t(x) -> Tensor:
    return torch.tensor(np.asarray(x), dtype=torch.float64)


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


def _dq_host(c: _Net, ly) -> FNode:
    return FHostInput(name=ly.name, weight=_t(ly.weight), bias=_t(ly.bias), in_shape=ly.in_shape,
                      out_shape=ly.out_shape, stride=ly.stride, padding=ly.padding,
                      bias_scale=ly.bias_scale, bias_exp=ly.bias_exp, per_value=ly.exp_per_value,
                      op=ly.op)


def _divisor(c: _Net, name: str) -> float:
    """``D`` of a LIF (:func:`hardware.quantize.plan.divisors`); the graph's τ for a readout."""
    ly = c.network.layer(name)
    return divisors(ly.du, ly.dv)[0] if isinstance(ly, LIFLayer) else c.tau


def _dq_synapse(c: _Net, ly) -> FNode:
    cons = _consumers(c.network, ly.name)
    scales = {(_scale(c.network, n), _divisor(c, n)) for n in cons}
    if len(scales) != 1:
        raise FloatGraphError(f"twin: consumers of {ly.name!r} have scales, divisors {scales}")
    s, d = scales.pop()
    w = dequantized_weight(_t(ly.weights), getattr(ly, "weight_exp", 0), s, d)
    return FSynapse(name=ly.name, kind=ly.KIND, weight=w, in_shape=ly.in_shape,
                    out_shape=ly.out_shape, stride=getattr(ly, "stride", (1, 1)),
                    padding=getattr(ly, "padding", (0, 0)))


def _dq_maxpool(c: _Net, ly) -> FNode:
    return FMaxPool(name=ly.name, in_shape=ly.in_shape, out_shape=ly.out_shape,
                    kernel=ly.kernel, stride=ly.stride, padding=ly.padding)


def _dq_attention(c: _Net, ly) -> FNode:
    if ly.p_shift:
        raise FloatGraphError(f"twin: attention {ly.name!r} with p_shift is not supported")
    return FAttention(name=ly.name, channels=ly.channels, heads=ly.heads, qk_scale=ly.qk_scale,
                      in_shape=ly.in_shape, out_shape=ly.out_shape)


def _dq_lif(c: _Net, ly) -> FNode:
    beta = _t(fixed.bias_s13e3(ly.bias_mant, ly.bias_exp))
    role = str(ly.meta.get("role", "lif"))
    tau, tau_syn = decay_taus(ly.du, ly.dv)
    s = _scale(c.network, ly.name)
    rec = None if ly.rec_weights is None else dequantized_weight(
        _t(ly.rec_weights), ly.rec_weight_exp, s, divisors(ly.du, ly.dv)[0])
    return dequantized_lif(name=ly.name, shape=ly.shape, vth=ly.vth, beta=beta, s=s, tau=tau,
                           role=role, tie_break=role == "attention" and bool((beta == 1).all()),
                           tau_syn=tau_syn, reset_sub=ly.reset_sub, recurrent=rec)


def _dq_spike_input(c: _Net, ly) -> FNode:
    return FSpikeInput(name=ly.name, shape=ly.shape)


def _dq_readout(c: _Net, ly) -> FNode:
    if abs(ly.input_scale - c.tau / _scale(c.network, ly.name)) > 0:
        raise FloatGraphError(f"twin: readout {ly.name!r} input_scale != τ/s")
    return FReadout(name=ly.name, in_shape=ly.in_shape, bias=_t(ly.input_bias),
                    time_weights=_t(ly.time_weights), head_weight=_t(ly.head_weight),
                    head_bias=_t(ly.head_bias),
                    token_axes=() if ly.token_axis is None else (ly.token_axis,))


#: Integer layer KIND → its float node (the twin's dequantize backend).
DEQUANTIZE: Mapping[str, Callable[[_Net, Layer], FNode]] = {
    "host_input": _dq_host, "conv": _dq_synapse, "token_linear": _dq_synapse,
    "dense": _dq_synapse, "maxpool": _dq_maxpool, "attention": _dq_attention, "lif": _dq_lif,
    "readout": _dq_readout, "spike_input": _dq_spike_input,
}


def dequantize(network: LoihiNetwork) -> FloatGraph:
    """The network as a FloatGraph of dequantized float64 parameters (see module doc).

    The graph's τ (the readout's decoding) is the first LIF's τ̂. Raises
    :class:`FloatGraphError` (missing scales, unsupported settings) and
    :class:`hardware.quantize.registry.NoRuleError` for a layer kind without a rule.
    """
    taus = [decay_taus(ly.du, ly.dv)[0] for ly in network.layers if isinstance(ly, LIFLayer)]
    if not taus:
        raise FloatGraphError("twin: the network has no LIF")
    ctx = _Net(network=network, tau=taus[0])
    nodes = []
    for name in network.topological_order():
        ly = network.layer(name)
        nodes.append(rule_for(DEQUANTIZE, ly.KIND, backend=BACKEND_DEQUANTIZE, layer=name)(ctx, ly))
    hosts = [n for n in nodes if isinstance(n, FHostInput | FSpikeInput)]
    order = {n.name: i for i, n in enumerate(nodes)}
    edges = tuple(sorted(((e.src, e.dst) for e in network.edges), key=lambda e: order[e[1]]))
    return FloatGraph(nodes=tuple(nodes), edges=edges, T=network.T, tau=ctx.tau,
                      input_shape=_input_shape(hosts[-1]) if hosts else ())


def _input_shape(node: FHostInput | FSpikeInput) -> tuple[int, ...]:
    return node.shape if isinstance(node, FSpikeInput) else node.in_shape


# ---------------------------------------------------------------------------------------------
# fake_quantize: a FloatGraph + QuantPlan → FloatGraph, one rule per float node kind.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    graph: FloatGraph
    plan: QuantPlan
    ste: bool


def _fq_synapse(c: _Plan, node: FSynapse) -> FNode:
    s, d = consumer_scale(c.graph, c.plan, node.name), feeder_divisor(c.graph, node.name)
    exp = c.plan.weight_exps.get(node.name, 0)
    _, w = weight_mantissas(node.weight, s, d, exp, c.plan.sign_modes[node.name],
                            c.plan.num_weight_bits, ste=c.ste)
    return FSynapse(name=node.name, kind=node.kind,
                    weight=dequantized_weight(w, exp, s, d), in_shape=node.in_shape,
                    out_shape=node.out_shape, stride=node.stride, padding=node.padding,
                    meta=node.meta)


def _fq_host(c: _Plan, node: FHostInput) -> FNode:
    s = consumer_scale(c.graph, c.plan, node.name)
    return FHostInput(name=node.name, weight=node.weight, bias=node.bias, in_shape=node.in_shape,
                      out_shape=node.out_shape, stride=node.stride, padding=node.padding,
                      bias_scale=host_bias_scale(s, feeder_divisor(c.graph, node.name)),
                      bias_exp=c.plan.bias_exps[node.name], per_value=c.plan.host_exp_per_value,
                      ste=c.ste, op=node.op, meta=node.meta)


def _fq_lif(c: _Plan, node: FLIF) -> FNode:
    s = c.plan.scales[node.name]
    tau, tau_syn = decay_taus(*lif_decays(node))
    if node.role == "attention":  # its bias is the tie-break (build_network), not a grid value
        tie = c.graph.compare == ">="
        beta = torch.full_like(node.bias, float(tie))
    else:
        tie = False
        _, beta = bias_on_grid(node.bias, s, bias_divisor(c.graph, node.name),
                               c.plan.bias_exps[node.name], ste=c.ste)
    return dequantized_lif(name=node.name, shape=node.shape, vth=lif_vth(node, s),
                           beta=beta, s=s, tau=tau, role=node.role, tie_break=tie,
                           meta=node.meta, tau_syn=tau_syn, reset_sub=reset_sub_v(node, s),
                           recurrent=_fq_recurrent(c, node, s))


def _fq_recurrent(c: _Plan, node: FLIF, s: float) -> Tensor | None:
    if node.recurrent is None:
        return None
    key, d = recurrent_key(node.name), input_divisor(c.graph, node.name)
    exp = c.plan.weight_exps.get(key, 0)
    _, w = weight_mantissas(node.recurrent, s, d, exp, c.plan.sign_modes[key],
                            c.plan.num_weight_bits, ste=c.ste)
    return dequantized_weight(w, exp, s, d)


def _fq_keep(c: _Plan, node: FNode) -> FNode:
    return node


#: Float node kind → its fake-quantized node (the twin's fake_quantize backend).
FAKE_QUANTIZE: Mapping[type[FNode], Callable[[_Plan, FNode], FNode]] = {
    FSynapse: _fq_synapse, FHostInput: _fq_host, FLIF: _fq_lif, FMaxPool: _fq_keep,
    FAttention: _fq_keep, FReadout: _fq_keep, FSpikeInput: _fq_keep,
}


def fake_quantize(graph: FloatGraph, plan: QuantPlan, *, ste: bool = False) -> FloatGraph:
    """The graph with every parameter replaced by its dequantized grid value (module doc)."""
    ctx = _Plan(graph=graph, plan=plan, ste=ste)
    return graph.replace({
        node.name: rule_for(FAKE_QUANTIZE, type(node), backend=BACKEND_FAKE_QUANTIZE,
                            layer=node.name)(ctx, node)
        for node in graph.nodes
    })


def run_twin(network: LoihiNetwork, images, *, keep_states: bool = False) -> GraphRun:
    """Run the fake-quant twin of ``network`` on ``images [B, C, H, W]`` (token ids ``[B, L]``
    for an ``embedding`` host input) with Loihi's strict ``>``."""
    with torch.no_grad():
        return run_graph(dequantize(network), torch.as_tensor(images), compare=">",
                         keep_states=keep_states)
