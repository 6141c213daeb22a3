"""The text tower's host drive (per-prompt LIF1 bias mantissas) and the simulator's view of it.

The netx file (:mod:`export.lava.netx`) holds ``LIF1 → fc1 → LIF2``; the embedding lookup
``token_table[ids] + position_table`` runs on the host and enters LIF1 as its bias mantissa at
``bias_exp`` 6 (:func:`drive_mantissas`). The bit-accurate simulator runs the same network with
the lookup done on the host too (:func:`simulator_network`, :func:`simulate_text`), so netx's
spikes can be compared with it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from export.lava.netx import embedding_input
from hardware.ir import fixed
from hardware.ir.layers import HostInputLayer
from hardware.ir.network import LoihiNetwork
from hardware.simulate.engine import simulate
from hardware.simulate.host_input import host_layer_current
from hardware.simulate.result import SimResult


def embedding_drive(network: LoihiNetwork, token_ids: Any) -> np.ndarray:
    """``token_table[ids] + position_table`` flattened: float64 ``[B, L·D]`` (float units).

    ``token_ids`` int ``[B, L]``. Raises ``hardware.simulate.result.SimulationError`` naming the
    layer on a shape, dtype or vocabulary-range error (the simulator's host rule).
    """
    ids = np.asarray(token_ids)
    return host_layer_current(embedding_input(network), ids).reshape(ids.shape[0], -1)


def drive_mantissas(network: LoihiNetwork, token_ids: Any) -> np.ndarray:
    """The per-prompt LIF1 bias mantissas (wu at ``bias_exp`` 6): int64 ``[B, L·D]``.

    ``fixed.bias_encode_s13(e·bias_scale, bias_exp)`` (round half up, 13-bit saturation; the
    quantizer's static bound makes saturation impossible for this network's tables).
    """
    layer = embedding_input(network)
    mant, _ = fixed.bias_encode_s13(
        embedding_drive(network, token_ids) * layer.bias_scale, layer.bias_exp
    )
    return mant


def simulator_network(network: LoihiNetwork) -> LoihiNetwork:
    """``network`` with its embedding host input replaced by an identity 1×1 ``conv2d`` one.

    The embedding lookup is done on the host (:func:`embedding_drive`) and passed as an "image"
    ``[B, 1, L·D, 1]``; ``conv2d`` with weight 1 and bias 0 returns it unchanged in float64, so
    the encoded mantissas equal :func:`drive_mantissas` exactly. Feed it with
    :func:`simulate_text`.
    """
    host = embedding_input(network)
    n = math.prod(host.out_shape)
    twin = HostInputLayer(
        name=host.name,
        op="conv2d",
        weight=np.ones((1, 1, 1, 1)),
        bias=np.zeros(1),
        in_shape=(1, n, 1),
        bias_scale=host.bias_scale,
        bias_exp=host.bias_exp,
        placement=host.placement,
        meta=dict(host.meta),
    )
    layers = tuple(twin if ly.name == host.name else ly for ly in network.layers)
    return LoihiNetwork(
        layers=layers, edges=network.edges, T=network.T, provenance=dict(network.provenance)
    )


def simulate_text(network: LoihiNetwork, token_ids: Any, *, keep_states: bool = True) -> SimResult:
    """``hardware.simulate.engine.simulate`` of the text network on token ids ``[B, L]``."""
    drive = embedding_drive(network, token_ids)
    images = drive.reshape(drive.shape[0], 1, drive.shape[1], 1)
    return simulate(simulator_network(network), images, keep_states=keep_states)

