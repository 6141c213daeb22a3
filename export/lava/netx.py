"""The text tower as a lava-dl netx HDF5 network (the netx-compatible sequential part).

SpikeCLIP's text encoder is ``embed(ids) → LIF1 → fc1 → LIF2 → fc2 → time-weighted readout``.
netx (``lava.lib.dl.netx.hdf5.Network``) builds sequential ``input → dense → …`` blocks whose
every layer ends in a neuron, so it can hold ``LIF1 → fc1 → LIF2``: fc2's output is a current
(no neuron), which netx cannot emit; fc2 and the readout stay on the host (they are in the
:class:`~hardware.ir.network.LoihiNetwork` this module builds, where :mod:`export.lava` and the
simulator run them).

**Quantization (netx's constraints).** netx fixes ``bias_exp = 6`` for every CUBA neuron
(``Network.get_neuron_params``), so the HDF5 ``bias`` is a mantissa in whole weight units
(1 wu = 64 v-units): every bias of this export — fc1's bias into LIF2 and the per-prompt
embedding drive into LIF1 — is rounded to whole wu (round half up, 13-bit mantissa). The
project's image quantizer instead picks ``bias_exp`` per layer; this export does not. Per
LIF (τ = 2, scale s a power of two): ``du = 4095`` (HDF5 ``iDecay = du + 1 = 4096``),
``dv = 4096/τ`` (``vDecay``), ``vth = θ·s`` (``vThMant``); weights ``w = grid(W·s/τ)`` on the
8-bit mixed grid with ``weight_exp = 0`` (netx re-derives an exponent with
``optimize_weight_bits``; on our grid its shifts are exact). The scale is the largest power of
two ≤ 2^12 that passes **static** bounds, so no calibration data is needed and no overflow can
occur: the drive's worst case ``s·(max|token| + max|position|)/τ`` fits 13 bits; at most
``max_clip_fraction`` of fc weights clip; ``Σ|w|`` per row plus ``|bias|`` stays ≤ 2^16 − 1 wu
(binary spikes bound ``|a|`` by ``Σ|w|``, and ``|v| ≤ 2·64·(|a| + |bias|)`` under ``dv = 2048``
keeps v below 2²³ − 1, u below 2²³).

**Input injection.** netx's ``Input`` block takes its input "through the neuron's bias": its
``inp`` port is not connected to anything. So the per-prompt embedding drive
``embed(ids)·s1/τ`` (wu) is written into ``layers[0].neuron.bias_mant`` — sample 0 as the
Var's initial value, sample k by the project's ``BiasInjection`` process (RefPort write in the
post-management phase of Lava step k·T). ``Network(reset_interval=T)`` makes every layer a
``LIFReset`` with offset ``1 + layer index`` = depth + 1, so prompts stream one every T steps.

HDF5 layout written (what ``netx.utils.NetDict`` reads): ``/layer/0`` ``type='input'``,
``shape=[L·D]``, ``neuron`` ``{type='CUBA', iDecay, vDecay, vThMant, refDelay=1,
gradedSpike=False}``; ``/layer/1`` ``type='dense'``, ``shape=[H]``, ``inFeatures``,
``outFeatures``, ``weight`` int ``(H, L·D)`` (wu), ``bias`` int ``(H,)`` (wu), ``neuron``.
Each layer group carries attributes ``name`` (our layer name) and ``scale`` (s: v = 64·s·H);
the root carries ``format``, ``format_version``, ``T``, ``notes`` and ``drive_wu_per_unit``
(``s1/τ``: LIF1's bias mantissa is ``round(embedding · drive_wu_per_unit)``).
"""

from __future__ import annotations

import io
import json
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from hardware.ir import fixed
from hardware.ir.grid import bias_grid, sign_mode_for, weight_clipped, weight_grid
from hardware.ir.layers import DenseLayer, HostInputLayer, LIFLayer, ReadoutLayer
from hardware.ir.network import Edge, LoihiNetwork
from spikeclip.atomic_io import open_atomic
from spikeclip.errors import DoesNotFitError, UnsupportedError

