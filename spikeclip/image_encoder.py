"""SpikeCLIP's spiking image encoder (Spikingformer trunk; research/spikeclip_digest.md §2, §16).

Layouts: images `[B, C, H, W]` (CLIP-normalized), repeated over T (direct encoding) into
`[T, B, C, H, W]`; the residual stream X is real-valued `[T, B, D, h, w]` (h = w = img_size/4,
N = h·w tokens). Convs/BNs run on the `T·B`-flattened tensor, so BatchNorm statistics are taken
jointly over T, B and space (as in the paper's code). Neurons see `[T, B, ...]`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from spikeclip.config import LayerRecord, SpikeCLIPConfig
from spikeclip.errors import ModelInputError
from spikeclip.neurons import make_neuron


def _name(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _tb(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Apply a per-sample op `fn` to `x [T, B, ...]` by flattening T and B together."""
    y = fn(x.flatten(0, 1))
    return y.unflatten(0, x.shape[:2])


def _neuron_record(module: nn.Module, name: str, source: str, shape: tuple[int, ...]):
    return LayerRecord(
        name=name,
        kind=module.kind,
        inputs=(source,),
        in_shape=shape,
        out_shape=shape,
        attrs=module.describe_attrs(),
    )


def _conv_record(conv: nn.Module, name: str, source: str, in_shape, out_shape) -> LayerRecord:
    kind = "conv2d" if isinstance(conv, nn.Conv2d) else "conv1d"
    return LayerRecord(
        name=name,
        kind=kind,
        inputs=(source,),
        in_shape=tuple(in_shape),
        out_shape=tuple(out_shape),
        attrs={
            "kernel_size": list(conv.kernel_size),
            "stride": list(conv.stride),
            "padding": list(conv.padding),
            "bias": conv.bias is not None,
        },
    )


def _bn_record(bn: nn.Module, name: str, source: str, shape) -> LayerRecord:
    kind = "batchnorm2d" if isinstance(bn, nn.BatchNorm2d) else "batchnorm1d"
    return LayerRecord(
        name=name,
        kind=kind,
        inputs=(source,),
        in_shape=tuple(shape),
        out_shape=tuple(shape),
        attrs={"eps": bn.eps},
    )


def time_weight_init(T: int) -> list[float]:
    """Initial readout weights: w_t = ln(0.8 · 2^(t − T + 1)), t = 0 … T−1.

    For T = 4 this is the paper's ln(.1), ln(.2), ln(.4), ln(.8) (digest §2.7); for other T the
    same geometric rule (each step's weight doubles the previous argument, the last is ln .8).
    The values are used raw (no exp/softmax), as in the paper's code.
    """
    return [math.log(0.8 * 2.0 ** (t - T + 1)) for t in range(T)]


class TimeWeightedReadout(nn.Module):
    """y = Σ_t w_t · x[t] over the leading time axis; `weights` is a learnable `[T]` parameter."""

    def __init__(self, T: int) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.tensor(time_weight_init(T), dtype=torch.float32))

    def forward(self, x: Tensor) -> Tensor:
        """`x [T, B, F]` → `[B, F]`."""
        if x.shape[0] != self.weights.shape[0]:
            raise ModelInputError(
                f"readout has {self.weights.shape[0]} time weights, input has T={x.shape[0]}"
            )
        return torch.einsum("t,tbf->bf", self.weights, x)

    def describe(self, prefix: str = "", source: str = "input", features: int = 0):
        """One record: the time-weighted sum (graph-level output decoding, not a per-step op)."""
        return [
            LayerRecord(
                name=prefix or "readout",
                kind="time_readout",
                inputs=(source,),
                in_shape=(features,),
                out_shape=(features,),
                attrs={"T": int(self.weights.shape[0]), "rule": "sum_t weights[t] * x[t]"},
            )
        ]


