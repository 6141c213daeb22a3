"""One small NIR builder per module type, dispatched with `functools.singledispatch`.

`build(module, ctx, path, x)` adds the module's NIR form to `ctx` (a `GraphBuilder`), fed by
the `Signal` x, and returns its output `Signal`. `path` is the module's dotted path below the
exported model; node names are these paths (plus a few synthesized names, listed below), so
the quantizer and every error can point at the model's module. A module type without a builder
raises `UnsupportedModuleError` naming its path.

Node naming and what each module becomes (layout in `export.nir.schema`):
- `MultiStepLIF` → `nir.LIF` at its own path, per-neuron arrays of the signal's shape:
  tau = τ·dt, r = 1, v_leak = 0, v_threshold = θ, v_reset = 0.
- conv/linear + BatchNorm (pairs inside a composite) → one `nir.Conv2d`/`nir.Affine` at the conv's
  path, BN folded in float64 with the running statistics (eval-mode semantics):
  W' = W·γ/√(σ²+ε) (per output channel), b' = (b − μ)·γ/√(σ²+ε) + β.
  Token-shared `Conv1d(k=1)` layers become 1×1 `nir.Conv2d` on the (C, h, w) grid.
- `nn.MaxPool2d` → `max_pool2d` extension at its path.
- `SpikingSelfAttention` at P: P.in_lif (LIF), P.qkv_conv (q|k|v convs + BNs stacked on the
  output-channel axis: (3D, D, 1, 1)), P.qkv_lif (q_lif|k_lif|v_lif arrays stacked likewise),
  P.core (`spiking_attention` extension), P.attn_lif (LIF, θ = 0.5), P.proj_conv (+ proj_bn).
- `Block`: its attention and MLP branch outputs are added to the residual stream as fan-in
  sources (no add node).
- `ImageEncoder` at P: P.input (Input (C, H, W)), P.encode (`static_input`), tokenizer,
  blocks, P.output (Output, fan-in of the whole stream) + the readout decoding (token mean over
  axes (1, 2), time weights, head Linear).
- `TextEncoder` at P: P.input (Input (L·W,) = `TextEncoder.embed(ids)`), P.encode, P.lif1,
  P.fc1, P.lif2, P.fc2, P.output + decoding (time weights only).
"""

from __future__ import annotations

import functools

import nir
import numpy as np
import torch
from torch import nn

from export.nir.context import GraphBuilder, Signal
from export.nir.errors import UnsupportedModuleError
from export.nir.schema import (
    DT,
    AttentionSpec,
    InputEncoding,
    MaxPoolSpec,
    ReadoutDecoding,
    StaticInputSpec,
    source_metadata,
)
from spikeclip.image_encoder import (
    Block,
    ImageEncoder,
    SpikingMLP,
    SpikingSelfAttention,
    SpikingTokenizer,
    TimeWeightedReadout,
)
from spikeclip.model import SpikeCLIP
from spikeclip.neurons import ANNActivation, MultiStepLIF
from spikeclip.text_encoder import TextEncoder


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _unsupported(module: nn.Module, path: str, reason: str = "no NIR builder") -> None:
    raise UnsupportedModuleError(path, type(module).__name__, reason)


# --------------------------------------------------------------------------- neurons


@functools.singledispatch
def neuron_arrays(module: nn.Module, ctx: GraphBuilder, path: str, shape: tuple[int, ...]):
    """Per-neuron NIR LIF parameter arrays {tau, r, v_leak, v_threshold, v_reset} of `shape`."""
    _unsupported(module, path, "not a spiking neuron (expected MultiStepLIF)")


@neuron_arrays.register
def _(module: MultiStepLIF, ctx: GraphBuilder, path: str, shape: tuple[int, ...]):
    ctx.note_compare(path, ">" if module.strict else ">=")
    full = functools.partial(np.full, shape, dtype=np.float64)
    return {
        "tau": full(module.tau * DT),
        "r": full(1.0),
        "v_leak": full(0.0),
        "v_threshold": full(module.v_threshold),
        "v_reset": full(0.0),
    }


