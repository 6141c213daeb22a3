"""Quantize SpikeCLIP's text tower into a `LoihiNetwork` (DESIGN §4–§5), like the image tower.

The same mapping as :mod:`hardware.quantize.image` (one code path: :func:`hardware.quantize.image.
quantize_graph` on the graph of :mod:`hardware.lower.text`): every LIF ``du = 4095``,
``dv = 4096/τ``, ``vth = θ·s`` with a power-of-two scale ``s`` per LIF chosen from calibration
prompts; ``fc1``/``fc2`` become Lava ``Dense`` layers with weights ``grid(W·s/τ)`` on Lava's
8-bit grid (the smallest ``weight_exp ≥ 0`` at which at most ``max_clip_fraction`` of them
clip); ``fc1``'s bias becomes ``lif2``'s ``β ≈ 64·s·b/τ`` (``bias_exp ≥ T − 1``); the
embedding lookup ``token_table[ids] + position_table`` runs on the host
(``HostInputLayer(op="embedding")``) and is injected per prompt as ``lif1``'s bias
(``fixed.bias_encode_s13(64·s·x/τ, bias_exp)``, 13-bit mantissa; clipping counted by the
simulator as ``host_clipped``); ``fc2``'s current reaches the host readout, which decodes
``X = a·τ/s + b_fc2`` and applies the time weights (no token mean, no head).
"""

from __future__ import annotations

from dataclasses import replace

import nir
import torch

from hardware.ir import fixed
from hardware.ir.layers import HostInputLayer
from hardware.ir.network import LoihiNetwork
from hardware.lower.float_graph import FloatGraph
from hardware.lower.text import float_graph_from_text_nir, graph_from_text_encoder
from hardware.quantize.image import QuantizationRangeError, QuantOptions, quantize_graph
from hardware.quantize.record import QuantRecord
from hardware.simulate.host_input import host_injection_stats


def text_graph(source, *, token_table=None, position_table=None) -> FloatGraph:
    """FloatGraph of ``source``: a ``TextEncoder``, a text ``nir.NIRGraph`` (then both tables
    ``(V, D)``/``(L, D)`` are required: NIR does not carry them) or a ready FloatGraph."""
    if isinstance(source, FloatGraph):
        return source
    if isinstance(source, nir.NIRGraph):
        if token_table is None or position_table is None:
            raise QuantizationRangeError(
                "text_encoder.encode", "a NIR text graph needs token_table and position_table "
                "(the embedding tables stay in the checkpoint)",
            )
        return float_graph_from_text_nir(source, token_table, position_table)
    if hasattr(source, "token_embedding") and hasattr(source, "fc2"):
        return graph_from_text_encoder(source)
    raise TypeError(
        f"quantize_text: expected a TextEncoder, a NIR text graph or a FloatGraph, "
        f"got {type(source).__name__}"
    )


def quantize_text(
    source, calibration, *, token_table=None, position_table=None,
    options: QuantOptions | None = None,
) -> tuple[LoihiNetwork, QuantRecord]:
    """Quantize the text tower with calibration token ids ``[B, L]`` (int64, in ``[0, V)``).

    ``source``: see :func:`text_graph`. Returns the integer network (host ``embedding`` input →
    LIF → Dense → LIF → Dense → flat readout) and its per-layer :class:`QuantRecord`; raises
    :class:`QuantizationRangeError` naming the layer when no scale fits.
    """
    graph = text_graph(source, token_table=token_table, position_table=position_table)
    ids = torch.as_tensor(calibration)
    if ids.ndim != 2 or ids.is_floating_point() or tuple(ids.shape[1:]) != graph.input_shape:
        raise QuantizationRangeError(
            graph.nodes[0].name,
            f"calibration must be integer token ids [B, {graph.input_shape[0]}], "
            f"got {ids.dtype} {tuple(ids.shape)}",
        )
    ids = ids.to(torch.int64)
    net, record = quantize_graph(graph, ids, options=options)
    return net, _with_injection_stats(net, record, ids)


def _with_injection_stats(net: LoihiNetwork, record: QuantRecord, ids) -> QuantRecord:
    """Fill the host-fed LIF's bias columns with the calibration injection's statistics
    (:func:`hardware.simulate.host_input.host_injection_stats`) and add a note on its rounding."""
    (host,) = [ly for ly in net.layers if isinstance(ly, HostInputLayer)]
    (target,) = [e.dst for e in net.out_edges(host.name)]
    st = host_injection_stats(host, ids)
    neurons = tuple(
        replace(n, bias_max_abs=st["max_abs_beta"], bias_max_abs_error=st["max_abs_error"],
                pct_bias_clipped=st["pct_clipped"]) if n.name == target else n
        for n in record.neurons
    )
    note = (
        f"{host.name}: embedding injected as {target}'s bias (13-bit mantissa, bias_exp "
        f"{host.bias_exp}); on the calibration prompts {st['pct_rounded']:.2f}% of the values "
        f"were rounded, {st['pct_clipped']:.2f}% clipped, max |error| {st['max_abs_error']:g} "
        f"v-units (threshold {int(fixed.threshold_v(net.layer(target).vth))} v-units)."
    )
    return replace(record, neurons=neurons, notes=(*record.notes, note))
