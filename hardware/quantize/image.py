"""Quantize a float SpikeCLIP graph into a `LoihiNetwork` (DESIGN §4–§5) plus a `QuantRecord`.

Mapping (τ = 2, one scale ``s`` per LIF group, a power of two):

- every LIF: ``du = 4095`` (u = this step's input), ``dv = 4096/τ = 2048``, ``vth = θ·s``;
- synapse weights (BN folded): ``w = grid(W·s/τ)``: rounded half-to-even straight onto Lava's
  grid (8-bit mixed: even numbers −256 … 254; excitatory/inhibitory: steps of 1) and clipped, so
  Lava's own clip/truncation is the identity; convs have ``weight_exp = 0`` (Lava's Conv
  ignores it); a token-linear layer whose weights would clip at the group's scale gets the
  smallest ``weight_exp = e ≥ 0`` that fits (``w = grid(W·s/(τ·2^e))``, effective ``w·2^e``), so
  one layer with large weights does not force a coarse scale on the others sharing it;
- biases (the BN shifts of all inputs of a LIF, summed, rounded once): ``β = 64·s·b/τ`` v-units
  on the ``mant << bias_exp`` grid with ``bias_exp ≥ T − 1`` (so trunc0 never rounds, T ≤ 7);
- max-pool over the integer currents (−∞ padding), the bias added after it (exact);
- attention: ``a = P = Q(KᵀV)``, ``s = τ/qk_scale = 16``, ``vth = θ·s = 8`` and a tie-break
  bias of 1 v-unit (DESIGN §5), so Loihi's ``v > 512`` equals the float ``H ≥ 0.5``;
- the static image: conv0 + BN on the host, injected per sample as the bias of the first LIF
  (``β = 64·s·x/τ``, 13-bit mantissa: rounding and clipping counted by the simulator);
- the residual stream: one scale ``s_res`` shared by every consumer (each block's in-LIFs and
  the host readout), so each branch's current is computed once and summed; the readout decodes
  ``X = a·τ/s_res + b`` on the host.

Choosing s (per group of LIFs that share an input synapse, from calibration data run through
the float graph): the **largest** power of two — the finest weights and thresholds — such that
(1) at most ``max_clip_fraction`` of each conv's weights clip at the 8-bit range (token-linear
layers: at their smallest weight exponent ≤ 7),
(2) the observed ``max |Σ W·x|·s/τ`` times ``margin`` stays within 131,071 wu (u = a << 6 fits
24 bits), (3) ``64·s·max |H|`` times ``margin`` stays within 2²³ − 1, (4) every bias (and the
host-injected input, times ``margin``) fits a 13-bit mantissa at exponent ≤ 7, (5) ``θ·s`` is
an integer ≤ 2¹⁷ − 1. Powers of two keep the dequantized twin (Ŵ = τw/s …) exact in float64.
If not even s = 1 fits, :class:`QuantizationRangeError` names the layer and what to change.
After building, the network is simulated on the calibration data and the observed maxima of
|a|, |u|, |v| (and overflow/saturation/tie counts) are recorded; an observed overflow is also
a :class:`QuantizationRangeError`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import torch

from hardware.ir import fixed
from hardware.ir.grid import (
    bias_exp_for,
    bias_grid,
    sign_mode_for,
    weight_clipped,
    weight_grid,
)
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
from hardware.ir.network import Edge, LoihiNetwork
from hardware.lower.float_graph import (
    FLIF,
    FAttention,
    FHostInput,
    FloatGraph,
    FMaxPool,
    FReadout,
    FSynapse,
)
from hardware.lower.graph_run import GraphRun, run_graph
from hardware.quantize.plan import V_PER_WU, QuantPlan, current_consumers, current_feeders
from hardware.quantize.record import NeuronQuant, QuantRecord, SynapseQuant
from hardware.simulate.engine import SimResult, simulate
from spikeclip.errors import DoesNotFitError

#: Largest |β| (v-units) a 13-bit mantissa at exponent 7 holds.
BIAS_MAX = fixed.BIAS_MANT_MAX << fixed.BIAS_EXP_MAX
DU_NO_MEMORY = fixed.DECAY_MAX  # du = 4095: u forgets everything (u = a << 6 each step)


class QuantizationRangeError(DoesNotFitError, ValueError):
    """A layer's observed range cannot fit the 24-bit state / 8-bit weight / 13-bit bias limits.

    ``layer`` names it; the message says which limit and what to change.
    """

    def __init__(self, layer: str, reason: str) -> None:
        self.layer = layer
        super().__init__(f"quantize: layer {layer!r}: {reason}")


@dataclass(frozen=True, kw_only=True)
class QuantOptions:
    """``margin``: factor between the observed calibration maximum and the hard limit;
    ``max_clip_fraction``: share of a group's weights allowed to clip at the 8-bit range;
    ``max_log2_scale``: the largest scale tried is 2**max_log2_scale."""

    margin: float = 2.0
    max_clip_fraction: float = 1e-4
    max_log2_scale: int = 12


def quantize(
    nir_graph, calibration, *, options: QuantOptions | None = None
) -> tuple[LoihiNetwork, QuantRecord]:
    """Quantize an ``export.nir`` graph (image tower) with calibration images ``[B, C, H, W]``.

    Returns the integer network and its per-layer record (see module doc).
    """
    from hardware.lower.from_nir import float_graph_from_nir

    return quantize_graph(float_graph_from_nir(nir_graph), calibration, options=options)


def _groups(graph: FloatGraph) -> list[list[str]]:
    """LIF/readout names that must share a scale (they share an input synapse)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for node in graph.nodes:
        if isinstance(node, FLIF | FReadout):
            find(node.name)
        if isinstance(node, FSynapse | FHostInput | FAttention):
            cons = current_consumers(graph, node.name)
            for c in cons[1:]:
                parent[find(c)] = find(cons[0])
    groups: dict[str, list[str]] = {}
    for node in graph.nodes:
        if isinstance(node, FLIF | FReadout):
            groups.setdefault(find(node.name), []).append(node.name)
    return list(groups.values())


