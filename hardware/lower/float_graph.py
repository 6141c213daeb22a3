"""`FloatGraph`: the BN-folded float network that the quantizer maps and the twin executes.

It mirrors :mod:`hardware.ir.layers` node for node (same names, same edges, same layouts), but its
parameters are float64 torch tensors in the float model's units, so one executor
(:mod:`hardware.quantize.twin`) runs it as the float reference (compare ``>=``), as the fake-quant
twin (after :func:`hardware.quantize.plan.fake_quantize` or
:func:`hardware.quantize.twin.dequantize`, compare ``>``), and differentiably for hardware-aware
fine-tuning (tensors may require grad).

Layouts per sample (no batch axis): conv tensors ``(C, H, W)``; token tensors ``(C, h, w)`` with
N = h·w tokens in row-major order (the network's ``(C, N)`` is the same memory, C-order).
Float semantics per logical step t (τ = ``tau``, forward Euler, hard reset to 0):

- ``FHostInput``: ``x = conv2d(image, weight, stride, padding) + bias`` (op ``conv2d``) or
  ``x = weight[ids] + bias`` (op ``embedding``: token ids ``[B, L]``), constant over t;
- ``FSynapse``: ``c = conv2d(s, weight)`` (kind ``conv``), ``c = weight @ s`` per token
  (kind ``token_linear``) or on the flat vector (kind ``dense``), no bias (biases live on the
  consumer);
- ``FMaxPool``: max over windows of the current, padding −∞;
- ``FAttention``: ``c = qk_scale · Q_h (K_hᵀ V_h)`` per head, input q|k|v stacked on channels;
- ``FSpikeInput``: an external 0/1 raster (foreign networks), ``[B, T, *shape]`` per batch;
- ``FLIF``: ``X = Σ in-currents + bias``; ``H = V + (X − V)/τ``; spike ``H ≥ θ`` (or ``>``);
  foreign neurons (:mod:`hardware.lower.from_foreign_nir`) may add a synaptic current
  (``tau_syn``), reset by subtraction (``reset_sub``), no leak (``τ = inf``: ``H = V + X``),
  ``τ = 1`` (stateless: ``H = X``) or no spikes (``role = "li"``: the output is ``H``);
- ``FReadout``: ``X_t = Σ in-currents + bias``; feature ``= head_weight · Σ_t w_t·mean_tok X_t
  + head_bias``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from spikeclip.errors import UnsupportedError


class FloatGraphError(UnsupportedError, ValueError):
    """A float graph (or the model/NIR graph it is built from) cannot be lowered; names the node."""


@dataclass(frozen=True, kw_only=True, eq=False)
class FNode:
    """Common fields: ``name`` (unique; equals the integer layer's name) and provenance ``meta``."""

    name: str
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, eq=False)
class FHostInput(FNode):
    """Static host current, float64: ``op = "conv2d"``: ``conv2d(image, weight) + bias``
    ``(C_out, H', W')``; ``op = "embedding"``: ``weight[ids] + bias`` ``(L, D)`` (token table
    ``weight`` ``(V, D)``, position table ``bias`` ``(L, D)``, ``in_shape`` ``(L,)``).

    When ``bias_scale`` is set the current is fake-quantized as the host injects it:
    ``x̂ = bias_grid(x·bias_scale, bias_exp, per_value) / bias_scale`` (``ste``:
    straight-through; ``per_value``: each value at its own exponent ≥ ``bias_exp``).
    """

    weight: Tensor
    bias: Tensor
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    bias_scale: float | None = None
    bias_exp: int = 0
    per_value: bool = False
    ste: bool = False
    op: str = "conv2d"


@dataclass(frozen=True, kw_only=True, eq=False)
class FSpikeInput(FNode):
    """External spike raster (a foreign network's input): ``shape`` per step, values 0/1 (or
    graded); the executor takes ``[B, T, *shape]`` (batch first, like calibration data)."""

    shape: tuple[int, ...]


