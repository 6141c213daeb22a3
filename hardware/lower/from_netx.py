"""lava-dl netx HDF5 → `LoihiNetwork`: the fixed-point entrance (DESIGN §11), no re-quantization.

A netx file (``lava.lib.dl.netx.hdf5.Network``; written by lava-dl slayer's ``export_hdf5``)
already holds Loihi integers, so :func:`load_netx` maps each block onto the schema's records
with exactly the integers Lava would run, and :mod:`hardware.simulate.engine` then equals netx
running in Lava (``Loihi2SimCfg(select_tag="fixed_pt")``) bit for bit (``tests/hardware/
test_netx_import.py``, PilotNet SNN included). Every fact below is read from lava-dl 0.6's
``netx/hdf5.py``, ``netx/blocks/process.py`` and ``netx/utils.py`` (cited as file:function).

Block → records (names use the block's index ``i`` in ``/layer``):

=========================  ===============================================================
netx block                 LoihiNetwork records
=========================  ===============================================================
``input`` with a neuron    ``CurrentInputLayer "input"`` → ``LIFLayer "input{i}"`` (static
                           ``bias_mant`` 0: ``create_input`` keeps the file's ``weight`` and
                           ``bias`` only as the host ``transform``, :func:`encode_frames`)
``input`` without neuron   ``SpikeInputLayer "input"`` (binary spikes into the next synapse)
``conv``                   ``ConvLayer "conv{i}.syn"`` → ``LIFLayer "conv{i}"``
``pool`` (slayer sum pool) ``ConvLayer "pool{i}.syn"`` (``groups = C``, the pool kernel in
                           every channel) → ``LIFLayer "pool{i}"``
``flatten``                nothing: the next dense takes the C-order flattening
``dense``                  ``DenseLayer "dense{i}.syn"`` → ``LIFLayer "dense{i}"``
=========================  ===============================================================

Neurons (``hdf5.py:Network.get_neuron_params``): ``type`` ``CUBA`` or ``LOIHI`` is Lava's
``LIF`` with ``vth = vThMant``, ``du = iDecay − 1``, ``dv = vDecay``, ``bias_exp = 6`` and
``bias_mant = bias`` (so the file's bias is in weight units); ``refDelay``, ``gradedSpike``,
``theta``, ``tauRho``, ``scaleRho`` and ``wgtExp`` are not read by netx (kept in ``meta``).
netx's ``LIFReset`` offsets (``Network(reset_interval=T)``: ``1 + reset_offset`` for the first
block, +1 per block, ``hdf5.py:Network._create``) are ``depth + 1`` of this network when the
first block is an input neuron; ``export.lava`` sets ``depth + 1`` itself.

Quirks met (each handled as stated):

- Integers are cast with ``astype(int)`` (``utils.py:NetDict``, ``copy_keys``): truncation
  toward zero of any fractional weight or bias; done here the same way and counted in
  ``meta["truncated"]``.
- Dense weights go through ``utils.py:optimize_weight_bits`` before Lava's ``Dense``: mixed
  weights clipped to ``[−256, 254]`` when out of range, then shifted left by ``s`` bits with
  ``weight_exp = −s`` and ``num_weight_bits = 8 − s − n``. :func:`netx_weight_format` computes
  the same triple (facts of that function, written anew); the ``DenseLayer`` holds exactly
  what netx hands to Lava. Weights that would make netx shift by a negative count or need
  more than 8 bits (possible only beyond Loihi's 8-bit range) are refused.
- Conv weights reach Lava's ``Conv`` raw (``hdf5.py:create_conv`` passes no exponent; Lava's
  Conv neither clips nor truncates): the ``ConvLayer`` stores them in the same mantissa format
  with ``weight_exp``, whose effective weights are the raw integers (Loihi's stored width in
  ``num_weight_bits`` for the mapper); weights beyond the 8-bit range are refused.
- Conv kernels are stored torch-style ``(C_out, C_in, kH, kW)`` and ``shape``, ``stride``,
  ``padding``, ``dilation`` in ``(C, H, W)`` / ``(y, x)`` order; ``create_conv`` flips the
  kernel spatially and transposes it to Lava's ``(C_out, kW, kH, C_in)``, reverses the pairs to
  ``(x, y)``, and Lava's scipy ``convolve2d`` flips again: the net operation is torch's
  cross-correlation, so the file's kernel is the ``ConvLayer`` kernel unchanged.
- ``flatten`` is a marker: the next dense is connected through
  ``prev.out.transpose([2, 1, 0]).flatten()`` (``hdf5.py:_create``): Lava's ``(W, H, C)``
  back to ``(C, H, W)``, then C order — torch's flatten, the schema's reshape. A dense after a
  3-D block without ``flatten`` would not connect in netx: refused.
- A neuron-wise conv bias must be stored in Lava's ``(W, H, C)`` order; a 1-D bias of
  length C is per channel (``blocks/process.py:AbstractBlock._neuron``).
- The input block's neuron gets no input from ``Network.inp`` (``blocks/process.py:Input``
  creates ``inp`` but never connects it; the bias is not passed either). lava-dl's PilotNet
  tutorial drives ``net.in_layer.neuron.a_in`` with graded frame differences and sets ``du =
  −1`` at run time; with the file's ``iDecay = 4096`` (``du = 4095``, no current memory) the
  equivalent drive is the frame itself every step, which is what ``CurrentInputLayer`` gives.
- Blocks netx cannot build and this importer refuses (exit 4): ``dense_rec`` (recurrent; the
  schema is a DAG), ``dense_comp``/complex weights, ``average``, ``concat``, ``convT``,
  ``unpool``, sigma-delta (``SDNN``) and resonate-and-fire (``RF*``) neurons, a neuron-less
  dense (netx's default integrator has ``du = −1`` and ``vth = 2¹⁷``, outside the LIF record),
  ``iDecay = 0`` or ``vDecay = 4096``, and non-zero synaptic ``delay`` (a logical delay; the
  schema's edge delays only align Lava's pipeline). ``pool`` is supported although netx's
  ``create_pool`` raises ``NotImplementedError``: slayer's sum pool (``slayer/synapse/
  layer.py:Pool``) is a grouped conv; its zero-padding of odd inputs (bottom/right) is
  refused where it adds an output row or column (elsewhere it changes nothing).
- T: ``/simulation/tSample`` (steps per sample) when stored, else the ``steps`` argument.

Provenance (``network.provenance``): ``source = "lava-dl netx"``, ``file``, ``sha256``,
``netx = {blocks: [{index, type, neuron, synapse, shape}], input: {layer, neuron, shape,
transform}, output, T, T_from, notes}`` — :func:`netx_metadata` reads it back typed.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hardware.ir import fixed
from hardware.ir.layers import (
    ConvLayer,
    CurrentInputLayer,
    DenseLayer,
    Layer,
    LIFLayer,
    SpikeInputLayer,
    conv_out_hw,
)
from hardware.ir.network import Edge, LoihiNetwork
from spikeclip.errors import ModelFileError, UnsupportedError, UsageError

__all__ = [
    "NETX_BIAS_EXP",
    "NetxBlock",
    "NetxFileError",
    "NetxMetadata",
    "NetxUnsupportedError",
    "WeightFormat",
    "encode_frames",
    "load_netx",
    "netx_metadata",
    "netx_weight_format",
    "static_currents",
]

#: netx fixes ``bias_exp = 6`` for every CUBA/LOIHI neuron: the file's bias is in weight units.
NETX_BIAS_EXP = 6
#: Neuron types netx builds as Lava's ``LIF``.
LIF_TYPES = ("CUBA", "LOIHI")
#: Mixed-sign clip of ``utils.py:optimize_weight_bits`` (it keeps 254, not 255, as the top).
NETX_MIXED_CLIP = (-256, 254)


class NetxFileError(ModelFileError, ValueError):
    """The netx file is missing, unreadable, not a netx network, or inconsistent (exit 3)."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class NetxUnsupportedError(UnsupportedError):
    """A netx block this importer cannot represent exactly (exit 4); names the block."""

    def __init__(self, index: int, block_type: str, reason: str) -> None:
        self.index = index
        self.block_type = block_type
        self.reason = reason
        super().__init__(f"netx block {index} ({block_type}): {reason}")