@neuron_arrays.register
def _(module: ANNActivation, ctx: GraphBuilder, path: str, shape: tuple[int, ...]):
    _unsupported(module, path, "the ANN twin (ReLU) has no spiking NIR form; export the SNN")


def _lif_node(arrays: dict[str, np.ndarray], *sources: str) -> nir.LIF:
    return nir.LIF(**arrays, metadata=source_metadata(*sources))


def _lif(ctx: GraphBuilder, module: nn.Module, path: str, x: Signal) -> Signal:
    return ctx.add(path, _lif_node(neuron_arrays(module, ctx, path, x.shape), path), x)


# --------------------------------------------------------------------------- synapses + BN


def _fold_bn(
    weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.Module, path: str
) -> tuple[np.ndarray, np.ndarray]:
    """(W', b') in float64 with BN (running statistics) folded into the output channels."""
    if (
        not isinstance(bn, nn.BatchNorm1d | nn.BatchNorm2d)
        or not bn.affine
        or (bn.running_mean is None)
    ):
        _unsupported(bn, path, "expected an affine BatchNorm with running statistics to fold")
    w = weight.detach().to(torch.float64)
    b = torch.zeros(w.shape[0], dtype=torch.float64) if bias is None else bias.detach().double()
    scale = bn.weight.detach().double() / torch.sqrt(bn.running_var.detach().double() + bn.eps)
    w = w * scale.reshape(-1, *([1] * (w.ndim - 1)))
    b = (b - bn.running_mean.detach().double()) * scale + bn.bias.detach().double()
    return w.cpu().numpy(), b.cpu().numpy()


@functools.singledispatch
def synapse(module: nn.Module, bn: nn.Module, path: str, bn_path: str, in_shape: tuple[int, ...]):
    """The folded `nir.Conv2d` of `module` followed by `bn` (input shape `in_shape`)."""
    _unsupported(module, path, "not a supported synapse (Conv2d, token-shared Conv1d)")


@synapse.register
def _(module: nn.Conv2d, bn, path, bn_path, in_shape):
    if module.padding_mode != "zeros" or isinstance(module.padding, str):
        _unsupported(module, path, "only numeric zero padding is exported")
    w, b = _fold_bn(module.weight, module.bias, bn, bn_path)
    return nir.Conv2d(
        input_shape=tuple(in_shape[1:]),
        weight=w,
        stride=tuple(module.stride),
        padding=tuple(module.padding),
        dilation=tuple(module.dilation),
        groups=module.groups,
        bias=b,
        metadata=source_metadata(path, bn_path),
    )


@synapse.register
def _(module: nn.Conv1d, bn, path, bn_path, in_shape):
    # Token-shared linear over the flattened grid == 1×1 conv on the (C, h, w) grid.
    if module.kernel_size != (1,) or module.stride != (1,) or module.groups != 1:
        _unsupported(module, path, "only token-shared Conv1d (kernel 1, stride 1) is exported")
    w, b = _fold_bn(module.weight, module.bias, bn, bn_path)
    return nir.Conv2d(
        input_shape=tuple(in_shape[1:]),
        weight=w[..., None],
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        bias=b,
        metadata=source_metadata(path, bn_path),
    )


def _synapse(ctx, module, bn, path, bn_path, x: Signal, name: str | None = None) -> Signal:
    return ctx.add(name or path, synapse(module, bn, path, bn_path, x.shape), x)


def _affine(module: nn.Module, path: str) -> nir.Affine:
    if not isinstance(module, nn.Linear):
        _unsupported(module, path, "expected nn.Linear")
    w = module.weight.detach().double().cpu().numpy()
    b = np.zeros(w.shape[0]) if module.bias is None else module.bias.detach().double().cpu().numpy()
    return nir.Affine(weight=w, bias=b, metadata=source_metadata(path))


# --------------------------------------------------------------------------- module builders


@functools.singledispatch
def build(module: nn.Module, ctx: GraphBuilder, path: str, x: Signal) -> Signal:
    """Add `module`'s NIR form fed by `x`; return its output signal (see module docstring)."""
    _unsupported(module, path)


