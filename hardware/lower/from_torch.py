"""Lower a `spikeclip` image encoder straight to a :class:`FloatGraph` (BN folded, float64).

This is the differentiable path used by hardware-aware fine-tuning (gradients reach the conv
weights and BN affine parameters; BN running statistics are used as constants, i.e. eval-mode
BN) and the stop-gap when no NIR graph is at hand.
:func:`hardware.lower.from_nir.float_graph_from_nir` builds the same graph from ``export.nir``'s
output.

BN folding (per output channel): ``g = γ/√(σ² + ε)``; ``W' = g·W``; ``b' = β − g·μ + g·b_conv``.
The three q/k/v convs are stacked into one ``qkv`` synapse feeding one ``qkv_lif`` of 3D
channels (the attention extension's q|k|v operand). Residual-stream consumers (each block's
``in_lif``\\ s and the readout) get one edge from every branch added so far (``conv4``, and each
earlier ``proj``/``fc2``); their bias is the sum of those branches' shifts.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hardware.lower.float_graph import (
    FLIF,
    FAttention,
    FHostInput,
    FloatGraph,
    FMaxPool,
    FNode,
    FReadout,
    FSynapse,
)


def bn_gain(bn: nn.Module) -> Tensor:
    """Per-channel gain ``g = γ/√(σ² + ε)`` of an eval-mode BN, float64 ``[C]``."""
    return bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)


def fold_bn(conv: nn.Module, bn: nn.Module) -> tuple[Tensor, Tensor]:
    """``(W', b')`` float64: ``conv`` then eval-mode ``bn`` as one affine map (see module doc)."""
    g = bn_gain(bn)
    w = conv.weight.double() * g.view(-1, *([1] * (conv.weight.dim() - 1)))
    b = bn.bias.double() - g * bn.running_mean.double()
    if conv.bias is not None:
        b = b + g * conv.bias.double()
    return w, b


def synapse_modules(
    encoder: nn.Module, prefix: str = "image_encoder"
) -> dict[str, list[tuple[nn.Module, nn.Module]]]:
    """Synapse node name → the ``(conv, bn)`` pairs whose folded maps it stacks, in row order
    (one pair per node, three for a block's ``qkv_conv``). Names as in
    :func:`graph_from_image_encoder`; the host input ``conv0`` is not a synapse."""
    pre = f"{prefix}." if prefix else ""
    tok = encoder.tokenizer
    out = {f"{pre}tokenizer.conv{i}": [(getattr(tok, f"conv{i}"), getattr(tok, f"bn{i}"))]
           for i in (1, 2, 3, 4)}
    for i, block in enumerate(encoder.blocks):
        p, att, mlp = f"{pre}blocks.{i}", block.attn, block.mlp
        out[f"{p}.attn.qkv_conv"] = [(getattr(att, f"{x}_conv"), getattr(att, f"{x}_bn"))
                                     for x in ("q", "k", "v")]
        out[f"{p}.attn.proj_conv"] = [(att.proj_conv, att.proj_bn)]
        out[f"{p}.mlp.fc1_conv"] = [(mlp.fc1_conv, mlp.fc1_bn)]
        out[f"{p}.mlp.fc2_conv"] = [(mlp.fc2_conv, mlp.fc2_bn)]
    return out


def _pair(v) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, tuple | list) else (int(v), int(v))


def graph_from_image_encoder(encoder: nn.Module, prefix: str = "image_encoder") -> FloatGraph:
    """The image tower of `spikeclip.image_encoder.ImageEncoder` as a FloatGraph (differentiable).

    Node names are those `export.nir.to_nir` gives (``image_encoder.tokenizer.lif0``,
    ``….attn.qkv_conv``, ``….mlp.fc2_conv``, ``image_encoder.output`` for the readout), so the
    graph equals :func:`hardware.lower.from_nir.float_graph_from_nir` of the exported model.
    """
    pre = f"{prefix}." if prefix else ""
    cfg = encoder.config
    tau = float(cfg.tau)
    tok = encoder.tokenizer
    nodes: list[FNode] = []
    edges: list[tuple[str, str]] = []
    shape = (cfg.in_channels, cfg.img_size, cfg.img_size)

    def lif(name: str, shp, theta: float, bias: Tensor, srcs, role: str = "lif") -> None:
        full = bias.view(-1, *([1] * (len(shp) - 1))).expand(*shp)
        nodes.append(FLIF(name=name, shape=tuple(shp), theta=theta, tau=tau, bias=full, role=role))
        edges.extend((s, name) for s in srcs)

    w0, b0 = fold_bn(tok.conv0, tok.bn0)
    out = (w0.shape[0], shape[1], shape[2])
    nodes.append(
        FHostInput(name=f"{pre}tokenizer.conv0", weight=w0, bias=b0, in_shape=shape, out_shape=out,
                   stride=_pair(tok.conv0.stride), padding=_pair(tok.conv0.padding))
    )
    lif(f"{pre}tokenizer.lif0", out, cfg.v_threshold, torch.zeros_like(b0),
        [f"{pre}tokenizer.conv0"])
    shape, src = out, f"{pre}tokenizer.lif0"
    for i in (1, 2, 3):
        conv, bn = getattr(tok, f"conv{i}"), getattr(tok, f"bn{i}")
        w, b = fold_bn(conv, bn)
        out = (w.shape[0], shape[1], shape[2])
        name = f"{pre}tokenizer.conv{i}"
        nodes.append(FSynapse(name=name, kind="conv", weight=w, in_shape=shape, out_shape=out,
                              stride=_pair(conv.stride), padding=_pair(conv.padding)))
        edges.append((src, name))
        cur = name
        pool = getattr(tok, f"pool{i}", None)
        if pool is not None:
            k, s, p = _pair(pool.kernel_size), _pair(pool.stride), _pair(pool.padding)
            pout = (out[0], (out[1] + 2 * p[0] - k[0]) // s[0] + 1,
                    (out[2] + 2 * p[1] - k[1]) // s[1] + 1)
            nodes.append(FMaxPool(name=f"{pre}tokenizer.pool{i}", in_shape=out, out_shape=pout,
                                  kernel=k, stride=s, padding=p))
            edges.append((name, f"{pre}tokenizer.pool{i}"))
            cur, out = f"{pre}tokenizer.pool{i}", pout
        lif(f"{pre}tokenizer.lif{i}", out, cfg.v_threshold, b, [cur])
        shape, src = out, f"{pre}tokenizer.lif{i}"
    w4, b4 = fold_bn(tok.conv4, tok.bn4)
    grid = (w4.shape[0], shape[1], shape[2])
    nodes.append(FSynapse(name=f"{pre}tokenizer.conv4", kind="conv", weight=w4, in_shape=shape,
                          out_shape=grid, stride=_pair(tok.conv4.stride),
                          padding=_pair(tok.conv4.padding)))
    edges.append((src, f"{pre}tokenizer.conv4"))
    branches: list[str] = [f"{pre}tokenizer.conv4"]
    stream_bias = b4
    d = grid[0]
    for i, block in enumerate(encoder.blocks):
        p = f"{pre}blocks.{i}"
        att = block.attn
        lif(f"{p}.attn.in_lif", grid, cfg.v_threshold, stream_bias, branches)
        qkv_w, qkv_b = [], []
        for part in ("q", "k", "v"):
            w, b = fold_bn(getattr(att, f"{part}_conv"), getattr(att, f"{part}_bn"))
            qkv_w.append(w.reshape(w.shape[0], w.shape[1]))
            qkv_b.append(b)
        wide = (3 * d, grid[1], grid[2])
        nodes.append(FSynapse(name=f"{p}.attn.qkv_conv", kind="token_linear",
                              weight=torch.cat(qkv_w), in_shape=grid, out_shape=wide))
        edges.append((f"{p}.attn.in_lif", f"{p}.attn.qkv_conv"))
        lif(f"{p}.attn.qkv_lif", wide, cfg.v_threshold, torch.cat(qkv_b), [f"{p}.attn.qkv_conv"])
        nodes.append(FAttention(name=f"{p}.attn.core", channels=d, heads=cfg.num_heads,
                                qk_scale=float(cfg.attn_scale), in_shape=wide, out_shape=grid))
        edges.append((f"{p}.attn.qkv_lif", f"{p}.attn.core"))
        lif(f"{p}.attn.attn_lif", grid, cfg.attn_v_threshold,
            torch.zeros(d, dtype=torch.float64), [f"{p}.attn.core"], role="attention")
        w, b = fold_bn(att.proj_conv, att.proj_bn)
        nodes.append(FSynapse(name=f"{p}.attn.proj_conv", kind="token_linear",
                              weight=w.reshape(d, d), in_shape=grid, out_shape=grid))
        edges.append((f"{p}.attn.attn_lif", f"{p}.attn.proj_conv"))
        branches.append(f"{p}.attn.proj_conv")
        stream_bias = stream_bias + b
        mlp = block.mlp
        lif(f"{p}.mlp.in_lif", grid, cfg.v_threshold, stream_bias, branches)
        w, b = fold_bn(mlp.fc1_conv, mlp.fc1_bn)
        hid = (w.shape[0], grid[1], grid[2])
        nodes.append(FSynapse(name=f"{p}.mlp.fc1_conv", kind="token_linear",
                              weight=w.reshape(w.shape[0], d), in_shape=grid, out_shape=hid))
        edges.append((f"{p}.mlp.in_lif", f"{p}.mlp.fc1_conv"))
        lif(f"{p}.mlp.fc1_lif", hid, cfg.v_threshold, b, [f"{p}.mlp.fc1_conv"])
        w, b = fold_bn(mlp.fc2_conv, mlp.fc2_bn)
        nodes.append(FSynapse(name=f"{p}.mlp.fc2_conv", kind="token_linear",
                              weight=w.reshape(d, hid[0]), in_shape=hid, out_shape=grid))
        edges.append((f"{p}.mlp.fc1_lif", f"{p}.mlp.fc2_conv"))
        branches.append(f"{p}.mlp.fc2_conv")
        stream_bias = stream_bias + b
    nodes.append(
        FReadout(name=f"{pre}output", in_shape=grid, bias=stream_bias,
                 time_weights=encoder.readout.weights.double(),
                 head_weight=encoder.head.weight.double(), head_bias=encoder.head.bias.double())
    )
    edges.extend((s, f"{pre}output") for s in branches)
    return FloatGraph(nodes=tuple(nodes), edges=tuple(edges), T=int(cfg.T), tau=tau,
                      input_shape=(cfg.in_channels, cfg.img_size, cfg.img_size),
                      compare=">" if cfg.strict_threshold else ">=")