# ---------------------------------------------------------------------------------------------
# Weights: the mantissa format netx (dense) and Lava (conv) end up with.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightFormat:
    """``weights`` (int64, on Lava's grid) with ``num_weight_bits``, ``weight_exp`` and
    ``sign_mode``; ``weights · 2**weight_exp`` are the effective integers. ``clipped``: how
    many input weights netx's mixed-sign clip changed."""

    weights: np.ndarray
    num_weight_bits: int
    weight_exp: int
    sign_mode: str
    clipped: int


def _floor_log2_ratio(num: int, den: int) -> int:
    """``floor(log2(num / den))`` for positive integers, exactly (k may be negative)."""
    k = num.bit_length() - den.bit_length()
    # 2^k·den ≤ num < 2^(k+1)·den after at most one correction each way
    if (den << k if k >= 0 else den) > (num if k >= 0 else num << -k):
        k -= 1
    return k


def netx_weight_format(
    weights: np.ndarray, *, clip: bool, where: tuple[int, str] = (-1, "?")
) -> WeightFormat:
    """What netx's ``optimize_weight_bits`` (``utils.py``) makes of integer ``weights``.

    Sign mode: inhibitory if every weight < 0, excitatory if every weight ≥ 0, else mixed.
    Mixed weights beyond ``[−256, 254]`` are clipped there when ``clip`` (netx's dense path),
    else refused (Lava's Conv would not clip). Scale bits ``s = ⌊log2(scale)⌋ + [mixed]`` with
    ``scale`` = ``min(127/max, 128/|min|)`` (mixed), ``256/|min|`` (inhibitory), ``255/max``
    (excitatory); ``n`` = the largest of 8 … 1 with every weight a multiple of ``2**n`` (else
    0), minus 1 if mixed; ``num_weight_bits = 8 − s − n``, ``weight_exp = −s``, weights
    shifted left by ``s``. All-zero weights (netx divides by zero) give ``(0, 8, 0,
    excitatory)``. Raises :class:`NetxUnsupportedError` (naming ``where`` = (block, type)) when
    ``s < 0`` (weights beyond Loihi's 8-bit range) or ``num_weight_bits`` leaves 1 … 8.
    """
    w = np.asarray(weights, dtype=np.int64)
    if not w.any():
        return WeightFormat(np.zeros_like(w), fixed.NUM_WEIGHT_BITS_MAX, 0, "excitatory", 0)
    clipped = 0
    hi, lo = int(w.max()), int(w.min())
    lo_clip, hi_clip = NETX_MIXED_CLIP
    if (hi > hi_clip and lo < 0) or (lo < lo_clip and hi > 0):
        if not clip:
            raise NetxUnsupportedError(
                *where,
                f"mixed-sign weights in [{lo}, {hi}] exceed Loihi's 8-bit range "
                f"[{lo_clip}, {hi_clip}]: Lava's Conv would use them unclipped",
            )
        clipped_w = np.clip(w, lo_clip, hi_clip)
        clipped = int(np.count_nonzero(clipped_w != w))
        w = clipped_w
        hi, lo = int(w.max()), int(w.min())
    if hi < 0:
        mode, signed = "inhibitory", 0
        s = _floor_log2_ratio(256, -lo)
    elif lo >= 0:
        mode, signed = "excitatory", 0
        s = _floor_log2_ratio(255, hi)
    else:
        mode, signed = "mixed", 1
        s = _floor_log2_ratio(128, -lo)
        if hi > 0:
            s = min(s, _floor_log2_ratio(127, hi))
        s += 1
    if s < 0:
        raise NetxUnsupportedError(
            *where,
            f"{mode} weights in [{lo}, {hi}] exceed Loihi's 8-bit range (netx would shift "
            f"them by {s} bits)",
        )
    n = 0
    for k in range(fixed.WEIGHT_BITS, 0, -1):
        if not np.any(w % (1 << k)):
            n = k
            break
    n -= signed
    nwb = fixed.WEIGHT_BITS - s - n
    if not fixed.NUM_WEIGHT_BITS_MIN <= nwb <= fixed.NUM_WEIGHT_BITS_MAX:
        raise NetxUnsupportedError(
            *where, f"weights in [{lo}, {hi}] need num_weight_bits = {nwb}, outside 1 … 8"
        )
    return WeightFormat(w << s, int(nwb), -int(s), mode, clipped)


