"""Lower SpikeCLIP's text tower to a :class:`FloatGraph` (float64), from the module or from NIR.

The graph (names as ``export.nir.to_nir(..., tower="text")`` gives them, P = ``text_encoder``)::

    P.encode  FHostInput op "embedding": x = token_table[ids] + position_table   (L, D)
    P.lif1    FLIF (L·D,), bias 0: its whole input is the host current, injected as bias
    P.fc1     FSynapse kind "dense" (H, L·D)      → P.lif2 FLIF (H,), bias = fc1.bias
    P.fc2     FSynapse kind "dense" (F, H)        → P.output FReadout (F,), bias = fc2.bias,
              time weights as the model's, no token mean (token_axes ()), no head

``x`` is laid out ``(L, D)``; ``P.lif1`` reads it flattened in C order (position-major: neuron
``l·D + d``), which is ``TextEncoder.embed``'s ``flatten(1)``. The NIR graph does not carry the
embedding tables (``InputEncoding``: they stay in the checkpoint), so
:func:`float_graph_from_text_nir` takes them as arguments.
"""

from __future__ import annotations

import nir
import numpy as np
import torch
from torch import Tensor

from export.nir.schema import StaticInputSpec, extension_spec, graph_meta, is_extension
from hardware.lower.float_graph import (
    FLIF,
    FHostInput,
    FloatGraph,
    FloatGraphError,
    FReadout,
    FSynapse,
)


def _f64(x) -> Tensor:
    if isinstance(x, Tensor):
        return x.detach().to(torch.float64)
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


def text_float_graph(
    *,
    token_table: Tensor,
    position_table: Tensor,
    fc1: tuple[Tensor, Tensor],
    fc2: tuple[Tensor, Tensor],
    theta: float,
    tau: float,
    time_weights: Tensor,
    compare: str = ">=",
    prefix: str = "text_encoder",
) -> FloatGraph:
    """The text-tower FloatGraph from its parameters (float64 copies; see module doc).

    ``token_table`` ``(V, D)``, ``position_table`` ``(L, D)``, ``fc1`` = (weight ``(H, L·D)``,
    bias ``(H,)``), ``fc2`` = (weight ``(F, H)``, bias ``(F,)``), ``time_weights`` ``(T,)``.
    """
    pre = f"{prefix}." if prefix else ""
    table, pos = token_table.double(), position_table.double()
    (w1, b1), (w2, b2) = [(w.double(), b.double()) for w, b in (fc1, fc2)]
    n_len, width = pos.shape
    flat = n_len * width
    if table.ndim != 2 or table.shape[1] != width or w1.shape[1] != flat:
        raise FloatGraphError(
            f"lower_text: token table {tuple(table.shape)}, position table {tuple(pos.shape)} "
            f"and fc1 {tuple(w1.shape)} do not fit (V, D), (L, D), (H, L·D)"
        )
    if w2.shape[1] != w1.shape[0]:
        raise FloatGraphError(f"lower_text: fc2 {tuple(w2.shape)} does not follow fc1")
    hid, out = int(w1.shape[0]), int(w2.shape[0])
    n = {k: f"{pre}{k}" for k in ("encode", "lif1", "fc1", "lif2", "fc2", "output")}
    nodes = (
        FHostInput(name=n["encode"], op="embedding", weight=table, bias=pos, in_shape=(n_len,),
                   out_shape=(n_len, width)),
        FLIF(name=n["lif1"], shape=(flat,), theta=theta, tau=tau,
             bias=torch.zeros(flat, dtype=torch.float64)),
        FSynapse(name=n["fc1"], kind="dense", weight=w1, in_shape=(flat,), out_shape=(hid,)),
        FLIF(name=n["lif2"], shape=(hid,), theta=theta, tau=tau, bias=b1),
        FSynapse(name=n["fc2"], kind="dense", weight=w2, in_shape=(hid,), out_shape=(out,)),
        FReadout(name=n["output"], in_shape=(out,), bias=b2, time_weights=time_weights.double(),
                 head_weight=None, head_bias=None, token_axes=()),
    )
    chain = ("encode", "lif1", "fc1", "lif2", "fc2", "output")
    edges = tuple((n[a], n[b]) for a, b in zip(chain, chain[1:]))
    return FloatGraph(nodes=nodes, edges=edges, T=int(time_weights.shape[0]), tau=float(tau),
                      input_shape=(n_len,), compare=compare)


