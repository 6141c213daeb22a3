"""The SpikeCLIP image tower as a `LoihiNetwork` *structure* with placeholder weights.

For mapping and I/O reports before a quantized checkpoint exists: every shape, edge, delay
and placement is the real one (DESIGN §3, §5); every weight is the same placeholder integer
(`PLACEHOLDER_WEIGHT`, on the mixed 8-bit grid), biases and thresholds are placeholders too.
Never use the result for accuracy, spikes or energy from activity: structure only.

Layout (paper config): host conv0 (3→48 @32², BN folded) injected as LIF0's bias; conv1
48→96 @32; conv2 96→192 @32 → max-pool → 16; conv3 192→384 @16 → max-pool → 8; conv4
384→384 @8 ⇒ residual stream X (64 tokens). Per block: LIF(X) → fused q|k|v token linear
384→1152 → LIF → attention (8 heads × 48, embedded) → attention LIF (vth 8, bias 1) → proj;
LIF(X) → fc1 384→1536 → LIF → fc2 1536→384. X is never materialized: every consumer of X (both
LIFs of each block, the host readout) gets one edge from every upstream branch (conv4, proj,
fc2), delayed so that all arrive at the consumer's depth.
"""

from __future__ import annotations

import numpy as np

from hardware.ir import fixed
from hardware.ir.layers import (
    AttentionLayer,
    ConvLayer,
    HostInputLayer,
    Layer,
    LIFLayer,
    MaxPoolLayer,
    ReadoutLayer,
    TokenLinearLayer,
)
from hardware.ir.network import Edge, LoihiNetwork
from spikeclip.config import SpikeCLIPConfig

PLACEHOLDER_SIGN_MODE = "mixed"
PLACEHOLDER_WEIGHT_BITS = fixed.NUM_WEIGHT_BITS_MAX
PLACEHOLDER_WEIGHT = 1 << fixed.weight_truncate_bits(PLACEHOLDER_SIGN_MODE, PLACEHOLDER_WEIGHT_BITS)
"""The smallest non-zero weight on the mixed 8-bit grid (2)."""
PLACEHOLDER_VTH = 64
DU_CURRENT_ONLY = fixed.DECAY_MAX  # du = 4095: u is this step's input (DESIGN §4)
DV_HALF = fixed.DECAY_UNITY // 2  # dv = 2048: τ = 2
ATTN_VTH = 8  # vth = θ·τ/0.125 with θ = 0.5 (DESIGN §5)
BIAS_EXP_INPUT = 6
STRUCTURE_ONLY = "structure only (placeholder weights)"


def _w(*shape: int) -> np.ndarray:
    return np.full(shape, PLACEHOLDER_WEIGHT, dtype=np.int64)


def _lif(
    name: str,
    shape: tuple[int, ...],
    placement: str = "neurocore",
    *,
    vth: int = PLACEHOLDER_VTH,
    bias_mant: int = 0,
    bias_exp: int = 0,
) -> LIFLayer:
    return LIFLayer(
        name=name,
        shape=shape,
        du=DU_CURRENT_ONLY,
        dv=DV_HALF,
        vth=vth,
        bias_mant=bias_mant,
        bias_exp=bias_exp,
        placement=placement,
    )  # type: ignore[arg-type]


def _conv(name: str, c_in: int, c_out: int, hw: int) -> ConvLayer:
    return ConvLayer(
        name=name,
        weights=_w(c_out, c_in, 3, 3),
        in_shape=(c_in, hw, hw),
        padding=(1, 1),
        sign_mode=PLACEHOLDER_SIGN_MODE,
        num_weight_bits=PLACEHOLDER_WEIGHT_BITS,
        placement="neurocore-L2",
    )


def _linear(name: str, c_in: int, c_out: int, tokens: int) -> TokenLinearLayer:
    return TokenLinearLayer(
        name=name,
        weights=_w(c_out, c_in),
        tokens=tokens,
        sign_mode=PLACEHOLDER_SIGN_MODE,
        num_weight_bits=PLACEHOLDER_WEIGHT_BITS,
        placement="neurocore-L2",
    )