class SpikingTokenizer(nn.Module):
    """SPS stem: Conv→BN(→MaxPool)→LIF ×4, then Conv→BN (real-valued output, no LIF).

    `[T, B, C_in, H, W]` → `[T, B, D, H/4, W/4]`. All convs 3×3, stride 1, pad 1, no bias;
    MaxPool(3, 2, 1) after bn2 and bn3 acts on real-valued BN outputs (padding = −inf).
    """

    def __init__(self, config: SpikeCLIPConfig) -> None:
        super().__init__()
        self.config = config
        chans = (config.in_channels, *config.tokenizer_channels, config.embed_dim)
        for i in range(5):
            self.add_module(f"conv{i}", nn.Conv2d(chans[i], chans[i + 1], 3, 1, 1, bias=False))
            self.add_module(f"bn{i}", nn.BatchNorm2d(chans[i + 1]))
        self.pool2 = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.pool3 = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        for i in range(4):
            self.add_module(f"lif{i}", make_neuron(config, v_threshold=config.v_threshold))

    def forward(self, x: Tensor) -> Tensor:
        """`x [T, B, C_in, H, W]` (real) → residual-stream start `[T, B, D, H/4, W/4]` (real)."""
        for i in range(4):
            conv, bn = getattr(self, f"conv{i}"), getattr(self, f"bn{i}")
            pool = getattr(self, f"pool{i}", None)
            x = _tb(lambda z, c=conv, b=bn, p=pool: p(b(c(z))) if p is not None else b(c(z)), x)
            x = getattr(self, f"lif{i}")(x)
        return _tb(lambda z: self.bn4(self.conv4(z)), x)

    def describe(self, prefix: str = "", source: str = "input") -> list[LayerRecord]:
        """Records conv0, bn0, lif0, …, conv3, bn3, pool3, lif3, conv4, bn4 in order."""
        cfg = self.config
        shape = (cfg.in_channels, cfg.img_size, cfg.img_size)
        records: list[LayerRecord] = []
        for i in range(5):
            conv, bn = getattr(self, f"conv{i}"), getattr(self, f"bn{i}")
            out = (conv.out_channels, shape[1], shape[2])
            records.append(_conv_record(conv, _name(prefix, f"conv{i}"), source, shape, out))
            records.append(_bn_record(bn, _name(prefix, f"bn{i}"), records[-1].name, out))
            shape, source = out, records[-1].name
            if hasattr(self, f"pool{i}"):
                side = (shape[1] + 2 * 1 - 3) // 2 + 1
                out = (shape[0], side, side)
                records.append(
                    LayerRecord(
                        name=_name(prefix, f"pool{i}"),
                        kind="maxpool2d",
                        inputs=(source,),
                        in_shape=shape,
                        out_shape=out,
                        attrs={"kernel_size": 3, "stride": 2, "padding": 1, "pad_value": "-inf"},
                    )
                )
                shape, source = out, records[-1].name
            if i < 4:
                lif = getattr(self, f"lif{i}")
                records.append(_neuron_record(lif, _name(prefix, f"lif{i}"), source, shape))
                source = records[-1].name
        return records


