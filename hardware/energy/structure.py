"""Layer geometry of a model from its `describe()` records; dense operations per time step.

`layer_specs` keeps the records that do arithmetic the energy report counts — weight layers
(``conv2d``, ``conv1d``, ``linear``), the spike×spike attention core and the neurons — and marks
each weight layer's input as ``dense`` (real-valued: the image into conv0, the readout into the
head) or spiking (its source record is a neuron). BatchNorm is taken as folded into the
preceding weights; max-pool, residual adds, token mean and the time-weighted readout are not
MACs. Shapes are per sample per step (``(C, H, W)``, ``(C, N)``, ``(F,)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hardware.energy.counts import ATTENTION_ORDERS
from hardware.energy.errors import EnergyCountError
from spikeclip.config import LayerRecord

WEIGHT_KINDS = ("conv2d", "conv1d", "linear")
NEURON_KINDS = ("lif", "relu", "ann")
ATTENTION_KIND = "spiking_attention"


@dataclass(frozen=True, kw_only=True)
class LayerSpec:
    """One counted layer: ``op`` is ``conv``, ``linear``, ``attention`` or ``neuron``.

    Conv fields (``kernel``, ``stride``, ``padding``, ``groups``) follow torch; ``heads`` and
    ``head_dim`` describe attention (``in_shape`` = ``(C, N)`` with C = heads·head_dim).
    ``dense_input`` is True for a weight layer fed by real values. ``sources`` names the records
    feeding it (attention: the Q, K, V neurons), i.e. whose spikes are its input.
    """

    name: str
    op: str
    sources: tuple[str, ...] = ()
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    kernel: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()
    padding: tuple[int, ...] = ()
    groups: int = 1
    bias: bool = False
    heads: int = 0
    head_dim: int = 0
    dense_input: bool = False

    @property
    def weights(self) -> int:
        """Weight parameters (bias excluded)."""
        if self.op == "conv":
            k = int(np.prod(self.kernel, dtype=np.int64))
            return self.out_shape[0] * self.in_shape[0] // self.groups * k
        if self.op == "linear":
            return self.in_shape[-1] * self.out_shape[-1]
        return 0

    def macs_per_step(self, order: str) -> int:
        """Dense MACs for one sample and one step (attention: in evaluation ``order``)."""
        if self.op == "conv":
            out = int(np.prod(self.out_shape, dtype=np.int64))
            k = int(np.prod(self.kernel, dtype=np.int64))
            return out * self.in_shape[0] // self.groups * k
        if self.op == "linear":
            return self.weights
        if self.op == "attention":
            if order not in ATTENTION_ORDERS:
                raise EnergyCountError(f"{self.name}: attention order {order!r} unknown")
            n, d, h = self.in_shape[1], self.head_dim, self.heads
            return 2 * h * n * d * d if order == "q_ktv" else 2 * h * n * n * d
        return 0


def _spec(rec: LayerRecord, dense: bool) -> LayerSpec | None:
    """The `LayerSpec` of one record, or None for records that are not counted."""
    common = dict(
        name=rec.name,
        sources=tuple(rec.inputs),
        in_shape=tuple(rec.in_shape),
        out_shape=tuple(rec.out_shape),
    )
    a = rec.attrs
    if rec.kind in ("conv2d", "conv1d"):
        nd = len(a["kernel_size"])
        return LayerSpec(
            op="conv",
            kernel=tuple(a["kernel_size"]),
            stride=tuple(a.get("stride", (1,) * nd)),
            padding=tuple(a.get("padding", (0,) * nd)),
            groups=int(a.get("groups", 1)),
            bias=bool(a.get("bias", False)),
            dense_input=dense,
            **common,
        )
    if rec.kind == "linear":
        return LayerSpec(op="linear", bias=bool(a.get("bias", False)), dense_input=dense, **common)
    if rec.kind == ATTENTION_KIND:
        heads, head_dim = int(a["num_heads"]), int(a["head_dim"])
        return LayerSpec(op="attention", heads=heads, head_dim=head_dim, **common)
    if rec.kind in NEURON_KINDS:
        return LayerSpec(op="neuron", **common)
    return None


def layer_specs(records: Sequence[LayerRecord], prefix: str = "") -> list[LayerSpec]:
    """Counted layers of ``records`` (in order) whose name starts with ``prefix``.

    A weight layer's input is dense unless every record feeding it is a neuron layer.
    """
    kinds = {r.name: r.kind for r in records}
    specs = []
    for rec in records:
        if rec.name.startswith(prefix):
            dense = not all(kinds.get(src) in NEURON_KINDS for src in rec.inputs)
            spec = _spec(rec, dense)
            if spec is not None:
                specs.append(spec)
    return specs


def dense_ops_per_step(specs: Sequence[LayerSpec], order: str) -> int:
    """Σ dense MACs of one sample and one step over all weight layers and attention cores."""
    return sum(s.macs_per_step(order) for s in specs)


def neurons_per_step(specs: Sequence[LayerSpec]) -> int:
    """Neurons updated per sample per step (Σ over neuron layers of their size)."""
    return sum(int(np.prod(s.out_shape, dtype=np.int64)) for s in specs if s.op == "neuron")
