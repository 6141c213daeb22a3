"""`FloatGraph` + `QuantPlan` → `LoihiNetwork`: one builder per float node kind (:data:`BUILD`).

Mapping (τ = 2, scale ``s`` of the consumer LIF group, DESIGN §4–§5):

- every LIF: ``du = 4095`` (u = this step's input), ``dv = 4096/τ = 2048``, ``vth = θ·s``;
  its bias (the BN shifts of all its inputs, summed, rounded once) ``β = 64·s·b/τ`` v-units on
  the ``mant << bias_exp`` grid;
- foreign neurons (:mod:`hardware.lower.from_foreign_nir`), each with its own decays
  (:func:`hardware.quantize.plan.lif_decays`, rounded to nearest: the network runs τ̂ = 4096/dv
  and τ̂_syn = 4096/(du + 1), recorded in the layer's ``meta``): IF ``dv = 0``; CUBA ``du < 4095``
  with its weights divided by τ̂·τ̂_syn (``a = s·X/(τ̂·τ̂_syn)``, so ``u = 64·s·I/τ̂``); reset by
  subtraction ``reset_sub = round(64·s·Δ)`` v-units for the float ``V ← H − Δ``;
- synapse weights (BN folded): ``w = grid(W·s/(τ·2^e))`` rounded half-to-even straight onto
  Lava's grid (8-bit mixed: even numbers −256 … 254; excitatory/inhibitory: steps of 1) and
  clipped, so Lava's own clip/truncation is the identity; convs have ``weight_exp = 0``;
- max-pool over the integer currents (−∞ padding), the bias added after it (exact);
- attention: ``a = P = Q(KᵀV)``, ``s = τ/qk_scale = 16``, ``vth = θ·s = 8`` and a tie-break
  bias of 1 v-unit when the float model fires on ``>=`` (DESIGN §5), so Loihi's ``v > 512``
  equals the float ``H ≥ 0.5``;
- the static input (image conv0 + BN, or the text embedding) runs on the host and is injected
  per sample as the bias of the LIF it feeds (``β = 64·s·x/τ``, 13-bit mantissa at the plan's
  bias exponent); that LIF's own bias is 0;
- the readout decodes ``X = a·τ/s + b`` on the host (token mean and head when the graph has them).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from hardware.ir.grid import weight_clipped
from hardware.ir.layers import (
    AttentionLayer,
    ConvLayer,
    DenseLayer,
    HostInputLayer,
    Layer,
    LIFLayer,
    MaxPoolLayer,
    ReadoutLayer,
    SpikeInputLayer,
    TokenLinearLayer,
)
from hardware.ir.network import Edge, LoihiNetwork
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
from hardware.quantize.plan import (
    QuantPlan,
    bias_divisor,
    bias_on_grid,
    current_consumers,
    decay_taus,
    feeder_divisor,
    host_bias_scale,
    input_divisor,
    lif_decays,
    lif_vth,
    reset_sub_v,
    weight_mantissas,
)
from hardware.quantize.record import SynapseQuant
from hardware.quantize.registry import rule_for
from hardware.quantize.scales import BIAS_MAX, recurrent_key

BACKEND = "hardware.quantize.build"


@dataclass(frozen=True, kw_only=True)
class BiasStats:
    """One LIF's bias as built: exponent, max |β| (v-units), % clipped, max |β̂ − β|."""

    exp: int
    max_abs: float = 0.0
    pct_clipped: float = 0.0
    max_abs_error: float = 0.0


@dataclass(kw_only=True)
class _Build:
    """What the builders share: the graph, the plan, and the records they add to."""

    graph: FloatGraph
    plan: QuantPlan
    host_fed: Mapping[str, int]  # LIF fed by a host input → its bias exponent
    synapses: list[SynapseQuant] = field(default_factory=list)
    biases: dict[str, BiasStats] = field(default_factory=dict)


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().to(torch.float64).numpy()


