"""`spikeclip-export` on files it cannot take, as a new user meets them: random bytes, an empty
file, a text file, a truncated HDF5 file, HDF5 of another kind and a NIR file with a node type
NIR 1.0.8 does not define. Each exits with the documented code (3: not a usable model file, 4:
a format or node it does not support), leaves no folder, and its one message names the file,
says what it is, and lists the accepted formats.

References: the exit codes of `spikeclip.errors` and the files' own bytes (written here).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import nir
import numpy as np
import pytest

from export.cli import export as cli
from spikeclip.errors import EXIT_BAD_MODEL, EXIT_UNSUPPORTED

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

FORMATS = ("SpikeCLIP checkpoint", "NIR graph", "lava-dl netx network")


def _nir_file(path: Path) -> Path:
    g = nir.NIRGraph.from_list(
        nir.Affine(weight=np.ones((2, 3)), bias=np.zeros(2)),
        nir.LIF(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2)))
    nir.write(path, g)
    return path


def _run(path: Path, tmp_path: Path, capsys) -> tuple[int, str]:
    code = cli.main([str(path), "--target", "sim", "--dt", "1e-3", "--quiet",
                     "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err  # one line, no traceback
    return code, err


def _names_formats(err: str, path: Path) -> None:
    assert str(path) in err
    for fmt in FORMATS:
        assert fmt in err, (fmt, err)


def test_random_bytes(tmp_path: Path, capsys) -> None:
    path = tmp_path / "garbage.nir"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    code, err = _run(path, tmp_path, capsys)
    assert code == EXIT_BAD_MODEL
    assert "3,000 bytes of binary data" in err
    _names_formats(err, path)


def test_empty_file(tmp_path: Path, capsys) -> None:
    path = tmp_path / "empty.nir"
    path.write_bytes(b"")
    code, err = _run(path, tmp_path, capsys)
    assert code == EXIT_BAD_MODEL and "empty file (0 bytes)" in err
    _names_formats(err, path)


def test_text_file(tmp_path: Path, capsys) -> None:
    path = tmp_path / "notes.nir"
    path.write_text("weights are in the other file\n")
    code, err = _run(path, tmp_path, capsys)
    assert code == EXIT_BAD_MODEL
    assert "a text file (30 bytes) starting 'weights are in t'" in err
    _names_formats(err, path)


def test_truncated_hdf5(tmp_path: Path, capsys) -> None:
    whole = _nir_file(tmp_path / "whole.nir").read_bytes()
    path = tmp_path / "cut.nir"
    path.write_bytes(whole[: len(whole) // 2])
    code, err = _run(path, tmp_path, capsys)
    assert code == EXIT_BAD_MODEL
    assert "HDF5 file" in err and "truncated or damaged" in err
    _names_formats(err, path)


def test_other_hdf5_names_its_keys_and_the_formats(tmp_path: Path, capsys) -> None:
    path = tmp_path / "weights.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("kernel", data=np.ones(3))
    code, err = _run(path, tmp_path, capsys)
    assert code == EXIT_UNSUPPORTED and "['kernel']" in err
    _names_formats(err, path)


def test_nir_file_with_an_unknown_node_type(tmp_path: Path, capsys) -> None:
    """nir.read asserts on a type it does not know (an AssertionError, exit 7 before)."""
    path = _nir_file(tmp_path / "future.nir")
    with h5py.File(path, "r+") as f:
        node = f["node/nodes/lif"]
        del node["type"]
        node["type"] = b"AdExLIF"
    code, err = _run(path, tmp_path, capsys)
    assert code == EXIT_UNSUPPORTED
    assert str(path) in err
    assert "NIR node 'lif' has type 'AdExLIF', which is not a NIR 1.0.8 node type" in err


def test_nir_file_missing_a_field(tmp_path: Path, capsys) -> None:
    path = _nir_file(tmp_path / "partial.nir")
    with h5py.File(path, "r+") as f:
        del f["node/nodes/lif/tau"]
    code, err = _run(path, tmp_path, capsys)
    assert code == EXIT_BAD_MODEL
    assert str(path) in err and "not a readable NIR 1.0.8 graph" in err