def _clip_fraction(weight: torch.Tensor, s: float, tau: float, exp: int = 0) -> float:
    real = weight * (s / (tau * (1 << exp)))
    return float(weight_clipped(real, sign_mode_for(weight)).double().mean())


def _weight_exp(syn: FSynapse, s: float, tau: float, opts: QuantOptions) -> int | None:
    """Smallest weight exponent (0 for convs) at which ≤ max_clip_fraction of weights clip."""
    top = fixed.WEIGHT_EXP_MAX if syn.kind in ("token_linear", "dense") else 0
    for e in range(top + 1):
        if _clip_fraction(syn.weight.detach(), s, tau, e) <= opts.max_clip_fraction:
            return e
    return None


def _choose_scale(
    graph: FloatGraph, group: list[str], stats: GraphRun, opts: QuantOptions
) -> float:
    tau = graph.tau
    nodes = [graph.node(n) for n in group]
    feeders = sorted({f for n in group for f in current_feeders(graph, n)})
    att = [graph.node(f) for f in feeders if isinstance(graph.node(f), FAttention)]
    if att:
        s = tau / att[0].qk_scale
        if len(group) != 1 or s != 2.0 ** round(math.log2(s)) or s < 1:
            raise QuantizationRangeError(
                group[0], f"attention LIF needs its own scale τ/qk_scale = {s:g}, a power of 2"
            )
        return s
    syn = [graph.node(f) for f in feeders if isinstance(graph.node(f), FSynapse)]
    hosts = [f for f in feeders if isinstance(graph.node(f), FHostInput)]
    reasons: list[str] = []
    for k in range(opts.max_log2_scale, -1, -1):
        s = float(1 << k)
        reasons = []
        for w in syn:
            if _weight_exp(w, s, tau, opts) is None:
                frac = _clip_fraction(w.weight.detach(), s, tau)
                reasons.append(f"{w.name}: {100 * frac:.3f}% of weights clip at 8 bits")
        for n in nodes:
            a = stats.max_abs_current[n.name] * s / tau * opts.margin
            if not hosts and a > fixed.A_MAX_NO_WRAP:
                reasons.append(f"observed |a|·margin = {a:.0f} wu > {fixed.A_MAX_NO_WRAP}")
            if hosts and a * V_PER_WU > BIAS_MAX:
                reasons.append(f"host input β·margin = {a * V_PER_WU:.0f} > {BIAS_MAX}")
            if isinstance(n, FLIF):
                v = V_PER_WU * s * stats.max_abs_h[n.name] * opts.margin
                if v > fixed.V_MAX:
                    reasons.append(f"observed |v|·margin = {v:.0f} > {fixed.V_MAX}")
                beta = V_PER_WU * s * float(n.bias.detach().abs().max()) / tau
                if beta > BIAS_MAX:
                    reasons.append(f"bias {beta:.0f} v-units > {BIAS_MAX}")
                vth = n.theta * s
                if vth != round(vth) or vth > fixed.VTH_MAX:
                    reasons.append(f"vth = θ·s = {vth:g} is not an integer ≤ {fixed.VTH_MAX}")
        if not reasons:
            return s
    raise QuantizationRangeError(
        group[0],
        "no power-of-two scale s ≥ 1 fits (at s = 1: " + "; ".join(reasons) + "). Lower the "
        "calibration margin, allow more weight clipping (max_clip_fraction), or retrain with "
        "smaller weights/activations (hardware-aware fine-tuning).",
    )


