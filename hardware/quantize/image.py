"""Quantize a float SpikeCLIP graph into a `LoihiNetwork` (DESIGN §4–§5) plus a `QuantRecord`.

The steps (each its own module):

1. **plan** (:mod:`hardware.quantize.scales`): one power-of-two scale per LIF group, bias
   exponents, sign modes, weight exponents — from calibration data streamed in batches
   (:mod:`hardware.quantize.calibrate`) or from static bounds (:class:`StaticOptions`);
2. **build** (:mod:`hardware.quantize.build`): the integer layers, one builder per node kind;
3. **observe**: the built network is simulated on the calibration data (batch by batch) and the
   largest |a|, |u|, |v| and the overflow / saturation / tie counts go into the record; an
   observed overflow or saturation is a :class:`QuantizationRangeError`.

Powers of two keep the dequantized twin (Ŵ = τw/s …) exact in float64. Memory: the float run
and the simulation hold one batch at a time; the batch size follows from a per-sample estimate
and the memory available (:func:`hardware.quantize.calibrate.plan_batches`), so peak memory does
not grow with the number of calibration samples.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict

import nir
import numpy as np
import torch

from export.nir.schema import graph_meta
from hardware.ir import fixed
from hardware.ir.layers import HostInputLayer, LIFLayer, ReadoutLayer
from hardware.ir.network import LoihiNetwork
from hardware.lower.float_graph import FloatGraph, FloatGraphError
from hardware.lower.from_nir import float_graph_from_nir
from hardware.quantize.build import (
    BiasStats,
    build_network,
    check_neurons,
    rounded_decay_notes,
)
from hardware.quantize.calibrate import (
    FloatStats,
    SimStats,
    float_stats,
    plan_batches,
    sim_stats,
)
from hardware.quantize.plan import (
    QuantizationRangeError,
    QuantOptions,
    QuantPlan,
    StaticOptions,
)
from hardware.quantize.record import NeuronQuant, QuantRecord
from hardware.quantize.scales import plan_from_stats, static_plan
from spikeclip.parallel import workers_for

__all__ = [
    "QuantOptions",
    "QuantizationRangeError",
    "StaticOptions",
    "image_graph",
    "image_part",
    "plan_quantization",
    "quantize",
    "quantize_graph",
]

NOTES = ("Bit-accurate means bit-exact to Lava 0.10's CPU fixed-point models, not verified "
         "against Loihi silicon (lava#322, lava#829).",)
STATIC_NOTE = (
    "Static bounds (no calibration data): every scale keeps the worst case in range (binary "
    "spikes, Σ|w| + |bias| ≤ 65,535 wu per neuron, the host drive's 13-bit mantissa); observed "
    "ranges are not recorded (0, margin ∞); the host-fed LIF's max |β| is the worst-case drive."
)
PER_VALUE_NOTE = (
    "The host injects each input current at its own bias exponent (the smallest from {floor} to "
    "7 that holds it in 13 bits), so currents near the threshold are rounded on a finer grid "
    "than the largest; a host-fed LIF's bias_exp column shows that floor."
)


def image_part(graph: nir.NIRGraph) -> nir.NIRGraph:
    """The image tower of a ``to_nir`` graph (one tower or both, e.g. read from ``model.nir``):
    every node the image Output depends on, the edges among them in the file's order, and the
    graph metadata. Raises :class:`FloatGraphError` if there is no single image decoding."""
    outputs = [d.output for d in graph_meta(graph).decodings if d.feature == "image"]
    if len(outputs) != 1:
        raise FloatGraphError(f"quantize: expected one image-tower output, found {outputs}")
    keep, stack = {outputs[0]}, [outputs[0]]
    while stack:
        dst = stack.pop()
        for s, d in graph.edges:
            if d == dst and s not in keep:
                keep.add(s)
                stack.append(s)
    nodes = {name: node for name, node in graph.nodes.items() if name in keep}
    edges = [(s, d) for s, d in graph.edges if s in keep and d in keep]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(graph.metadata),
                        type_check=False)


def image_graph(nir_graph: nir.NIRGraph) -> FloatGraph:
    """The FloatGraph of the image tower of ``nir_graph`` (:func:`image_part`, then lowered)."""
    return float_graph_from_nir(image_part(nir_graph))


def quantize(
    nir_graph: nir.NIRGraph, calibration, *, options: QuantOptions | None = None,
    batch_size: int | None = None,
) -> tuple[LoihiNetwork, QuantRecord]:
    """Quantize the image tower of an ``export.nir`` graph (one tower or both) with calibration
    images ``[B, C, H, W]``. Returns the integer network and its per-layer record (module doc).
    """
    return quantize_graph(image_graph(nir_graph), calibration, options=options,
                          batch_size=batch_size)


def plan_quantization(
    graph: FloatGraph, calibration, options: QuantOptions | None = None, *,
    batch_size: int | None = None,
) -> tuple[QuantPlan, FloatStats]:
    """Choose every scale, bias exponent and sign mode from a float run on ``calibration``
    (streamed in batches of ``batch_size``; default: :func:`plan_batches`). Returns the plan and
    the float run's maxima it was chosen from."""
    calib = torch.as_tensor(calibration)
    size = plan_batches(graph, len(calib), batch_size=batch_size).batch_size
    stats = float_stats(graph, calib, size)
    return plan_from_stats(graph, stats, options or QuantOptions()), stats


