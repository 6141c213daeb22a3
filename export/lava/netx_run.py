"""Load the text tower's netx HDF5 file with lava-dl netx and stream prompts through it in Lava.

The file is :func:`export.lava.netx.write_netx`'s; the per-prompt drive is
:func:`export.lava.netx_drive.drive_mantissas`. Lava is imported when :func:`run_netx` runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from export.lava.netx import NetxExportError, netx_layer_names


@dataclass(frozen=True, kw_only=True)
class NetxResult:
    """A netx run of ``n_samples`` prompts, ``T`` steps each, streamed one every T steps.

    ``spikes[lif]``: bool ``[T, B, N]``; entry ``[t, k]`` is the spike at Lava step
    ``k·T + t + i + 1`` of netx layer i (depth i). ``build_s``: netx load + wiring;
    ``run_s``: compile + run + read + stop; ``n_steps``: Lava steps run (``B·T + layers − 1``).
    """

    T: int
    n_samples: int
    spikes: Mapping[str, np.ndarray]
    n_steps: int
    build_s: float
    run_s: float
    layer_names: tuple[str, ...] = field(default_factory=tuple)


def run_netx(
    path: str | os.PathLike, drive_mant: Any, T: int, *, timeout_s: float = 600.0
) -> NetxResult:
    """Load ``path`` with ``lava.lib.dl.netx.hdf5.Network(reset_interval=T)`` and run prompts.

    ``drive_mant`` int ``[B, N_in]``: per-prompt LIF1 bias mantissas (:func:`drive_mantissas`),
    injected into ``layers[0].neuron.bias_mant`` (module doc). Every layer's spikes go to a
    stock ``RingBuffer`` sink. Runs ``Loihi2SimCfg(select_tag="fixed_pt")`` inside
    ``export.lava.runner.LavaSession`` (always released; a failing or dead child, or a run
    longer than ``timeout_s``, raises ``export.lava.LavaRunError``).
    """
    from lava.lib.dl.netx.hdf5 import Network
    from lava.proc.io.sink import RingBuffer

    from export.lava.procs.injection.process import BiasInjection
    from export.lava.runner import LavaSession

    names = netx_layer_names(path)
    mant = np.asarray(drive_mant)
    start = time.perf_counter()
    net = Network(net_config=str(path), reset_interval=int(T), reset_offset=0)
    neuron0 = net.layers[0].neuron
    if mant.ndim != 2 or (mant.shape[1],) != tuple(neuron0.bias_mant.shape):
        raise NetxExportError(
            names[0], f"drive must be [B, {neuron0.bias_mant.shape[0]}], got {mant.shape}"
        )
    B = mant.shape[0]
    n_steps = B * T + len(net.layers) - 1
    neuron0.bias_mant.init = mant[0].astype(np.int32)
    exp = np.broadcast_to(np.asarray(neuron0.bias_exp.init), mant.shape)  # netx: one exponent
    inj = BiasInjection(mant=mant, exp=exp, T=T, placement="host", name="netx_drive")
    inj.connect_vars(neuron0.bias_mant, neuron0.bias_exp)
    sinks = []
    for layer in net.layers:
        sink = RingBuffer(shape=tuple(int(x) for x in layer.out.shape), buffer=n_steps)
        layer.out.connect(sink.a_in)
        sinks.append(sink)
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    with LavaSession(net, n_steps, timeout_s=timeout_s) as session:
        session.run()
        data = [session.get(s.data) for s in sinks]  # [N, n_steps], column time_step − 1
    spikes = {}
    t_idx = np.arange(T)[:, None] + T * np.arange(B)[None, :]  # [T, B]: k·T + t
    for depth, (name, d) in enumerate(zip(names, data)):
        spikes[name] = np.moveaxis(d[:, t_idx + depth], 0, -1).astype(bool)
    return NetxResult(
        T=int(T),
        n_samples=B,
        spikes=MappingProxyType(spikes),
        n_steps=n_steps,
        build_s=build_s,
        run_s=time.perf_counter() - start,
        layer_names=names,
    )