FORMAT_NAME = "spikeclip-netx-text"
FORMAT_VERSION = 1
#: netx's fixed bias exponent (``lava/lib/dl/netx/hdf5.py`` ``get_neuron_params``).
NETX_BIAS_EXP = 6
#: v-units per weight unit (``u = a << 6``).
V_PER_WU = 1 << fixed.ACT_SHIFT
#: Largest ``Σ|w| + |bias|`` (wu) per neuron under the static v bound (module doc): 65,535.
STATIC_SUM_MAX = fixed.V_MAX // (2 * V_PER_WU)
#: Lava's u decay for "no synaptic memory" (u = this step's input).
DU_NO_MEMORY = fixed.DECAY_MAX
PREFIX = "text_encoder"
NAMES = MappingProxyType(
    {
        "encode": f"{PREFIX}.encode",
        "lif1": f"{PREFIX}.lif1",
        "fc1": f"{PREFIX}.fc1",
        "lif2": f"{PREFIX}.lif2",
        "fc2": f"{PREFIX}.fc2",
        "output": f"{PREFIX}.output",
    }
)
NOTES = (
    "netx fixes bias_exp = 6: every bias of this export (fc1's, and the embedding drive) is a "
    "13-bit mantissa in whole weight units (1 wu = 64 v-units), rounded half up.",
    "The embedding drive enters LIF1 through bias_mant (netx's Input block has no synaptic "
    "input); fc2 and the time-weighted readout run on the host.",
    "Bit-accurate means bit-exact to Lava 0.10's CPU fixed-point models, not verified against "
    "Loihi silicon (lava#322, lava#829).",
)


class NetxExportError(UnsupportedError, ValueError):
    """The network cannot be written as (or read back from) a netx HDF5 file; names the layer."""

    def __init__(self, layer: str, reason: str) -> None:
        self.layer = layer
        super().__init__(f"export.netx: layer {layer!r}: {reason}")


# ---------------------------------------------------------------------------------------------
# Quantizing the text tower with netx's constraints.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TextQuantOptions:
    """``max_clip_fraction``: share of a layer's weights allowed to clip at 8 bits;
    ``max_log2_scale``: the largest scale tried is ``2**max_log2_scale``."""

    max_clip_fraction: float = 1e-4
    max_log2_scale: int = 12


@dataclass(frozen=True, kw_only=True)
class TextTowerQuant:
    """What quantizing the text tower did, per layer name.

    ``scales``: s per LIF / readout; ``vth``: integer thresholds; ``pct_clipped`` /
    ``pct_zeroed``: % of each fc's weights clipped at 8 bits / rounded to 0;
    ``max_row_abs_sum``: largest Σ|w| per output (wu); ``bias_max_abs_error_wu``: largest
    |rounded − exact| of fc1's bias in wu (≤ 0.5 unless clipped); ``max_abs_drive_wu``: the
    static worst case of the embedding drive (wu, ≤ 4095 by construction); ``bias_exp``: 6.
    """

    T: int
    tau: float
    scales: Mapping[str, float]
    vth: Mapping[str, int]
    pct_clipped: Mapping[str, float]
    pct_zeroed: Mapping[str, float]
    max_row_abs_sum: Mapping[str, int]
    bias_max_abs_error_wu: float
    max_abs_drive_wu: float
    bias_exp: int = NETX_BIAS_EXP
    notes: tuple[str, ...] = NOTES


class TextQuantizationError(DoesNotFitError, ValueError):
    """No power-of-two scale fits a text-tower layer's static bounds; names the layer."""

    def __init__(self, layer: str, reason: str) -> None:
        self.layer = layer
        super().__init__(f"export.netx quantize: layer {layer!r}: {reason}")


def _f64(x: torch.Tensor) -> torch.Tensor:
    return x.detach().to(torch.float64).cpu()


def _largest_scale(layer: str, opts: TextQuantOptions, reasons_at) -> float:
    """Largest ``s = 2**k`` (k ≤ max_log2_scale) with no reasons; typed error otherwise."""
    reasons: list[str] = []
    for k in range(opts.max_log2_scale, -1, -1):
        reasons = reasons_at(float(1 << k))
        if not reasons:
            return float(1 << k)
    raise TextQuantizationError(
        layer, "no power-of-two scale s ≥ 1 fits (at s = 1: " + "; ".join(reasons) + ")"
    )


