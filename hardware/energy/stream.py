"""Exact operation counts of many samples, streamed over batches: :class:`CountAccumulator`.

Every :class:`hardware.energy.counts.LayerCounts` field but one is a sum over samples (or a
per-layer constant), so batch results add up exactly. The exception is ``sop_rate``, a float
made from whole-run firing rates (and, for attention, a ``min`` of two of them): it is computed
once at the end from the summed integer counts, with the same formula as a single batch, so the
streamed counts equal those of one batch of every sample, bit for bit.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence

import numpy as np

from hardware.energy.activity import count_model, spikes_from_simulator
from hardware.energy.counts import LayerCounts, attention_sop_rate
from hardware.energy.structure import LayerSpec
from hardware.ir.network import LoihiNetwork
from hardware.simulate.engine import simulate
from spikeclip.parallel import ordered_map
from spikeclip.progress import bar

#: One batch's counts: per spec its LayerCounts, and per attention layer its Q, K, V spike sums.
BatchCounts = tuple[list[LayerCounts], dict[str, list[int]]]
#: The LayerCounts fields that are sums over samples.
SUMMED = ("samples", "in_events", "in_elements", "ann_macs", "ann_bias_adds", "snn_dense_ops",
          "sop_exact", "dense_macs", "bias_adds", "neuron_updates", "spikes_out")


def _merge(a: LayerCounts, b: LayerCounts) -> LayerCounts:
    """``a`` and ``b`` of the same layer over disjoint samples (``sop_rate`` left to redo)."""
    kind = "integer" if "integer" in (a.in_kind, b.in_kind) else a.in_kind
    return dataclasses.replace(a, in_kind=kind,
                               **{f: getattr(a, f) + getattr(b, f) for f in SUMMED})


class CountAccumulator:
    """Per-layer counts of ``specs`` over every batch given to :meth:`add` (the arguments of
    :func:`hardware.energy.activity.count_model`, batch by batch)."""

    def __init__(self, specs: Sequence[LayerSpec], *, steps: int, order: str = "q_ktv",
                 dense_runs: int = 1) -> None:
        self.specs, self.steps, self.order, self.dense_runs = list(specs), steps, order, dense_runs
        self._layers: dict[str, LayerCounts] = {}
        self._qkv: dict[str, list[int]] = {}  # attention layer -> Q, K, V spikes in all

    def add(self, spikes: Mapping[str, object], samples: int) -> None:
        """Count one batch: ``spikes`` neuron name → ``[T, samples, *shape]``."""
        self.absorb(self.count(spikes, samples))

    def count(self, spikes: Mapping[str, object], samples: int) -> BatchCounts:
        """One batch's counts, not yet added (small and picklable: a worker process returns
        them): per layer its ``LayerCounts`` and, for attention, the Q, K, V spike sums."""
        layers = count_model(self.specs, spikes, samples=samples, steps=self.steps,
                             order=self.order, dense_runs=self.dense_runs)
        qkv = {spec.name: [int(np.asarray(spikes[s]).sum()) for s in spec.sources]
               for spec in self.specs if spec.op == "attention"}
        return layers, qkv

    def absorb(self, counts: BatchCounts) -> None:
        """Add one batch's :meth:`count`."""
        layers, qkv = counts
        for spec, layer in zip(self.specs, layers, strict=True):
            old = self._layers.get(spec.name)
            self._layers[spec.name] = layer if old is None else _merge(old, layer)
        for name, sums in qkv.items():
            self._qkv[name] = [x + y for x, y in
                               zip(self._qkv.get(name, [0, 0, 0]), sums, strict=True)]

    def layers(self) -> list[LayerCounts]:
        """The counts of every sample added so far, in ``specs`` order."""
        return [self._finish(spec, self._layers[spec.name]) for spec in self.specs]

    def _finish(self, spec: LayerSpec, layer: LayerCounts) -> LayerCounts:
        if spec.op == "attention":
            shape = (self.steps, layer.samples, spec.heads, spec.in_shape[-1], spec.head_dim)
            rate = attention_sop_rate(shape, *self._qkv[spec.name])
        elif layer.op in ("conv", "linear") and layer.in_kind != "dense":
            rate = layer.in_events * (layer.ann_macs // layer.samples) / layer.in_numel
        else:
            return layer
        return dataclasses.replace(layer, sop_rate=rate)


def count_simulated(
    network: LoihiNetwork, images, specs: Sequence[LayerSpec], *, batch_size: int,
    order: str = "q_ktv", dense_runs: int = 1, prefix: str = "image_encoder.",
    workers: int = 1,
) -> list[LayerCounts]:
    """Counts of ``specs`` from the bit-accurate simulation of ``network`` on ``images
    [B, C, H, W]``, ``batch_size`` at a time on ``workers`` processes (each holds one batch's
    spikes; :mod:`spikeclip.parallel`). The simulator's layer names get ``prefix`` (the specs'
    names are the model's module paths)."""
    acc = CountAccumulator(specs, steps=network.T, order=order, dense_runs=dense_runs)
    run = functools.partial(_batch_counts, network, images, acc, prefix, batch_size)
    starts = range(0, len(images), batch_size)
    for counts in bar(ordered_map(run, starts, workers=workers), total=len(starts),
                      desc="energy: simulate", unit="batch"):
        acc.absorb(counts)
    return acc.layers()


def _batch_counts(network: LoihiNetwork, images, acc: CountAccumulator, prefix: str,
                  batch_size: int, start: int) -> BatchCounts:
    x = images[start:start + batch_size]
    sim = simulate(network, x, keep_states=True)
    named = {k if k.startswith(prefix) else prefix + k: v for k, v in sim.spikes.items()}
    del sim
    return acc.count(spikes_from_simulator(named, acc.specs), len(x))