def _host(b: _Build, node: FHostInput) -> HostInputLayer:
    (lif,) = current_consumers(b.graph, node.name)
    s = b.plan.scales[lif]
    return HostInputLayer(
        name=node.name, op=node.op, weight=_np(node.weight), bias=_np(node.bias),
        in_shape=node.in_shape, stride=node.stride, padding=node.padding,
        bias_scale=host_bias_scale(s, input_divisor(b.graph, lif)),
        bias_exp=b.plan.bias_exps[node.name], exp_per_value=b.plan.host_exp_per_value,
        meta={"scale": s},
    )


def _synapse(b: _Build, node: FSynapse) -> Layer:
    s = b.plan.scales[current_consumers(b.graph, node.name)[0]]
    mode, bits = b.plan.sign_modes[node.name], b.plan.num_weight_bits
    exp = b.plan.weight_exps.get(node.name, 0)
    real, w = weight_mantissas(node.weight.detach(), s, feeder_divisor(b.graph, node.name), exp,
                               mode, bits)
    wi = w.to(torch.int64).numpy()
    b.synapses.append(SynapseQuant(
        name=node.name, kind=node.kind, scale=s, sign_mode=mode, num_weight_bits=bits,
        weight_exp=exp, n_weights=int(wi.size),
        pct_clipped=100 * float(weight_clipped(real, mode).double().mean()),
        pct_rounded_to_zero=100 * float(((w == 0) & (real != 0)).double().mean()),
        max_abs_weight=int(np.abs(wi).max(initial=0)),
        max_row_abs_sum=int(np.abs(wi).reshape(wi.shape[0], -1).sum(1).max(initial=0)),
    ))
    common = {"name": node.name, "weights": wi, "sign_mode": mode, "num_weight_bits": bits,
              "meta": {"scale": s}}
    return rule_for(SYNAPSE_LAYERS, node.kind, backend=BACKEND, layer=node.name)(
        node, exp, common)


def _conv(node: FSynapse, exp: int, common: dict) -> Layer:
    return ConvLayer(in_shape=node.in_shape, stride=node.stride, padding=node.padding, **common)


def _dense(node: FSynapse, exp: int, common: dict) -> Layer:
    return DenseLayer(weight_exp=exp, in_shape=node.in_shape, out_shape=node.out_shape, **common)


def _token_linear(node: FSynapse, exp: int, common: dict) -> Layer:
    return TokenLinearLayer(tokens=math.prod(node.in_shape[1:]), weight_exp=exp, **common)


#: Synapse kind → integer layer (one entry per kind of :class:`FSynapse`).
SYNAPSE_LAYERS: Mapping[str, Callable[[FSynapse, int, dict], Layer]] = {
    "conv": _conv, "dense": _dense, "token_linear": _token_linear,
}


def _maxpool(b: _Build, node: FMaxPool) -> MaxPoolLayer:
    return MaxPoolLayer(name=node.name, in_shape=node.in_shape, kernel=node.kernel,
                        stride=node.stride, padding=node.padding)


def _attention(b: _Build, node: FAttention) -> AttentionLayer:
    return AttentionLayer(name=node.name, channels=node.channels,
                          tokens=math.prod(node.in_shape[1:]), heads=node.heads,
                          qk_scale=node.qk_scale)


def _token_shape(graph: FloatGraph, node: FLIF) -> tuple[int, ...]:
    """LIF layout in the network: ``(C, N)`` next to token layers and attention, else as is."""
    near = [graph.node(n) for n in (*graph.inputs(node.name), *graph.consumers(node.name))]
    tokenish = any(
        (isinstance(n, FSynapse) and n.kind == "token_linear") or isinstance(n, FAttention)
        for n in near
    )
    if tokenish and len(node.shape) == 3:
        return (node.shape[0], node.shape[1] * node.shape[2])
    return tuple(node.shape)