def _fc_reasons(
    w: torch.Tensor, b: torch.Tensor | None, s: float, tau: float, opts: TextQuantOptions
) -> list[str]:
    reasons = []
    mode = sign_mode_for(w)
    real = w * (s / tau)
    frac = float(weight_clipped(real, mode).double().mean())
    if frac > opts.max_clip_fraction:
        reasons.append(f"{100 * frac:.3f}% of weights clip at 8 bits")
    if b is not None:
        q = weight_grid(real, mode)
        mant = (b * (s / tau)).abs()
        row = q.abs().sum(1) + mant
        if float(mant.max()) > fixed.BIAS_MANT_MAX:
            reasons.append(f"bias {float(mant.max()):.0f} wu > {fixed.BIAS_MANT_MAX} (13 bits)")
        if float(row.max()) > STATIC_SUM_MAX:
            reasons.append(f"Σ|w| + |bias| = {float(row.max()):.0f} wu > {STATIC_SUM_MAX}")
    return reasons


def quantize_text_tower(
    encoder: torch.nn.Module, *, options: TextQuantOptions | None = None
) -> tuple[LoihiNetwork, TextTowerQuant]:
    """``spikeclip.text_encoder.TextEncoder`` → integer network with netx's ``bias_exp = 6``.

    Layers (names :data:`NAMES`): host input ``encode`` (op ``embedding``: token table
    ``(V, D)``, position table ``(L, D)``; drive ``β = 64·s1·e/τ`` v-units at ``bias_exp`` 6) →
    ``lif1`` ``(L·D,)`` → Dense ``fc1`` → ``lif2`` ``(H,)`` (bias = fc1's) → Dense ``fc2`` →
    ``output`` readout (``X_t = a_t·τ/s3 + b_fc2``; feature ``Σ_t w_t X_t``). Scales by the
    static bounds of the module doc. Raises :class:`TextQuantizationError`.
    """
    opts = options or TextQuantOptions()
    cfg = encoder.config
    if cfg.neuron != "lif":
        raise TextQuantizationError(NAMES["lif1"], "needs LIF neurons (config.neuron='lif')")
    tau, T, theta = float(cfg.tau), int(cfg.T), float(cfg.v_threshold)
    dv = round(fixed.DECAY_UNITY / tau)
    if dv * tau != fixed.DECAY_UNITY:
        raise TextQuantizationError(NAMES["lif1"], f"τ = {tau} gives a non-integer dv = 4096/τ")
    tok = _f64(encoder.token_embedding.weight)
    pos = _f64(encoder.position_embedding.weight)
    w1, b1 = _f64(encoder.fc1.weight), _f64(encoder.fc1.bias)
    w2, b2 = _f64(encoder.fc2.weight), _f64(encoder.fc2.bias)
    drive_max = float(tok.abs().max() + pos.abs().max())

    def vth_reasons(s: float) -> list[str]:
        vth = theta * s
        ok = vth == round(vth) and vth <= fixed.VTH_MAX
        return [] if ok else [f"vth = θ·s = {vth:g} is not an integer ≤ {fixed.VTH_MAX}"]

    def lif1_reasons(s: float) -> list[str]:
        d = s * drive_max / tau
        big = [f"drive {d:.0f} wu > {fixed.BIAS_MANT_MAX}"] if d > fixed.BIAS_MANT_MAX else []
        return vth_reasons(s) + big

    s1 = _largest_scale(NAMES["lif1"], opts, lif1_reasons)
    s2 = _largest_scale(
        NAMES["lif2"], opts, lambda s: vth_reasons(s) + _fc_reasons(w1, b1, s, tau, opts)
    )
    s3 = _largest_scale(NAMES["output"], opts, lambda s: _fc_reasons(w2, None, s, tau, opts))

    def fc(name: str, w: torch.Tensor, s: float) -> tuple[DenseLayer, np.ndarray]:
        mode = sign_mode_for(w)
        q = weight_grid(w * (s / tau), mode).to(torch.int64).numpy()
        layer = DenseLayer(name=name, weights=q, sign_mode=mode, meta={"scale": s})
        return layer, q

    fc1, q1 = fc(NAMES["fc1"], w1, s2)
    fc2, q2 = fc(NAMES["fc2"], w2, s3)
    beta = b1 * (V_PER_WU * s2 / tau)
    beta_q = bias_grid(beta, NETX_BIAS_EXP)
    mant2 = (beta_q / (1 << NETX_BIAS_EXP)).to(torch.int64).numpy()
    n_flat = cfg.text_len * cfg.text_width
    lif_meta = {"tau": tau, "theta": theta, "role": "lif"}
    layers = (
        HostInputLayer(
            name=NAMES["encode"],
            op="embedding",
            weight=tok.numpy(),
            bias=pos.numpy(),
            in_shape=(cfg.text_len,),
            bias_scale=V_PER_WU * s1 / tau,
            bias_exp=NETX_BIAS_EXP,
            meta={"scale": s1},
        ),
        LIFLayer(
            name=NAMES["lif1"],
            shape=(n_flat,),
            du=DU_NO_MEMORY,
            dv=dv,
            vth=round(theta * s1),
            bias_mant=0,
            bias_exp=NETX_BIAS_EXP,
            meta={"scale": s1, **lif_meta},
        ),
        fc1,
        LIFLayer(
            name=NAMES["lif2"],
            shape=(cfg.text_hidden,),
            du=DU_NO_MEMORY,
            dv=dv,
            vth=round(theta * s2),
            bias_mant=mant2,
            bias_exp=NETX_BIAS_EXP,
            meta={"scale": s2, **lif_meta},
        ),
        fc2,
        ReadoutLayer(
            name=NAMES["output"],
            in_shape=(cfg.out_dim,),
            time_weights=_f64(encoder.readout.weights).numpy(),
            head_weight=np.eye(cfg.out_dim),
            head_bias=np.zeros(cfg.out_dim),
            input_scale=tau / s3,
            input_bias=b2.numpy(),
            token_axis=None,
            meta={"scale": s3},
        ),
    )
    chain = [NAMES[k] for k in ("encode", "lif1", "fc1", "lif2", "fc2", "output")]
    edges = tuple(Edge(src=a, dst=b) for a, b in zip(chain, chain[1:]))
    net = LoihiNetwork(
        layers=layers,
        edges=edges,
        T=T,
        provenance={"quantizer": "export.lava.netx", "tau": tau, "bias_exp": NETX_BIAS_EXP},
    )
    rec = TextTowerQuant(
        T=T,
        tau=tau,
        scales=MappingProxyType({NAMES["lif1"]: s1, NAMES["lif2"]: s2, NAMES["output"]: s3}),
        vth=MappingProxyType({NAMES["lif1"]: round(theta * s1), NAMES["lif2"]: round(theta * s2)}),
        pct_clipped=MappingProxyType(
            {
                NAMES["fc1"]: _pct_clipped(w1, s2, tau),
                NAMES["fc2"]: _pct_clipped(w2, s3, tau),
            }
        ),
        pct_zeroed=MappingProxyType(
            {
                NAMES["fc1"]: _pct_zeroed(w1, q1),
                NAMES["fc2"]: _pct_zeroed(w2, q2),
            }
        ),
        max_row_abs_sum=MappingProxyType(
            {
                NAMES["fc1"]: int(np.abs(q1).sum(1).max()),
                NAMES["fc2"]: int(np.abs(q2).sum(1).max()),
            }
        ),
        bias_max_abs_error_wu=float((beta_q - beta).abs().max()) / V_PER_WU,
        max_abs_drive_wu=s1 * drive_max / tau,
    )
    return net, rec


