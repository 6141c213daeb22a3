"""Foreign NIR graph (snnTorch, Norse, sinabs, Rockpool, hand-written) → :class:`FloatGraph`.

Semantics: the NIR specification (nir 1.0.8, ``nir/ir/neuron.py`` docstrings; Pedersen et al.,
"Neuromorphic intermediate representation", Nat. Commun. 15, 8122, 2024), discretised by forward
Euler with step ``dt`` (τ in steps: ``τ_s = τ/dt``):

- ``LIF``: ``τ dv/dt = (v_leak − v) + r·I`` → ``H = V + (X − V)/τ_s`` with ``X = r·I + v_leak``;
- ``CubaLIF``: ``τ_syn dI/dt = −I + w_in·S`` → ``I ← I + (r·w_in·S − I)/τ_syn,s`` (``r`` folded
  into the synaptic input, exact because the filter is linear), then the LIF rule with ``X = I``
  (the new current, as snnTorch's ``Synaptic`` and Loihi's CUBA neuron do); ``v_leak`` must be 0;
- ``IF``: ``dv/dt = r·I`` → ``H = V + dt·r·I``; ``Threshold``: stateless ``H = I``;
- ``LI`` / ``CubaLI``: as LIF / CubaLIF without spikes (the node outputs ``H``);
- spike ``H > v_threshold`` (strict, as snnTorch, Norse and Loihi compare), then ``V = 0``
  (NIR's ``v_reset``; only 0 is supported) or, by the ``reset`` argument, ``V = H − θ``
  (``"subtract"``) or snnTorch's default one-step-late subtraction (``"subtract-delayed"``:
  ``mem[t] = β·mem[t−1] + I[t] − θ·s[t−1]``, which is ``V = H − θ/β`` in post-reset form);
- ``Affine``, ``Linear``, ``Scale``, ``Flatten``, ``Conv1d``, ``Conv2d``, ``SumPool2d``,
  ``AvgPool2d``: linear maps; every chain of them between a spike source (``Input`` or a
  neuron) and a neuron becomes one :class:`FSynapse` (a conv when the chain is only 2-D convs and
  pools whose composition is one conv, or only 1-D convs, run as a 2-D conv of height 1 on
  ``(C, 1, L)``; else a dense matrix obtained by probing the chain with the identity), its
  affine constant a bias on the neuron. Several edges into a node sum.
- ``Delay``: ``y(t) = x(t − delay)`` (``nir/ir/delay.py``), ``delay/dt`` whole steps, one value
  per node; the delays along a chain add up on its synapse (``FSynapse.delay``: the source's
  spikes arrive that many steps late, 0 before). It imports; the quantizer refuses it
  (``hardware.quantize.build.check_neurons``).

Exporter conventions (``convention``; facts and source lines in ``export/nir/FOREIGN.md``):
``"nir"`` the spec as written (``dt`` from the argument or the graph metadata ``dt``);
``"snntorch"`` dt = 1e-4 (hard-coded by ``export_to_nir``; ``r = τ/dt``, ``w_in = τ_syn/dt``);
``"norse"`` dt = 1e-3 (``to_nir``'s default) and Norse writes ``tau = dt·τ`` (so ``τ_s =
tau/dt²``), its CUBA input jumps with gain 1 (``w_in`` ×= ``τ_syn,s``), and its Input keeps the
batch axis (dropped); ``"sinabs"`` ``tau`` in steps with exponential decay ``α = exp(−1/tau)``
(τ_s = 1/(1 − α), exact: ``v ← α·v + (1 − α)·I`` is sinabs' LIF with ``norm_input=True``, its
default, which the exporter does not record), IAF ``v ← v + I`` (dt = 1), spike ``v ≥ θ``
(``SingleSpike``; sinabs' default ``MultiSpike`` emits ⌊v/θ⌋ spikes per step, which no NIR
neuron or Loihi LIF can), reset by subtraction (pass ``reset="subtract"``); ``"rockpool"``
dt = 1e-3 (not written), τ in seconds with exact decays ``α = exp(−dt/τ_mem)``, ``β =
exp(−dt/τ_syn)``: ``LIFTorch`` (→ CubaLIF) runs ``i ← β·(i + I)``, ``v ← α·v + i`` and
``LIFNeuronTorch`` (→ LIF) ``v ← α·v + I``, so the input gain is ``β·τ_syn,s·τ_mem,s`` resp.
``τ_s`` (the file's ``r = τ·α/dt`` is not used), spike ``v ≥ θ`` (``max_spikes_per_dt=1``;
more spikes per step cannot be represented), reset by subtraction, the Input's batch axis
dropped; the module's ``bias`` and ``w_rec`` are not exported (FOREIGN.md).
Time constants, ``r`` and ``w_in`` within 1e-5 of an integer are snapped to it (float32 noise
of the exporters' ``τ = dt/(1 − β)``). A loop that feeds a neuron's own spikes back into it
(snnTorch's ``RLeaky``/``RSynaptic``) adds ``recurrent @ s[t−1]`` to its input (a one-step
delay, as snnTorch and nirtorch run it). Other loops, nested graphs, ``I``, non-uniform ``τ``,
``v_threshold`` or ``delay`` per node, a delay that is not a whole number of steps, a ``Delay``
after a bias or in a loop, ``v_leak ≠ 0`` on a CUBA neuron and ``v_reset ≠ 0`` raise
:class:`ForeignNIRError` (exit 4) naming the node and the reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import nir
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from hardware.lower.float_graph import FLIF, FloatGraph, FloatGraphError, FSpikeInput, FSynapse
from hardware.lower.from_nir import nir_order
from spikeclip.errors import UsageError

#: Default dt (seconds) per exporter convention (``None``: must be given or in the metadata).
CONVENTION_DT: Mapping[str, float | None] = {
    "nir": None, "snntorch": 1e-4, "norse": 1e-3, "sinabs": 1.0, "rockpool": 1e-3,
}
#: The spike rule each convention's framework applies (sinabs' SingleSpike, Rockpool: ``≥``).
CONVENTION_COMPARE: Mapping[str, str] = {"sinabs": ">=", "rockpool": ">="}
#: Conventions whose frameworks decay exactly, ``α = exp(−dt/τ)`` (Euler τ_s = 1/(1 − α)).
EXPONENTIAL = ("sinabs", "rockpool")
#: Conventions whose exporters keep the batch axis on the Input node.
BATCHED_INPUT = ("norse", "rockpool")
RESETS = ("zero", "subtract", "subtract-delayed")
#: Largest dense matrix (entries) a chain of linear nodes is probed into.
PROBE_MAX = 1 << 25


_LI_CHECKS = ("quantizes and simulates as a LIF that never fires (its v the output), but the "
              "export's checks compare spikes: it deploys once Lava reads v back and the "
              "fidelity report compares membranes")
LI_REFUSAL: Mapping[str, str] = {
    "LI": "an LI output " + _LI_CHECKS,
    "CubaLI": "a CubaLI output (a CubaLIF that never spikes, its output its membrane) "
              + _LI_CHECKS,
    "Output": "a linear readout (an Output fed through linear nodes, an LI of τ = 1 step) has "
              "no Loihi neuron: a stateless neuron needs dv = 4096 > 4095",
}


class ForeignNIRError(FloatGraphError):
    """A foreign NIR node or parameter combination the import cannot represent (exit 4)."""

    def __init__(self, node: str, reason: str) -> None:
        self.node = node
        super().__init__(f"NIR import: node {node!r}: {reason}")


@dataclass(frozen=True, kw_only=True)
class ForeignGraph:
    """The float graph, the names of the nodes the NIR ``Output`` nodes read, and notes on the
    conventions applied (for reports)."""

    graph: FloatGraph
    outputs: tuple[str, ...]
    dt: float
    convention: str
    reset: str
    notes: tuple[str, ...] = ()
    node_types: Mapping[str, str] = field(default_factory=dict)

    def deploy_refusals(self) -> list[tuple[str, str]]:
        """``(NIR node, reason)`` for each part of the float graph that no integer layer
        represents in this branch; the CLI refuses the first (exit 4) before quantizing.
        ``hardware.quantize.image.quantize_graph`` itself does not check these."""
        out = []
        for n in self.graph.nodes:
            if isinstance(n, FLIF) and n.role == "li":
                kind = self.node_types.get(n.name, "LI")
                out.append((n.name, LI_REFUSAL.get(kind, LI_REFUSAL["LI"])))
        return out


@dataclass(frozen=True, kw_only=True)
class _Ctx:
    dt: float
    convention: str
    reset: str


@dataclass(frozen=True, kw_only=True)
class _Lin:
    """One linear node: ``lin`` bias-free on ``[B, *shape]`` (float64 here; any float dtype:
    the weights follow the input's, for the float32 ReLU twin), ``bias`` added after it;
    ``window`` ``(kernel, stride, padding)`` when it is a 2-D conv/pool fusable into one conv,
    and ``probe`` the same op with zero padding (for fusion); ``lift``: a 1-D conv whose
    ``window``/``probe`` are those of the 2-D conv of height 1 on ``(C, 1, L)``; ``delay``: a
    NIR ``Delay`` (identity in space, ``delay`` steps in time)."""

    lin: Callable[[Tensor], Tensor]
    bias: Tensor | None = None
    window: tuple[tuple[int, int], tuple[int, int], tuple[int, int]] | None = None
    probe: Callable[[Tensor], Tensor] | None = None
    lift: bool = False
    delay: int = 0
    node: str = ""


@dataclass(frozen=True, kw_only=True)
class _Neuron:
    """A neuron's discretised parameters: ``gain`` on its synaptic input (per neuron), ``leak``
    its constant membrane input (``v_leak``), and the :class:`FLIF` scalars."""

    gain: np.ndarray
    leak: np.ndarray
    tau: float
    theta: float
    tau_syn: float | None = None
    role: str = "lif"


@dataclass
class _Val:
    """A linear value: terms ``(spike source, ops)`` plus a constant of ``shape``."""

    terms: list[tuple[str, tuple[_Lin, ...]]]
    const: Tensor
    shape: tuple[int, ...]


# ---------------------------------------------------------------------------------------------
# Parameters.
# ---------------------------------------------------------------------------------------------


def _arr(value) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def _snap(a: np.ndarray) -> np.ndarray:
    r = np.round(a)
    return np.where(np.abs(a - r) <= 1e-5 * np.maximum(np.abs(a), 1.0), r, a)


def _per_neuron(name: str, field: str, value, shape: tuple[int, ...]) -> np.ndarray:
    a = _arr(value)
    try:
        return np.broadcast_to(a, shape).astype(np.float64)
    except ValueError as err:
        raise ForeignNIRError(name, f"{field} of shape {a.shape} does not fit the neuron shape "
                                    f"{shape}") from err


def _uniform(name: str, field: str, a: np.ndarray) -> float:
    if a.size == 0 or not np.all(a == a.flat[0]):
        raise ForeignNIRError(name, f"{field} differs between neurons (one value per node is "
                                    "supported)")
    return float(a.flat[0])


def _steps(name: str, field: str, tau, shape, ctx: _Ctx) -> float:
    """τ in steps: ``tau/dt`` (Norse: ``tau/dt²``, its exporter writes dt·τ; sinabs: the
    Euler τ of its exponential decay ``α = exp(−dt/tau)``, ``1/(1 − α)``)."""
    a = _per_neuron(name, field, tau, shape)
    if ctx.convention in EXPONENTIAL:
        a = 1.0 / -np.expm1(-ctx.dt / a)
    else:
        a = a / (ctx.dt * ctx.dt if ctx.convention == "norse" else ctx.dt)
    t = _uniform(name, field, _snap(a))
    if not t > 0:
        raise ForeignNIRError(name, f"{field} must be positive, got {t} steps")
    return t


def _no_reset_value(name: str, node) -> None:
    v_reset = getattr(node, "v_reset", None)
    if v_reset is not None and np.any(_arr(v_reset) != 0):
        raise ForeignNIRError(name, "v_reset ≠ 0 is not supported (Loihi resets to 0)")


def _no_leak(name: str, node, shape) -> None:
    if np.any(_per_neuron(name, "v_leak", node.v_leak, shape) != 0):
        raise ForeignNIRError(name, "v_leak ≠ 0 on a current-based neuron is not supported")


# ---------------------------------------------------------------------------------------------
# Neurons.
# ---------------------------------------------------------------------------------------------


def _lif(name: str, node, shape, ctx: _Ctx, *, role: str = "lif") -> _Neuron:
    _no_reset_value(name, node)
    theta = math.inf if role == "li" else _uniform(
        name, "v_threshold", _per_neuron(name, "v_threshold", node.v_threshold, shape))
    tau = _steps(name, "tau", node.tau, shape, ctx)
    gain = _snap(_per_neuron(name, "r", node.r, shape))
    if ctx.convention == "rockpool":  # LIFNeuronTorch: v ← α·v + I, i.e. X = I/(1 − α) = τ_s·I
        gain = np.full(shape, tau)
    return _Neuron(gain=gain, leak=_per_neuron(name, "v_leak", node.v_leak, shape), tau=tau,
                   theta=theta, role=role)


def _cuba(name: str, node, shape, ctx: _Ctx, *, role: str = "lif") -> _Neuron:
    _no_reset_value(name, node)
    _no_leak(name, node, shape)
    tau_syn = _steps(name, "tau_syn", node.tau_syn, shape, ctx)
    w_in = _snap(_per_neuron(name, "w_in", node.w_in, shape))
    if ctx.convention == "norse":  # Norse's LIFCell: i ← i + I (gain 1), not dt/τ_syn·w_in
        w_in = w_in * tau_syn
    theta = math.inf if role == "li" else _uniform(
        name, "v_threshold", _per_neuron(name, "v_threshold", node.v_threshold, shape))
    tau = _steps(name, "tau_mem", node.tau_mem, shape, ctx)
    gain = _snap(_per_neuron(name, "r", node.r, shape)) * w_in
    if ctx.convention == "rockpool":  # i ← β·(i + I), v ← α·v + i (module doc)
        gain = np.full(shape, (1.0 - 1.0 / tau_syn) * tau_syn * tau)
    return _Neuron(gain=gain, leak=np.zeros(shape), tau=tau, theta=theta, tau_syn=tau_syn,
                   role=role)


def _if(name: str, node, shape, ctx: _Ctx) -> _Neuron:
    _no_reset_value(name, node)
    return _Neuron(gain=_snap(_per_neuron(name, "r", node.r, shape) * ctx.dt),
                   leak=np.zeros(shape), tau=math.inf,
                   theta=_uniform(name, "v_threshold",
                                  _per_neuron(name, "v_threshold", node.v_threshold, shape)))


def _threshold(name: str, node, shape, ctx: _Ctx) -> _Neuron:
    return _Neuron(gain=np.ones(shape), leak=np.zeros(shape), tau=1.0,
                   theta=_uniform(name, "threshold",
                                  _per_neuron(name, "threshold", node.threshold, shape)))


# ---------------------------------------------------------------------------------------------
# Linear nodes.
# ---------------------------------------------------------------------------------------------


def _t(x) -> Tensor:
    return torch.as_tensor(_arr(x))


def _pair(v, n: int = 2) -> tuple[int, ...]:
    a = np.atleast_1d(_arr(v)).astype(int)
    return tuple(int(a[min(i, len(a) - 1)]) for i in range(n))


def _matrix(name: str, node) -> _Lin:
    w = _t(node.weight)
    if w.ndim != 2:
        raise ForeignNIRError(name, f"weight of shape {tuple(w.shape)} is not a matrix")

    def lin(x: Tensor) -> Tensor:
        if x.shape[1:] != (w.shape[1],):
            raise ForeignNIRError(name, f"input of shape {tuple(x.shape[1:])} where "
                                        f"({w.shape[1]},) is expected (add a Flatten)")
        return x @ w.to(x.dtype).T

    bias = _t(node.bias) if isinstance(node, nir.Affine) else None
    return _Lin(lin=lin, bias=bias)


def _scale(name: str, node) -> _Lin:
    s = _t(node.scale)
    return _Lin(lin=lambda x: x * s.to(x.dtype))


def _flatten(name: str, node) -> _Lin:
    start = node.start_dim + 1 if node.start_dim >= 0 else node.start_dim
    end = node.end_dim + 1 if node.end_dim >= 0 else node.end_dim
    return _Lin(lin=lambda x: x.flatten(start, end))


def _conv2d(name: str, node) -> _Lin:
    w, stride, dil = _t(node.weight), _pair(node.stride), _pair(node.dilation)
    groups = int(node.groups)
    if isinstance(node.padding, str):
        pad: tuple[int, int] | str = node.padding
    else:
        pad = _pair(node.padding)

    def conv(p):
        return lambda x: F.conv2d(x, w.to(x.dtype), stride=stride, padding=p, dilation=dil,
                                  groups=groups)

    fusable = dil == (1, 1) and not isinstance(pad, str)
    window = (tuple(w.shape[2:]), stride, pad) if fusable else None
    bias = None if node.bias is None else _t(node.bias).view(-1, 1, 1)
    return _Lin(lin=conv(pad), bias=bias, window=window,
                probe=conv(0) if fusable else None)


def _conv1d(name: str, node) -> _Lin:
    """``(C_in, L)`` → ``(C_out, L')``; fusable (dilation 1, integer padding) as a 2-D conv of
    height 1 on ``(C, 1, L)`` (``window``/``probe`` in that layout, ``lift``)."""
    w = _t(node.weight)
    stride, dil, groups = _pair(node.stride, 1), _pair(node.dilation, 1), int(node.groups)
    pad = node.padding if isinstance(node.padding, str) else _pair(node.padding, 1)

    def lin(x: Tensor) -> Tensor:
        return F.conv1d(x, w.to(x.dtype), stride=stride, padding=pad, dilation=dil,
                        groups=groups)

    def probe(x: Tensor) -> Tensor:  # [N, C, 1, k] → [N, C_out, 1, k'], no padding
        return F.conv2d(x, w.to(x.dtype).unsqueeze(2), stride=(1, stride[0]), groups=groups)

    fusable = dil == (1,) and not isinstance(pad, str)
    window = ((1, int(w.shape[2])), (1, stride[0]), (0, pad[0])) if fusable else None
    return _Lin(lin=lin, bias=None if node.bias is None else _t(node.bias).view(-1, 1),
                window=window, probe=probe if fusable else None, lift=fusable)


def _pool(name: str, node) -> _Lin:
    k, s, p = _pair(node.kernel_size), _pair(node.stride), _pair(node.padding)
    gain = 1.0 if isinstance(node, nir.AvgPool2d) else float(k[0] * k[1])

    def pool(pad):
        return lambda x: F.avg_pool2d(x, k, s, pad, count_include_pad=True) * gain

    return _Lin(lin=pool(p), window=(k, s, p), probe=pool(0))


def _delay(name: str, node, shape, ctx: _Ctx) -> _Lin:
    """``y[t] = x[t − d]`` (0 before), ``d = delay/dt`` steps: one whole number per node."""
    a = _per_neuron(name, "delay", node.delay, shape) / ctx.dt
    d = _uniform(name, "delay", _snap(a))
    if d != round(d) or d < 0:
        raise ForeignNIRError(name, f"delay {d * ctx.dt:g} s is {d:g} steps of dt = {ctx.dt:g} s:"
                                    " not a whole, non-negative number of steps")

    def same(x: Tensor) -> Tensor:
        return x

    return _Lin(lin=same, window=((1, 1), (1, 1), (0, 0)), probe=same, lift=True, delay=int(d),
                node=name)


# ---------------------------------------------------------------------------------------------
# The one registry: NIR node class → (role, builder).
# ---------------------------------------------------------------------------------------------

LINEAR: Mapping[type, Callable[[str, object], _Lin]] = {
    nir.Affine: _matrix, nir.Linear: _matrix, nir.Scale: _scale, nir.Flatten: _flatten,
    nir.Conv2d: _conv2d, nir.Conv1d: _conv1d, nir.SumPool2d: _pool, nir.AvgPool2d: _pool,
}
NEURONS: Mapping[type, Callable[..., _Neuron]] = {
    nir.LIF: _lif, nir.CubaLIF: _cuba, nir.IF: _if, nir.Threshold: _threshold,
    nir.LI: lambda n, node, shape, ctx: _lif(n, node, shape, ctx, role="li"),
    nir.CubaLI: lambda n, node, shape, ctx: _cuba(n, node, shape, ctx, role="li"),
}
#: The node type names NIR 1.0.8 defines (what ``nir.read`` can build).
NIR_NODE_TYPES: frozenset[str] = frozenset(
    n for n, c in vars(nir).items()
    if isinstance(c, type) and issubclass(c, nir.NIRNode) and c is not nir.NIRNode)
REGISTRY: Mapping[type, str] = {
    nir.Input: "input", nir.Output: "output", nir.Delay: "delay",
    **dict.fromkeys(LINEAR, "linear"), **dict.fromkeys(NEURONS, "neuron"),
}


# ---------------------------------------------------------------------------------------------
# Chains of linear nodes → one synapse.
# ---------------------------------------------------------------------------------------------


def _apply(ops: tuple[_Lin, ...], x: Tensor) -> Tensor:
    for op in ops:
        x = op.lin(x)
    return x


def _conv_window(ops: tuple[_Lin, ...]) -> tuple[tuple[int, int], ...] | None:
    """``(kernel, stride, padding)`` of the one conv equal to ``ops`` (2-D convs/pools, only
    the first padded), else ``None``."""
    if not ops or any(op.window is None for op in ops):
        return None
    (k, s, p) = ops[0].window
    for op in ops[1:]:
        k2, s2, p2 = op.window
        if p2 != (0, 0):
            return None
        k = (k[0] + (k2[0] - 1) * s[0], k[1] + (k2[1] - 1) * s[1])
        s = (s[0] * s2[0], s[1] * s2[1])
    return k, s, p


def _dense_matrix(name: str, src_shape, dst_shape, ops: tuple[_Lin, ...]) -> Tensor:
    """The ``(N_out, N_in)`` matrix of the bias-free chain ``ops`` (probed with the identity)."""
    n_in, n_out = math.prod(src_shape), math.prod(dst_shape)
    if n_in * n_out > PROBE_MAX:
        raise ForeignNIRError(name, f"the chain {n_in} → {n_out} is not one conv and too large "
                                    f"for a dense matrix ({n_in * n_out} > {PROBE_MAX} entries)")
    eye = torch.eye(n_in, dtype=torch.float64).view(n_in, *src_shape)
    return _apply(ops, eye).reshape(n_in, n_out).T.contiguous()


def _synapse(name: str, src_shape, dst_shape, ops, gain: np.ndarray) -> FSynapse:
    """One synapse for the chain ``ops`` from a ``src_shape`` spike source, scaled by ``gain``."""
    g = torch.as_tensor(gain)
    lifted = len(src_shape) == len(dst_shape) == 2 and bool(ops) and all(op.lift for op in ops)
    if lifted:  # 1-D convs: a 2-D conv of height 1 on (C, 1, L) (module doc)
        conv = _conv_synapse(name, (src_shape[0], 1, src_shape[1]),
                             (dst_shape[0], 1, dst_shape[1]), ops, g.unsqueeze(1))
    elif len(src_shape) == len(dst_shape) == 3:
        conv = _conv_synapse(name, src_shape, dst_shape, ops, g)
    else:
        conv = None
    delay = sum(op.delay for op in ops)
    meta = {"delay_nodes": tuple(op.node for op in ops if op.delay)} if delay else {}
    if conv is not None:
        return replace(conv, delay=delay, meta=meta)
    w = _dense_matrix(name, src_shape, dst_shape, ops) * g.reshape(-1, 1)
    return FSynapse(name=name, kind="dense", weight=w.contiguous(), in_shape=tuple(src_shape),
                    out_shape=tuple(dst_shape), delay=delay, meta=meta)


def _conv_synapse(name: str, src_shape, dst_shape, ops, g: Tensor) -> FSynapse | None:
    """The chain ``ops`` as one conv synapse on ``(C, H, W)`` (gain ``g`` per channel), or
    ``None`` when it is not one conv."""
    win = _conv_window(ops)
    per_channel = bool(torch.all(g == g[:, :1, :1])) if g.ndim == 3 else False
    if win is not None and per_channel:
        (kh, kw), stride, pad = win
        c_in = src_shape[0]
        eye = torch.eye(c_in * kh * kw, dtype=torch.float64).view(-1, c_in, kh, kw)
        x = eye
        for op in ops:
            x = op.probe(x)
        if x.shape[2:] == (1, 1):
            w = x[:, :, 0, 0].T.reshape(-1, c_in, kh, kw) * g[:, 0, 0].view(-1, 1, 1, 1)
            out = F.conv2d(torch.zeros(1, *src_shape, dtype=torch.float64), w, stride=stride,
                           padding=pad).shape[1:]
            if tuple(out) == tuple(dst_shape):
                return FSynapse(name=name, kind="conv", weight=w, in_shape=tuple(src_shape),
                                out_shape=tuple(dst_shape), stride=stride, padding=pad)
    return None


# ---------------------------------------------------------------------------------------------
# The walk.
# ---------------------------------------------------------------------------------------------


def _recurrent_edges(graph: nir.NIRGraph) -> list[tuple[str, str]]:
    """Edges ``a → n`` into a neuron ``n`` from a node ``a`` that ``n`` reaches through linear
    nodes only: the edges that close a self-recurrent loop (a one-step delay, as snnTorch's
    RLeaky and nirtorch run them). A loop through another neuron raises."""
    succ: dict[str, list[str]] = {}
    for s, d in graph.edges:
        succ.setdefault(s, []).append(d)

    def is_neuron(n: str) -> bool:
        return REGISTRY.get(type(graph.nodes[n])) == "neuron"

    def reach(start: str, *, through_neurons: bool) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for d in succ.get(todo.pop(), []):
                if d not in seen:
                    seen.add(d)
                    if through_neurons or not is_neuron(d):
                        todo.append(d)
        return seen

    loops = []
    for a, n in graph.edges:
        if not is_neuron(n) or a not in reach(n, through_neurons=True):
            continue
        if a not in reach(n, through_neurons=False):
            raise ForeignNIRError(n, f"a recurrent loop through {a!r} and other neurons is not "
                                     "supported (self-recurrence only)")
        loops.append((a, n))
    return loops


def forward_order(graph: nir.NIRGraph) -> tuple[list[str], list[tuple[str, str]],
                                                 list[tuple[str, str]]]:
    """``(order, forward edges, loop edges)``: the nodes in an order where every node follows
    its forward inputs, and the edges split into the forward ones and those closing a
    self-recurrent loop (:func:`_recurrent_edges`). Raises :class:`ForeignNIRError` on an
    unsupported node type or cycle."""
    for name, node in graph.nodes.items():
        _role(name, node)
    loops = _recurrent_edges(graph)
    forward = [e for e in graph.edges if e not in loops]
    return _order(graph, forward), forward, loops


def _order(graph: nir.NIRGraph, edges: list[tuple[str, str]]) -> list[str]:
    order, left = nir_order(graph, edges)
    if left:
        raise ForeignNIRError(left[0], f"recurrent graph (a cycle through {sorted(left)}) is not "
                                       "supported")
    return order


def _role(name: str, node) -> str:
    role = REGISTRY.get(type(node))
    if role is None:
        raise ForeignNIRError(name, f"node type {type(node).__name__} is not supported "
                                    f"(supported: {sorted(t.__name__ for t in REGISTRY)})")
    return role


def _input_shape(name: str, node, ctx: _Ctx) -> tuple[int, ...]:
    shape = tuple(int(v) for v in np.atleast_1d(node.input_type["input"]))
    if ctx.convention in BATCHED_INPUT and len(shape) > 1 and shape[0] == 1:
        shape = shape[1:]  # Norse's and Rockpool's to_nir keep the batch axis
    if not shape or min(shape) < 1:
        raise ForeignNIRError(name, f"input shape {shape} is not a positive shape")
    return shape


def _sum_inputs(name: str, vals: list[_Val]) -> _Val:
    if not vals:
        raise ForeignNIRError(name, "has no input")
    shapes = {v.shape for v in vals}
    if len(shapes) != 1:
        raise ForeignNIRError(name, f"inputs of different shapes {sorted(shapes)}")
    return _Val(terms=[t for v in vals for t in v.terms],
                const=sum(v.const for v in vals), shape=vals[0].shape)


def _through(name: str, op: _Lin, val: _Val) -> _Val:
    try:
        const = op.lin(val.const.unsqueeze(0))[0]
    except RuntimeError as err:
        raise ForeignNIRError(name, f"cannot take an input of shape {val.shape}: {err}") from err
    if op.bias is not None:
        const = const + op.bias
    return _Val(terms=[(s, (*ops, op)) for s, ops in val.terms], const=const,
                shape=tuple(const.shape))


def _ctx(graph: nir.NIRGraph, dt: float | None, convention: str, reset: str) -> _Ctx:
    if convention not in CONVENTION_DT:
        raise UsageError(f"NIR import: convention {convention!r} not in {sorted(CONVENTION_DT)}")
    if reset not in RESETS:
        raise UsageError(f"NIR import: reset {reset!r} not in {RESETS}")
    meta_dt = (graph.metadata or {}).get("dt")
    dt = dt or (float(np.asarray(meta_dt)) if meta_dt is not None else None)
    dt = dt or CONVENTION_DT[convention]
    if dt is None or not dt > 0:
        raise UsageError("NIR import: the graph records no dt; pass dt (--dt) or a convention")
    return _Ctx(dt=float(dt), convention=convention, reset=reset)


def _reset_sub(neuron: _Neuron, reset: str) -> float | None:
    if reset == "zero" or neuron.role == "li" or neuron.tau == 1:
        return None
    if reset == "subtract" or neuron.tau == math.inf:
        return neuron.theta
    return neuron.theta / (1.0 - 1.0 / neuron.tau)  # snnTorch: V = H − θ/β (module doc)


@dataclass
class _Walk:
    ctx: _Ctx
    vals: dict[str, _Val]
    shapes: dict[str, tuple[int, ...]]
    nodes: list
    edges: list[tuple[str, str]]
    outputs: list[str]
    neurons: dict[str, _Neuron]


def _add_neuron(w: _Walk, name: str, neuron: _Neuron, val: _Val) -> None:
    for k, (src, ops) in enumerate(val.terms):
        syn = _synapse(f"{name}.syn{k}" if len(val.terms) > 1 else f"{name}.syn",
                       w.shapes[src], val.shape, ops, neuron.gain)
        w.nodes.append(syn)
        w.edges += [(src, syn.name), (syn.name, name)]
    w.neurons[name] = neuron
    bias = torch.as_tensor(neuron.gain) * val.const + torch.as_tensor(neuron.leak)
    w.nodes.append(FLIF(name=name, shape=val.shape, theta=neuron.theta, tau=neuron.tau,
                        bias=bias.to(torch.float64), role=neuron.role, tau_syn=neuron.tau_syn,
                        reset_sub=_reset_sub(neuron, w.ctx.reset)))
    w.shapes[name] = val.shape
    w.vals[name] = _Val(terms=[(name, ())], const=torch.zeros(val.shape, dtype=torch.float64),
                        shape=val.shape)


def _add_recurrence(w: _Walk, src: str, name: str) -> None:
    """The loop ``name → … → src → name`` as the neuron's ``recurrent`` matrix (gain-scaled) and
    its constant as bias (snnTorch applies ``recurrent(spk)`` from t = 0 with ``spk = 0``)."""
    val, neuron = w.vals[src], w.neurons[name]
    if val.shape != w.shapes[name] or any(s != name for s, _ in val.terms):
        raise ForeignNIRError(name, f"a recurrent loop through {src!r} from other neurons or of "
                                    "another shape is not supported (self-recurrence only)")
    if any(op.delay for _, ops in val.terms for op in ops):
        raise ForeignNIRError(name, f"a Delay in the recurrent loop through {src!r} is not "
                                    "supported (the loop's delay is one step)")
    g = torch.as_tensor(neuron.gain).reshape(-1, 1)
    rec = sum(_dense_matrix(name, val.shape, val.shape, ops) for _, ops in val.terms) * g
    i = next(k for k, n in enumerate(w.nodes) if n.name == name)
    old = w.nodes[i]
    if old.recurrent is not None:
        rec = rec + old.recurrent
    w.nodes[i] = replace(old, recurrent=rec, bias=old.bias + g.reshape(val.shape) * val.const)


def _visit(w: _Walk, name: str, node, ins: list[_Val]) -> None:
    role = _role(name, node)
    if role == "input":
        shape = _input_shape(name, node, w.ctx)
        w.nodes.append(FSpikeInput(name=name, shape=shape))
        w.shapes[name] = shape
        w.vals[name] = _Val(terms=[(name, ())], const=torch.zeros(shape, dtype=torch.float64),
                            shape=shape)
    elif role == "linear":
        w.vals[name] = _through(name, LINEAR[type(node)](name, node), _sum_inputs(name, ins))
    elif role == "delay":
        val = _sum_inputs(name, ins)
        if bool(val.const.any()):
            raise ForeignNIRError(name, "a Delay after a bias is not supported (the delayed "
                                        "constant would start late; neuron biases start at t = 0)")
        w.vals[name] = _through(name, _delay(name, node, val.shape, w.ctx), val)
    elif role == "neuron":
        val = _sum_inputs(name, ins)
        _add_neuron(w, name, NEURONS[type(node)](name, node, val.shape, w.ctx), val)
    else:
        val = _sum_inputs(name, ins)
        direct = len(val.terms) == 1 and not val.terms[0][1] and not bool(val.const.any())
        if direct:
            w.outputs.append(val.terms[0][0])
        else:  # a linear readout: a stateless non-spiking neuron H = X (LI with τ = 1)
            shape = val.shape
            _add_neuron(w, name, _Neuron(gain=np.ones(shape), leak=np.zeros(shape), tau=1.0,
                                         theta=math.inf, role="li"), val)
            w.outputs.append(name)


def float_graph_from_foreign(
    graph: nir.NIRGraph, *, T: int, dt: float | None = None, convention: str = "nir",
    reset: str = "zero",
) -> ForeignGraph:
    """The :class:`FloatGraph` of a foreign NIR graph for ``T`` steps (module doc for the rules).

    ``dt`` (seconds) overrides the graph's and the convention's; ``convention`` one of
    :data:`CONVENTION_DT`; ``reset`` one of :data:`RESETS` (NIR files record no reset rule but
    ``v_reset``). Raises :class:`ForeignNIRError` (unsupported node or parameters, names it) and
    ``UsageError`` (bad argument, unknown dt).
    """
    ctx = _ctx(graph, dt, convention, reset)
    if int(T) < 1:
        raise UsageError(f"NIR import: T must be ≥ 1, got {T}")
    w = _Walk(ctx=ctx, vals={}, shapes={}, nodes=[], edges=[], outputs=[], neurons={})
    order, forward, loops = forward_order(graph)
    for name in order:
        ins = [w.vals[s] for s, d in forward if d == name]
        _visit(w, name, graph.nodes[name], ins)
    for src, dst in loops:
        _add_recurrence(w, src, dst)
    inputs = [n for n in w.nodes if isinstance(n, FSpikeInput)]
    if len(inputs) != 1:
        raise ForeignNIRError("<graph>", f"needs exactly one Input node, has {len(inputs)}")
    taus = [n.tau for n in w.nodes if isinstance(n, FLIF) and n.role != "li"]
    compare = CONVENTION_COMPARE.get(convention, ">")
    fg = FloatGraph(nodes=tuple(w.nodes), edges=tuple(w.edges), T=int(T),
                    tau=taus[0] if taus else 1.0, input_shape=inputs[0].shape, compare=compare)
    notes = (f"NIR import: convention {convention}, dt = {ctx.dt:g} s, reset {reset}, forward "
             f"Euler, spike H {compare} θ",)
    return ForeignGraph(graph=fg, outputs=tuple(w.outputs), dt=ctx.dt, convention=convention,
                        reset=reset, notes=notes,
                        node_types={n: type(v).__name__ for n, v in graph.nodes.items()})