def _lif_bias(b: _Build, node: FLIF, shape: tuple[int, ...]) -> tuple[np.ndarray, int]:
    """The LIF's bias mantissas and exponent; records its :class:`BiasStats`."""
    if node.role == "attention":
        tie_break = 1 if b.graph.compare == ">=" else 0  # DESIGN §5
        b.biases[node.name] = BiasStats(exp=0, max_abs=float(tie_break))
        return np.full(shape, tie_break, np.int64), 0
    if node.name in b.host_fed:
        exp = b.host_fed[node.name]
        b.biases[node.name] = BiasStats(exp=exp)
        return np.zeros(shape, np.int64), exp
    exp = b.plan.bias_exps[node.name]
    beta, q = bias_on_grid(node.bias.detach(), b.plan.scales[node.name],
                           bias_divisor(b.graph, node.name), exp)
    b.biases[node.name] = BiasStats(
        exp=exp, max_abs=float(beta.abs().max()),
        pct_clipped=100 * float((beta.abs() > BIAS_MAX).double().mean()),
        max_abs_error=float((q - beta).abs().max()),
    )
    return (q / (1 << exp)).to(torch.int64).numpy().reshape(shape), exp


def _spike_input(b: _Build, node: FSpikeInput) -> SpikeInputLayer:
    return SpikeInputLayer(name=node.name, shape=node.shape)


def _loihi_lif_check(graph: FloatGraph, node: FLIF) -> None:
    """What Loihi's CUBA LIF (with reset by subtraction) cannot run, as a typed refusal naming
    the node (exit 4; foreign neurons, :mod:`hardware.lower.from_foreign_nir`)."""
    reasons = [why for bad, why in (
        (node.tau == 1, "a stateless neuron (Threshold, τ = 1: dv = 4096 > 4095)"),
        (node.tau_syn is not None and bool((node.bias != 0).any()),
         "a constant input (bias) into a synaptic current (CUBA): Loihi adds its bias to v, "
         "not to u"),
        (node.role == "li" and bool(graph.consumers(node.name)),
         "a non-spiking (LI / linear readout) node whose graded output feeds other nodes: "
         "Loihi's LIF sends spikes only (an LI deploys as a network output, its v recorded)"),
    ) if bad]
    if reasons:
        raise FloatGraphError(f"quantize: neuron {node.name!r}: " + "; ".join(reasons))


def check_neurons(graph: FloatGraph) -> None:
    """:class:`FloatGraphError` (exit 4) naming the first neuron Loihi's LIF cannot run, or
    the first NIR ``Delay`` (``FSynapse.delay``; ``meta["delay_nodes"]`` names the NIR nodes)."""
    for node in graph.nodes:
        if isinstance(node, FLIF):
            _loihi_lif_check(graph, node)
        elif isinstance(node, FSynapse) and node.delay:
            where = ", ".join(repr(d) for d in node.meta.get("delay_nodes", ())) or repr(node.name)
            raise FloatGraphError(
                f"quantize: node {where}: a Delay of whole steps imports (the float executor "
                f"runs it; {node.delay} step(s) before synapse {node.name!r}) but has no "
                "integer layer yet: the network's edge delays only align Lava's pipeline and "
                "the simulator's logical time ignores them"
            )


def _lif(b: _Build, node: FLIF) -> LIFLayer:
    s = b.plan.scales[node.name]
    shape = _token_shape(b.graph, node)
    mant, exp = _lif_bias(b, node, shape)
    du, dv = lif_decays(node)
    tau_hat, tau_syn_hat = decay_taus(du, dv)
    meta = {"scale": s, "theta": node.theta if math.isfinite(node.theta) else "inf",
            "role": node.role,
            "tau": node.tau if math.isfinite(node.tau) else "inf"}  # JSON has no inf
    if node.tau_syn is not None:
        meta["tau_syn"] = node.tau_syn
    if tau_hat != node.tau or tau_syn_hat != node.tau_syn:
        meta["rounded_decay"] = {"tau": tau_hat, "tau_syn": tau_syn_hat, "du": du, "dv": dv}
    if node.reset_sub is not None:
        meta["reset_sub"] = node.reset_sub
    return LIFLayer(name=node.name, shape=shape, du=du, dv=dv, vth=lif_vth(node, s),
                    bias_mant=mant, bias_exp=exp, reset_sub=reset_sub_v(node, s), meta=meta,
                    **_recurrence(b, node, s))