def _pct_clipped(w: torch.Tensor, s: float, tau: float) -> float:
    return 100 * float(weight_clipped(w * (s / tau), sign_mode_for(w)).double().mean())


def _pct_zeroed(w: torch.Tensor, q: np.ndarray) -> float:
    return 100 * float(np.mean((q == 0) & (w.numpy() != 0)))


# ---------------------------------------------------------------------------------------------
# The host drive, and the simulator's view of the embedding input.
# ---------------------------------------------------------------------------------------------


def _embedding_input(network: LoihiNetwork) -> HostInputLayer:
    hosts = [ly for ly in network.layers if isinstance(ly, HostInputLayer)]
    if len(hosts) != 1 or hosts[0].op != "embedding":
        raise NetxExportError(
            hosts[0].name if hosts else "<network>",
            "expected exactly one host input with op 'embedding' (the text tower's)",
        )
    return hosts[0]


def embedding_drive(network: LoihiNetwork, token_ids: Any) -> np.ndarray:
    """``token_table[ids] + position_table`` flattened: float64 ``[B, L·D]`` (float units).

    ``token_ids`` int ``[B, L]``. Raises :class:`NetxExportError` on a shape or range error.
    """
    layer = _embedding_input(network)
    ids = np.asarray(token_ids)
    vocab = layer.weight.shape[0]
    if ids.ndim != 2 or tuple(ids.shape[1:]) != layer.in_shape or ids.dtype.kind not in "iu":
        raise NetxExportError(
            layer.name,
            f"expected integer token ids [B, {layer.in_shape[0]}], got "
            f"{ids.dtype} {tuple(ids.shape)}",
        )
    if ids.size and (ids.min() < 0 or ids.max() >= vocab):
        raise NetxExportError(layer.name, f"token ids must lie in [0, {vocab})")
    value = np.asarray(layer.weight, np.float64)[ids] + np.asarray(layer.bias, np.float64)
    return value.reshape(ids.shape[0], -1)


