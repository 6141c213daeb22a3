"""Run a :class:`~export.lava.graph.LavaGraph` in Lava (CPU, ``fixed_pt``) and read it back.

:func:`run_lava` streams B samples (one every T steps) through one build, always stops the Lava
runtime (:class:`LavaSession`, a context manager), and returns a :class:`LavaResult`: per-node
spike trains realigned to logical time by depth (``[T, B, *shape]``, the simulator's layout),
the readouts' integer input streams and float features. Failures inside Lava (a process model
raising in its child process, a runtime that does not answer) become :class:`LavaRunError`.
:func:`compare_to_sim` checks a result against ``hardware.simulate``'s ``SimResult``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from export.lava.errors import LavaLoweringError
from export.lava.graph import LavaBuild, LavaGraph, to_lava
from export.lava.procs.recorder.process import unpack_spikes
from hardware.network import LoihiNetwork


class LavaRunError(RuntimeError):
    """A Lava run failed (an exception in a process model, a runtime error); the message
    names the stage and carries Lava's reason. The runtime has been stopped."""


@dataclass(frozen=True, kw_only=True)
class LavaResult:
    """What a Lava run returns for ``n_samples`` streamed samples of ``T`` steps.

    ``spikes[lif]``: bool ``[T, B, *shape]``, entry ``[t, k]`` recorded at Lava step
    ``k·T + t + depth + 1``; ``stream[readout]``: int64 ``[T, B, *in_shape]``, the summed
    currents (wu) the readout received per logical step; ``features[readout]``: float64
    ``[B, F]``; ``n_steps``: Lava steps run; ``wall_s``: seconds for build + run + read.
    """

    T: int
    n_samples: int
    spikes: Mapping[str, np.ndarray]
    stream: Mapping[str, np.ndarray]
    features: Mapping[str, np.ndarray]
    n_steps: int
    wall_s: float


class LavaSession:
    """Context manager around one :class:`LavaBuild`: ``run()`` it, read Vars, always stop.

    ``with LavaSession(build) as s: s.run(); data = s.get(var)``. On exit the runtime is
    stopped even if the body raised; a failure to stop is raised as :class:`LavaRunError`
    unless another exception is already propagating.
    """

    def __init__(self, build: LavaBuild) -> None:
        self.build = build
        self._started = False

    def __enter__(self) -> LavaSession:
        return self

    def run(self) -> None:
        """Compile and run ``build.n_steps`` steps with ``Loihi2SimCfg(select_tag="fixed_pt")``."""
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg

        self._started = True
        try:
            self.build.anchor.run(
                condition=RunSteps(num_steps=self.build.n_steps),
                run_cfg=Loihi2SimCfg(select_tag="fixed_pt"),
            )
        except Exception as err:  # Lava re-raises child failures as bare exceptions
            raise LavaRunError(
                f"export.lava: Lava run failed: {type(err).__name__}: {err}"
            ) from err

    def get(self, var: Any) -> np.ndarray:
        """``var.get()`` as a numpy array, failures as :class:`LavaRunError`."""
        try:
            return np.asarray(var.get())
        except Exception as err:
            raise LavaRunError(
                f"export.lava: reading {var.name!r} of {var.process.name!r} "
                f"failed: {type(err).__name__}: {err}"
            ) from err

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._started:
            return
        try:
            self.build.anchor.stop()
        except Exception as err:
            if exc is None:
                raise LavaRunError(f"export.lava: stopping the Lava runtime failed: {err}") from err


def run_lava(graph: LavaGraph, inputs: Any) -> LavaResult:
    """Build ``graph`` for ``inputs`` (see :meth:`LavaGraph.build`), run, read, stop."""
    start = time.perf_counter()
    build = graph.build(inputs)
    timing = graph.timing
    B, T = build.n_samples, graph.network.T
    spikes: dict[str, np.ndarray] = {}
    stream: dict[str, np.ndarray] = {}
    features: dict[str, np.ndarray] = {}
    with LavaSession(build) as session:
        session.run()
        if build.recorder is not None:
            words = session.get(build.recorder.words)  # [n_steps, n_words], row time_step − 1
            total = build.recorder.proc_params["offsets"][-1]
            steps = unpack_spikes(words, total)  # bool [n_steps, Σ neurons]
            for name, (col, shape) in build.recorded.items():
                idx = timing.logical_indices(name, B)  # [T, B]
                spikes[name] = steps[idx, col : col + math.prod(shape)].reshape(T, B, *shape)
        for name, proc in build.readouts.items():
            s = session.get(proc.stream).astype(np.int64)  # [B, T, *in_shape]
            stream[name] = np.swapaxes(s, 0, 1)
            features[name] = session.get(proc.features).astype(np.float64)
    return LavaResult(
        T=T,
        n_samples=B,
        spikes=MappingProxyType(spikes),
        stream=MappingProxyType(stream),
        features=MappingProxyType(features),
        n_steps=build.n_steps,
        wall_s=time.perf_counter() - start,
    )


