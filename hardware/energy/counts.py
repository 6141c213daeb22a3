"""Exact per-layer operation counts from spiking activity (count first, price later).

Every counter takes the activity of one layer as plain integer arrays with a leading
``[T, B, ...]`` (time steps, samples) and returns one `LayerCounts`. All count fields are
**totals over the B samples and the T steps** of that activity; `LayerCounts.per_sample` divides
by B (never by T). Activity comes from any engine that records it (the bit-accurate simulator's
per-layer spikes, the float model's hooks, a hand-built raster in a test):

- spikes / spike counts: integer or bool arrays, values ≥ 0 (1 = one spike; k > 1 = k events,
  e.g. an integer multi-spike, each counted as k synaptic events, sinabs' rule);
- layouts: linear ``[T, B, *rows, F_in]`` (features last), conv ``[T, B, C_in, *spatial]``
  (channels first, as torch), attention Q/K/V ``[T, B, H, N, d]`` (use `split_heads` on
  ``[T, B, C, N]`` with channel index ``head·d + j``), LIF output ``[T, B, *neurons]``;
- batch-summed spikes (``SimResult.spike_counts``: ``[T, *shape]`` summed over B samples): pass
  ``batch_summed=B`` to the linear, conv and LIF counters (their counts are linear in the
  spikes, so the totals are the same). Attention popcounts are not linear in the spikes: it
  needs per-sample Q/K/V (``simulate(..., keep_states=True)``).

Counts (energy_digest §7.A): ``ann_macs`` (the ANN twin, T = 1), ``snn_dense_ops`` (Σ_t of the
dense ops a non-event-driven engine executes), ``sop_exact`` (Σ_t Σ events × true fan-out),
``sop_rate`` (the literature's fr·T·FLOPs, comparison only), ``dense_macs`` (MACs on real-valued
inputs), bias adds, ``neuron_updates`` and ``spikes_out``. One MAC = one multiply-accumulate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from hardware.energy.errors import EnergyCountError
from hardware.energy.fanout import conv_out_len, spatial_fanout

InKind = Literal["binary", "integer", "dense", "none"]
AttentionOrder = Literal["q_ktv", "qkt_v"]
ATTENTION_ORDERS: tuple[str, ...] = ("q_ktv", "qkt_v")

#: Integer count fields of `LayerCounts` that add up across layers.
COUNT_FIELDS: tuple[str, ...] = (
    "ann_macs",
    "ann_bias_adds",
    "snn_dense_ops",
    "sop_exact",
    "dense_macs",
    "bias_adds",
    "neuron_updates",
    "spikes_out",
)


@dataclass(frozen=True, kw_only=True)
class LayerCounts:
    """Exact operation counts of one layer, summed over ``samples`` samples and ``steps`` steps.

    ``op`` is ``conv``, ``linear``, ``attention`` or ``lif``; ``in_kind`` is ``binary`` (0/1
    spikes), ``integer`` (spike counts > 1 occur), ``dense`` (real-valued input, e.g. the image
    into conv0 or the token mean into the head) or ``none`` (a neuron layer). ``in_events`` is the
    sum of the input values and ``in_elements`` their number over ``[T, B, ...]``, so
    ``fr_in = in_events / in_elements``. ``in_numel``/``out_numel`` are per sample per step.
    ``weights`` is the number of weight parameters (memory pricing). ``dense_runs`` is how often
    a dense-input layer runs per sample (T if repeated each step, 1 if hoisted); 0 otherwise.
    ``sop_rate`` is a float (fr·T·FLOPs·B); all other counts are exact integers.
    ``order`` names the attention evaluation order (``q_ktv`` = Q·(KᵀV), ``qkt_v`` = (QKᵀ)·V).
    """

    name: str
    op: str
    in_kind: InKind
    samples: int
    steps: int
    in_events: int = 0
    in_elements: int = 0
    in_numel: int = 0
    out_numel: int = 0
    weights: int = 0
    ann_macs: int = 0
    ann_bias_adds: int = 0
    snn_dense_ops: int = 0
    sop_exact: int = 0
    sop_rate: float = 0.0
    dense_macs: int = 0
    dense_runs: int = 0
    bias_adds: int = 0
    neuron_updates: int = 0
    spikes_out: int = 0
    order: str = ""

    @property
    def fr_in(self) -> float:
        """Input firing rate: events per input element per step (0 for dense/neuron layers)."""
        return self.in_events / self.in_elements if self.in_elements else 0.0

    @property
    def fr_out(self) -> float:
        """Output firing rate of a neuron layer: spikes per neuron update."""
        return self.spikes_out / self.neuron_updates if self.neuron_updates else 0.0

    def per_sample(self, field: str) -> float:
        """``getattr(self, field) / samples``: a count per sample (all T steps included)."""
        return getattr(self, field) / self.samples


def _activity(x: object, name: str, what: str, min_ndim: int) -> np.ndarray:
    """``x`` as an int64 array of non-negative integer counts with ≥ ``min_ndim`` axes."""
    a = np.asarray(x)
    if a.ndim < min_ndim:
        raise EnergyCountError(f"{name}: {what} needs ≥ {min_ndim} axes [T, B, ...], got {a.shape}")
    if a.dtype == np.bool_:
        return a.astype(np.int64)
    if not np.issubdtype(a.dtype, np.number):
        raise EnergyCountError(f"{name}: {what} has dtype {a.dtype}, expected integer spike counts")
    ai = a.astype(np.int64)
    if np.issubdtype(a.dtype, np.floating) and not np.array_equal(ai, a):
        raise EnergyCountError(f"{name}: {what} holds non-integer values (not spike counts)")
    if ai.size and ai.min() < 0:
        raise EnergyCountError(f"{name}: {what} holds negative values (not spike counts)")
    return ai


def _kind(a: np.ndarray) -> InKind:
    return "integer" if a.size and a.max() > 1 else "binary"


def _batched(
    x: object, name: str, what: str, min_ndim: int, batch_summed: int
) -> tuple[np.ndarray, int, InKind]:
    """``(spikes [T, B', ...], B, kind)``; batch-summed ``[T, ...]`` gets B' = 1 and B given."""
    if batch_summed < 0:
        raise EnergyCountError(f"{name}: batch_summed={batch_summed} must be ≥ 0")
    if not batch_summed:
        a = _activity(x, name, what, min_ndim)
        return a, a.shape[1], _kind(a)
    a = _activity(x, name, what, min_ndim - 1)[:, None]
    return a, batch_summed, "binary"  # sums of binary spikes of one neuron over the batch


def linear_counts(
    *, name: str, x: object, out_features: int, bias: bool = False, batch_summed: int = 0
) -> LayerCounts:
    """Counts of ``y = x·Wᵀ (+ b)`` on spikes ``x`` of shape ``[T, B, *rows, F_in]``.

    Every event reaches all ``out_features`` outputs: ``sop_exact = Σx · F_out``; dense ops per
    step per sample ``rows·F_in·F_out``. A 1×1 conv / per-token ``Conv1d`` is this layer with
    the channel axis moved last. Bias adds: one per output per step (``bias=True``).
    """
    a, b, kind = _batched(x, name, "input", 3, batch_summed)
    t, f_in = a.shape[0], a.shape[-1]
    rows = int(np.prod(a.shape[2:-1], dtype=np.int64))
    per_step = rows * f_in * out_features
    events = int(a.sum())
    out_numel = rows * out_features
    return LayerCounts(
        name=name,
        op="linear",
        in_kind=kind,
        samples=b,
        steps=t,
        in_events=events,
        in_elements=t * b * rows * f_in,
        in_numel=rows * f_in,
        out_numel=out_numel,
        weights=f_in * out_features,
        ann_macs=per_step * b,
        ann_bias_adds=out_numel * b if bias else 0,
        snn_dense_ops=per_step * t * b,
        sop_exact=events * out_features,
        sop_rate=events * per_step / (rows * f_in),
        bias_adds=out_numel * t * b if bias else 0,
    )


def conv_counts(
    *,
    name: str,
    x: object,
    out_channels: int,
    kernel: Sequence[int],
    stride: Sequence[int] | None = None,
    padding: Sequence[int] | None = None,
    dilation: Sequence[int] | None = None,
    groups: int = 1,
    bias: bool = False,
    batch_summed: int = 0,
) -> LayerCounts:
    """Counts of an N-d convolution on spikes ``x`` of shape ``[T, B, C_in, *spatial]``.

    ``sop_exact = Σ_{t,b,c,pos} x · fanout[pos] · C_out/groups`` with the exact border/stride
    fan-out of `hardware.energy.fanout`; dense MACs per step per sample
    ``prod(out spatial) · C_out · C_in/groups · prod(kernel)`` (no bias).
    """
    a, b, kind = _batched(x, name, "input", 4, batch_summed)
    t, c_in = a.shape[0], a.shape[2]
    spatial = a.shape[3:]
    nd = len(spatial)
    stride = tuple(stride or (1,) * nd)
    padding = tuple(padding or (0,) * nd)
    dilation = tuple(dilation or (1,) * nd)
    if c_in % groups or out_channels % groups:
        raise EnergyCountError(
            f"{name}: groups={groups} must divide C_in={c_in} and C_out={out_channels}"
        )
    fan = spatial_fanout(spatial, kernel, stride, padding, dilation)
    out_sp = [
        conv_out_len(*g) for g in zip(spatial, kernel, stride, padding, dilation, strict=True)
    ]
    out_numel = out_channels * int(np.prod(out_sp, dtype=np.int64))
    k = int(np.prod(kernel, dtype=np.int64))
    per_step = out_numel * (c_in // groups) * k
    events_map = a.sum(axis=(0, 1, 2))
    events = int(events_map.sum())
    in_numel = c_in * int(np.prod(spatial, dtype=np.int64))
    return LayerCounts(
        name=name,
        op="conv",
        in_kind=kind,
        samples=b,
        steps=t,
        in_events=events,
        in_elements=t * b * in_numel,
        in_numel=in_numel,
        out_numel=out_numel,
        weights=out_channels * (c_in // groups) * k,
        ann_macs=per_step * b,
        ann_bias_adds=out_numel * b if bias else 0,
        snn_dense_ops=per_step * t * b,
        sop_exact=int((events_map * fan).sum()) * (out_channels // groups),
        sop_rate=events * per_step / in_numel,
        bias_adds=out_numel * t * b if bias else 0,
    )


def recurrent_counts(
    *, name: str, spikes: object, weights: object, batch_summed: int = 0
) -> LayerCounts:
    """Counts of a population's feedback synapse ``W_rec`` (int ``(N, N)``, ``out × in``) from
    its own spikes ``[T, B, N]`` (or batch-summed ``[T, N]``), Lava ``Dense`` latency: step t
    receives ``W_rec @ s[t−1]`` and ``s[−1] = 0``, so the last step's spikes reach no step of
    the sample (the feedback is cleared at each sample's start) and are no events here.

    ``sop_exact = Σ_{t<T−1} Σ_j s_j[t] · nnz(W_rec[:, j])`` (each delivered spike reaches the
    nonzero synapses of its column); the dense side is the synapse as a linear layer on the
    delayed spikes: ``snn_dense_ops = N·N·T·B``, and the ANN twin is one step of an RNN cell with
    the same matrix, ``ann_macs = N·N`` per sample (the twin runs once, T = 1, with a zero
    state: a dense engine still executes the product).
    """
    a, b, kind = _batched(spikes, name, "spikes", 3, batch_summed)
    w = np.asarray(weights)
    n = a.shape[-1]
    if w.shape != (n, n):
        raise EnergyCountError(f"{name}: recurrent weights {w.shape} for {n} neurons")
    delayed = np.zeros_like(a)
    delayed[1:] = a[:-1]
    base = linear_counts(name=name, x=delayed, out_features=n, batch_summed=0)
    fanout = np.count_nonzero(w, axis=0).astype(np.int64)  # [N]: synapses of each source j
    t = a.shape[0]
    return replace(base, samples=b, in_kind=kind, ann_macs=n * n * b, snn_dense_ops=n * n * t * b,
                   in_elements=t * b * n, sop_exact=int((delayed * fanout).sum()))


def dense_counts(
    *,
    name: str,
    op: str,
    macs_per_run: int,
    in_numel: int,
    out_numel: int,
    weights: int,
    samples: int,
    steps: int,
    runs_per_sample: int,
    bias: bool = False,
) -> LayerCounts:
    """Counts of a weight layer on a real-valued input (conv0 on the image, the readout head).

    ``macs_per_run`` is the layer's MACs for one sample and one evaluation; it runs
    ``runs_per_sample`` times per sample (``steps`` if repeated every step, 1 if hoisted — say
    which in the report). All its work is ``dense_macs``; there are no synaptic events.
    """
    if runs_per_sample not in (1, steps):
        raise EnergyCountError(f"{name}: runs_per_sample={runs_per_sample} must be 1 or T={steps}")
    macs = macs_per_run * runs_per_sample * samples
    return LayerCounts(
        name=name,
        op=op,
        in_kind="dense",
        samples=samples,
        steps=steps,
        in_numel=in_numel,
        out_numel=out_numel,
        weights=weights,
        ann_macs=macs_per_run * samples,
        ann_bias_adds=out_numel * samples if bias else 0,
        snn_dense_ops=macs,
        dense_macs=macs,
        dense_runs=runs_per_sample,
        bias_adds=out_numel * runs_per_sample * samples if bias else 0,
    )


def split_heads(x: object, heads: int) -> np.ndarray:
    """``[T, B, C, N]`` (channel = head·d + j) → ``[T, B, H, N, d]``."""
    a = np.asarray(x)
    if a.ndim != 4 or a.shape[2] % heads:
        raise EnergyCountError(f"split_heads: shape {a.shape} is not [T, B, C, N] with H | C")
    t, b, c, n = a.shape
    return a.reshape(t, b, heads, c // heads, n).swapaxes(3, 4)


def attention_counts(
    *, name: str, q: object, k: object, v: object, order: AttentionOrder
) -> LayerCounts:
    """Counts of spike×spike attention ``Q Kᵀ V`` (no softmax) per head; Q/K/V ``[T, B, H, N, d]``.

    ``order="q_ktv"``: M = KᵀV costs its AND-popcount ``Σ_n |K_n|·|V_n|``; Q·M costs
    ``nnz(Q)·d`` (spike × integer). Dense per head per step: ``2·N·d²``.
    ``order="qkt_v"``: A = QKᵀ costs ``Σ_j colsum(Q)_j·colsum(K)_j``; A·V costs ``nnz(V)·N``.
    Dense: ``2·N²·d``. ``sop_rate`` is Spikingformer's hand formula
    ``T·H·N·d²·(min(fr_K, fr_V) + fr_Q)`` (for comparison only). The ANN twin count uses the
    same order.
    """
    qa, ka, va = (_activity(m, name, w, 5) for m, w in ((q, "Q"), (k, "K"), (v, "V")))
    if not qa.shape == ka.shape == va.shape:
        raise EnergyCountError(f"{name}: Q {qa.shape}, K {ka.shape}, V {va.shape} differ")
    if order not in ATTENTION_ORDERS:
        raise EnergyCountError(f"{name}: attention order {order!r} not in {ATTENTION_ORDERS}")
    t, b, h, n, d = qa.shape
    if order == "q_ktv":
        first = int(np.einsum("tbhn,tbhn->", ka.sum(-1), va.sum(-1)))
        second = int(qa.sum()) * d
        per_step = 2 * h * n * d * d
    else:
        first = int(np.einsum("tbhd,tbhd->", qa.sum(-2), ka.sum(-2)))
        second = int(va.sum()) * n
        per_step = 2 * h * n * n * d
    numel = qa.size
    rate = attention_sop_rate((t, b, h, n, d), int(qa.sum()), int(ka.sum()), int(va.sum()))
    kinds = {_kind(m) for m in (qa, ka, va)}
    return LayerCounts(
        name=name,
        op="attention",
        in_kind="integer" if "integer" in kinds else "binary",
        samples=b,
        steps=t,
        in_events=int(qa.sum() + ka.sum() + va.sum()),
        in_elements=3 * numel,
        in_numel=3 * h * n * d,
        out_numel=h * n * d,
        ann_macs=per_step * b,
        snn_dense_ops=per_step * t * b,
        sop_exact=first + second,
        sop_rate=rate,
        order=order,
    )


def attention_sop_rate(shape: Sequence[int], q: int, k: int, v: int) -> float:
    """Spikingformer's ``T·H·N·d²·(min(fr_K, fr_V) + fr_Q)·B`` for Q/K/V ``[T, B, H, N, d]``
    with ``q``, ``k``, ``v`` spikes in all (``fr = spikes / numel``)."""
    t, b, h, n, d = shape
    numel = t * b * h * n * d
    fr_q, fr_k, fr_v = (float(m) / numel for m in (q, k, v))
    return t * h * n * d * d * (min(fr_k, fr_v) + fr_q) * b


def lif_counts(*, name: str, spikes: object, batch_summed: int = 0) -> LayerCounts:
    """Neuron updates (``T·B·neurons``: every neuron updates every step) and spikes emitted.

    ``spikes`` is the layer's output ``[T, B, *neurons]`` (0/1).
    """
    a, b, kind = _batched(spikes, name, "spikes", 3, batch_summed)
    t = a.shape[0]
    neurons = int(np.prod(a.shape[2:], dtype=np.int64))
    return LayerCounts(
        name=name,
        op="lif",
        in_kind="none",
        samples=b,
        steps=t,
        out_numel=neurons,
        neuron_updates=t * b * neurons,
        spikes_out=int(a.sum()),
    )


def total(layers: Sequence[LayerCounts], field: str) -> int | float:
    """Sum of one count field over layers (totals over their common batch)."""
    return sum(getattr(layer, field) for layer in layers)