@dataclass(frozen=True, kw_only=True, eq=False)
class FSynapse(FNode):
    """Spikes → current. ``kind`` ``conv`` (weight ``(C_out, C_in, kH, kW)``),
    ``token_linear`` (weight ``(C_out, C_in)``, shared by all tokens) or ``dense`` (weight
    ``(N_out, N_in)`` on flat ``(N_in,)`` → ``(N_out,)``: Lava's Dense). A ``conv`` reads its
    source as ``in_shape`` (a 1-D conv's ``(C, L)`` source as ``(C, 1, L)``). ``delay``: the
    source's spikes reach it that many logical steps late (a foreign NIR ``Delay``; 0 before;
    no integer layer has this yet: ``hardware.quantize.build.check_neurons`` refuses it)."""

    kind: str
    weight: Tensor
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    delay: int = 0


@dataclass(frozen=True, kw_only=True, eq=False)
class FMaxPool(FNode):
    """Max-pool over currents, ``(C, H, W)`` → ``(C, H', W')``, padding −∞."""

    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    kernel: tuple[int, int] = (3, 3)
    stride: tuple[int, int] = (2, 2)
    padding: tuple[int, int] = (1, 1)


@dataclass(frozen=True, kw_only=True, eq=False)
class FAttention(FNode):
    """``qk_scale · Q_h (K_hᵀ V_h)``: ``(3·channels, h, w)`` spikes → ``(channels, h, w)``."""

    channels: int
    heads: int
    qk_scale: float
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]


@dataclass(frozen=True, kw_only=True, eq=False)
class FLIF(FNode):
    """LIF population. ``bias`` float64 of ``shape`` (the sum of all its inputs' BN shifts).

    ``theta`` threshold, ``tau`` time constant (steps). ``compare`` ``None`` follows the run's
    rule; ``">="`` forces it (the attention LIF's Loihi tie-break bias makes ``>`` equal ``>=``,
    see :mod:`hardware.quantize.image`). ``role``: ``"lif"`` or ``"attention"``.
    """

    shape: tuple[int, ...]
    theta: float
    tau: float
    bias: Tensor
    role: str = "lif"
    compare: str | None = None
    tau_syn: float | None = None
    reset_sub: float | None = None
    recurrent: Tensor | None = None

    @property
    def is_plain(self) -> bool:
        """True for the SpikeCLIP LIF (leaky, no synaptic current, reset to 0, spiking)."""
        return (self.tau_syn is None and self.reset_sub is None and self.role != "li"
                and self.recurrent is None and 1 < self.tau < float("inf"))


@dataclass(frozen=True, kw_only=True, eq=False)
class FReadout(FNode):
    """Host readout of the residual stream; ``bias`` ``(D,)`` the sum of the branches' shifts."""

    in_shape: tuple[int, ...]
    bias: Tensor
    time_weights: Tensor
    head_weight: Tensor | None
    head_bias: Tensor | None
    token_axes: tuple[int, ...] = (1, 2)


@dataclass(frozen=True, kw_only=True, eq=False)
class FloatGraph:
    """Nodes in topological order, edges ``(src, dst)``, ``T`` steps, one ``tau`` for all LIFs;
    ``compare``: the float model's spike rule (``">="``, or ``">"`` for a strict model)."""

    nodes: tuple[FNode, ...]
    edges: tuple[tuple[str, str], ...]
    T: int
    tau: float
    input_shape: tuple[int, ...]
    compare: str = ">="

    def __post_init__(self) -> None:
        names = [n.name for n in self.nodes]
        if len(set(names)) != len(names):
            raise FloatGraphError("float graph: duplicate node names")
        seen: set[str] = set()
        for node in self.nodes:
            for src in self.inputs(node.name):
                if src not in seen:
                    raise FloatGraphError(
                        f"float graph node {node.name!r}: input {src!r} is not an earlier node"
                    )
            seen.add(node.name)

    def node(self, name: str) -> FNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"float graph has no node {name!r}")

    def inputs(self, name: str) -> tuple[str, ...]:
        return tuple(s for s, d in self.edges if d == name)

    def consumers(self, name: str) -> tuple[str, ...]:
        return tuple(d for s, d in self.edges if s == name)

    def replace(self, nodes: Mapping[str, FNode]) -> FloatGraph:
        """A copy with the named nodes swapped (same edges)."""
        return FloatGraph(
            nodes=tuple(nodes.get(n.name, n) for n in self.nodes),
            edges=self.edges,
            T=self.T,
            tau=self.tau,
            input_shape=self.input_shape,
            compare=self.compare,
        )