class SpikingSelfAttention(nn.Module):
    """Spiking self-attention without softmax: `proj_bn(proj_conv(LIF_0.5(s·Q(KᵀV))))`.

    `[T, B, D, h, w]` (real) → same shape (real, to be added to the residual stream).
    S = in_lif(X) flattened to `[T, B, D, N]`; Q/K/V = LIF(BN1d(Conv1d_k1(S))) (no bias), binary;
    heads split channels head-major (channel = head·d + j). With binary Q, K, V the products are
    integers, so Q(KᵀV) equals the paper's (QKᵀ)V exactly; s = attn_scale (0.125).
    """

    def __init__(self, config: SpikeCLIPConfig) -> None:
        super().__init__()
        self.config = config
        d = config.embed_dim
        self.in_lif = make_neuron(config, v_threshold=config.v_threshold)
        for p in ("q", "k", "v"):
            self.add_module(f"{p}_conv", nn.Conv1d(d, d, kernel_size=1, bias=False))
            self.add_module(f"{p}_bn", nn.BatchNorm1d(d))
            self.add_module(f"{p}_lif", make_neuron(config, v_threshold=config.v_threshold))
        self.attn_lif = make_neuron(config, v_threshold=config.attn_v_threshold)
        self.proj_conv = nn.Conv1d(d, d, kernel_size=1, bias=True)
        self.proj_bn = nn.BatchNorm1d(d)

    def _heads(self, x: Tensor) -> Tensor:
        """`[T, B, D, N]` → `[T, B, heads, N, d]`."""
        T, B, _, N = x.shape
        cfg = self.config
        return x.transpose(2, 3).reshape(T, B, N, cfg.num_heads, cfg.head_dim).transpose(2, 3)

    def forward(self, x: Tensor) -> Tensor:
        """`x [T, B, D, h, w]` → `[T, B, D, h, w]`."""
        T, B, D, h, w = x.shape
        s = self.in_lif(x).flatten(3)
        qkv = []
        for p in ("q", "k", "v"):
            conv, bn = getattr(self, f"{p}_conv"), getattr(self, f"{p}_bn")
            qkv.append(getattr(self, f"{p}_lif")(_tb(lambda z, c=conv, b=bn: b(c(z)), s)))
        q, k, v = (self._heads(t) for t in qkv)
        y = q @ (k.transpose(-2, -1) @ v) * self.config.attn_scale  # [T, B, heads, N, d]
        y = y.transpose(3, 4).reshape(T, B, D, h * w)
        z = self.attn_lif(y)
        out = _tb(lambda t: self.proj_bn(self.proj_conv(t)), z)
        return out.reshape(T, B, D, h, w)

    def describe(self, prefix: str = "", source: str = "input") -> list[LayerRecord]:
        """in_lif, q/k/v conv+bn+lif, the attention core, attn_lif, proj_conv, proj_bn."""
        cfg = self.config
        grid = (cfg.embed_dim, cfg.grid_size, cfg.grid_size)
        tok = (cfg.embed_dim, cfg.num_tokens)
        n = lambda s: _name(prefix, s)  # noqa: E731
        recs = [_neuron_record(self.in_lif, n("in_lif"), source, grid)]
        for p in ("q", "k", "v"):
            conv, bn, lif = (getattr(self, f"{p}_{s}") for s in ("conv", "bn", "lif"))
            recs.append(_conv_record(conv, n(f"{p}_conv"), n("in_lif"), tok, tok))
            recs.append(_bn_record(bn, n(f"{p}_bn"), n(f"{p}_conv"), tok))
            recs.append(_neuron_record(lif, n(f"{p}_lif"), n(f"{p}_bn"), tok))
        recs.append(
            LayerRecord(
                name=n("core"),
                kind="spiking_attention",
                inputs=(n("q_lif"), n("k_lif"), n("v_lif")),
                in_shape=tok,
                out_shape=tok,
                is_module=False,
                attrs={
                    "num_heads": cfg.num_heads,
                    "head_dim": cfg.head_dim,
                    "scale": cfg.attn_scale,
                    "rule": "scale * Q @ (K^T @ V) per head, no softmax",
                    "channel_order": "head-major (channel = head * head_dim + j)",
                },
            )
        )
        recs.append(_neuron_record(self.attn_lif, n("attn_lif"), n("core"), tok))
        recs.append(_conv_record(self.proj_conv, n("proj_conv"), n("attn_lif"), tok, tok))
        recs.append(_bn_record(self.proj_bn, n("proj_bn"), n("proj_conv"), tok))
        return recs


class SpikingMLP(nn.Module):
    """`BN(Conv1×1(LIF(BN(Conv1×1(LIF(X))))))`, D → D·mlp_ratio → D, convs with bias."""

    def __init__(self, config: SpikeCLIPConfig) -> None:
        super().__init__()
        self.config = config
        d, hidden = config.embed_dim, config.mlp_hidden
        self.in_lif = make_neuron(config, v_threshold=config.v_threshold)
        self.fc1_conv = nn.Conv2d(d, hidden, kernel_size=1, bias=True)
        self.fc1_bn = nn.BatchNorm2d(hidden)
        self.fc1_lif = make_neuron(config, v_threshold=config.v_threshold)
        self.fc2_conv = nn.Conv2d(hidden, d, kernel_size=1, bias=True)
        self.fc2_bn = nn.BatchNorm2d(d)

    def forward(self, x: Tensor) -> Tensor:
        """`x [T, B, D, h, w]` → `[T, B, D, h, w]`."""
        s = _tb(lambda z: self.fc1_bn(self.fc1_conv(z)), self.in_lif(x))
        return _tb(lambda z: self.fc2_bn(self.fc2_conv(z)), self.fc1_lif(s))

    def describe(self, prefix: str = "", source: str = "input") -> list[LayerRecord]:
        """in_lif, fc1_conv, fc1_bn, fc1_lif, fc2_conv, fc2_bn."""
        cfg = self.config
        grid = (cfg.embed_dim, cfg.grid_size, cfg.grid_size)
        wide = (cfg.mlp_hidden, cfg.grid_size, cfg.grid_size)
        n = lambda s: _name(prefix, s)  # noqa: E731
        return [
            _neuron_record(self.in_lif, n("in_lif"), source, grid),
            _conv_record(self.fc1_conv, n("fc1_conv"), n("in_lif"), grid, wide),
            _bn_record(self.fc1_bn, n("fc1_bn"), n("fc1_conv"), wide),
            _neuron_record(self.fc1_lif, n("fc1_lif"), n("fc1_bn"), wide),
            _conv_record(self.fc2_conv, n("fc2_conv"), n("fc1_lif"), wide, grid),
            _bn_record(self.fc2_bn, n("fc2_bn"), n("fc2_conv"), grid),
        ]


