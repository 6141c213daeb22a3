"""Quantize SpikeCLIP's text tower into a `LoihiNetwork` (DESIGN §4–§5): the one text quantizer.

The same mapping and code path as the image tower (:func:`hardware.quantize.image.quantize_graph`
on the graph of :mod:`hardware.lower.text`): every LIF ``du = 4095``, ``dv = 4096/τ``,
``vth = θ·s`` with a power-of-two scale ``s`` per LIF; ``fc1``/``fc2`` become Lava ``Dense``
layers with weights ``grid(W·s/(τ·2^e))`` on Lava's 8-bit grid; ``fc1``'s bias becomes ``lif2``'s
``β ≈ 64·s·b/τ``; the embedding lookup ``token_table[ids] + position_table`` runs on the host
(``HostInputLayer(op="embedding")``) and is injected per prompt as ``lif1``'s bias
(``fixed.bias_encode_s13(64·s·x/τ, bias_exp)``, 13-bit mantissa; clipping counted by the
simulator as ``host_clipped``); ``fc2``'s current reaches the host readout, which decodes
``X = a·τ/s + b_fc2`` and applies the time weights (no token mean, no head).

Two policies (:func:`quantize_text`'s ``options``):

- :class:`QuantOptions` (default): scales from calibration prompts, the smallest weight exponent
  that fits, bias exponents ≥ T − 1 per layer; the record carries the observed ranges and the
  calibration injection's rounding;
- :class:`StaticOptions`: scales from static worst-case bounds, no prompts needed, weight
  exponent 0. With ``bias_exp=6`` it is the lava-dl netx export's policy
  (:data:`export.lava.netx.NETX_OPTIONS`: netx fixes ``bias_exp = 6``, so every bias is a
  13-bit mantissa in whole weight units).
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
from hardware.quantize.image import quantize_graph
from hardware.quantize.plan import QuantizationRangeError, QuantOptions, StaticOptions
from hardware.quantize.record import QuantRecord
from hardware.quantize.scales import host_drive_bound
from hardware.simulate.host_input import host_injection_stats

#: Names of the text tower's layers (``hardware.lower.text``'s, as ``to_nir`` writes them).
PREFIX = "text_encoder"
NAMES = {k: f"{PREFIX}.{k}" for k in ("encode", "lif1", "fc1", "lif2", "fc2", "output")}


def text_graph(source, *, token_table=None, position_table=None) -> FloatGraph:
    """FloatGraph of ``source``: a ``TextEncoder`` (LIF neurons), a text ``nir.NIRGraph`` (then
    both tables ``(V, D)``/``(L, D)`` are required: NIR does not carry them) or a FloatGraph."""
    if isinstance(source, FloatGraph):
        return source
    if isinstance(source, nir.NIRGraph):
        if token_table is None or position_table is None:
            raise QuantizationRangeError(
                NAMES["encode"], "a NIR text graph needs token_table and position_table "
                "(the embedding tables stay in the checkpoint)",
            )
        return float_graph_from_text_nir(source, token_table, position_table)
    if hasattr(source, "token_embedding") and hasattr(source, "fc2"):
        if source.config.neuron != "lif":
            raise QuantizationRangeError(NAMES["lif1"], "needs LIF neurons (config.neuron='lif')")
        return graph_from_text_encoder(source)
    raise TypeError(
        f"quantize_text: expected a TextEncoder, a NIR text graph or a FloatGraph, "
        f"got {type(source).__name__}"
    )


def quantize_text(
    source, calibration=None, *, token_table=None, position_table=None,
    options: QuantOptions | StaticOptions | None = None, batch_size: int | None = None,
) -> tuple[LoihiNetwork, QuantRecord]:
    """Quantize the text tower (``source``: see :func:`text_graph`).

    ``calibration``: token ids ``[B, L]`` (int64, in ``[0, V)``), required with
    :class:`QuantOptions` (default), not taken with :class:`StaticOptions`. Returns the integer
    network (host ``embedding`` input → LIF → Dense → LIF → Dense → flat readout) and its
    per-layer :class:`QuantRecord`; raises :class:`QuantizationRangeError` naming the layer when
    no scale fits.
    """
    graph = text_graph(source, token_table=token_table, position_table=position_table)
    if isinstance(options, StaticOptions):
        if calibration is not None:
            raise QuantizationRangeError(NAMES["encode"], "StaticOptions take no calibration")
        net, record = quantize_graph(graph, options=options)
        return net, _with_static_drive(graph, net, record)
    ids = torch.as_tensor(calibration) if calibration is not None else None
    if ids is None or ids.ndim != 2 or ids.is_floating_point() or (
        tuple(ids.shape[1:]) != graph.input_shape
    ):
        got = "nothing" if ids is None else f"{ids.dtype} {tuple(ids.shape)}"
        raise QuantizationRangeError(
            graph.nodes[0].name,
            f"calibration must be integer token ids [B, {graph.input_shape[0]}], got {got}",
        )
    ids = ids.to(torch.int64)
    net, record = quantize_graph(graph, ids, options=options, batch_size=batch_size)
    return net, _with_injection_stats(net, record, ids)


def _host_target(net: LoihiNetwork) -> tuple[HostInputLayer, str]:
    (host,) = [ly for ly in net.layers if isinstance(ly, HostInputLayer)]
    (target,) = [e.dst for e in net.out_edges(host.name)]
    return host, target


def _with_injection_stats(net: LoihiNetwork, record: QuantRecord, ids) -> QuantRecord:
    """Fill the host-fed LIF's bias columns with the calibration injection's statistics
    (:func:`hardware.simulate.host_input.host_injection_stats`) and add a note on its rounding."""
    host, target = _host_target(net)
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


def _with_static_drive(graph: FloatGraph, net: LoihiNetwork, record: QuantRecord) -> QuantRecord:
    """Static bounds: the host-fed LIF's max |β| is the worst-case drive (v-units)."""
    host, target = _host_target(net)
    drive = host.bias_scale * host_drive_bound(graph.node(host.name))
    neurons = tuple(replace(n, bias_max_abs=drive) if n.name == target else n
                    for n in record.neurons)
    return replace(record, neurons=neurons)
