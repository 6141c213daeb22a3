"""How much memory a Lava run of a :class:`~export.lava.graph.LavaGraph` adds, before it starts.

:func:`estimate_lava_memory` counts, from the plan alone (no Lava process is created), the values
of every array the run's Lava processes hold, and turns them into bytes with a fixed runtime
base and a copy factor; :func:`check_lava_memory` refuses the run with
:class:`~spikeclip.errors.InsufficientMemoryError` (exit 9) when that exceeds
:func:`spikeclip.memory.available_memory`.

Counted values (exact, from the network), for ``B`` samples streamed:

- per process (one per layer, one more per distinct delayed out-edge, a LIF's feedback
  synapse): every array field of its layer (weights, biases, per-neuron exponents, recurrent
  weights), twice for a ``DelayDense`` (its ``delays`` matrix has the weights' shape), plus its
  output frames, ``(d + 1)·out`` for the replica delayed by ``d`` (its delay line);
- per LIF population: ``u`` and ``v`` (2 values per neuron);
- the spike recorder's ``words``: ``n_steps · ⌈Σ LIF neurons / 48⌉`` (``n_steps = B·T + max
  depth``); each readout's ``stream`` and ``features``: ``B·T·in + B·F``; each host input's
  per-sample injected biases, a mantissa and an exponent each: ``2·B·out``; each spike or
  current input's raster: ``B·T·out``.

Bytes: ``RUNTIME_BASE_BYTES + COPY_FACTOR · VALUE_BYTES · values``. Counted (exact): the values.
Chosen: ``VALUE_BYTES = 8`` (Lava's Vars are int32 or float64: 8 bounds both). Fitted:
``RUNTIME_BASE_BYTES`` = 512 MiB (Lava's runtime and its ~25-90 forked interpreters dirtying
copy-on-write pages, arrays aside) and ``COPY_FACTOR`` = 6 (the parent's Var, the child process
model's copy and per-step temporaries of each array). The line through the official and paper
points has base 0.44 GiB and factor 4.7; both were rounded up so that the estimate is above every
measured Lava-run increment: peak PSS of the whole process tree during ``run_lava`` minus the
tree's PSS before it (``benchmarks/bench_lava_memory.py``, 1 sample; official and paper from
``benchmarks/results/lava_delay_conv.json``, tiny measured 2026-12-07 at load ~1.3):

=================== =========== ========= ============= ============== ===============
image tower          processes   values    array bytes   measured        estimate (1 / 2
                                                         (peak − base)   samples)
=================== =========== ========= ============= ============== ===============
tiny                 43          91,368    0.7 MiB       0.25 GiB        0.504 / 0.504 GiB
default (digits.pt)  26          137,603   1.0 MiB       (not measured)  0.506 / 0.506 GiB
official (96, d 2)   43          2.47 M    18.9 MiB      0.53 GiB        0.611 / 0.613 GiB
paper                89          46.2 M    352 MiB       2.06 GiB        2.56 / 2.58 GiB
=================== =========== ========= ============= ============== ===============

(peaks with the parent: tiny 0.80, official 1.18, paper 3.20 GiB; whole exports in
``bench_export.json``: tiny 1.04, default 1.27, paper 3.99 GiB). The estimate counts what the
run adds, so it is checked against the memory still available; it does not count the text
tower's netx run, which starts after the image tower's processes have ended.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from export.lava.graph import FEEDBACK, LavaGraph
from hardware.ir.layers import (
    CurrentInputLayer,
    DenseLayer,
    HostInputLayer,
    Layer,
    LIFLayer,
    ReadoutLayer,
    SpikeInputLayer,
)
from spikeclip.errors import InsufficientMemoryError
from spikeclip.memory import AvailableMemory, available_memory, format_bytes

#: Bytes per counted value (Lava Vars are int32 or float64).
VALUE_BYTES = 8
#: Fitted: copies of each counted array alive at the peak (parent Var, child model, temporaries).
COPY_FACTOR = 6
#: Fitted: Lava's runtime, its forked process models and their dirtied pages, arrays aside.
RUNTIME_BASE_BYTES = 512 << 20
#: LIF state values per neuron held by the process model (u, v).
LIF_STATE_VALUES = 2
#: Spikes packed per recorder word (``export.lava.procs.recorder.process.WORD_BITS``).
RECORDER_WORD_BITS = 48


@dataclass(frozen=True, kw_only=True)
class LavaMemoryEstimate:
    """Memory a Lava run adds to this process tree, in bytes (see the module docstring).

    processes: Lava processes of the plan (recorder included); values: counted array values;
    n_samples: samples streamed.
    """

    processes: int
    values: int
    n_samples: int

    @property
    def array_bytes(self) -> int:
        """The counted values at ``VALUE_BYTES`` each, once."""
        return VALUE_BYTES * self.values

    @property
    def total_bytes(self) -> int:
        """``RUNTIME_BASE_BYTES + COPY_FACTOR · array_bytes``."""
        return RUNTIME_BASE_BYTES + COPY_FACTOR * self.array_bytes


def estimate_lava_memory(graph: LavaGraph, n_samples: int) -> LavaMemoryEstimate:
    """The :class:`LavaMemoryEstimate` of running ``graph`` on ``n_samples`` (≥ 1) samples."""
    if not isinstance(n_samples, int) or isinstance(n_samples, bool) or n_samples < 1:
        raise ValueError(f"n_samples must be an int >= 1, got {n_samples!r}")
    net = graph.network
    values, processes, lif_neurons = 0, 0, 0
    for name, node in graph.nodes.items():
        layer = net.layer(name)
        out = math.prod(layer.out_shape) if layer.out_shape else 0
        for delay in node.processes:
            processes += 1
            if delay == FEEDBACK:
                continue  # its weights are the LIF's rec_weights, counted below
            values += _array_values(layer) * (2 if isinstance(layer, DenseLayer) and delay else 1)
            values += (delay + 1) * out
        if isinstance(layer, LIFLayer):
            lif_neurons += out
            values += LIF_STATE_VALUES * out
        values += _per_sample_values(layer, net.T) * n_samples
    if lif_neurons:
        processes += 1
        words = -(-lif_neurons // RECORDER_WORD_BITS)
        values += graph.timing.n_steps(n_samples) * words
    return LavaMemoryEstimate(processes=processes, values=values, n_samples=n_samples)


def check_lava_memory(
    estimate: LavaMemoryEstimate, *, what: str, available: AvailableMemory | None = None
) -> AvailableMemory:
    """Return the memory available when ``estimate.total_bytes`` fits in it; else raise
    :class:`InsufficientMemoryError` (exit 9), ``what`` starting the message."""
    available = available if available is not None else available_memory()
    if estimate.total_bytes <= available.bytes:
        return available
    raise InsufficientMemoryError(
        f"{what}: the Lava run needs about {format_bytes(estimate.total_bytes)} "
        f"({estimate.processes} Lava processes, {format_bytes(estimate.array_bytes)} of arrays "
        f"for {estimate.n_samples} sample(s)), but only {format_bytes(available.bytes)} is "
        f"available ({available.source}); refused before starting Lava (run fewer samples with "
        "--run-lava, or --run-lava 0)"
    )


def _array_values(layer: Layer) -> int:
    """Values of every array field of ``layer`` (weights, biases, exponents, …)."""
    return sum(
        int(np.size(v)) for f in fields(layer)
        if isinstance(v := getattr(layer, f.name), np.ndarray)
    )


def _per_sample_values(layer: Layer, T: int) -> int:
    """Values one streamed sample adds: a readout's stream and features, a host input's
    injected biases (mantissa and exponent), a spike or current input's raster (its
    ``RingBuffer``)."""
    if isinstance(layer, SpikeInputLayer | CurrentInputLayer):
        return T * math.prod(layer.out_shape)
    if isinstance(layer, ReadoutLayer):
        return T * math.prod(layer.in_shape) + int(np.shape(layer.head_weight)[0])
    if isinstance(layer, HostInputLayer):
        return 2 * math.prod(layer.out_shape)
    return 0
