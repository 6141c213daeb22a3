"""Batch sizes for the fidelity run, and the per-class feature means, streamed over batches.

One fidelity batch holds four runs of the same samples at once: the float64 encoder, the float
graph with its states (:func:`hardware.lower.graph_run.run_graph`), the fake-quant twin and the
bit-accurate simulation with their states. Its per-sample estimate is :data:`FIDELITY_RUNS`
times the calibration run's (:func:`hardware.quantize.calibrate.sample_bytes`, one float run
with temporaries); the planner is the one every stage uses (:func:`spikeclip.batching.
plan_batches`), so a batch fits in the budget, and one sample that does not fit in the memory
available is exit 9 before anything runs. Measured on a 32×32 config with embed 64 (depth 2):
23 MiB per sample for the four runs against 18.5 MiB of ``sample_bytes`` (so ×2 leaves ~1.6×
margin); the simulation alone with its states: 7.6 MiB per sample.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hardware.lower.float_graph import FloatGraph
from hardware.quantize.calibrate import sample_bytes
from spikeclip.batching import Batching, batches, plan_batches
from spikeclip.memory import AvailableMemory, available_memory

#: One fidelity sample in calibration samples (float + graph + twin + simulation, with states).
FIDELITY_RUNS = 2
#: One simulation sample with its states (spikes, v, u: the energy stage's activity).
SIMULATION_RUNS = 1


def plan_fidelity(
    graph: FloatGraph, samples: int, *, batch_size: int | None = None,
    available: AvailableMemory | None = None,
) -> Batching:
    """The batching of ``samples`` test images through :func:`hardware.fidelity.report.
    fidelity` (``InsufficientMemoryError``, exit 9, when one does not fit)."""
    return plan_batches(samples, FIDELITY_RUNS * sample_bytes(graph), stage="simulate",
                        what="fidelity", batch_size=batch_size,
                        available=available or available_memory())


def plan_simulation(
    graph: FloatGraph, samples: int, *, stage: str = "energy",
    available: AvailableMemory | None = None,
) -> Batching:
    """The batching of ``samples`` images through the simulator with ``keep_states``."""
    return plan_batches(samples, SIMULATION_RUNS * sample_bytes(graph), stage=stage,
                        what="simulation", available=available or available_memory())


@torch.no_grad()
def class_means(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int) -> Tensor:
    """``[classes, out_dim]``: per label ``0 … max(labels)``, the mean of the L2-normalized
    float image features ``model.encode_image`` of ``images [B, C, H, W]``, encoded
    ``batch_size`` at a time (only the features are kept: ``B × out_dim`` floats)."""
    feats = torch.cat([F.normalize(model.encode_image(x), dim=-1)
                       for x in batches(images, batch_size)])
    classes = int(labels.max()) + 1
    return torch.stack([feats[labels == c].mean(0) for c in range(classes)])
