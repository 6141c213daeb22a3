"""Batch sizes for the fidelity run and the energy stage's simulation.

One fidelity batch holds three runs of the same samples at once: the float graph with its states
(:func:`hardware.lower.graph_run.run_graph`), the fake-quant twin and the bit-accurate simulation
with their states (before: also the float64 encoder; the estimate was kept). Its per-sample
estimate is :data:`FIDELITY_RUNS` times the calibration run's
(:func:`hardware.quantize.calibrate.sample_bytes`, one float run with temporaries), times the
worker processes that each hold a batch at once; the planner is the one every stage uses
(:func:`spikeclip.batching.plan_batches`), so the batches in flight fit in the budget, and one
sample that does not fit in the memory available is exit 9 before anything runs. Measured on a
32×32 config with embed 64 (depth 2): 23 MiB per sample for the four runs against 18.5 MiB of
``sample_bytes`` (so ×2 leaves ~1.6× margin); the simulation alone with its states: 7.6 MiB per
sample.
"""

from __future__ import annotations

from hardware.lower.float_graph import FloatGraph
from hardware.quantize.calibrate import sample_bytes
from spikeclip import batching
from spikeclip.batching import Batching, plan_batches
from spikeclip.memory import AvailableMemory, available_memory

#: One fidelity sample in calibration samples (graph + twin + simulation, with states).
FIDELITY_RUNS = 2
#: One simulation sample with its states (spikes, v, u: the energy stage's activity).
SIMULATION_RUNS = 1


def plan_fidelity(
    graph: FloatGraph, samples: int, *, batch_size: int | None = None,
    available: AvailableMemory | None = None, workers: int = 1,
) -> Batching:
    """The batching of ``samples`` test images through :func:`hardware.fidelity.report.
    fidelity` on ``workers`` processes at once (each holds one batch: the batches in flight get
    ``workers ×`` :data:`spikeclip.batching.DEFAULT_BUDGET`, read at the call, at most half the
    memory available; ``InsufficientMemoryError``, exit 9, when one batch per worker does not
    fit)."""
    return plan_batches(samples, workers * FIDELITY_RUNS * sample_bytes(graph), stage="simulate",
                        what="fidelity", batch_size=batch_size,
                        default_budget=workers * batching.DEFAULT_BUDGET,
                        available=available or available_memory())


def plan_simulation(
    graph: FloatGraph, samples: int, *, stage: str = "energy",
    available: AvailableMemory | None = None, workers: int = 1,
) -> Batching:
    """The batching of ``samples`` images through the simulator with ``keep_states`` on
    ``workers`` processes at once (budget as :func:`plan_fidelity`)."""
    return plan_batches(samples, workers * SIMULATION_RUNS * sample_bytes(graph), stage=stage,
                        what="simulation", default_budget=workers * batching.DEFAULT_BUDGET,
                        available=available or available_memory())