@build.register
def _(module: MultiStepLIF, ctx: GraphBuilder, path: str, x: Signal) -> Signal:
    return _lif(ctx, module, path, x)


@build.register
def _(module: nn.MaxPool2d, ctx: GraphBuilder, path: str, x: Signal) -> Signal:
    if module.ceil_mode or module.dilation not in (1, (1, 1)):
        _unsupported(module, path, "only ceil_mode=False, dilation=1 max-pools are exported")
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    spec = MaxPoolSpec(
        kernel_size=pair(module.kernel_size),
        stride=pair(module.stride or module.kernel_size),
        padding=pair(module.padding),
    )
    return ctx.add_extension(path, spec, x, source=(path,))


@build.register
def _(module: SpikingTokenizer, ctx: GraphBuilder, path: str, x: Signal) -> Signal:
    for i in range(4):
        p = functools.partial(_join, path)
        x = _synapse(
            ctx,
            getattr(module, f"conv{i}"),
            getattr(module, f"bn{i}"),
            p(f"conv{i}"),
            p(f"bn{i}"),
            x,
        )
        if hasattr(module, f"pool{i}"):
            x = build(getattr(module, f"pool{i}"), ctx, p(f"pool{i}"), x)
        x = build(getattr(module, f"lif{i}"), ctx, p(f"lif{i}"), x)
    return _synapse(ctx, module.conv4, module.bn4, _join(path, "conv4"), _join(path, "bn4"), x)


@build.register
def _(module: SpikingSelfAttention, ctx: GraphBuilder, path: str, x: Signal) -> Signal:
    p = functools.partial(_join, path)
    s = build(module.in_lif, ctx, p("in_lif"), x)
    parts = [
        synapse(
            getattr(module, f"{q}_conv"),
            getattr(module, f"{q}_bn"),
            p(f"{q}_conv"),
            p(f"{q}_bn"),
            s.shape,
        )
        for q in "qkv"
    ]
    qkv = nir.Conv2d(
        input_shape=s.shape[1:],
        weight=np.concatenate([c.weight for c in parts]),
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        bias=np.concatenate([c.bias for c in parts]),
        metadata=source_metadata(
            *(f"{p(q + '_conv')}" for q in "qkv"), *(f"{p(q + '_bn')}" for q in "qkv")
        ),
    )
    currents = ctx.add(p("qkv_conv"), qkv, s)
    d = currents.shape[0] // 3
    part_shape = (d, *currents.shape[1:])
    arrays = [
        neuron_arrays(getattr(module, f"{q}_lif"), ctx, p(f"{q}_lif"), part_shape) for q in "qkv"
    ]
    stacked = {k: np.concatenate([a[k] for a in arrays]) for k in arrays[0]}
    spikes = ctx.add(p("qkv_lif"), _lif_node(stacked, *(p(f"{q}_lif") for q in "qkv")), currents)
    cfg = module.config
    spec = AttentionSpec(num_heads=cfg.num_heads, head_dim=cfg.head_dim, scale=cfg.attn_scale)
    y = ctx.add_extension(p("core"), spec, spikes, source=(path,))
    z = build(module.attn_lif, ctx, p("attn_lif"), y)
    return _synapse(ctx, module.proj_conv, module.proj_bn, p("proj_conv"), p("proj_bn"), z)


@build.register
def _(module: SpikingMLP, ctx: GraphBuilder, path: str, x: Signal) -> Signal:
    p = functools.partial(_join, path)
    s = build(module.in_lif, ctx, p("in_lif"), x)
    h = _synapse(ctx, module.fc1_conv, module.fc1_bn, p("fc1_conv"), p("fc1_bn"), s)
    s = build(module.fc1_lif, ctx, p("fc1_lif"), h)
    return _synapse(ctx, module.fc2_conv, module.fc2_bn, p("fc2_conv"), p("fc2_bn"), s)


@build.register
def _(module: Block, ctx: GraphBuilder, path: str, x: Signal) -> Signal:
    x = x.plus(build(module.attn, ctx, _join(path, "attn"), x))
    return x.plus(build(module.mlp, ctx, _join(path, "mlp"), x))


