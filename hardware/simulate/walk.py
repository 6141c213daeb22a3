"""The network walk both simulator paths share: one step rule per layer kind, looked up by the
layer record's ``KIND`` in the path's table (:data:`hardware.simulate.reference.STEP`,
:data:`hardware.simulate.fast.STEP`), and the bookkeeping every rule shares.

A new layer kind is one entry per table. :func:`walk` checks every layer's kind against the
table before any work and raises :class:`MissingRuleError` naming the path, the kind and the
layer. A rule ``step(w, layer)`` reads its sources' outputs from ``w.out`` (in its path's
representation: int64 numpy for the reference, :class:`hardware.simulate.fast.Exact` tensors for
the fast path), writes its own there, and records its counters in ``w.record`` (keyed by the
:class:`SimResult` field names). A source's output is dropped after its last consumer ran (peak
memory). The rules both paths share are here: the host input (:func:`step_host_input`) and the
LIF bias (:meth:`Walk.lif_bias`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hardware.ir import fixed
from hardware.ir.layers import HostInputLayer, Layer, LIFLayer
from hardware.ir.network import LoihiNetwork
from hardware.simulate.host_input import host_injected_bias
from hardware.simulate.result import MissingRuleError, SimResult

#: The per-layer fields of :class:`SimResult` a walk fills.
RESULT_FIELDS = ("spike_counts", "features", "overflow_u", "saturations_v", "ties",
                 "int32_wraps", "conv_wraps", "host_clipped", "max_abs_a", "max_abs_u",
                 "max_abs_v", "spikes", "v", "u", "stream")


@dataclass
class LIFRun:
    """What a path's LIF recurrence returns: ``spikes`` ``[T, B, *shape]`` in the path's
    representation (numpy int8 / torch float32 0./1.), the counters (neuron-steps), the largest
    |u| before the correction and |v| before saturation, and with ``keep_states`` the int64
    numpy states ``v`` (after the spike reset) and ``u``, ``[T, B, *shape]``."""

    spikes: Any
    overflow: int
    saturated: int
    ties: int
    int32_wraps: int
    max_u: int
    max_v: int
    v: np.ndarray | None = None
    u: np.ndarray | None = None


@dataclass
class Walk:
    """The state of one simulation: ``T``, the batch size ``B`` (set by the input rules), the
    outputs ``out`` of the layers run so far, the host inputs' injected biases ``host_bias``
    (v-units ``[B, *out_shape]``) and the :class:`SimResult` fields being filled (``record``)."""

    network: LoihiNetwork
    given: Mapping[str, Any]
    keep: bool
    T: int
    B: int = 0
    out: dict[str, Any] = field(default_factory=dict)
    host_bias: dict[str, np.ndarray] = field(default_factory=dict)
    record: dict[str, dict] = field(default_factory=lambda: {f: {} for f in RESULT_FIELDS})

    def sources(self, name: str) -> list[str]:
        """The layers feeding ``name`` with spikes or currents (host bias edges left out)."""
        return [e.src for e in self.network.in_edges(name) if e.src not in self.host_bias]

    def lif_bias(self, layer: LIFLayer) -> np.ndarray:
        """The LIF's bias in v-units: ``bias_mant << bias_exp`` plus every host injection into
        it, broadcastable to ``[B, *shape]`` (int64)."""
        bias = fixed.bias_s13e3(layer.bias_mant, layer.bias_exp)
        for e in self.network.in_edges(layer.name):
            if e.src in self.host_bias:
                bias = bias + self.host_bias[e.src].reshape(self.B, *layer.shape)
        return bias

    def record_lif(self, name: str, run: LIFRun, max_a: int, counts: np.ndarray,
                   spikes: np.ndarray | None) -> None:
        """Store a LIF's counters, its spike counts ``[T, *shape]`` (int64, summed over the
        batch) and, with ``keep``, its bool spikes and int64 states ``[T, B, *shape]``."""
        r = self.record
        r["spike_counts"][name] = counts
        r["overflow_u"][name], r["saturations_v"][name] = run.overflow, run.saturated
        r["ties"][name], r["int32_wraps"][name] = run.ties, run.int32_wraps
        r["max_abs_a"][name] = max_a
        r["max_abs_u"][name], r["max_abs_v"][name] = run.max_u, run.max_v
        if self.keep:
            r["spikes"][name], r["v"][name], r["u"][name] = spikes, run.v, run.u

    def result(self) -> SimResult:
        return SimResult(T=self.T, batch_size=int(self.B), **self.record)


#: A path's rule for one layer kind: reads ``w.out`` of the sources, writes ``w.out[layer]``.
Step = Callable[[Walk, Layer], None]


def step_host_input(w: Walk, layer: HostInputLayer) -> None:
    """Both paths: the per-sample bias the host input writes into its LIF (13-bit mantissas;
    saturated ones counted once per step, as Lava injects the bias every step)."""
    w.host_bias[layer.name], n_clip, w.B = host_injected_bias(layer, w.given[layer.name])
    w.record["host_clipped"][layer.name] = n_clip * w.T


def walk(network: LoihiNetwork, given: Mapping[str, Any], steps: Mapping[str, Step],
         backend: str, keep_states: bool) -> SimResult:
    """Run ``network`` on the inputs ``given`` (``{input layer: array}``) with the rules
    ``steps`` (``{KIND: rule}``) of the path called ``backend``, in topological order.

    Raises :class:`MissingRuleError` before any work when a layer's kind has no rule.
    """
    for layer in network.layers:
        if layer.KIND not in steps:
            raise MissingRuleError(backend, layer.KIND, layer.name)
    w = Walk(network=network, given=given, keep=keep_states, T=network.T)
    order = network.topological_order()
    pending = {name: len(network.out_edges(name)) for name in order}
    for name in order:
        layer = network.layer(name)
        steps[layer.KIND](w, layer)
        for e in network.in_edges(name):
            pending[e.src] -= 1
            if pending[e.src] == 0:
                w.out.pop(e.src, None)
    return w.result()