def _recurrence(b: _Build, node: FLIF, s: float) -> dict:
    """The LIF's recurrent Dense fields (``rec_*``): ``w = grid(W_rec·s/(D·2^e))``."""
    if node.recurrent is None:
        return {}
    key, bits = recurrent_key(node.name), b.plan.num_weight_bits
    exp, mode = b.plan.weight_exps.get(key, 0), b.plan.sign_modes[key]
    _, w = weight_mantissas(node.recurrent.detach(), s, input_divisor(b.graph, node.name), exp,
                            mode, bits)
    return {"rec_weights": w.to(torch.int64).numpy(), "rec_weight_exp": exp,
            "rec_sign_mode": mode, "rec_num_weight_bits": bits}


def _readout(b: _Build, node: FReadout) -> ReadoutLayer:
    s = b.plan.scales[node.name]
    d = node.in_shape[0]
    flat = not node.token_axes  # text tower: no token mean
    head_w = np.eye(d) if node.head_weight is None else _np(node.head_weight)
    head_b = np.zeros(len(head_w)) if node.head_bias is None else _np(node.head_bias)
    return ReadoutLayer(
        name=node.name, in_shape=(d,) if flat else (d, math.prod(node.in_shape[1:])),
        time_weights=_np(node.time_weights), head_weight=head_w, head_bias=head_b,
        input_scale=b.graph.tau / s, input_bias=_np(node.bias), token_axis=None if flat else 1,
        meta={"scale": s},
    )


def rounded_decay_notes(network: LoihiNetwork) -> tuple[str, ...]:
    """One line per LIF whose τ or τ_syn has no exact 12-bit decay and was rounded (its
    ``meta["rounded_decay"]``, set by the builder): what the float graph asks, what runs."""
    notes = []
    for ly in network.layers:
        r = ly.meta.get("rounded_decay") if isinstance(ly, LIFLayer) else None
        if r is None:
            continue
        parts = [f"τ = {ly.meta['tau']:.6g} → dv = {r['dv']} (τ̂ = 4096/dv = {r['tau']:.6g})"]
        if r["tau_syn"] is not None:
            parts.append(f"τ_syn = {ly.meta['tau_syn']:.6g} → du = {r['du']} "
                         f"(τ̂_syn = 4096/(du + 1) = {r['tau_syn']:.6g})")
        notes.append(f"LIF {ly.name!r}: decay rounded to the nearest 12-bit value, "
                     + "; ".join(parts) + " steps; the fidelity figures include the effect")
    return tuple(notes)


#: Float node kind → its integer layer builder (the quantizer's build backend).
BUILD: Mapping[type[FNode], Callable[[_Build, FNode], Layer]] = {
    FHostInput: _host, FSynapse: _synapse, FMaxPool: _maxpool, FAttention: _attention,
    FLIF: _lif, FReadout: _readout, FSpikeInput: _spike_input,
}


def build_network(
    graph: FloatGraph, plan: QuantPlan, provenance: Mapping | None = None
) -> tuple[LoihiNetwork, list[SynapseQuant], dict[str, BiasStats]]:
    """The integer network for ``plan``; also per-synapse records and per-LIF bias stats.

    Raises :class:`FloatGraphError` for a neuron Loihi's LIF cannot run (foreign neurons),
    :class:`QuantizationRangeError` for a τ without a 12-bit decay (τ = 1, τ > 8192 steps;
    other τ are rounded, :func:`hardware.quantize.plan.lif_decays`), and
    :class:`hardware.quantize.registry.NoRuleError` for a node kind without a builder.
    """
    check_neurons(graph)
    host_fed = {current_consumers(graph, n.name)[0]: plan.bias_exps[n.name]
                for n in graph.nodes if isinstance(n, FHostInput)}
    b = _Build(graph=graph, plan=plan, host_fed=host_fed)
    layers = tuple(rule_for(BUILD, type(node), backend=BACKEND, layer=node.name)(b, node)
                   for node in graph.nodes)
    net = LoihiNetwork(layers=layers, edges=tuple(Edge(src=s, dst=d) for s, d in graph.edges),
                       T=graph.T, provenance=dict(provenance or {}))
    return net, b.synapses, b.biases