def plan_quantization(
    graph: FloatGraph, calibration: torch.Tensor, options: QuantOptions | None = None
) -> tuple[QuantPlan, GraphRun]:
    """Choose every scale, bias exponent and sign mode from a float run on ``calibration``."""
    opts = options or QuantOptions()
    with torch.no_grad():
        stats = run_graph(graph, torch.as_tensor(calibration), compare=">=")
        scales: dict[str, float] = {}
        for group in _groups(graph):
            s = _choose_scale(graph, group, stats, opts)
            scales.update(dict.fromkeys(group, s))
        bias_exps: dict[str, int] = {}
        sign_modes: dict[str, str] = {}
        weight_exps: dict[str, int] = {}
        for node in graph.nodes:
            if isinstance(node, FSynapse):
                sign_modes[node.name] = sign_mode_for(node.weight)
                s = scales[current_consumers(graph, node.name)[0]]
                weight_exps[node.name] = _weight_exp(node, s, graph.tau, opts) or 0
            elif isinstance(node, FLIF) and node.role != "attention":
                beta = V_PER_WU * scales[node.name] * float(node.bias.abs().max()) / graph.tau
                bias_exps[node.name] = bias_exp_for(beta, graph.T)
        for node in graph.nodes:
            if isinstance(node, FHostInput):
                (lif,) = current_consumers(graph, node.name)
                s = scales[lif]
                beta = V_PER_WU * s * stats.max_abs_current[lif] / graph.tau * opts.margin
                bias_exps[node.name] = bias_exps[lif] = bias_exp_for(beta, graph.T)
    plan = QuantPlan(scales=scales, bias_exps=bias_exps, sign_modes=sign_modes,
                     weight_exps=weight_exps)
    return plan, stats


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


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().to(torch.float64).numpy()


