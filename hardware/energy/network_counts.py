"""Exact operation counts of any `LoihiNetwork` from its simulated spikes (netx imports too).

One entry per layer kind (:data:`ENERGY_KINDS`): a LIF counts its neuron updates and spikes; a
dense, conv or token-wise synapse layer counts the synaptic events its source's spikes cause
(exact conv fan-out at the borders), and a recurrent LIF's feedback synapse is one more layer
``<lif>.rec`` (:func:`~hardware.energy.counts.recurrent_counts`); inputs, readouts and
off-neurocore ops count nothing here (graded inputs are written by the host, as Intel's
PilotNet benchmark writes its input layer's bias). A kind without an entry raises
:class:`~hardware.mapping.kinds.MissingKindError` naming the kind and the ``energy`` backend.

Spikes are the simulator's ``SimResult.spike_counts``: ``[T, *shape]`` summed over the batch of
``samples`` (the counters take ``batch_summed``); every count is a total over the batch and the
T steps, as `LayerCounts` documents.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import cast

import numpy as np

from hardware.energy.counts import (
    LayerCounts,
    conv_counts,
    lif_counts,
    linear_counts,
    recurrent_counts,
)
from hardware.energy.errors import EnergyCountError
from hardware.ir.layers import (
    AttentionLayer,
    ConvLayer,
    CurrentInputLayer,
    DenseLayer,
    HostInputLayer,
    Layer,
    LIFLayer,
    MaxPoolLayer,
    ReadoutLayer,
    SpikeInputLayer,
    TokenLinearLayer,
)
from hardware.ir.network import LoihiNetwork
from hardware.mapping.kinds import KindTable

Counter = Callable[[LoihiNetwork, Layer, Mapping[str, np.ndarray], int],
                   LayerCounts | tuple[LayerCounts, ...] | None]

RECURRENT_SUFFIX = ".rec"
"""A recurrent LIF's feedback synapse is counted as the layer ``<lif name>.rec``."""


def _source_spikes(net: LoihiNetwork, layer: Layer, spikes: Mapping[str, np.ndarray]) -> np.ndarray:
    """The batch-summed spikes ``[T, *shape]`` of the one layer feeding `layer`."""
    edges = net.in_edges(layer.name)
    if len(edges) != 1 or edges[0].src not in spikes:
        raise EnergyCountError(f"{layer.name}: needs the recorded spikes of its one source")
    return np.asarray(spikes[edges[0].src])


def _lif(
    net: LoihiNetwork, layer: Layer, spikes: Mapping[str, np.ndarray], b: int
) -> LayerCounts | tuple[LayerCounts, ...]:
    """The neurons' counts, and those of the feedback synapse ``rec_weights`` when there is one
    (its own spikes, C-order flattened, are its input: :func:`recurrent_counts`)."""
    layer = cast(LIFLayer, layer)
    if layer.name not in spikes:
        raise EnergyCountError(f"{layer.name}: no recorded spikes")
    s = np.asarray(spikes[layer.name])
    own = lif_counts(name=layer.name, spikes=s, batch_summed=b)
    if layer.rec_weights is None:
        return own
    rec = recurrent_counts(name=layer.name + RECURRENT_SUFFIX, spikes=s.reshape(s.shape[0], -1),
                           weights=layer.rec_weights, batch_summed=b)
    return own, rec


def _dense(
    net: LoihiNetwork, layer: Layer, spikes: Mapping[str, np.ndarray], b: int
) -> LayerCounts:
    layer = cast(DenseLayer, layer)
    x = _source_spikes(net, layer, spikes)
    x = x.reshape(x.shape[0], math.prod(layer.in_shape))
    return linear_counts(
        name=layer.name, x=x, out_features=int(layer.weights.shape[0]), batch_summed=b
    )


def _conv(net: LoihiNetwork, layer: Layer, spikes: Mapping[str, np.ndarray], b: int) -> LayerCounts:
    layer = cast(ConvLayer, layer)
    x = _source_spikes(net, layer, spikes).reshape(-1, *layer.in_shape)
    return conv_counts(
        name=layer.name,
        x=x,
        out_channels=int(layer.weights.shape[0]),
        kernel=layer.kernel_size,
        stride=layer.stride,
        padding=layer.padding,
        dilation=layer.dilation,
        groups=layer.groups,
        batch_summed=b,
    )


def _token(
    net: LoihiNetwork, layer: Layer, spikes: Mapping[str, np.ndarray], b: int
) -> LayerCounts:
    layer = cast(TokenLinearLayer, layer)
    x = _source_spikes(net, layer, spikes).reshape(-1, *layer.in_shape)  # [T, C, N]
    return linear_counts(
        name=layer.name,
        x=np.swapaxes(x, 1, 2),
        out_features=int(layer.weights.shape[0]),
        batch_summed=b,
    )


def _nothing(*_: object) -> None:
    return None


ENERGY_KINDS: KindTable[Counter] = KindTable(
    "energy",
    {
        LIFLayer.KIND: _lif,
        DenseLayer.KIND: _dense,
        ConvLayer.KIND: _conv,
        TokenLinearLayer.KIND: _token,
        SpikeInputLayer.KIND: _nothing,
        CurrentInputLayer.KIND: _nothing,
        HostInputLayer.KIND: _nothing,
        AttentionLayer.KIND: _nothing,
        MaxPoolLayer.KIND: _nothing,
        ReadoutLayer.KIND: _nothing,
    },
)
"""The energy backend's table: how each layer kind is counted from simulated spikes."""


def count_network(
    net: LoihiNetwork, spikes: Mapping[str, np.ndarray], *, samples: int
) -> list[LayerCounts]:
    """Counts of every counted layer of `net`, in topological order, from the batch-summed
    spikes of `samples` samples (``SimResult.spike_counts``)."""
    out = []
    for name in net.topological_order():
        layer = net.layer(name)
        counts = ENERGY_KINDS.of(layer)(net, layer, spikes, samples)
        if isinstance(counts, LayerCounts):
            out.append(counts)
        elif counts is not None:
            out += counts
    return out
