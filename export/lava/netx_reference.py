"""Run a lava-dl netx file with lava-dl's own ``netx.hdf5.Network`` in Lava: the reference an
imported network (:func:`hardware.lower.from_netx.load_netx`) must equal bit for bit.

The netx network is built exactly as lava-dl builds it (``Network(net_config, reset_interval=T,
reset_offset=…)``: ``LIFReset`` per block, offsets staggered by one per block). Inputs: netx's
``Input`` block never wires its ``inp`` port to its neuron (``netx/blocks/process.py:Input``),
so, as lava-dl's PilotNet tutorial does, a ``RingBuffer`` of integer currents drives
``net.in_layer.neuron.a_in`` (``graded=True``); a file without an input neuron gets 0/1 spikes
on ``net.inp`` (``graded=False``). Samples stream one every T steps. Every block's output spikes
go to one :class:`~export.lava.procs.recorder.SpikeRecorder` (through a transpose that reverses
netx's ``(W, H, C)`` order, so they come back in torch order) and a ``Monitor`` records the output
neuron's ``v``; both are read back at the logical steps of the imported graph
(:meth:`hardware.ir.timing.Timing.logical_indices`, depth from the graph).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from export.lava.errors import LavaInputError
from export.lava.runner import LavaSession
from hardware.ir.network import LoihiNetwork
from hardware.ir.timing import Timing
from hardware.lower.from_netx import netx_metadata


@dataclass(frozen=True)
class NetxRun:
    """What :func:`run_netx_reference` returns: ``spikes[lif]`` bool ``[T, B, *shape]`` of
    every block (keyed by the imported network's LIF names), ``v_out`` int64 ``[T, B,
    *shape]`` of the output neuron, ``n_steps`` Lava steps, ``run_s`` seconds in Lava's
    ``run`` and ``wall_s`` seconds for build + run + read."""

    spikes: dict[str, np.ndarray]
    v_out: np.ndarray
    n_steps: int
    run_s: float
    wall_s: float


def run_netx_reference(
    path: str | os.PathLike,
    network: LoihiNetwork,
    inputs: np.ndarray,
    *,
    reset_offset: int | None = None,
    timeout_s: float = 1800.0,
) -> NetxRun:
    """Stream ``inputs`` ``[T, B, *input_shape]`` through netx's network of ``path``.

    ``network`` is ``load_netx(path)`` (its metadata names the blocks and gives the depths).
    ``reset_offset`` (netx's argument) defaults to 0 with an input neuron and 1 without one
    (netx's offsets are then one step earlier than the pipeline). Raises
    :class:`~export.lava.errors.LavaInputError` when ``inputs`` do not fit and
    :class:`~export.lava.errors.LavaRunError` when Lava fails.
    """
    from lava.lib.dl import netx
    from lava.proc.io.source import RingBuffer
    from lava.proc.monitor.process import Monitor

    start = time.perf_counter()
    meta = netx_metadata(network)
    x = np.asarray(inputs)
    if x.ndim < 3 or x.shape[0] != network.T or tuple(x.shape[2:]) != meta.input_shape:
        raise LavaInputError(
            meta.input_layer,
            f"expected inputs [T={network.T}, B, {meta.input_shape}], got {x.shape}",
        )
    graded = meta.input_neuron is not None
    if reset_offset is None:
        reset_offset = 0 if graded else 1
    timing = Timing.of(network)
    T, B = x.shape[:2]
    n_steps = timing.n_steps(B)
    lx = netx.hdf5.Network(net_config=str(path), reset_interval=T, reset_offset=reset_offset)
    names = [b.neuron for b in meta.blocks if b.neuron is not None]
    if len(names) != len(lx.layers):
        raise LavaInputError("<network>", f"netx built {len(lx.layers)} blocks, not {len(names)}")
    src = RingBuffer(data=_source_data(x, n_steps))
    src.s_out.connect(lx.in_layer.neuron.a_in if graded else lx.inp)
    rec, sizes = _record_blocks(lx, n_steps)
    mon = Monitor()  # one probe per Monitor (Lava 0.10 mis-records a second one)
    mon.probe(lx.out_layer.neuron.v, n_steps)
    with LavaSession(lx, n_steps, timeout_s=timeout_s) as session:
        t_run = time.perf_counter()
        session.run()
        run_s = time.perf_counter() - t_run
        words = session.get(rec.words)
        v_all = np.rint(mon.get_data()[lx.out_layer.neuron.name]["v"]).astype(np.int64)
    spikes = _spikes(words, sizes, network, timing, names, B)
    out = network.layer(names[-1])
    v_lava = v_all.reshape(n_steps, *reversed(out.shape))
    v_out = _reverse_axes(v_lava)[timing.logical_indices(out.name, B)]
    return NetxRun(spikes=spikes, v_out=v_out, n_steps=n_steps, run_s=run_s,
                   wall_s=time.perf_counter() - start)


def _reverse_axes(steps: np.ndarray) -> np.ndarray:
    """``[n, *shape]`` with the shape's axes reversed (netx's ``(W, H, C)`` ↔ torch's
    ``(C, H, W)``); the leading axis stays."""
    return np.transpose(steps, (0, *range(steps.ndim - 1, 0, -1)))


def _source_data(x: np.ndarray, n_steps: int) -> np.ndarray:
    """RingBuffer data ``[*reversed(shape), n_steps]`` int32 of inputs ``[T, B, *shape]``:
    column k·T + t is sample k, step t, in Lava's ``(W, H, C)`` layout; zeros while draining."""
    T, B = x.shape[:2]
    flat = np.swapaxes(x, 0, 1).reshape(B * T, *x.shape[2:])
    lava = _reverse_axes(flat)  # netx reverses every shape
    data = np.zeros((*lava.shape[1:], n_steps), np.int32)
    data[..., : B * T] = np.moveaxis(lava, 0, -1)
    return data


def _record_blocks(lx: Any, n_steps: int) -> tuple[Any, tuple[int, ...]]:
    """One :class:`SpikeRecorder` fed by every block's output spikes, in torch order (a
    transpose reverses netx's shapes); returns it and the blocks' sizes."""
    from export.lava.procs.recorder.process import SpikeRecorder

    sizes = tuple(math.prod(b.shape) for b in lx.layers)
    rec = SpikeRecorder(sizes=sizes, n_steps=n_steps)
    for i, block in enumerate(lx.layers):
        rank = len(block.shape)
        port = block.out.transpose(list(range(rank - 1, -1, -1))).flatten() if rank > 1 else (
            block.out)
        port.connect(rec.port(i))
    return rec, sizes


def _spikes(words: np.ndarray, sizes: tuple[int, ...], network: LoihiNetwork, timing: Timing,
            names: list[str], B: int) -> dict[str, np.ndarray]:
    """The recorder's words as ``{lif: bool [T, B, *shape]}`` at the logical steps."""
    from export.lava.procs.recorder.process import unpack_spikes

    steps = unpack_spikes(words, sum(sizes))  # [n_steps, Σ neurons], row time_step − 1
    offsets = np.cumsum((0, *sizes))
    spikes = {}
    for i, name in enumerate(names):
        shape = network.layer(name).shape
        idx = timing.logical_indices(name, B)  # [T, B]: k·T + t + depth(name)
        spikes[name] = steps[idx, offsets[i] : offsets[i + 1]].reshape(network.T, B, *shape)
    return spikes