@functools.singledispatch
def time_weights(module: nn.Module, path: str) -> np.ndarray:
    """The readout's per-step weights `[T]` (float64)."""
    _unsupported(module, path, "expected a TimeWeightedReadout")


@time_weights.register
def _(module: TimeWeightedReadout, path: str) -> np.ndarray:
    return module.weights.detach().double().cpu().numpy()


def _static_input(
    ctx: GraphBuilder, path: str, shape: tuple[int, ...], feature: str, preprocessing: str
) -> Signal:
    name = _join(path, "input")
    ctx.encodings.append(InputEncoding(input=name, feature=feature, preprocessing=preprocessing))
    x = ctx.add(name, nir.Input(input_type=np.array(shape)), None)
    return ctx.add_extension(_join(path, "encode"), StaticInputSpec(), x, source=(path,))


@build.register
def _(module: ImageEncoder, ctx: GraphBuilder, path: str, x: Signal | None) -> Signal:
    cfg = module.config
    x = _static_input(
        ctx,
        path,
        (cfg.in_channels, cfg.img_size, cfg.img_size),
        "image",
        "CLIP-normalized image [C, H, W], the same at every step",
    )
    x = build(module.tokenizer, ctx, _join(path, "tokenizer"), x)
    for i, block in enumerate(module.blocks):
        x = build(block, ctx, _join(path, f"blocks.{i}"), x)
    out = _join(path, "output")
    ctx.add(out, nir.Output(output_type=np.array(x.shape)), x)
    head = _affine(module.head, _join(path, "head"))
    ctx.decodings.append(
        ReadoutDecoding(
            output=out,
            feature="image",
            time_weights=time_weights(module.readout, _join(path, "readout")),
            token_axes=(1, 2),
            head_weight=head.weight,
            head_bias=head.bias,
        )
    )
    ctx.towers.append(path)
    return Signal((out,), x.shape)


@build.register
def _(module: TextEncoder, ctx: GraphBuilder, path: str, x: Signal | None) -> Signal:
    cfg = module.config
    p = functools.partial(_join, path)
    x = _static_input(
        ctx,
        path,
        (cfg.text_len * cfg.text_width,),
        "text",
        "flatten(token_embedding[ids] + position_embedding) = TextEncoder.embed(ids), "
        "the same at every step",
    )
    x = build(module.lif1, ctx, p("lif1"), x)
    x = ctx.add(p("fc1"), _affine(module.fc1, p("fc1")), x)
    x = build(module.lif2, ctx, p("lif2"), x)
    x = ctx.add(p("fc2"), _affine(module.fc2, p("fc2")), x)
    out = p("output")
    ctx.add(out, nir.Output(output_type=np.array(x.shape)), x)
    ctx.decodings.append(
        ReadoutDecoding(
            output=out,
            feature="text",
            time_weights=time_weights(module.readout, p("readout")),
        )
    )
    ctx.towers.append(path)
    return Signal((out,), x.shape)


TOWERS = {
    "image": ("image_encoder",),
    "text": ("text_encoder",),
    "both": ("image_encoder", "text_encoder"),
}
"""`to_nir(tower=...)` → the SpikeCLIP attributes exported."""


@functools.singledispatch
def roots(model: nn.Module, tower: str) -> list[tuple[nn.Module, str]]:
    """The (tower module, path) pairs `to_nir` exports from `model` for `tower`."""
    _unsupported(model, "", "to_nir takes a SpikeCLIP, ImageEncoder or TextEncoder")


@roots.register
def _(model: SpikeCLIP, tower: str) -> list[tuple[nn.Module, str]]:
    return [(getattr(model, attr), attr) for attr in TOWERS[tower]]


@roots.register
def _(model: ImageEncoder, tower: str) -> list[tuple[nn.Module, str]]:
    return [(model, "image_encoder")]


@roots.register
def _(model: TextEncoder, tower: str) -> list[tuple[nn.Module, str]]:
    return [(model, "text_encoder")]
