"""What MODEL is, read from its content (never its extension): :func:`model_kind`.

``spikeclip-export`` reads three formats (:data:`ACCEPTED`):

- a SpikeCLIP checkpoint: a torch zip archive (``PK\\x03\\x04``) or a legacy torch pickle
  (``\\x80`` PROTO opcode), loaded by :mod:`spikeclip.safe_load`, which reports what is wrong
  with a damaged one (exit 3);
- a NIR graph: HDF5 with a top-level ``node`` group (nir 1.0.8, ``nir.write``);
- a lava-dl netx network: HDF5 with a top-level ``layer`` group (``netx.hdf5``).

Anything else is refused here, before any stage runs, naming the file, what it looks like and
the accepted formats: an empty file, text, other bytes or an HDF5 file h5py cannot open (exit 3,
:class:`UnreadableModelFile`), an HDF5 file of another kind (exit 4, :class:`UnknownModelFormat`)
and a NIR file whose nodes include a type that is not a NIR 1.0.8 node type (exit 4,
:class:`UnknownNIRNodeType`; the importer names known types it cannot take).
"""

from __future__ import annotations

import codecs
from pathlib import Path

from spikeclip.errors import ModelFileError, UnsupportedError

ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTO = b"\x80"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
#: Offsets where HDF5 looks for its signature (0, then 512·2^k: a user block may precede it).
HDF5_OFFSETS = (0, 512, 1024, 2048, 4096)
#: The formats MODEL may have, as every refusal states them.
ACCEPTED = ("MODEL must be a SpikeCLIP checkpoint (.pt, a torch zip archive), a NIR graph "
            "(HDF5 with a 'node' group, as nir.write and snntorch/norse/sinabs/rockpool "
            "to_nir write it) or a lava-dl netx network (HDF5 with a 'layer' group, .net)")
#: Bytes of the file quoted in a refusal.
HEAD_BYTES = 16


class UnreadableModelFile(ModelFileError):
    """MODEL is empty, not one of the accepted formats, or HDF5 that cannot be opened (exit 3)."""


class UnknownModelFormat(UnsupportedError):
    """An HDF5 file that is neither a NIR graph nor a lava-dl netx network (exit 4)."""


class UnknownNIRNodeType(UnsupportedError):
    """A NIR file holding a node whose type is not a NIR 1.0.8 node type (exit 4)."""


def _head(path: Path, size: int) -> bytes | None:
    """The first ``size`` bytes, or ``None`` when the path is not a readable regular file (the
    checkpoint loader then says why: missing, a directory, a FIFO, permissions; exit 3)."""
    try:
        if not path.is_file():
            return None
        with open(path, "rb") as f:
            return f.read(size)
    except OSError:
        return None


def _is_hdf5(path: Path) -> bool:
    """Whether ``path`` holds HDF5's signature at one of its offsets."""
    try:
        with open(path, "rb") as f:
            for offset in HDF5_OFFSETS:
                f.seek(offset)
                if f.read(len(HDF5_MAGIC)) == HDF5_MAGIC:
                    return True
    except OSError:
        return False
    return False


def describe_bytes(head: bytes, size: int) -> str:
    """``"a text file (12 bytes) starting 'hello'"`` or ``"3,000 bytes of binary data starting
    b'...'"`` (``head``: the file's first bytes, ``size``: its length)."""
    try:  # incremental: a character cut by the end of ``head`` is not an error
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in "\t\r\n" for c in text):
        return f"a text file ({size:,} bytes) starting {text[:HEAD_BYTES]!r}"
    return f"{size:,} bytes of binary data starting {head[:HEAD_BYTES]!r}"


def _hdf5_kind(path: Path) -> str:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            keys = sorted(f.keys())
    except OSError as err:
        raise UnreadableModelFile(
            f"{path}: an HDF5 file (its signature is there) that h5py cannot open, truncated or "
            f"damaged ({err}); {ACCEPTED}") from err
    if "layer" in keys:
        return "netx"
    if "node" in keys:
        return "nir"
    raise UnknownModelFormat(
        f"{path}: an HDF5 file that is neither a NIR graph (group 'node') nor a lava-dl netx "
        f"network (group 'layer'); its top-level keys are {keys}; {ACCEPTED}")


def model_kind(path: Path) -> str:
    """``"checkpoint"`` (a torch zip or pickle, or a path that is no readable regular file: the
    checkpoint loader reports it), ``"netx"`` or ``"nir"``; raises for anything else (module
    doc)."""
    head = _head(path, 4096)
    if head is None:
        return "checkpoint"
    if _is_hdf5(path):
        return _hdf5_kind(path)
    if head.startswith(ZIP_MAGIC) or head.startswith(PICKLE_PROTO):
        return "checkpoint"
    size = path.stat().st_size
    if size == 0:
        raise UnreadableModelFile(f"{path}: an empty file (0 bytes); {ACCEPTED}")
    raise UnreadableModelFile(f"{path}: not a model file: {describe_bytes(head, size)}; "
                              f"{ACCEPTED}")


def nir_node_types(path: Path) -> dict[str, str]:
    """``{node path: type}`` of every node in a NIR file, nested graphs included (``a.b``),
    read with h5py before ``nir.read`` (which asserts on a type it does not know)."""
    import h5py

    found: dict[str, str] = {}

    def walk(group, prefix: str) -> None:
        for name, node in group.items():
            if not isinstance(node, h5py.Group) or "type" not in node:
                continue
            kind = node["type"][()]
            kind = kind.decode("utf-8", "replace") if isinstance(kind, bytes) else str(kind)
            found[prefix + name] = kind
            if kind == "NIRGraph" and isinstance(node.get("nodes"), h5py.Group):
                walk(node["nodes"], f"{prefix}{name}.")

    with h5py.File(path, "r") as f:
        nodes = f.get("node/nodes")
        if isinstance(nodes, h5py.Group):
            walk(nodes, "")
    return found


def check_nir_node_types(path: Path, known: frozenset[str]) -> None:
    """Raise :class:`UnknownNIRNodeType` naming the first node whose type is not in ``known``
    (NIR 1.0.8's node types)."""
    for node, kind in nir_node_types(path).items():
        if kind not in known:
            raise UnknownNIRNodeType(
                f"{path}: NIR node {node!r} has type {kind!r}, which is not a NIR 1.0.8 node "
                f"type (known: {', '.join(sorted(known))}); was it written by a newer NIR or a "
                "framework's own extension?")