def quantize_graph(
    graph: FloatGraph, calibration=None, *, options: QuantOptions | StaticOptions | None = None,
    batch_size: int | None = None,
) -> tuple[LoihiNetwork, QuantRecord]:
    """:func:`quantize` for a :class:`FloatGraph` (e.g. from `hardware.lower.from_torch`).

    ``options``: :class:`QuantOptions` (default; needs ``calibration``) or
    :class:`StaticOptions` (no calibration). ``batch_size``: calibration samples per batch
    (default: from the memory estimate, :func:`plan_batches`); the result does not depend on it.
    """
    opts = options or QuantOptions()
    check_neurons(graph)  # before planning: an LI's infinite threshold has no scale
    if isinstance(opts, StaticOptions):
        plan, calib, n = static_plan(graph, opts), None, 0
    elif calibration is None:
        raise QuantizationRangeError(graph.nodes[0].name, "calibration data is needed (or "
                                     "StaticOptions for static bounds)")
    else:
        calib = torch.as_tensor(calibration)
        n = int(calib.shape[0])
        workers = workers_for(n)
        batching = plan_batches(graph, n, batch_size=batch_size, workers=workers)  # memory first
        plan = plan_from_stats(graph, float_stats(graph, calib, batching.batch_size, workers),
                               opts)
    tau = graph.tau if math.isfinite(graph.tau) else "inf"  # JSON has no inf
    prov = {"quantizer": "hardware.quantize.image", "tau": tau, "options": asdict(opts),
            "calibration_samples": n}
    if isinstance(opts, StaticOptions):
        prov["policy"] = "static"
    net, syn_recs, bias_stats = build_network(graph, plan, prov)
    sim = (SimStats.none() if calib is None
           else sim_stats(net, calib, batching.batch_size, workers))
    neurons = neuron_records(net, plan, sim, bias_stats)
    exact = graph.T <= 7 and all(
        not isinstance(ly, LIFLayer) or ly.meta["role"] == "attention"
        or int(np.min(ly.bias_exp)) >= graph.T - 1 for ly in net.layers
    )
    notes = NOTES + ((STATIC_NOTE,) if calib is None else ()) + rounded_decay_notes(net)
    floors = sorted({ly.bias_exp for ly in net.layers
                     if isinstance(ly, HostInputLayer) and ly.exp_per_value})
    if floors:
        notes += (PER_VALUE_NOTE.format(floor="/".join(map(str, floors))),)
    record = QuantRecord(T=graph.T, tau=graph.tau, calibration_samples=n, options=asdict(opts),
                         exact=exact, synapses=tuple(syn_recs), neurons=tuple(neurons),
                         notes=notes)
    return net, record


def neuron_records(
    net: LoihiNetwork, plan: QuantPlan, sim: SimStats, bias_stats: Mapping[str, BiasStats]
) -> list[NeuronQuant]:
    """One :class:`NeuronQuant` per LIF and readout; raises :class:`QuantizationRangeError` if
    the calibration overflowed u or saturated v."""
    recs = []
    for ly in net.layers:
        if not isinstance(ly, LIFLayer | ReadoutLayer):
            continue
        a, u, v = (getattr(sim, f).get(ly.name, 0) for f in ("max_abs_a", "max_abs_u",
                                                              "max_abs_v"))
        ovf, sat = sim.overflow_u.get(ly.name, 0), sim.saturations_v.get(ly.name, 0)
        if ovf or sat:
            raise QuantizationRangeError(
                ly.name, f"calibration data overflowed u {ovf}× / saturated v {sat}× (max |a| "
                f"{a} wu, |v| {v}); use a smaller scale (raise the margin) or retrain",
            )
        lif = isinstance(ly, LIFLayer)
        bs = bias_stats.get(ly.name, BiasStats(exp=0))
        recs.append(NeuronQuant(
            name=ly.name, role=ly.meta["role"] if lif else "readout", scale=plan.scales[ly.name],
            theta=float(ly.meta["theta"]) if lif else 0.0, vth=ly.vth if lif else 0,
            du=ly.du if lif else 0, dv=ly.dv if lif else 0, bias_exp=bs.exp,
            bias_max_abs=bs.max_abs, pct_bias_clipped=bs.pct_clipped,
            bias_max_abs_error=bs.max_abs_error,
            observed_max_abs_a=a, observed_max_abs_u=u, observed_max_abs_v=v,
            limit_a=fixed.A_MAX_NO_WRAP, limit_v=fixed.V_MAX,
            margin_a=fixed.A_MAX_NO_WRAP / a if a else math.inf,
            margin_v=fixed.V_MAX / v if v else math.inf,
            overflow_u=ovf, saturations_v=sat, ties=sim.ties.get(ly.name, 0),
        ))
    return recs