def build_network(
    graph: FloatGraph, plan: QuantPlan, provenance: Mapping | None = None
) -> tuple[LoihiNetwork, list[SynapseQuant], dict[str, dict]]:
    """The integer network for ``plan``; also per-synapse records and per-LIF bias stats."""
    tau = graph.tau
    dv = round(fixed.DECAY_UNITY / tau)
    if dv * tau != fixed.DECAY_UNITY:
        raise QuantizationRangeError("<graph>", f"τ = {tau} gives a non-integer dv = 4096/τ")
    layers, syn_recs, bias_stats = [], [], {}
    host_exp: dict[str, int] = {}
    for node in graph.nodes:
        if isinstance(node, FHostInput):
            (lif,) = current_consumers(graph, node.name)
            host_exp[lif] = plan.bias_exps[node.name]
    for node in graph.nodes:
        if isinstance(node, FHostInput):
            (lif,) = current_consumers(graph, node.name)
            s = plan.scales[lif]
            layers.append(HostInputLayer(
                name=node.name, op=node.op, weight=_np(node.weight), bias=_np(node.bias),
                in_shape=node.in_shape, stride=node.stride, padding=node.padding,
                bias_scale=V_PER_WU * s / tau, bias_exp=plan.bias_exps[node.name],
                meta={"scale": s},
            ))
        elif isinstance(node, FSynapse):
            (cons, *_) = current_consumers(graph, node.name)
            s = plan.scales[cons]
            mode = plan.sign_modes[node.name]
            exp = plan.weight_exps.get(node.name, 0)
            real = node.weight.detach() * (s / (tau * (1 << exp)))
            w = weight_grid(real, mode, plan.num_weight_bits)
            wi = w.to(torch.int64).numpy()
            syn_recs.append(SynapseQuant(
                name=node.name, kind=node.kind, scale=s, sign_mode=mode,
                num_weight_bits=plan.num_weight_bits, weight_exp=exp, n_weights=int(wi.size),
                pct_clipped=100 * float(weight_clipped(real, mode).double().mean()),
                pct_rounded_to_zero=100 * float(((w == 0) & (real != 0)).double().mean()),
                max_abs_weight=int(np.abs(wi).max(initial=0)),
                max_row_abs_sum=int(np.abs(wi).reshape(wi.shape[0], -1).sum(1).max(initial=0)),
            ))
            common = {"name": node.name, "weights": wi, "sign_mode": mode,
                      "num_weight_bits": plan.num_weight_bits, "meta": {"scale": s}}
            if node.kind == "conv":
                layers.append(ConvLayer(in_shape=node.in_shape, stride=node.stride,
                                        padding=node.padding, **common))
            elif node.kind == "dense":
                layers.append(DenseLayer(weight_exp=exp, in_shape=node.in_shape,
                                         out_shape=node.out_shape, **common))
            else:
                tokens = math.prod(node.in_shape[1:])
                layers.append(TokenLinearLayer(tokens=tokens, weight_exp=exp, **common))
        elif isinstance(node, FMaxPool):
            layers.append(MaxPoolLayer(name=node.name, in_shape=node.in_shape, kernel=node.kernel,
                                       stride=node.stride, padding=node.padding))
        elif isinstance(node, FAttention):
            layers.append(AttentionLayer(
                name=node.name, channels=node.channels, tokens=math.prod(node.in_shape[1:]),
                heads=node.heads, qk_scale=node.qk_scale,
            ))
        elif isinstance(node, FLIF):
            s = plan.scales[node.name]
            meta = {"scale": s, "theta": node.theta, "tau": tau, "role": node.role}
            shape = _token_shape(graph, node)
            vth = round(node.theta * s)
            if node.role == "attention":
                tie_break = 1 if graph.compare == ">=" else 0  # DESIGN §5
                mant, exp = np.full(shape, tie_break, np.int64), 0
                bias_stats[node.name] = {"exp": 0, "max": float(tie_break), "clip": 0.0,
                                         "err": 0.0}
            elif node.name in host_exp:
                mant, exp = np.zeros(shape, np.int64), host_exp[node.name]
                bias_stats[node.name] = {"exp": exp, "max": 0.0, "clip": 0.0, "err": 0.0}
            else:
                exp = plan.bias_exps[node.name]
                beta = node.bias.detach() * (V_PER_WU * s / tau)
                q = bias_grid(beta, exp)
                mant = (q / (1 << exp)).to(torch.int64).numpy().reshape(shape)
                bias_stats[node.name] = {
                    "exp": exp, "max": float(beta.abs().max()),
                    "clip": 100 * float((beta.abs() > BIAS_MAX).double().mean()),
                    "err": float((q - beta).abs().max()),
                }
            layers.append(LIFLayer(name=node.name, shape=shape, du=DU_NO_MEMORY, dv=dv, vth=vth,
                                   bias_mant=mant, bias_exp=exp, meta=meta))
        elif isinstance(node, FReadout):
            s = plan.scales[node.name]
            d = node.in_shape[0]
            flat = not node.token_axes  # text tower: no token mean
            head_w = np.eye(d) if node.head_weight is None else _np(node.head_weight)
            head_b = np.zeros(len(head_w)) if node.head_bias is None else _np(node.head_bias)
            layers.append(ReadoutLayer(
                name=node.name, in_shape=(d,) if flat else (d, math.prod(node.in_shape[1:])),
                time_weights=_np(node.time_weights), head_weight=head_w, head_bias=head_b,
                input_scale=tau / s, input_bias=_np(node.bias), token_axis=None if flat else 1,
                meta={"scale": s},
            ))
    edges = tuple(Edge(src=s, dst=d) for s, d in graph.edges)
    net = LoihiNetwork(layers=tuple(layers), edges=edges, T=graph.T,
                       provenance=dict(provenance or {}))
    return net, syn_recs, bias_stats