class Block(nn.Module):
    """`X ← X + attn(X); X ← X + mlp(X)` on the real-valued residual stream `[T, B, D, h, w]`."""

    def __init__(self, config: SpikeCLIPConfig) -> None:
        super().__init__()
        self.config = config
        self.attn = SpikingSelfAttention(config)
        self.mlp = SpikingMLP(config)

    def forward(self, x: Tensor) -> Tensor:
        """`[T, B, D, h, w]` → same shape."""
        x = x + self.attn(x)
        return x + self.mlp(x)

    def describe(self, prefix: str = "", source: str = "input") -> list[LayerRecord]:
        """attn records, add_attn, mlp records, add_mlp (the block's output)."""
        cfg = self.config
        grid = (cfg.embed_dim, cfg.grid_size, cfg.grid_size)
        recs = self.attn.describe(_name(prefix, "attn"), source)
        add_attn = LayerRecord(
            name=_name(prefix, "add_attn"),
            kind="add",
            inputs=(source, recs[-1].name),
            in_shape=grid,
            out_shape=grid,
            is_module=False,
        )
        recs.append(add_attn)
        recs += self.mlp.describe(_name(prefix, "mlp"), add_attn.name)
        recs.append(
            LayerRecord(
                name=_name(prefix, "add_mlp"),
                kind="add",
                inputs=(add_attn.name, recs[-1].name),
                in_shape=grid,
                out_shape=grid,
                is_module=False,
            )
        )
        return recs


class ImageEncoder(nn.Module):
    """Images `[B, C, H, W]` → image features `[B, out_dim]` (not normalized).

    tokenizer → blocks → mean over the N tokens of X per step `[T, B, D]` → time-weighted readout
    `[B, D]` → head Linear(D → out_dim). The head is initialized trunc_normal(std 0.02), bias 0.
    """

    def __init__(self, config: SpikeCLIPConfig) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = SpikingTokenizer(config)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.depth))
        self.readout = TimeWeightedReadout(config.T)
        self.head = nn.Linear(config.embed_dim, config.out_dim)
        nn.init.trunc_normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def check_input(self, images: Tensor) -> None:
        """Raise `ModelInputError` unless images is float `[B, C, H, W]` matching the config."""
        cfg = self.config
        want = (cfg.in_channels, cfg.img_size, cfg.img_size)
        if images.ndim != 4 or tuple(images.shape[1:]) != want or not images.is_floating_point():
            raise ModelInputError(
                f"image encoder expects float images [B, {want[0]}, {want[1]}, {want[2]}], "
                f"got {images.dtype} {list(images.shape)}"
            )

    def trunk(self, images: Tensor) -> Tensor:
        """`[B, C, H, W]` → residual stream after the last block, `[T, B, D, h, w]` (real)."""
        self.check_input(images)
        x = images.unsqueeze(0).expand(self.config.T, *images.shape)
        x = self.tokenizer(x)
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, images: Tensor) -> Tensor:
        """`[B, C, H, W]` → `[B, out_dim]`."""
        return self.head(self.readout(self.trunk(images).mean(dim=(3, 4))))

    def describe(self, prefix: str = "", source: str = "input") -> list[LayerRecord]:
        """Every op in execution order; `source` is the image `[C, H, W]`, the same each step."""
        cfg = self.config
        recs = self.tokenizer.describe(_name(prefix, "tokenizer"), source)
        for i, block in enumerate(self.blocks):
            recs += block.describe(_name(prefix, f"blocks.{i}"), recs[-1].name)
        d = cfg.embed_dim
        recs.append(
            LayerRecord(
                name=_name(prefix, "token_mean"),
                kind="token_mean",
                inputs=(recs[-1].name,),
                in_shape=(d, cfg.grid_size, cfg.grid_size),
                out_shape=(d,),
                is_module=False,
            )
        )
        recs += self.readout.describe(_name(prefix, "readout"), recs[-1].name, d)
        recs.append(
            LayerRecord(
                name=_name(prefix, "head"),
                kind="linear",
                inputs=(recs[-1].name,),
                in_shape=(d,),
                out_shape=(cfg.out_dim,),
                attrs={"bias": True},
            )
        )
        return recs