# ---------------------------------------------------------------------------------------------
# Reading the HDF5 file into plain values (every h5py/IO error becomes NetxFileError here).
# ---------------------------------------------------------------------------------------------


def _read_group(group: Any) -> dict[str, Any]:
    import h5py

    out: dict[str, Any] = {}
    for key, item in group.items():
        out[key] = _read_group(item) if isinstance(item, h5py.Group) else item[()]
    return out


def _read_file(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    import h5py

    if not path.is_file():
        raise NetxFileError(path, "no such file")
    try:
        with h5py.File(path, "r") as f:
            if "layer" not in f or not isinstance(f["layer"], h5py.Group):
                raise NetxFileError(path, "no /layer group: not a lava-dl netx network")
            keys = list(f["layer"].keys())
            if not keys or not all(k.isdigit() for k in keys):
                raise NetxFileError(path, f"/layer must hold groups 0 … N−1, found {keys[:8]}")
            order = sorted(keys, key=int)
            if [int(k) for k in order] != list(range(len(order))):
                raise NetxFileError(path, f"/layer groups are not numbered 0 … N−1: {order}")
            if not all(isinstance(f["layer"][k], h5py.Group) for k in order):
                raise NetxFileError(path, "every /layer/<i> must be a group")
            blocks = [_read_group(f["layer"][k]) for k in order]
            sim = _read_group(f["simulation"]) if "simulation" in f else {}
    except OSError as err:  # h5py: not an HDF5 file, truncated, unreadable chunk
        raise NetxFileError(path, f"unreadable HDF5 file: {err}") from err
    return blocks, sim


# ---------------------------------------------------------------------------------------------
# Typed access to one block's values.
# ---------------------------------------------------------------------------------------------


class _Block:
    """One ``/layer/i`` group's values with typed getters raising NetxFileError."""

    def __init__(self, path: Path, index: int, values: Mapping[str, Any]) -> None:
        self.path, self.index, self.values = path, index, values
        self.type = self.text("type")

    def where(self) -> tuple[int, str]:
        return (self.index, self.type)

    def error(self, reason: str) -> NetxFileError:
        return NetxFileError(self.path, f"block {self.index} ({self.type}): {reason}")

    def unsupported(self, reason: str) -> NetxUnsupportedError:
        return NetxUnsupportedError(self.index, self.type, reason)

    def has(self, key: str) -> bool:
        return key in self.values

    def raw(self, key: str, values: Mapping[str, Any] | None = None) -> Any:
        values = self.values if values is None else values
        if key not in values:
            raise NetxFileError(
                self.path, f"block {self.index}: missing {key!r} (has {sorted(values)})"
            )
        return values[key]

    def text(self, key: str, values: Mapping[str, Any] | None = None) -> str:
        v = self.raw(key, values)
        arr = np.asarray(v)
        item = arr.reshape(-1)[0] if arr.size == 1 else None
        if isinstance(item, bytes | np.bytes_):
            return item.decode("ascii", "replace").strip("\x00").strip()
        if isinstance(item, str):
            return item.strip()
        raise NetxFileError(self.path, f"block {self.index}: {key!r} is not a string: {v!r}")

    def integer(self, key: str, values: Mapping[str, Any] | None = None) -> int:
        arr = np.asarray(self.raw(key, values))
        if arr.size != 1 or arr.dtype.kind not in "iuf" or not np.isfinite(arr).all():
            raise self.error(f"{key!r} must be one finite number, got {arr!r}")
        value = arr.reshape(-1)[0]
        if value != np.trunc(value):
            raise self.error(f"{key!r} must be an integer, got {value!r}")
        return int(value)

    def ints(self, key: str) -> np.ndarray:
        """An integer array as netx casts it (``astype(int)``: truncation toward zero)."""
        arr = np.asarray(self.raw(key))
        if arr.dtype.kind not in "iubf":
            raise self.error(f"{key!r} must be numeric, got {arr.dtype}")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise self.error(f"{key!r} holds NaN or inf")
        return np.trunc(arr).astype(np.int64) if arr.dtype.kind == "f" else arr.astype(np.int64)

    def truncated(self, key: str) -> int:
        arr = np.asarray(self.raw(key))
        return int(np.count_nonzero(arr != np.trunc(arr))) if arr.dtype.kind == "f" else 0

    def shape(self) -> tuple[int, ...]:
        shape = tuple(int(x) for x in self.ints("shape").reshape(-1))
        if not shape or min(shape) < 1:
            raise self.error(f"shape must be positive, got {shape}")
        return shape

    def pair(self, key: str, default: int) -> tuple[int, int]:
        """A ``(y, x)`` pair (torch order, as stored); a scalar applies to both axes."""
        if not self.has(key):
            return (default, default)
        arr = self.ints(key).reshape(-1)
        if arr.size == 1:
            return (int(arr[0]), int(arr[0]))
        if arr.size != 2:
            raise self.error(f"{key!r} must be 1 or 2 integers, got {arr.tolist()}")
        return (int(arr[0]), int(arr[1]))


# ---------------------------------------------------------------------------------------------
# Block → records.
# ---------------------------------------------------------------------------------------------

_UNSUPPORTED_BLOCKS = {
    "dense_rec": "recurrent dense: a neuron fed back into itself (the LoihiNetwork is a DAG)",
    "dense_comp": "complex-valued dense (two synapses into a resonate-and-fire neuron)",
    "average": "average block (netx's create_average is not implemented either)",
    "concat": "concat block (netx's create_concat is not implemented either)",
    "convT": "transposed conv (netx's create_convT is not implemented either)",
    "unpool": "unpool block (netx's create_unpool is not implemented either)",
}


def _lif(block: _Block, name: str, shape: tuple[int, ...], bias: np.ndarray | None) -> LIFLayer:
    if not block.has("neuron"):
        raise block.unsupported(
            "no neuron group: netx's default non-leaky integrator (iDecay 0 → du = −1, "
            "vThMant 2¹⁷) is outside the LIF record (du 0 … 4095, vth 0 … 2¹⁷ − 1)"
        )
    neuron = block.raw("neuron")
    if not isinstance(neuron, Mapping):
        raise block.error("'neuron' must be a group")
    kind = block.text("type", neuron)
    if kind not in LIF_TYPES:
        why = {
            "SDNN": "sigma-delta neurons send graded deltas (act − act_prev, Lava Sigma/Delta/"
            "SigmaDelta); the LoihiNetwork has binary-spike CUBA LIFs only",
        }.get(kind, "only CUBA/LOIHI neurons (Lava LIF) are supported")
        if kind.startswith("RF"):
            why = "resonate-and-fire neurons (Lava RF/RF_IZ) are not in the LoihiNetwork schema"
        raise block.unsupported(f"neuron type {kind!r}: {why}")
    i_decay = block.integer("iDecay", neuron)
    v_decay = block.integer("vDecay", neuron)
    vth = block.integer("vThMant", neuron)
    du = i_decay - fixed.DU_OFFSET  # hdf5.py: du = iDecay − 1
    if not 0 <= du <= fixed.DECAY_MAX:
        raise block.unsupported(
            f"iDecay {i_decay} gives du = {du}, outside Lava's 12-bit 0 … {fixed.DECAY_MAX}"
        )
    if not 0 <= v_decay <= fixed.DECAY_MAX:
        raise block.unsupported(f"vDecay {v_decay} outside Lava's 12-bit 0 … {fixed.DECAY_MAX}")
    if not 0 <= vth <= fixed.VTH_MAX:
        raise block.unsupported(f"vThMant {vth} outside Lava's 17-bit 0 … {fixed.VTH_MAX}")
    ignored = {
        k: (v.item() if isinstance(v, np.generic) else np.asarray(v).tolist())
        for k, v in neuron.items()
        if k not in ("type", "iDecay", "vDecay", "vThMant")
        and not isinstance(v, Mapping)
        and np.asarray(v).dtype.kind in "iufb"
    }
    meta = {"netx_block": block.index, "netx_type": block.type, "neuron_type": kind,
            "not_read_by_netx": ignored}
    mant = np.zeros(shape, np.int64) if bias is None else bias
    return LIFLayer(name=name, shape=shape, du=du, dv=v_decay, vth=vth, bias_mant=mant,
                    bias_exp=NETX_BIAS_EXP, meta=meta)


def _bias(block: _Block, shape: tuple[int, ...]) -> np.ndarray | None:
    """The block's bias as netx broadcasts it (``AbstractBlock._neuron``), in ``shape`` order
    (torch's: ``(C, H, W)`` or ``(N,)``)."""
    if not block.has("bias"):
        return None
    b = block.ints("bias")
    if len(shape) == 1:
        try:
            return np.broadcast_to(b.reshape(-1) if b.size != 1 else b.reshape(()), shape)
        except ValueError as err:
            raise block.error(f"bias of shape {b.shape} does not fit {shape}") from err
    lava_shape = tuple(reversed(shape))  # netx compares against the (W, H, C) shape first
    if tuple(b.shape) == lava_shape:
        return np.ascontiguousarray(np.moveaxis(b, (0, 1, 2), (2, 1, 0)))
    if b.ndim == 1 and b.shape[0] == shape[0]:
        return np.broadcast_to(b.reshape(-1, *([1] * (len(shape) - 1))), shape)
    raise block.error(
        f"bias of shape {b.shape} is neither per neuron in Lava's (W, H, C) order "
        f"{lava_shape} nor per channel ({shape[0]},)"
    )


def _no_delay(block: _Block) -> None:
    if block.has("delay") and np.any(block.ints("delay")):
        raise block.unsupported(
            "non-zero synaptic delays: a netx delay is a logical delay (DelayDense), while the "
            "LoihiNetwork's edge delays only align Lava's pipeline"
        )


def _syn_meta(block: _Block, fmt: WeightFormat, key: str = "weight") -> dict[str, Any]:
    return {"netx_block": block.index, "netx_type": block.type, "clipped": fmt.clipped,
            "truncated": block.truncated(key)}


def _conv(block: _Block, in_shape: tuple[int, ...], name: str) -> ConvLayer:
    if len(in_shape) != 3:
        raise block.unsupported(f"conv input must be (C, H, W), previous layer is {in_shape}")
    w = block.ints("weight")
    if w.ndim == 5 and w.shape[-1] == 1:  # slayer's trailing time axis (create_conv reshapes)
        w = w[..., 0]
    if w.ndim != 4:
        raise block.error(f"conv weight must be (C_out, C_in/groups, kH, kW), got {w.shape}")
    groups = block.integer("groups") if block.has("groups") else 1
    if groups < 1 or in_shape[0] != w.shape[1] * groups or w.shape[0] % groups:
        raise block.error(
            f"weight {w.shape} with groups={groups} does not fit the input channels {in_shape[0]}"
        )
    fmt = netx_weight_format(w, clip=False, where=block.where())
    return ConvLayer(
        name=name, weights=fmt.weights, in_shape=in_shape, stride=block.pair("stride", 1),
        padding=block.pair("padding", 0), dilation=block.pair("dilation", 1), groups=groups,
        num_weight_bits=fmt.num_weight_bits, weight_exp=fmt.weight_exp,
        sign_mode=fmt.sign_mode, meta=_syn_meta(block, fmt),
    )


def _pool(block: _Block, in_shape: tuple[int, ...], name: str) -> ConvLayer:
    """slayer's sum pool: the same ``(kH, kW)`` kernel on every channel (a grouped conv)."""
    if len(in_shape) != 3:
        raise block.unsupported(f"pool input must be (C, H, W), previous layer is {in_shape}")
    k = block.ints("weight")
    kernel = block.pair("kernelSize", 1) if block.has("kernelSize") else None
    k = k.reshape(k.shape[-2:]) if k.ndim >= 2 else k.reshape(kernel or (1, 1))
    if kernel is not None and tuple(k.shape) != kernel:
        raise block.error(f"pool weight {k.shape} does not match kernelSize {kernel}")
    c = in_shape[0]
    w = np.broadcast_to(k, (c, 1, *k.shape))
    stride = block.pair("stride", k.shape[0]) if block.has("stride") else tuple(k.shape)
    padding, dilation = block.pair("padding", 0), block.pair("dilation", 1)
    ours = conv_out_hw(in_shape[1:], tuple(k.shape), stride, padding, dilation)
    # slayer pads H by H % kH rows (W by W % kW columns) of zeros at the end before pooling
    padded = tuple(n + n % kk for n, kk in zip(in_shape[1:], k.shape))
    slayer = conv_out_hw(padded, tuple(k.shape), stride, padding, dilation)
    if ours != slayer:
        raise block.unsupported(
            f"slayer pads the odd input {in_shape[1:]} to {padded} before pooling, giving "
            f"{slayer} outputs where a symmetric-padding conv gives {ours}"
        )
    fmt = netx_weight_format(w, clip=False, where=block.where())
    return ConvLayer(
        name=name, weights=fmt.weights, in_shape=in_shape, stride=stride, padding=padding,
        dilation=dilation, groups=c, num_weight_bits=fmt.num_weight_bits,
        weight_exp=fmt.weight_exp, sign_mode=fmt.sign_mode, meta=_syn_meta(block, fmt),
    )


def _dense(block: _Block, in_shape: tuple[int, ...], n_out: int, name: str) -> DenseLayer:
    if block.has("weight/real") or isinstance(block.values.get("weight"), Mapping):
        raise block.unsupported(_UNSUPPORTED_BLOCKS["dense_comp"])
    w = block.ints("weight")
    if w.ndim == 1:  # hdf5.py:create_dense reshapes a vector to (N_out, −1)
        w = w.reshape(n_out, -1)
    if w.ndim != 2 or w.shape[0] != n_out or w.shape[1] != math.prod(in_shape):
        raise block.error(
            f"dense weight {w.shape} does not map {math.prod(in_shape)} inputs to {n_out}"
        )
    fmt = netx_weight_format(w, clip=True, where=block.where())
    return DenseLayer(
        name=name, weights=fmt.weights, num_weight_bits=fmt.num_weight_bits,
        weight_exp=fmt.weight_exp, sign_mode=fmt.sign_mode, in_shape=in_shape,
        out_shape=(n_out,), meta=_syn_meta(block, fmt),
    )


# ---------------------------------------------------------------------------------------------
# The whole file.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NetxBlock:
    """One block of the file: ``index`` in ``/layer``, ``type``, the names of its LIF
    (``neuron``) and synapse records (``None`` where the block has none), output ``shape``."""

    index: int
    type: str
    neuron: str | None
    synapse: str | None
    shape: tuple[int, ...]


@dataclass(frozen=True)
class NetxMetadata:
    """What the reports need about an imported netx network (from its provenance).

    ``input_layer``: the source record (``CurrentInputLayer`` or ``SpikeInputLayer``);
    ``input_neuron``: the input block's LIF (``None`` without one); ``input_shape`` ``(C, H,
    W)`` or ``(N,)``; ``transform``: the input block's host transform ``{weight, bias}``
    (:func:`encode_frames`) or ``None``; ``output``: the last LIF; ``T`` and where it came
    from (``T_from``); ``notes``: how the file deviates from plain netx, one line each.
    """

    file: str
    sha256: str
    blocks: tuple[NetxBlock, ...]
    input_layer: str
    input_neuron: str | None
    input_shape: tuple[int, ...]
    transform: Mapping[str, float] | None
    output: str
    T: int
    T_from: str
    notes: tuple[str, ...]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _stored_steps(path: Path, value: Any) -> int:
    arr = np.asarray(value)
    if arr.size != 1 or arr.dtype.kind not in "iu" or int(arr.reshape(-1)[0]) < 1:
        raise NetxFileError(path, f"/simulation/tSample must be one integer ≥ 1, got {value!r}")
    return int(arr.reshape(-1)[0])


def _scalar(block: _Block, key: str, default: float) -> float:
    if not block.has(key):
        return float(default)
    arr = np.asarray(block.raw(key)).reshape(-1)
    if arr.size != 1 or arr.dtype.kind not in "iuf" or not np.isfinite(arr).all():
        raise block.error(f"input {key!r} must be one finite number, got {arr.tolist()}")
    return float(arr[0])


def load_netx(
    path: str | os.PathLike, *, steps: int | None = None,
    input_shape: tuple[int, ...] | None = None,
) -> LoihiNetwork:
    """Import the lava-dl netx HDF5 network at ``path`` exactly (see the module doc).

    ``steps``: T, steps per sample (default: the file's ``/simulation/tSample``);
    ``input_shape``: ``(C, H, W)`` or ``(N,)`` when the file has no input block. Inputs then
    go to :func:`hardware.simulate.engine.simulate` as integer currents ``[T, B, *input_shape]`` (an
    input neuron; :func:`encode_frames` and :func:`static_currents` make them from images) or
    0/1 spikes (no input neuron). Raises :class:`NetxFileError` (exit 3) for a missing,
    unreadable or inconsistent file, :class:`NetxUnsupportedError` (exit 4) naming a block that
    cannot be imported exactly, :class:`~spikeclip.errors.UsageError` (exit 2) when no T is
    stored or given.
    """
    path = Path(path)
    raw_blocks, sim = _read_file(path)
    blocks = [_Block(path, i, values) for i, values in enumerate(raw_blocks)]
    if steps is not None:
        T, T_from = steps, "argument"
    elif "tSample" in sim:
        T, T_from = _stored_steps(path, sim["tSample"]), "/simulation/tSample"
    else:
        raise UsageError(f"{path}: the file stores no /simulation/tSample; pass steps=T")
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise UsageError(f"{path}: steps per sample must be an integer ≥ 1, got {T!r}")

    layers: list[Layer] = []
    edges: list[Edge] = []
    infos: list[NetxBlock] = []
    notes: list[str] = []
    prev: str | None = None  # the last spiking record
    prev_shape: tuple[int, ...] | None = None
    flatten_next = False
    transform: dict[str, float] | None = None
    input_neuron: str | None = None

    def add_source(shape: tuple[int, ...], graded: bool) -> str:
        cls = CurrentInputLayer if graded else SpikeInputLayer
        layers.append(cls(name="input", shape=shape))
        return "input"

    for b in blocks:
        t = b.type
        if t in _UNSUPPORTED_BLOCKS:
            raise b.unsupported(_UNSUPPORTED_BLOCKS[t])
        if t == "input":
            if layers:
                raise b.unsupported("an input block after the first layer")
            shape = b.shape()
            if b.has("neuron"):
                src = add_source(shape, graded=True)
                lif = _lif(b, f"input{b.index}", shape, None)  # create_input passes no bias
                layers.append(lif)
                edges.append(Edge(src=src, dst=lif.name))
                prev, input_neuron = lif.name, lif.name
                # hdf5.py:create_input: transform = {weight (default 64), bias (default 0)}
                transform = {"weight": _scalar(b, "weight", 64), "bias": _scalar(b, "bias", 0)}
                infos.append(NetxBlock(b.index, t, lif.name, None, shape))
            else:
                prev = add_source(shape, graded=False)
                infos.append(NetxBlock(b.index, t, None, None, shape))
            prev_shape = shape
            continue
        if t == "flatten":
            flatten_next = True
            infos.append(NetxBlock(b.index, t, None, None, (math.prod(prev_shape or (0,)),)))
            continue
        if t not in ("conv", "pool", "dense"):
            raise b.unsupported("unknown block type")
        _no_delay(b)
        if prev is None:  # no input block: the first synapse reads the network's input
            if t == "dense":
                shape_in = tuple(input_shape) if input_shape else (
                    b.integer("inFeatures") if b.has("inFeatures")
                    else int(b.ints("weight").shape[-1]),)
            elif input_shape is None:
                raise UsageError(
                    f"{path}: block {b.index} ({t}) is first and the file has no input block: "
                    "pass input_shape=(C, H, W)"
                )
            else:
                shape_in = tuple(int(x) for x in input_shape)
            prev, prev_shape = add_source(shape_in, graded=False), shape_in
            notes.append("no input block: binary spikes enter the first synapse; netx's own "
                         "reset offsets are then one step early (use reset_offset=1)")
        shape = b.shape()
        syn_name, lif_name = f"{t}{b.index}.syn", f"{t}{b.index}"
        if t == "dense":
            if len(prev_shape) > 1 and not flatten_next:
                raise b.unsupported(
                    f"dense after the {len(prev_shape)}-D layer {prev!r} without a flatten "
                    "block: netx connects the (W, H, C) port to the dense input unflattened"
                )
            n_out = math.prod(shape)
            syn: Layer = _dense(b, prev_shape, n_out, syn_name)
            out_shape: tuple[int, ...] = (n_out,)
            flatten_next = False
        else:
            if flatten_next:
                raise b.unsupported("flatten before a conv/pool block")
            syn = (_conv if t == "conv" else _pool)(b, prev_shape, syn_name)
            out_shape = tuple(syn.out_shape)
            if shape != out_shape:
                raise b.error(f"stored shape {shape} != the conv output {out_shape}")
        lif = _lif(b, lif_name, out_shape, _bias(b, out_shape))
        layers += [syn, lif]
        edges += [Edge(src=prev, dst=syn.name), Edge(src=syn.name, dst=lif.name)]
        prev, prev_shape = lif.name, out_shape
        infos.append(NetxBlock(b.index, t, lif.name, syn.name, out_shape))
    if not any(isinstance(ly, LIFLayer) for ly in layers):
        raise NetxFileError(path, "no neuron layer in the file")
    source = layers[0]
    output = prev
    meta = {
        "blocks": [
            {"index": x.index, "type": x.type, "neuron": x.neuron, "synapse": x.synapse,
             "shape": list(x.shape)} for x in infos
        ],
        "input": {"layer": source.name, "neuron": input_neuron, "shape": list(source.shape),
                  "transform": transform},
        "output": output,
        "T": T,
        "T_from": T_from,
        "notes": notes,
    }
    provenance = {"source": "lava-dl netx", "file": path.name, "sha256": _sha256(path),
                  "netx": meta}
    return LoihiNetwork(layers=tuple(layers), edges=tuple(edges), T=T, provenance=provenance)


def netx_metadata(network: LoihiNetwork) -> NetxMetadata:
    """The :class:`NetxMetadata` of a network made by :func:`load_netx` (from its provenance).
    Raises :class:`~spikeclip.errors.UsageError` for any other network."""
    prov = network.provenance
    if prov.get("source") != "lava-dl netx" or "netx" not in prov:
        raise UsageError("network was not imported from a lava-dl netx file")
    m = prov["netx"]
    return NetxMetadata(
        file=str(prov["file"]),
        sha256=str(prov["sha256"]),
        blocks=tuple(NetxBlock(b["index"], b["type"], b["neuron"], b["synapse"],
                               tuple(b["shape"])) for b in m["blocks"]),
        input_layer=m["input"]["layer"],
        input_neuron=m["input"]["neuron"],
        input_shape=tuple(m["input"]["shape"]),
        transform=m["input"]["transform"],
        output=m["output"],
        T=int(m["T"]),
        T_from=str(m["T_from"]),
        notes=tuple(m["notes"]),
    )


# ---------------------------------------------------------------------------------------------
# Host-side input encoding (lava-dl's PilotNet dataset transform).
# ---------------------------------------------------------------------------------------------


def encode_frames(images: np.ndarray, transform: Mapping[str, float]) -> np.ndarray:
    """Integer frames from images in [0, 1] as lava-dl's PilotNet dataset makes them.

    ``images`` float ``[B, C, H, W]`` (or any shape); returns int64 ``trunc0(2·weight·x −
    weight + bias)`` (``tutorials/.../pilotnet_snn/dataset.py``: float64, then
    ``astype(int32)``, i.e. truncation toward zero), in the same layout. With PilotNet's
    ``weight = 40, bias = 36`` the frames lie in −4 … 76 (wu).
    """
    x = np.asarray(images, dtype=np.float64)
    w, b = float(transform["weight"]), float(transform["bias"])
    return np.trunc(2.0 * w * x - w + b).astype(np.int64)


def static_currents(frames: np.ndarray, T: int) -> np.ndarray:
    """``frames`` ``[B, *shape]`` held for T steps: currents ``[T, B, *shape]`` (a view)."""
    frames = np.asarray(frames)
    return np.broadcast_to(frames[None], (T, *frames.shape))
