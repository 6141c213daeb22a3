"""Pipelined Lava time for a `LoihiNetwork`: depths, aligning delays, LIF reset offsets.

Lava is pipelined (DESIGN §4): every synapse delivers at step t + 1 what it received at step t,
so layer n processes logical step t of sample k at Lava ``time_step = k·T + t + depth(n) + 1``
(Lava's time starts at 1; samples stream one every T steps). ``depth`` is
``LoihiNetwork.depth``: the latest arrival over the non-bias in-edges, each arriving at
``depth(src) + latency(src) + delay``. Where paths of unequal depth meet (the residual stream),
:func:`align_delays` adds the missing steps to the early edges' ``delay`` — this leaves every
depth unchanged (a node's depth is already the maximum of its arrivals). A ``LIFReset`` gets
``reset_interval = T`` and ``reset_offset = depth + 1``, zeroing u and v exactly when each
sample's logical step 0 begins, with no ``Var.set`` between samples.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from hardware.ir import fixed
from hardware.ir.network import Edge, LoihiNetwork
from spikeclip.errors import UnsupportedError


class TimingError(UnsupportedError, ValueError):
    """The network cannot be scheduled in pipelined time; ``layer`` names where and why."""

    def __init__(self, layer: str, reason: str) -> None:
        self.layer = layer
        self.reason = reason
        super().__init__(f"pipelined timing: layer {layer!r}: {reason}")


def align_delays(network: LoihiNetwork) -> LoihiNetwork:
    """``network`` with each early non-bias edge delayed so that it arrives at depth(dst).

    ``new_delay(e) = e.delay + depth(dst) − arrival(e)``. Raises :class:`TimingError`
    naming the destination if a delay would exceed ``fixed.MAX_DELAY`` (62, DelayDense's cap).
    Returns ``network`` itself when nothing is misaligned.
    """
    late = set(network.misaligned())
    if not late:
        return network
    edges = []
    for e in network.edges:
        if e in late:
            delay = e.delay + network.depth(e.dst) - network.arrival(e)
            if delay > fixed.MAX_DELAY:
                raise TimingError(
                    e.dst,
                    f"edge from {e.src!r} needs a delay of {delay} steps, more than "
                    f"Lava's {fixed.MAX_DELAY}: the paths meeting here differ too much in depth",
                )
            edges.append(Edge(src=e.src, dst=e.dst, delay=delay))
        else:
            edges.append(e)
    aligned = LoihiNetwork(
        layers=network.layers, edges=tuple(edges), T=network.T, provenance=network.provenance
    )
    if aligned.misaligned():  # cannot happen: the depths are unchanged (module doc)
        raise TimingError(aligned.misaligned()[0].dst, "delay alignment did not converge")
    return aligned


@dataclass(frozen=True, kw_only=True)
class Timing:
    """The pipelined schedule of an aligned network streaming ``n_samples`` samples.

    ``T`` steps per sample; ``depth[name]`` pipeline depth (steps); ``max_depth``.
    """

    T: int
    depth: Mapping[str, int]
    max_depth: int

    @classmethod
    def of(cls, network: LoihiNetwork) -> Timing:
        """Read the schedule of ``network`` (which :func:`align_delays` has aligned)."""
        if network.misaligned():
            raise TimingError(
                network.misaligned()[0].dst, "misaligned in-edges: run align_delays first"
            )
        depth = {ly.name: network.depth(ly.name) for ly in network.layers}
        return cls(T=network.T, depth=MappingProxyType(depth), max_depth=network.max_depth)

    def reset_offset(self, name: str) -> int:
        """``LIFReset.reset_offset`` of ``name``: ``depth + 1`` (Lava's time starts at 1)."""
        return self.depth[name] + 1

    def n_steps(self, n_samples: int) -> int:
        """Lava steps to stream ``n_samples``: ``n_samples·T + max_depth`` (fill + drain)."""
        return n_samples * self.T + self.max_depth

    def lava_step(self, name: str, sample: int, t: int) -> int:
        """Lava ``time_step`` (from 1) at which ``name`` runs logical step ``t`` of ``sample``."""
        return sample * self.T + t + self.depth[name] + 1

    def logical_indices(self, name: str, n_samples: int) -> np.ndarray:
        """Indices into a per-step record (index = time_step − 1) of ``name``'s logical steps,
        int64 ``[T, n_samples]``: entry ``[t, k]`` is ``k·T + t + depth``."""
        t = np.arange(self.T)[:, None]
        k = np.arange(n_samples)[None, :]
        return k * self.T + t + self.depth[name]