def drive_mantissas(network: LoihiNetwork, token_ids: Any) -> np.ndarray:
    """The per-prompt LIF1 bias mantissas (wu at ``bias_exp`` 6): int64 ``[B, L·D]``.

    ``fixed.bias_encode_s13(e·bias_scale, bias_exp)`` (round half up, 13-bit saturation; the
    quantizer's static bound makes saturation impossible for this network's tables).
    """
    layer = _embedding_input(network)
    mant, _ = fixed.bias_encode_s13(
        embedding_drive(network, token_ids) * layer.bias_scale, layer.bias_exp
    )
    return mant


def simulator_network(network: LoihiNetwork) -> LoihiNetwork:
    """``network`` with its embedding host input replaced by an identity 1×1 ``conv2d`` one.

    ``hardware.simulate.engine`` encodes host inputs with ``conv2d`` only; the embedding lookup is
    done on the host (:func:`embedding_drive`) and passed as an "image" ``[B, 1, L·D, 1]``.
    ``conv2d`` with weight 1 and bias 0 returns it unchanged in float64, so the encoded
    mantissas equal :func:`drive_mantissas` exactly. Feed it with :func:`simulate_text`.
    """
    host = _embedding_input(network)
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


def simulate_text(network: LoihiNetwork, token_ids: Any, *, keep_states: bool = True):
    """``hardware.simulate.engine.simulate`` of the text network on token ids ``[B, L]``."""
    from hardware.simulate.engine import simulate

    drive = embedding_drive(network, token_ids)
    images = drive.reshape(drive.shape[0], 1, drive.shape[1], 1)
    return simulate(simulator_network(network), images, keep_states=keep_states)


# ---------------------------------------------------------------------------------------------
# Writing the netx HDF5 file.
# ---------------------------------------------------------------------------------------------


