"""The text tower as a lava-dl netx HDF5 network: the writer (the netx-compatible sequential part).

SpikeCLIP's text encoder is ``embed(ids) → LIF1 → fc1 → LIF2 → fc2 → time-weighted readout``.
netx (``lava.lib.dl.netx.hdf5.Network``) builds sequential ``input → dense → …`` blocks whose
every layer ends in a neuron, so it can hold ``LIF1 → fc1 → LIF2``: fc2's output is a current
(no neuron), which netx cannot emit; fc2 and the readout stay on the host (they are in the
:class:`~hardware.ir.network.LoihiNetwork` the quantizer builds, where :mod:`export.lava` and the
simulator run them).

**Quantization** is the project's one text quantizer (:func:`hardware.quantize.text.
quantize_text`) with netx's constraints as options (:data:`NETX_OPTIONS`): netx fixes
``bias_exp = 6`` for every CUBA neuron (``Network.get_neuron_params``), so the HDF5 ``bias`` is a
mantissa in whole weight units (1 wu = 64 v-units): every bias of this export — fc1's bias into
LIF2 and the per-prompt embedding drive into LIF1 — is rounded to whole wu (round half up, 13-bit
mantissa); weights are on the 8-bit mixed grid with ``weight_exp = 0`` (netx re-derives an
exponent with ``optimize_weight_bits``; on our grid its shifts are exact); scales come from
static bounds, so no calibration data is needed and no overflow can occur
(:mod:`hardware.quantize.scales`). This module only writes the network.

**Input injection.** netx's ``Input`` block takes its input "through the neuron's bias": its
``inp`` port is not connected to anything. So the per-prompt embedding drive
``embed(ids)·s1/τ`` (wu) is written into ``layers[0].neuron.bias_mant`` — sample 0 as the
Var's initial value, sample k by the project's ``BiasInjection`` process (RefPort write in the
post-management phase of Lava step k·T; :mod:`export.lava.netx_run`). ``Network(reset_interval=T)``
makes every layer a ``LIFReset`` with offset ``1 + layer index`` = depth + 1, so prompts stream
one every T steps. The drive and the simulator's view of it: :mod:`export.lava.netx_drive`.

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
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hardware.ir import fixed
from hardware.ir.layers import DenseLayer, HostInputLayer, LIFLayer
from hardware.ir.network import LoihiNetwork
from hardware.lower.from_netx import NETX_BIAS_EXP
from hardware.quantize.plan import StaticOptions
from hardware.quantize.record import QuantRecord
from hardware.quantize.text import NAMES, quantize_text
from spikeclip.atomic_io import open_atomic
from spikeclip.errors import UnsupportedError

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "NAMES",
    "NETX_OPTIONS",
    "NOTES",
    "NetxExportError",
    "embedding_input",
    "export_text_tower",
    "netx_chain",
    "netx_layer_names",
    "write_netx",
]

FORMAT_NAME = "spikeclip-netx-text"
FORMAT_VERSION = 1
#: The text quantizer's options under netx's constraints (module doc).
NETX_OPTIONS = StaticOptions(bias_exp=NETX_BIAS_EXP)
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


def embedding_input(network: LoihiNetwork) -> HostInputLayer:
    """The network's one host input with op ``embedding`` (the text tower's), else an error."""
    hosts = [ly for ly in network.layers if isinstance(ly, HostInputLayer)]
    if len(hosts) != 1 or hosts[0].op != "embedding":
        raise NetxExportError(
            hosts[0].name if hosts else "<network>",
            "expected exactly one host input with op 'embedding' (the text tower's)",
        )
    return hosts[0]


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
    host = embedding_input(network)
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
        if layer.reset_sub is not None or layer.rec_weights is not None:
            raise NetxExportError(layer.name, "netx's CUBA neuron resets to 0 and has no "
                                  "recurrent synapse")
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
    host = embedding_input(network)
    path = Path(path)
    # Built in memory, then written as bytes: HDF5 crashes (segfault) when a write fails
    # inside it, e.g. on a full disk; a plain write fails with an ordinary OSError instead.
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        f.attrs["format"] = FORMAT_NAME
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["T"] = network.T
        f.attrs["notes"] = json.dumps(list(NOTES))
        f.attrs["drive_wu_per_unit"] = host.bias_scale / fixed.V_PER_WU
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
    encoder: torch.nn.Module, path: str | os.PathLike
) -> tuple[Path, LoihiNetwork, QuantRecord]:
    """``quantize_text(encoder, options=NETX_OPTIONS)`` then :func:`write_netx` (the CLI's
    ``lava/`` entry point). Raises ``QuantizationRangeError`` / :class:`NetxExportError`."""
    network, record = quantize_text(encoder, options=NETX_OPTIONS)
    return write_netx(network, path), network, record


def netx_layer_names(path: str | os.PathLike) -> tuple[str, ...]:
    """Our LIF names of the netx layers in ``path``, in order (layer attribute ``name``)."""
    import h5py

    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != FORMAT_NAME:
            raise NetxExportError("<file>", f"{path}: not a {FORMAT_NAME} file")
        layers = f["layer"]
        return tuple(str(layers[str(i)].attrs["name"]) for i in range(len(layers)))
