"""Bit-accurate, batched, logical-time simulation of a `LoihiNetwork`: :func:`simulate`.

Semantics: DESIGN §4 (Lava 0.10 ``PyLifModelBitAcc``/``PyDenseModelBitAcc``/``PyConvModelFixed``;
not verified against Loihi silicon). Two paths compute the same integers, each a table of one
rule per layer kind walked by :func:`hardware.simulate.walk.walk`: the fast path
(:mod:`hardware.simulate.fast`, torch floats with per-tensor exactness bounds) and the int64
reference (:mod:`hardware.simulate.reference`, every rule a call into
:mod:`hardware.ir.fixed`). Logical time: each sample runs T steps from zero state and every
layer updates within one logical step, so edge ``delay`` s (which only align Lava's pipeline)
and ``LIFReset`` settings play no role here.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from hardware.ir.layers import CurrentInputLayer, HostInputLayer, SpikeInputLayer
from hardware.ir.network import LoihiNetwork
from hardware.simulate.fast import FastPathUnavailable, simulate_fast
from hardware.simulate.reference import STEP as REFERENCE_STEP
from hardware.simulate.result import SimResult, SimulationError
from hardware.simulate.walk import walk


def _inputs_for(network: LoihiNetwork, inputs) -> dict[str, np.ndarray | torch.Tensor]:
    sources = [
        ly
        for ly in network.layers
        if isinstance(ly, HostInputLayer | SpikeInputLayer | CurrentInputLayer)
    ]
    if isinstance(inputs, Mapping):
        missing = [ly.name for ly in sources if ly.name not in inputs]
        if missing:
            raise SimulationError(f"simulate: no input given for layer(s) {missing}")
        return dict(inputs)
    if len(sources) != 1:
        raise SimulationError(
            f"simulate: network has {len(sources)} input layers; pass a {{name: array}} mapping"
        )
    return {sources[0].name: inputs}


def simulate(
    network: LoihiNetwork, inputs, *, keep_states: bool = False, reference: bool = False
) -> SimResult:
    """Run ``network`` for ``network.T`` logical steps on a batch.

    ``inputs``: for a ``HostInputLayer`` the float images ``[B, C, H, W]`` (torch or numpy; an
    ``embedding`` one: integer token ids ``[B, L]``, :mod:`hardware.simulate.host_input`), for
    a ``SpikeInputLayer`` a 0/1 raster ``[T, B, *shape]``, for a ``CurrentInputLayer`` integer
    currents ``[T, B, *shape]`` (wu, :func:`hardware.simulate.host_input.current_raster`); one
    array when the network has one input layer, else a ``{layer name: array}`` mapping.
    Returns a :class:`SimResult`. Raises :class:`SimulationError` naming the layer on a shape
    mismatch, :class:`hardware.simulate.result.MissingRuleError` for a layer kind a path has
    no rule for.

    By default the bit-identical fast path :func:`hardware.simulate.fast.simulate_fast` runs;
    where it cannot prove a tensor exact it falls back to the int64 reference path, which
    ``reference=True`` selects directly.
    """
    given = _inputs_for(network, inputs)
    if not reference:
        try:
            return simulate_fast(network, given, keep_states=keep_states)
        except FastPathUnavailable:
            pass
    return walk(network, given, REFERENCE_STEP, "reference", keep_states)