def netx_chain(network: LoihiNetwork) -> tuple[LIFLayer | DenseLayer, ...]:
    """The netx-compatible part: the LIF fed by the embedding input, then Dense → LIF pairs.

    Stops at the first synapse whose consumer is not a single LIF (the text tower's fc2 →
    readout). Raises :class:`NetxExportError` naming the layer if a LIF has ``bias_exp ≠ 6``
    (netx fixes it), a Dense has ``weight_exp ≠ 0`` or is fed by several layers, or the
    first LIF has a static bias (its bias is the per-prompt drive).
    """
    host = _embedding_input(network)
    (first,) = [network.layer(e.dst) for e in network.out_edges(host.name)]
    chain: list[LIFLayer | DenseLayer] = []
    layer: Any = first
    while True:
        if not isinstance(layer, LIFLayer):
            raise NetxExportError(layer.name, f"netx needs a LIF here, found {layer.KIND}")
        if np.any(np.asarray(layer.bias_exp) != NETX_BIAS_EXP):
            raise NetxExportError(
                layer.name, f"bias_exp must be {NETX_BIAS_EXP}: netx fixes it (biases in wu)"
            )
        if len(network.in_edges(layer.name)) != 1:
            raise NetxExportError(layer.name, "netx layers take exactly one input")
        chain.append(layer)
        outs = network.out_edges(layer.name)
        if len(outs) != 1 or not isinstance(network.layer(outs[0].dst), DenseLayer):
            break
        syn = network.layer(outs[0].dst)
        nxt = network.out_edges(syn.name)
        if len(nxt) != 1 or not isinstance(network.layer(nxt[0].dst), LIFLayer):
            break
        if syn.weight_exp != 0:
            raise NetxExportError(syn.name, "weight_exp must be 0 (netx derives its own)")
        chain.append(syn)
        layer = network.layer(nxt[0].dst)
    if np.any(np.asarray(first.bias_mant) != 0):
        raise NetxExportError(first.name, "the input LIF's bias is the per-prompt drive: must be 0")
    return tuple(chain)


def _neuron_group(group: Any, lif: LIFLayer) -> None:
    neuron = group.create_group("neuron")
    neuron.create_dataset("type", data=np.array([b"CUBA"], dtype="S10"))
    neuron.create_dataset("iDecay", data=lif.du + fixed.DU_OFFSET)  # netx: du = iDecay − 1
    neuron.create_dataset("vDecay", data=lif.dv)
    neuron.create_dataset("vThMant", data=lif.vth)
    neuron.create_dataset("refDelay", data=1)  # not read by netx for CUBA
    neuron.create_dataset("gradedSpike", data=False)


def write_netx(network: LoihiNetwork, path: str | os.PathLike) -> Path:
    """Write :func:`netx_chain` of ``network`` as a netx HDF5 file (layout: module doc).

    Atomic (temp file + ``os.replace``). Returns the path. Raises :class:`NetxExportError`.
    """
    import h5py

    chain = netx_chain(network)
    host = _embedding_input(network)
    path = Path(path)
    # Built in memory, then written as bytes: HDF5 crashes (segfault) when a write fails
    # inside it, e.g. on a full disk; a plain write fails with an ordinary OSError instead.
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        f.attrs["format"] = FORMAT_NAME
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["T"] = network.T
        f.attrs["notes"] = json.dumps(list(NOTES))
        f.attrs["drive_wu_per_unit"] = host.bias_scale / V_PER_WU
        root = f.create_group("layer")
        first = chain[0]
        g = root.create_group("0")
        g.attrs["name"] = first.name
        g.attrs["scale"] = float(first.meta.get("scale", 0.0))
        g.create_dataset("type", data=np.array([b"input"], dtype="S10"))
        g.create_dataset("shape", data=np.array(first.shape, np.int64))
        _neuron_group(g, first)
        for i, (syn, lif) in enumerate(zip(chain[1::2], chain[2::2]), start=1):
            g = root.create_group(str(i))
            g.attrs["name"] = lif.name
            g.attrs["scale"] = float(lif.meta.get("scale", 0.0))
            g.attrs["synapse"] = syn.name
            n_out, n_in = syn.weights.shape
            g.create_dataset("type", data=np.array([b"dense"], dtype="S10"))
            g.create_dataset("shape", data=np.array([n_out], np.int64))
            g.create_dataset("inFeatures", data=n_in)
            g.create_dataset("outFeatures", data=n_out)
            g.create_dataset("weight", data=np.asarray(syn.weights, np.int64))
            g.create_dataset("bias", data=np.asarray(lif.bias_mant, np.int64).reshape(-1))
            _neuron_group(g, lif)
    with open_atomic(path) as handle:
        handle.write(buffer.getbuffer())
    return path


