"""`spikeclip-export` on a lava-dl netx file with sigma-delta (``SDNN``) blocks: exit 4 naming
the first such block and why (the LoihiNetwork holds binary-spike CUBA LIFs; sigma-delta
neurons send graded deltas), nothing written. The file is laid out as lava-dl's
``netx.hdf5.Network`` reads it (``hdf5.py:get_neuron_params``: type ``SDNN`` with ``vThMant``,
an input block's neuron a ``Delta``, ``sigma_output`` a ``Sigma``), and lava-dl itself builds
it into those processes: the reference that the file is a sigma-delta network."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from _netx import netx_block

from export.cli import export as cli
from spikeclip.errors import EXIT_UNSUPPORTED

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _neuron(g, kind: str, vth: int, **extra) -> None:
    n = g.create_group("neuron")
    n.create_dataset("type", data=kind.encode())
    n.create_dataset("vThMant", data=vth)
    if kind == "CUBA":
        n.create_dataset("iDecay", data=4096)
        n.create_dataset("vDecay", data=2048)
    for key, value in extra.items():
        n.create_dataset(key, data=value)


def write_sdnn(path: Path, *, cuba_input: bool) -> Path:
    """input(2) → dense(3, SDNN) → dense(1, SDNN sigma output); the input's neuron SDNN (a
    Delta encoder) or, with ``cuba_input``, CUBA."""
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        g = netx_block(layer, 0, "input", [2], weight=np.float32(1.0), bias=np.float32(0.0))
        _neuron(g, "CUBA" if cuba_input else "SDNN", 4)
        w1 = np.array([[3, -5], [-7, 1], [2, 9]], np.float32)
        g = netx_block(layer, 1, "dense", [3], weight=w1, inFeatures=2, outFeatures=3)
        _neuron(g, "SDNN", 8)
        g = netx_block(layer, 2, "dense", [1], weight=np.array([[-3, 0, 5]], np.float32),
                       inFeatures=3, outFeatures=1)
        _neuron(g, "SDNN", 0, sigma_output=True)
        f.create_group("simulation").create_dataset("tSample", data=4)
    return path


@pytest.mark.lava
def test_lava_dl_reads_the_file_as_sigma_delta(tmp_path: Path) -> None:
    from lava.lib.dl import netx

    net = netx.hdf5.Network(net_config=str(write_sdnn(tmp_path / "sd.net", cuba_input=False)))
    assert [type(b.neuron).__name__ for b in net.layers] == ["Delta", "SigmaDelta", "Sigma"]


@pytest.mark.parametrize(("cuba_input", "block"), [(False, "0 (input)"), (True, "1 (dense)")])
def test_sigma_delta_blocks_exit_4_naming_thenetx_block(tmp_path: Path, capsys, cuba_input: bool,
                                                    block: str) -> None:
    path = write_sdnn(tmp_path / "sd.net", cuba_input=cuba_input)
    code = cli.main([str(path), "--target", "loihi", "--out", str(tmp_path / "out"), "--quiet"])
    assert code == EXIT_UNSUPPORTED
    err = capsys.readouterr().err
    assert f"netx block {block}: neuron type 'SDNN': sigma-delta neurons send graded deltas" in err
    assert "binary-spike CUBA LIFs only" in err
    assert not (tmp_path / "out").exists()
