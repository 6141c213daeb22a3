"""The whole zero-shot classification in Lava: text tower (netx) on the prompts, image tower on
the samples, logits from Lava's features, each compared with the bit-accurate simulator.

Text tower: the netx file (:mod:`export.lava.netx`) holds ``LIF1 → fc1 → LIF2``; it runs in Lava
on the prompts (:func:`export.lava.netx_run.run_netx`). fc2 and the time-weighted readout stay on
the host (DESIGN §5): they are run by the host rules of the integer network
(:func:`host_features`, the simulator's rules for those layers) on the spikes **Lava** emitted.
Class matrix (as :meth:`spikeclip.model.SpikeCLIP.class_matrix`): per class, the mean over its
templates of the L2-normalized text features, float64. Logits: normalized image features · class
matrixᵀ, float64. Lava and the simulator agree on every logit exactly when they agree on every
feature, so the check compares spikes, features and logits with ``array_equal`` (no tolerance).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from export.lava.netx import netx_chain
from export.lava.netx_drive import drive_mantissas, simulate_text
from export.lava.netx_run import run_netx
from hardware.ir.layers import SpikeInputLayer
from hardware.ir.network import LoihiNetwork
from hardware.simulate.engine import simulate


def host_network(network: LoihiNetwork, source: str) -> LoihiNetwork:
    """The layers of ``network`` downstream of the LIF ``source``, fed by a spike input of the
    same name and shape (what the host runs on the spikes the chip sends it)."""
    keep, todo = {source}, [source]
    while todo:
        for e in network.out_edges(todo.pop()):
            if e.dst not in keep:
                keep.add(e.dst)
                todo.append(e.dst)
    lif = network.layer(source)
    layers = tuple(SpikeInputLayer(name=source, shape=lif.shape) if ly.name == source else ly
                   for ly in network.layers if ly.name in keep)
    edges = tuple(e for e in network.edges if e.src in keep and e.dst in keep)
    return LoihiNetwork(layers=layers, edges=edges, T=network.T,
                        provenance=dict(network.provenance))


def host_features(network: LoihiNetwork, source: str, spikes: np.ndarray) -> np.ndarray:
    """Features ``[B, F]`` of the host part after ``source`` on its spikes ``[T, B, *shape]``."""
    return simulate(host_network(network, source), np.asarray(spikes, dtype=np.int64)).feature


def class_matrix(features: np.ndarray, classes: int) -> np.ndarray:
    """``[classes, F]`` float64 from text features ``[classes·K, F]`` (class-major, K templates
    each): per class the mean of the L2-normalized features."""
    f = _normalize(np.asarray(features, dtype=np.float64))
    return f.reshape(classes, -1, f.shape[-1]).mean(axis=1)


def logits(image_features: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``[B, C]`` float64: normalized image features · class matrixᵀ."""
    return _normalize(np.asarray(image_features, dtype=np.float64)) @ matrix.T


def _normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


@dataclass(frozen=True, kw_only=True)
class ZeroShotCheck:
    """Lava vs simulator over the zero-shot pipeline: ``prompts`` run through the text tower,
    ``text_spike_mismatches`` (neuron-steps over the netx LIFs), whether the text features, the
    class matrix and the ``[samples, classes]`` logits are identical, the largest |Δ logit|,
    and the Lava predictions (argmax of its logits)."""

    prompts: int
    samples: int
    text_spike_mismatches: int
    text_features_identical: bool
    logits_identical: bool
    max_abs_logit_diff: float
    predictions: tuple[int, ...]
    lava_text_s: float

    @property
    def identical(self) -> bool:
        return (self.text_spike_mismatches == 0 and self.text_features_identical
                and self.logits_identical)

    def to_dict(self) -> dict[str, Any]:
        return {"prompts": self.prompts, "samples": self.samples,
                "text_spike_mismatches": self.text_spike_mismatches,
                "text_features_identical": self.text_features_identical,
                "logits_identical": self.logits_identical,
                "max_abs_logit_diff": self.max_abs_logit_diff,
                "predictions": list(self.predictions), "identical": self.identical,
                "lava_text_s": round(self.lava_text_s, 3)}


def check_zero_shot(
    text_network: LoihiNetwork, netx_path: str | os.PathLike, prompt_ids: np.ndarray,
    image_lava: np.ndarray, image_sim: np.ndarray,
) -> ZeroShotCheck:
    """Run the text tower in Lava on ``prompt_ids [C, K, L]`` and compare the zero-shot logits
    of the image features ``image_lava`` (Lava) and ``image_sim`` (simulator), ``[B, F]``."""
    ids = np.asarray(prompt_ids)
    classes, flat = ids.shape[0], ids.reshape(-1, ids.shape[-1])
    lava = run_netx(netx_path, drive_mantissas(text_network, flat), text_network.T)
    sim = simulate_text(text_network, flat)
    mismatches = sum(int(np.count_nonzero(lava.spikes[n] != np.asarray(sim.spikes[n])))
                     for n in lava.layer_names)
    last = netx_chain(text_network)[-1].name
    text_lava = host_features(text_network, last, lava.spikes[last])
    text_sim = sim.feature
    got = logits(image_lava, class_matrix(text_lava, classes))
    want = logits(image_sim, class_matrix(text_sim, classes))
    return ZeroShotCheck(
        prompts=len(flat), samples=len(got), text_spike_mismatches=mismatches,
        text_features_identical=bool(np.array_equal(text_lava, text_sim)),
        logits_identical=bool(np.array_equal(got, want)),
        max_abs_logit_diff=float(np.abs(got - want).max()) if got.size else 0.0,
        predictions=tuple(int(p) for p in got.argmax(-1)),
        lava_text_s=lava.build_s + lava.run_s,
    )
