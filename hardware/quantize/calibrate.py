"""Calibration statistics, streamed over batches so memory does not grow with the sample count.

The quantizer needs, over all calibration samples: from the float run
(:func:`hardware.lower.graph_run.run_graph`), the largest |synaptic input| and |H| per LIF and
readout (:class:`FloatStats`); from the bit-accurate simulation of the built network, the largest
|a|, |u|, |v| and the overflow / saturation / tie counts (:class:`SimStats`). All are maxima or
counts, so each is computed per batch and combined exactly (max of maxima, sum of counts): any
batch size gives the same numbers as one batch of everything.

Batch size (:func:`plan_batches`): one sample's working set (:func:`sample_bytes`) is estimated
from the float graph; a batch is as many samples as fit in ``budget`` (default: the smaller of
:data:`DEFAULT_BUDGET` and half the memory this process may still use,
:func:`spikeclip.memory.available_memory`). If not even one sample fits in the available memory,
:class:`spikeclip.errors.InsufficientMemoryError` (exit 9) is raised before anything runs.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import torch

from hardware.ir.layers import SpikeInputLayer
from hardware.ir.network import LoihiNetwork
from hardware.lower.float_graph import FLIF, FHostInput, FloatGraph, FSynapse
from hardware.lower.graph_run import run_graph
from hardware.simulate.engine import simulate
from hardware.simulate.result import SimResult
from spikeclip.batching import DEFAULT_BUDGET, Batching, batches
from spikeclip.batching import plan_batches as plan
from spikeclip.memory import AvailableMemory, available_memory
from spikeclip.parallel import ordered_map, workers_for
from spikeclip.progress import bar

__all__ = ["DEFAULT_BUDGET", "Batching", "FloatStats", "SimStats", "batches", "float_stats",
           "plan_batches", "sample_bytes", "sim_stats"]
#: Bytes per value of the float run (float64; the simulator's int64 state is smaller per sample).
VALUE_BYTES = 8
#: Temporaries of the LIF being run, in copies of its output: the summed input, the drive with
#: its bias, the per-step spike and voltage lists (:func:`hardware.lower.graph_run.run_graph`).
LIF_TEMPORARIES = 4
#: Factor over the formula of :func:`sample_bytes` for what it leaves out (allocator slack,
#: smaller temporaries). Measured peak per sample vs formula (float run, the dominant phase):
#: paper configuration 134 vs 110 MiB, a 32×32 config with embed 32 9.3 vs 8.1 MiB.
SAFETY = 1.5


@dataclass(frozen=True, kw_only=True)
class FloatStats:
    """Over every calibration sample of the float run: per LIF / readout the largest
    |synaptic input without bias| (``max_abs_current``) and |H| (``max_abs_h``, LIFs), floats."""

    max_abs_current: Mapping[str, float]
    max_abs_h: Mapping[str, float]

    def merge(self, other: FloatStats) -> FloatStats:
        return FloatStats(max_abs_current=_combine(self.max_abs_current, other.max_abs_current,
                                                   max),
                          max_abs_h=_combine(self.max_abs_h, other.max_abs_h, max))


@dataclass(frozen=True, kw_only=True)
class SimStats:
    """Over every calibration sample of the simulation (:class:`SimResult` fields of the same
    names): largest |a| (wu), |u|, |v| (v-units) and overflow / saturation / tie counts."""

    max_abs_a: Mapping[str, int]
    max_abs_u: Mapping[str, int]
    max_abs_v: Mapping[str, int]
    overflow_u: Mapping[str, int]
    saturations_v: Mapping[str, int]
    ties: Mapping[str, int]

    @classmethod
    def of(cls, sim: SimResult) -> SimStats:
        return cls(**{f: MappingProxyType(dict(getattr(sim, f))) for f in _SIM_MAX + _SIM_SUM})

    @classmethod
    def none(cls) -> SimStats:
        """Nothing observed (static bounds: no calibration run)."""
        return cls(**{f: MappingProxyType({}) for f in _SIM_MAX + _SIM_SUM})

    def merge(self, other: SimStats) -> SimStats:
        pairs = [(f, max) for f in _SIM_MAX] + [(f, _add) for f in _SIM_SUM]
        return SimStats(**{f: _combine(getattr(self, f), getattr(other, f), op)
                           for f, op in pairs})


_SIM_MAX = ("max_abs_a", "max_abs_u", "max_abs_v")
_SIM_SUM = ("overflow_u", "saturations_v", "ties")


def _add(a, b):
    return a + b


def _combine(a: Mapping, b: Mapping, op) -> Mapping:
    out = dict(a)
    for k, v in b.items():
        out[k] = op(out[k], v) if k in out else v
    return MappingProxyType(out)


# ---------------------------------------------------------------------------------------------
# Batch size from a per-sample memory estimate.
# ---------------------------------------------------------------------------------------------


def sample_bytes(graph: FloatGraph) -> int:
    """Estimated peak bytes one calibration sample adds to the float run (the larger phase):
    ``SAFETY · 8 · (Σ_nodes T·|output| + max(largest conv unfold, LIF_TEMPORARIES·largest LIF))``
    with a host input's output counted once and a conv's unfold (torch's float64 conv lowers to
    a GEMM over ``C_in·kh·kw`` rows) ``T·C_in·kh·kw·H_out·W_out`` values."""
    outputs = unfold = lif = 0
    for node in graph.nodes:
        shape = getattr(node, "out_shape", None) or getattr(node, "shape", None) or node.in_shape
        outputs += (1 if isinstance(node, FHostInput) else graph.T) * math.prod(shape)
        if isinstance(node, FSynapse) and node.kind == "conv":
            rows = node.in_shape[0] * math.prod(node.weight.shape[2:])
            unfold = max(unfold, graph.T * rows * math.prod(node.out_shape[1:]))
        elif isinstance(node, FLIF):
            lif = max(lif, graph.T * math.prod(node.shape))
    return math.ceil(SAFETY * VALUE_BYTES * (outputs + max(unfold, LIF_TEMPORARIES * lif)))


def plan_batches(
    graph: FloatGraph, samples: int, *, batch_size: int | None = None,
    budget: int | None = None, available: AvailableMemory | None = None, workers: int = 1,
) -> Batching:
    """The batching of ``samples`` calibration samples (module doc;
    :func:`spikeclip.batching.plan_batches` with :func:`sample_bytes`) run on ``workers``
    processes at once: each holds one batch, so the batches in flight get ``workers ×``
    :data:`DEFAULT_BUDGET`, at most half the memory available. ``batch_size`` forces one;
    ``budget`` (bytes, all workers together) replaces the default. Raises
    ``InsufficientMemoryError`` when one batch per worker does not fit in the memory available."""
    return plan(samples, workers * sample_bytes(graph), stage="quantize", what="calibration",
                batch_size=batch_size, budget=budget, default_budget=workers * DEFAULT_BUDGET,
                available=available or available_memory())


# ---------------------------------------------------------------------------------------------
# The statistics, batch by batch.
# ---------------------------------------------------------------------------------------------


def float_stats(graph: FloatGraph, calibration, batch_size: int,
                workers: int | None = None) -> FloatStats:
    """:class:`FloatStats` of ``graph`` run with the float rule ``>=`` on ``calibration``,
    ``batch_size`` samples at a time on ``workers`` processes (default: one per core;
    :mod:`spikeclip.parallel`)."""
    x_all = torch.as_tensor(calibration)
    run = functools.partial(_float_batch, graph, x_all, batch_size)
    return _merged(FloatStats(max_abs_current={}, max_abs_h={}), run, len(x_all), batch_size,
                   workers, "quantize: float run", lambda r: FloatStats(**r))


def _float_batch(graph: FloatGraph, x_all, batch_size: int, start: int) -> dict[str, dict]:
    with torch.no_grad():
        run = run_graph(graph, x_all[start:start + batch_size], compare=">=")
    return {"max_abs_current": dict(run.max_abs_current), "max_abs_h": dict(run.max_abs_h)}


def _merged(stats, run, samples: int, batch_size: int, workers: int | None, desc: str, make):
    """``stats`` merged with ``make(run(start))`` of every batch start (in order)."""
    starts = range(0, samples, batch_size)
    workers = workers_for(len(starts)) if workers is None else workers
    for part in bar(ordered_map(run, starts, workers=workers), total=len(starts), desc=desc,
                    unit="batch"):
        stats = stats.merge(make(part))
    return stats


def sim_input(network: LoihiNetwork, x):
    """The simulator's input for a batch-first calibration batch: rasters of a
    ``SpikeInputLayer`` are ``[B, T, *shape]`` here (like ``--calib`` files), ``[T, B, *shape]``
    in :func:`hardware.simulate.engine.simulate`; images and token ids pass unchanged."""
    if any(isinstance(ly, SpikeInputLayer) for ly in network.layers):
        return torch.as_tensor(x).transpose(0, 1)
    return x


def sim_stats(network: LoihiNetwork, calibration, batch_size: int,
              workers: int | None = None) -> SimStats:
    """:class:`SimStats` of the bit-accurate simulation of ``network`` on ``calibration``
    (batches and workers as :func:`float_stats`)."""
    run = functools.partial(_sim_batch, network, calibration, batch_size)
    return _merged(SimStats.none(), run, len(calibration), batch_size, workers,
                   "quantize: simulate",
                   lambda r: SimStats(**{f: MappingProxyType(v) for f, v in r.items()}))


def _sim_batch(network: LoihiNetwork, calibration, batch_size: int, start: int) -> dict:
    sim = simulate(network, sim_input(network, calibration[start:start + batch_size]))
    return {f: dict(getattr(sim, f)) for f in _SIM_MAX + _SIM_SUM}