def image_tower_structure(config: SpikeCLIPConfig | None = None) -> LoihiNetwork:
    """The image tower of `config` (default: paper) as a placeholder-weight `LoihiNetwork`.

    Edge delays align every residual consumer (`LoihiNetwork.misaligned()` is empty).
    """
    cfg = SpikeCLIPConfig.paper() if config is None else config
    c0, c1, c2, c3 = cfg.tokenizer_channels
    d, s, g, n = cfg.embed_dim, cfg.img_size, cfg.grid_size, cfg.num_tokens
    layers: list[Layer] = [
        HostInputLayer(
            name="conv0",
            op="conv2d",
            weight=np.zeros((c0, cfg.in_channels, 3, 3)),
            bias=np.zeros(c0),
            in_shape=(cfg.in_channels, s, s),
            padding=(1, 1),
            bias_exp=BIAS_EXP_INPUT,
        ),
        _lif("lif0", (c0, s, s), bias_exp=BIAS_EXP_INPUT),
        _conv("conv1", c0, c1, s),
        _lif("lif1", (c1, s, s)),
        _conv("conv2", c1, c2, s),
        MaxPoolLayer(name="pool2", in_shape=(c2, s, s)),
        _lif("lif2", (c2, s // 2, s // 2), "neurocore-L2"),
        _conv("conv3", c2, c3, s // 2),
        MaxPoolLayer(name="pool3", in_shape=(c3, s // 2, s // 2)),
        _lif("lif3", (c3, g, g), "neurocore-L2"),
        _conv("conv4", c3, d, g),
    ]
    edges = [
        ("conv0", "lif0"),
        ("lif0", "conv1"),
        ("conv1", "lif1"),
        ("lif1", "conv2"),
        ("conv2", "pool2"),
        ("pool2", "lif2"),
        ("lif2", "conv3"),
        ("conv3", "pool3"),
        ("pool3", "lif3"),
        ("lif3", "conv4"),
    ]
    branches = ["conv4"]  # synapse layers whose currents sum into X
    for b in range(cfg.depth):
        x_attn, x_mlp = f"b{b}.lif_x_attn", f"b{b}.lif_x_mlp"
        layers += [
            _lif(x_attn, (d, n)),
            _linear(f"b{b}.qkv", d, 3 * d, n),
            _lif(f"b{b}.lif_qkv", (3 * d, n)),
            AttentionLayer(
                name=f"b{b}.attn",
                channels=d,
                tokens=n,
                heads=cfg.num_heads,
                qk_scale=cfg.attn_scale,
            ),
            _lif(f"b{b}.lif_attn", (d, n), "neurocore-L2", vth=ATTN_VTH, bias_mant=1),
            _linear(f"b{b}.proj", d, d, n),
            _lif(x_mlp, (d, n)),
            _linear(f"b{b}.fc1", d, cfg.mlp_hidden, n),
            _lif(f"b{b}.lif_fc1", (cfg.mlp_hidden, n)),
            _linear(f"b{b}.fc2", cfg.mlp_hidden, d, n),
        ]
        edges += [(br, x_attn) for br in branches]
        edges += [
            (x_attn, f"b{b}.qkv"),
            (f"b{b}.qkv", f"b{b}.lif_qkv"),
            (f"b{b}.lif_qkv", f"b{b}.attn"),
            (f"b{b}.attn", f"b{b}.lif_attn"),
            (f"b{b}.lif_attn", f"b{b}.proj"),
        ]
        branches.append(f"b{b}.proj")
        edges += [(br, x_mlp) for br in branches]
        edges += [
            (x_mlp, f"b{b}.fc1"),
            (f"b{b}.fc1", f"b{b}.lif_fc1"),
            (f"b{b}.lif_fc1", f"b{b}.fc2"),
        ]
        branches.append(f"b{b}.fc2")
    layers.append(
        ReadoutLayer(
            name="readout",
            in_shape=(d, n),
            time_weights=np.zeros(cfg.T),
            head_weight=np.zeros((cfg.out_dim, d)),
            head_bias=np.zeros(cfg.out_dim),
            input_scale=1.0,
            input_bias=np.zeros(d),
        )
    )
    edges += [(br, "readout") for br in branches]
    provenance = {
        "structure_only": True,
        "note": STRUCTURE_ONLY,
        "config": "custom" if config is not None and config != SpikeCLIPConfig.paper() else "paper",
    }
    plain = LoihiNetwork(
        layers=tuple(layers),
        T=cfg.T,
        provenance=provenance,
        edges=tuple(Edge(src=a, dst=b) for a, b in edges),
    )
    aligned = tuple(
        Edge(src=e.src, dst=e.dst, delay=plain.depth(e.dst) - plain.arrival(e))
        if plain.layer(e.src).OUTPUT != "bias"
        else e
        for e in plain.edges
    )
    return LoihiNetwork(layers=plain.layers, edges=aligned, T=cfg.T, provenance=provenance)