def graph_from_text_encoder(encoder, prefix: str = "text_encoder") -> FloatGraph:
    """`spikeclip.text_encoder.TextEncoder` → FloatGraph (differentiable copies; module doc)."""
    cfg = encoder.config
    return text_float_graph(
        token_table=encoder.token_embedding.weight,
        position_table=encoder.position_embedding.weight,
        fc1=(encoder.fc1.weight, encoder.fc1.bias),
        fc2=(encoder.fc2.weight, encoder.fc2.bias),
        theta=float(cfg.v_threshold),
        tau=float(cfg.tau),
        time_weights=encoder.readout.weights,
        compare=">" if cfg.strict_threshold else ">=",
        prefix=prefix,
    )


def _uniform(name: str, field: str, arr) -> float:
    a = np.asarray(arr, dtype=np.float64)
    if a.size == 0 or not np.all(a == a.flat[0]):
        raise FloatGraphError(f"lower_text: LIF {name!r}: {field} must be uniform per layer")
    return float(a.flat[0])


def float_graph_from_text_nir(
    graph: nir.NIRGraph, token_table, position_table, prefix: str = "text_encoder"
) -> FloatGraph:
    """The text tower of a ``to_nir(..., tower="text")`` graph (+ its embedding tables).

    Expects exactly the chain ``P.encode`` (static_input) → ``P.lif1`` → ``P.fc1`` (Affine) →
    ``P.lif2`` → ``P.fc2`` (Affine) → ``P.output`` with a ``text`` decoding, forward-Euler LIFs
    ``(r = 1, v_leak = 0, v_reset = 0)`` sharing τ and θ. Raises :class:`FloatGraphError`.
    """
    meta = graph_meta(graph)
    disc = meta.discretization
    if disc.method != "forward_euler" or disc.reset != "zero":
        raise FloatGraphError(
            f"lower_text: discretization {disc.method}/{disc.reset}; need forward_euler/zero"
        )
    pre = f"{prefix}." if prefix else ""
    dec = [d for d in meta.decodings if d.feature == "text" and d.output == f"{pre}output"]
    if len(dec) != 1 or dec[0].token_axes or dec[0].head_weight is not None:
        raise FloatGraphError(f"lower_text: need one headless text decoding on {pre}output")
    want = {"encode": None, "lif1": nir.LIF, "fc1": nir.Affine, "lif2": nir.LIF,
            "fc2": nir.Affine, "output": nir.Output}
    nodes = {}
    for key, cls in want.items():
        name = f"{pre}{key}"
        node = graph.nodes.get(name)
        ok = (
            is_extension(node) and isinstance(extension_spec(name, node), StaticInputSpec)
            if cls is None else isinstance(node, cls)
        )
        if node is None or not ok:
            raise FloatGraphError(f"lower_text: node {name!r} missing or not the text tower's")
        nodes[key] = node
    chain = [f"{pre}{k}" for k in want]
    for a, b in zip(chain, chain[1:]):
        if (a, b) not in graph.edges:
            raise FloatGraphError(f"lower_text: edge {a!r} → {b!r} missing")
    taus, thetas = set(), set()
    for key in ("lif1", "lif2"):
        lif, name = nodes[key], f"{pre}{key}"
        if _uniform(name, "r", lif.r) != 1.0 or _uniform(name, "v_leak", lif.v_leak) != 0:
            raise FloatGraphError(f"lower_text: LIF {name!r}: need r = 1 and v_leak = 0")
        if lif.v_reset is not None and np.any(np.asarray(lif.v_reset) != 0):
            raise FloatGraphError(f"lower_text: LIF {name!r}: need v_reset = 0")
        taus.add(round(_uniform(name, "tau", lif.tau) / disc.dt, 9))
        thetas.add(_uniform(name, "v_threshold", lif.v_threshold))
    if len(taus) != 1 or len(thetas) != 1:
        raise FloatGraphError(f"lower_text: LIFs need one τ and θ, got {taus}, {thetas}")
    return text_float_graph(
        token_table=_f64(token_table), position_table=_f64(position_table),
        fc1=(_f64(nodes["fc1"].weight), _f64(nodes["fc1"].bias)),
        fc2=(_f64(nodes["fc2"].weight), _f64(nodes["fc2"].bias)),
        theta=thetas.pop(), tau=taus.pop(), time_weights=_f64(dec[0].time_weights),
        compare=disc.compare, prefix=prefix,
    )