def export_text_tower(
    encoder: torch.nn.Module, path: str | os.PathLike, *, options: TextQuantOptions | None = None
) -> tuple[Path, LoihiNetwork, TextTowerQuant]:
    """:func:`quantize_text_tower` then :func:`write_netx` (the CLI's ``lava/`` entry point)."""
    network, record = quantize_text_tower(encoder, options=options)
    return write_netx(network, path), network, record


def netx_layer_names(path: str | os.PathLike) -> tuple[str, ...]:
    """Our LIF names of the netx layers in ``path``, in order (layer attribute ``name``)."""
    import h5py

    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != FORMAT_NAME:
            raise NetxExportError("<file>", f"{path}: not a {FORMAT_NAME} file")
        layers = f["layer"]
        return tuple(str(layers[str(i)].attrs["name"]) for i in range(len(layers)))


# ---------------------------------------------------------------------------------------------
# Loading and running it with lava-dl netx.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class NetxResult:
    """A netx run of ``n_samples`` prompts, ``T`` steps each, streamed one every T steps.

    ``spikes[lif]``: bool ``[T, B, N]``; entry ``[t, k]`` is the spike at Lava step
    ``k·T + t + i + 1`` of netx layer i (depth i). ``build_s``: netx load + wiring;
    ``run_s``: compile + run + read + stop; ``n_steps``: Lava steps run (``B·T + layers − 1``).
    """

    T: int
    n_samples: int
    spikes: Mapping[str, np.ndarray]
    n_steps: int
    build_s: float
    run_s: float
    layer_names: tuple[str, ...] = field(default_factory=tuple)


def run_netx(
    path: str | os.PathLike, drive_mant: Any, T: int, *, timeout_s: float = 600.0
) -> NetxResult:
    """Load ``path`` with ``lava.lib.dl.netx.hdf5.Network(reset_interval=T)`` and run prompts.

    ``drive_mant`` int ``[B, N_in]``: per-prompt LIF1 bias mantissas (:func:`drive_mantissas`),
    injected into ``layers[0].neuron.bias_mant`` (module doc). Every layer's spikes go to a
    stock ``RingBuffer`` sink. Runs ``Loihi2SimCfg(select_tag="fixed_pt")`` inside
    ``export.lava.runner.LavaSession`` (always released; a failing or dead child, or a run
    longer than ``timeout_s``, raises ``export.lava.LavaRunError``).
    """
    from lava.lib.dl.netx.hdf5 import Network
    from lava.proc.io.sink import RingBuffer

    from export.lava.procs.injection.process import BiasInjection
    from export.lava.runner import LavaSession

    names = netx_layer_names(path)
    mant = np.asarray(drive_mant)
    start = time.perf_counter()
    net = Network(net_config=str(path), reset_interval=int(T), reset_offset=0)
    neuron0 = net.layers[0].neuron
    if mant.ndim != 2 or (mant.shape[1],) != tuple(neuron0.bias_mant.shape):
        raise NetxExportError(
            names[0], f"drive must be [B, {neuron0.bias_mant.shape[0]}], got {mant.shape}"
        )
    B = mant.shape[0]
    n_steps = B * T + len(net.layers) - 1
    neuron0.bias_mant.init = mant[0].astype(np.int32)
    inj = BiasInjection(mant=mant, T=T, placement="host", name="netx_drive")
    inj.connect_var(neuron0.bias_mant)
    sinks = []
    for layer in net.layers:
        sink = RingBuffer(shape=tuple(int(x) for x in layer.out.shape), buffer=n_steps)
        layer.out.connect(sink.a_in)
        sinks.append(sink)
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    with LavaSession(net, n_steps, timeout_s=timeout_s) as session:
        session.run()
        data = [session.get(s.data) for s in sinks]  # [N, n_steps], column time_step − 1
    spikes = {}
    t_idx = np.arange(T)[:, None] + T * np.arange(B)[None, :]  # [T, B]: k·T + t
    for depth, (name, d) in enumerate(zip(names, data)):
        spikes[name] = np.moveaxis(d[:, t_idx + depth], 0, -1).astype(bool)
    return NetxResult(
        T=int(T),
        n_samples=B,
        spikes=MappingProxyType(spikes),
        n_steps=n_steps,
        build_s=build_s,
        run_s=time.perf_counter() - start,
        layer_names=names,
    )
