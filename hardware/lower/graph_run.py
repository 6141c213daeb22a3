"""Execute a :class:`FloatGraph` in torch (float64 unless the graph's tensors say otherwise).

One executor for three uses: the float reference (``compare=">="``), the fake-quant twin
(``compare=">"`` on a quantized graph, :mod:`hardware.quantize.twin`) and hardware-aware training
(differentiable: the spike function carries the sigmoid surrogate of `spikeclip.neurons`).
The LIF update is `spikeclip.neurons.lif_step` (the project's one LIF rule).

Time is vectorized per layer: every synapse/attention/pool op runs on all ``T·B`` samples at
once; only the LIF recurrence loops over the T steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from hardware.ir.grid import bias_grid
from hardware.ir.readout import readout_features
from hardware.lower.float_graph import (
    FLIF,
    FAttention,
    FHostInput,
    FloatGraph,
    FMaxPool,
    FReadout,
    FSpikeInput,
    FSynapse,
)
from spikeclip.neurons import lif_step, spike_fn

COMPARES = (">=", ">")


@dataclass(kw_only=True)
class GraphRun:
    """What :func:`run_graph` returns.

    ``features`` ``[B, F]`` (the readout's output). ``spikes[name]`` / ``v[name]``: every LIF's
    spikes (0./1.) and post-reset membrane ``[T, B, *shape]`` (kept when ``keep_states``).
    ``stream[name]``: the readout's per-step decoded stream ``[T, B, D, h, w]``.
    ``max_abs_current[name]`` / ``max_abs_h[name]``: per LIF (and readout), the largest
    |synaptic input without bias| and |H| seen (floats; calibration statistics).
    """

    features: Tensor
    spikes: dict[str, Tensor] = field(default_factory=dict)
    v: dict[str, Tensor] = field(default_factory=dict)
    stream: dict[str, Tensor] = field(default_factory=dict)
    max_abs_current: dict[str, float] = field(default_factory=dict)
    max_abs_h: dict[str, float] = field(default_factory=dict)


def host_input_current(
    weight: Tensor, bias: Tensor, stride: tuple[int, int], padding: tuple[int, int],
    images: Tensor,
) -> Tensor:
    """``conv2d(images, weight, stride, padding) + bias`` in float64, ``[B, C, H', W']``.

    The one implementation of the host encoding: the simulator calls it too, so the float
    current it quantizes into a bias is the same bits the twin sees.
    """
    x = F.conv2d(images.to(torch.float64), weight.to(torch.float64), stride=stride,
                 padding=padding)
    return x + bias.to(torch.float64).view(1, -1, 1, 1)


def embedding_current(weight: Tensor, bias: Tensor, ids: Tensor) -> Tensor:
    """``weight[ids] + bias`` in float64, ``[B, L, D]``: the text tower's host encoding.

    ``weight`` the token table ``(V, D)``, ``bias`` the position table ``(L, D)``, ``ids``
    integer token ids ``[B, L]``. The one implementation (simulator, twin and float graph).
    """
    return weight.to(torch.float64)[ids.to(torch.int64)] + bias.to(torch.float64)


def host_current(node: FHostInput, x: Tensor) -> Tensor:
    """The float64 host current of ``node`` (op ``conv2d``: images, ``embedding``: ids)."""
    if node.op == "embedding":
        return embedding_current(node.weight, node.bias, x)
    return host_input_current(node.weight, node.bias, node.stride, node.padding, x)


def attention_current(spikes: Tensor, channels: int, heads: int) -> Tensor:
    """``P = Q_h (K_hᵀ V_h)`` per head for q|k|v spikes ``[..., 3C, N]`` → ``[..., C, N]``.

    Channel ``c = head·d + j`` within each operand (q rows ``[0, C)``, k ``[C, 2C)``, v
    ``[2C, 3C)``). Computed in the order Q(KᵀV) (d×d per head, never N×N); exact for 0/1
    inputs in float32 while N·d < 2²⁴.
    """
    *lead, _, n = spikes.shape
    d = channels // heads
    x = spikes.reshape(*lead, 3, heads, d, n)
    q, k, v = x.unbind(len(lead))
    m = torch.einsum("...in,...jn->...ij", k, v)  # K_hᵀ V_h, [.., heads, d, d]
    p = torch.einsum("...in,...ij->...jn", q, m)  # Q_h M, [.., heads, d, N]
    return p.reshape(*lead, channels, n)


def neuron_steps(
    node: FLIF, cur: Tensor, *, strict: bool, alpha: float = 4.0
) -> tuple[Tensor, Tensor, float]:
    """A foreign neuron (``not node.is_plain``) over ``cur [T, B, *shape]`` from zero state.

    Per step (:class:`FLIF`): ``X = cur + bias (+ recurrent @ s[t−1])``; CUBA:
    ``I ← I + (X − I)/τ_syn``, ``X ← I``; ``H = V + X`` (τ = inf), ``X`` (τ = 1) or
    ``V + (X − V)/τ``; spike ``H > θ`` (``strict``) or ``H ≥ θ``; ``V = H − reset_sub`` or 0
    where spiked, else ``H``. Returns ``(out, v, max |H|)`` with ``out`` the spikes (``H`` for
    an ``li`` node) and ``v`` the post-reset membranes, both ``[T, B, *shape]``.
    """
    x = cur + node.bias
    v = torch.zeros_like(x[0])
    i = torch.zeros_like(x[0])
    outs, volts, hmax = [], [], 0.0
    s_prev = torch.zeros_like(x[0])
    for t in range(x.shape[0]):
        xt = x[t]
        if node.recurrent is not None:
            rec = s_prev.flatten(1) @ node.recurrent.to(x.dtype).T
            xt = xt + rec.reshape(xt.shape)
        if node.tau_syn is not None:
            i = i + (xt - i) / node.tau_syn
            xt = i
        if node.tau == float("inf"):
            h = v + xt
        elif node.tau == 1:
            h = xt
        else:
            h = v + (xt - v) / node.tau
        hmax = max(hmax, float(h.detach().abs().max()))
        if node.role == "li":
            outs.append(h)
            v = h
        else:
            s_t = spike_fn(h - node.theta, alpha=alpha, strict=strict)
            reset = torch.zeros_like(h) if node.reset_sub is None else h - node.reset_sub
            v = torch.where(s_t.detach() > 0, reset, h)
            outs.append(s_t)
            s_prev = s_t
        volts.append(v)
    return torch.stack(outs), torch.stack(volts), hmax


def _delayed(s: Tensor, d: int) -> Tensor:
    """``s [T, …]`` shifted ``d`` steps later in time, zeros before (``d = 0``: ``s``)."""
    if d == 0:
        return s
    return torch.cat([torch.zeros_like(s[:d]), s[: max(s.shape[0] - d, 0)]])[: s.shape[0]]


def _tb(fn, x: Tensor) -> Tensor:
    return fn(x.flatten(0, 1)).unflatten(0, x.shape[:2])


def run_graph(
    graph: FloatGraph,
    images: Tensor,
    *,
    compare: str = ">=",
    keep_states: bool = False,
    alpha: float = 4.0,
) -> GraphRun:
    """Run ``graph`` on ``images [B, C, H, W]`` (token ids ``[B, L]`` when the host input is an
    ``embedding``) for ``graph.T`` steps from zero state.

    ``compare``: the spike rule of LIFs whose node does not force one (``">="`` float model,
    ``">"`` Loihi). Raises ``ValueError`` for an unknown rule.
    """
    if compare not in COMPARES:
        raise ValueError(
            f"hardware.lower.graph_run: compare must be one of {COMPARES}, got {compare!r}"
        )
    T = graph.T
    out: dict[str, Tensor] = {}  # node → [T, B, *shape] (spikes or currents)
    run = GraphRun(features=torch.empty(0))
    for node in graph.nodes:
        srcs = graph.inputs(node.name)
        if isinstance(node, FSpikeInput):
            out[node.name] = torch.as_tensor(images).to(torch.float64).transpose(0, 1)
        elif isinstance(node, FHostInput):
            x = host_current(node, images)
            if node.bias_scale is not None:
                x = bias_grid(x * node.bias_scale, node.bias_exp, ste=node.ste,
                              per_value=node.per_value) / node.bias_scale
            out[node.name] = x.unsqueeze(0).expand(T, *x.shape)
        elif isinstance(node, FSynapse):
            s = _delayed(out[srcs[0]], node.delay)
            if node.kind == "conv":  # (C, L) sources of a 1-D conv run as (C, 1, L)
                s = s.reshape(*s.shape[:2], *node.in_shape)
                out[node.name] = _tb(
                    lambda z, n=node: F.conv2d(z, n.weight.to(z.dtype), stride=n.stride,
                                               padding=n.padding), s)
            elif node.kind == "dense":  # Lava's Dense: on the C-order flattened input
                out[node.name] = torch.einsum("oc,tbc->tbo", node.weight.to(s.dtype),
                                              s.flatten(2)).reshape(*s.shape[:2],
                                                                    *node.out_shape)
            else:
                out[node.name] = torch.einsum("oc,tbc...->tbo...", node.weight.to(s.dtype), s)
        elif isinstance(node, FMaxPool):
            out[node.name] = _tb(
                lambda z, n=node: F.max_pool2d(z, n.kernel, n.stride, n.padding), out[srcs[0]])
        elif isinstance(node, FAttention):
            s_in = out[srcs[0]]
            p = attention_current(s_in.flatten(3), node.channels, node.heads)
            out[node.name] = node.qk_scale * p.reshape(*s_in.shape[:2], *node.out_shape)
        elif isinstance(node, FLIF):
            cur = sum(out[s].reshape(T, -1, *node.shape) for s in srcs)
            strict = (node.compare or compare) == ">"
            if not node.is_plain:
                out[node.name], volts_t, hmax = neuron_steps(node, cur, strict=strict,
                                                             alpha=alpha)
                run.max_abs_current[node.name] = float(cur.detach().abs().max())
                run.max_abs_h[node.name] = hmax
                if keep_states:
                    run.spikes[node.name] = out[node.name].detach()
                    run.v[node.name] = volts_t.detach()
                continue
            x = cur + node.bias
            v = torch.zeros_like(x[0])
            spikes, volts, hmax = [], [], 0.0
            for t in range(T):
                h_abs = (v + (x[t] - v) / node.tau).detach().abs().max()
                hmax = max(hmax, float(h_abs))
                s_t, v = lif_step(v, x[t], tau=node.tau, v_threshold=node.theta, strict=strict,
                                  alpha=alpha)
                spikes.append(s_t)
                volts.append(v)
            out[node.name] = torch.stack(spikes)
            run.max_abs_current[node.name] = float(cur.detach().abs().max())
            run.max_abs_h[node.name] = hmax
            if keep_states:
                run.spikes[node.name] = out[node.name].detach()
                run.v[node.name] = torch.stack(volts).detach()
        elif isinstance(node, FReadout):
            cur = sum(out[s].reshape(T, -1, *node.in_shape) for s in srcs)
            run.max_abs_current[node.name] = float(cur.detach().abs().max())
            bias = node.bias.view(-1, *([1] * (len(node.in_shape) - 1)))
            xs = cur + bias
            run.stream[node.name] = xs.detach() if keep_states else xs.detach()[:0]
            run.features = readout_features(
                xs, node.token_axes, node.time_weights, node.head_weight, node.head_bias
            )
        else:
            raise TypeError(f"hardware.lower.graph_run: no executor for {type(node).__name__}")
    return run