def run_in_lava(
    network: LoihiNetwork, inputs: Any, n_samples: int | None = None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Lower ``network`` to Lava, stream the first ``n_samples`` of ``inputs``, return
    ``(features {readout: [B, F]}, spikes {lif: bool [T, B, *shape]})`` (the CLI's entry).

    ``inputs`` as for ``hardware.simulate.simulate``. Raises :class:`LavaLoweringError` for a
    network or inputs that cannot be lowered, :class:`LavaRunError` for a failed run.
    """
    graph = to_lava(network)
    if n_samples is not None:
        inputs = _first(network, inputs, n_samples)
    result = run_lava(graph, inputs)
    return dict(result.features), dict(result.spikes)


def _first(network: LoihiNetwork, inputs: Any, n: int) -> Any:
    from hardware.layers import SpikeInputLayer

    if n < 1:
        raise LavaLoweringError("<network>", f"n_samples must be ≥ 1, got {n}")

    def cut(name: str | None, x: Any) -> np.ndarray:
        x = np.asarray(x)
        spiking = name is not None and isinstance(network.layer(name), SpikeInputLayer)
        return x[:, :n] if spiking else x[:n]

    if isinstance(inputs, Mapping):
        return {k: cut(k, v) for k, v in inputs.items()}
    sources = [ly.name for ly in network.layers if ly.KIND in ("host_input", "spike_input")]
    return cut(sources[0] if len(sources) == 1 else None, inputs)


@dataclass(frozen=True, kw_only=True)
class SimComparison:
    """Lava vs simulator: per-LIF count of differing neuron-steps (``spike_mismatches``),
    per-readout count of differing stream entries and max |Δ feature|, and ``equal``."""

    spike_mismatches: Mapping[str, int]
    stream_mismatches: Mapping[str, int]
    feature_max_abs_diff: Mapping[str, float]
    missing: tuple[str, ...]

    @property
    def equal(self) -> bool:
        """Every compared node identical, features identical, nothing missing."""
        return (
            not self.missing
            and not any(self.spike_mismatches.values())
            and not any(self.stream_mismatches.values())
            and not any(self.feature_max_abs_diff.values())
        )


def compare_to_sim(
    lava: LavaResult, sim: Any, network: LoihiNetwork | None = None
) -> SimComparison:
    """Compare ``lava`` with a ``SimResult`` run with ``keep_states=True`` on the same inputs.

    Spikes are compared exactly per LIF; readout streams exactly after decoding the simulator's
    float stream back to integers when ``network`` is given (``(X − bias)/input_scale``);
    features by max absolute difference. LIFs missing on either side are listed in ``missing``.
    """
    missing = tuple(sorted(set(lava.spikes) ^ set(sim.spikes)))
    spikes = {
        n: int(np.count_nonzero(lava.spikes[n] != np.asarray(sim.spikes[n])))
        for n in sorted(set(lava.spikes) & set(sim.spikes))
    }
    streams: dict[str, int] = {}
    if network is not None:
        for name, a in lava.stream.items():
            if name not in sim.stream:
                continue
            layer = network.layer(name)
            lead = (-1, *([1] * (len(layer.in_shape) - 1)))
            decoded = a.astype(np.float64) * layer.input_scale + np.asarray(
                layer.input_bias, np.float64
            ).reshape(lead)
            streams[name] = int(np.count_nonzero(decoded != np.asarray(sim.stream[name])))
    feats = {
        n: float(np.max(np.abs(lava.features[n] - np.asarray(sim.features[n])), initial=0.0))
        for n in sorted(set(lava.features) & set(sim.features))
    }
    missing += tuple(sorted(set(lava.features) ^ set(sim.features)))
    return SimComparison(
        spike_mismatches=MappingProxyType(spikes),
        stream_mismatches=MappingProxyType(streams),
        feature_max_abs_diff=MappingProxyType(feats),
        missing=missing,
    )