def quantize_graph(
    graph: FloatGraph, calibration, *, options: QuantOptions | None = None
) -> tuple[LoihiNetwork, QuantRecord]:
    """:func:`quantize` for a :class:`FloatGraph` (e.g. from `hardware.lower.from_torch`)."""
    opts = options or QuantOptions()
    calib = torch.as_tensor(calibration)
    plan, _ = plan_quantization(graph, calib, opts)
    prov = {"quantizer": "hardware.quantize.image", "tau": graph.tau, "options": asdict(opts),
            "calibration_samples": int(calib.shape[0])}
    net, syn_recs, bias_stats = build_network(graph, plan, prov)
    sim = simulate(net, calib)
    neurons = _neuron_records(net, plan, sim, bias_stats)
    exact = graph.T <= 7 and all(
        not isinstance(ly, LIFLayer) or ly.meta["role"] == "attention"
        or int(np.min(ly.bias_exp)) >= graph.T - 1 for ly in net.layers
    )
    notes = ("Bit-accurate means bit-exact to Lava 0.10's CPU fixed-point models, not verified "
             "against Loihi silicon (lava#322, lava#829).",)
    record = QuantRecord(T=graph.T, tau=graph.tau, calibration_samples=int(calib.shape[0]),
                         options=asdict(opts), exact=exact, synapses=tuple(syn_recs),
                         neurons=tuple(neurons), notes=notes)
    return net, record


def _neuron_records(
    net: LoihiNetwork, plan: QuantPlan, sim: SimResult, bias_stats: Mapping[str, dict]
) -> list[NeuronQuant]:
    recs = []
    for ly in net.layers:
        if not isinstance(ly, LIFLayer | ReadoutLayer):
            continue
        a = sim.max_abs_a.get(ly.name, 0)
        u = sim.max_abs_u.get(ly.name, 0)
        v = sim.max_abs_v.get(ly.name, 0)
        ovf, sat = sim.overflow_u.get(ly.name, 0), sim.saturations_v.get(ly.name, 0)
        if ovf or sat:
            raise QuantizationRangeError(
                ly.name, f"calibration data overflowed u {ovf}× / saturated v {sat}× (max |a| "
                f"{a} wu, |v| {v}); use a smaller scale (raise the margin) or retrain",
            )
        lif = isinstance(ly, LIFLayer)
        bs = bias_stats.get(ly.name, {"exp": 0, "max": 0.0, "clip": 0.0, "err": 0.0})
        recs.append(NeuronQuant(
            name=ly.name, role=ly.meta["role"] if lif else "readout", scale=plan.scales[ly.name],
            theta=float(ly.meta["theta"]) if lif else 0.0, vth=ly.vth if lif else 0,
            du=ly.du if lif else 0, dv=ly.dv if lif else 0, bias_exp=bs["exp"],
            bias_max_abs=bs["max"], pct_bias_clipped=bs["clip"], bias_max_abs_error=bs["err"],
            observed_max_abs_a=a, observed_max_abs_u=u, observed_max_abs_v=v,
            limit_a=fixed.A_MAX_NO_WRAP, limit_v=fixed.V_MAX,
            margin_a=fixed.A_MAX_NO_WRAP / a if a else math.inf,
            margin_v=fixed.V_MAX / v if v else math.inf,
            overflow_u=ovf, saturations_v=sat, ties=sim.ties.get(ly.name, 0),
        ))
    return recs
