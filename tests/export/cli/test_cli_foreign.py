"""`spikeclip-export` on foreign networks: a NIR graph exported by snnTorch and Intel's PilotNet
SNN (lava-dl netx), recognised by content; exit codes for files it cannot take.

Runs `export.cli.export.main` in-process (the console script is the same function; starting a
process costs ~5 s of imports here). References: the folder's files and their numbers (the
stages themselves are checked against the frameworks, the simulator and Lava in
tests/hardware/lower/test_foreign_nir.py, tests/hardware/quantize/test_quantize_foreign.py and
tests/export/lava/test_lava_foreign.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
from _foreign import norse_mlp, snntorch_cnn, snntorch_mlp
from _paths import DEFAULT_MODEL, PILOTNET_NET

from export.cli import export as cli
from export.cli import foreign
from export.cli.model_file import model_kind
from hardware.lower import from_foreign_nir
from spikeclip.errors import EXIT_BAD_MODEL, EXIT_OK, EXIT_UNSUPPORTED, EXIT_USAGE

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def snn_nir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("nir") / "mlp.weights"  # the extension says nothing
    nir.write(path, snntorch_mlp(reset_mechanism="zero")[1])
    return path


def test_cli_choices_are_the_importers() -> None:
    assert foreign.CONVENTIONS == tuple(from_foreign_nir.CONVENTION_DT)
    assert foreign.RESETS == from_foreign_nir.RESETS


def test_model_kind_is_read_from_content(snn_nir: Path, tmp_path: Path) -> None:
    net = tmp_path / "pilot.nir"  # a netx file under a NIR name
    shutil.copy(PILOTNET_NET, net)
    assert model_kind(snn_nir) == "nir"
    assert model_kind(net) == "netx"
    assert model_kind(DEFAULT_MODEL) == "checkpoint"


@pytest.mark.lava
def test_snntorch_nir_to_loihi(snn_nir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = cli.main([str(snn_nir), "--target", "loihi", "--out", str(out), "--quiet",
                     "--nir-convention", "snntorch", "--samples", "32", "--steps", "8",
                     "--rate", "0.3", "--run-lava", "2"])
    assert code == EXIT_OK
    fid = json.loads((out / "fidelity.json").read_text())
    assert fid["twin_equals_simulator"] is True
    assert fid["float_vs_simulator_neuron_step_agreement"] > 0.99
    assert [r["name"] for r in fid["layers"]] == ["1", "3"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["checks"]["lava"]["identical"] is True
    assert manifest["checks"]["lava"]["samples"] == 2
    report = (out / "report.md").read_text()
    assert "32 samples of Bernoulli(0.3) spikes, 8 steps, seed 0" in report
    assert "skipped: text tower and zero-shot classes" in report
    for name in ("mapping.md", "energy.md", "quantization.md", "network.npz"):
        assert (out / name).is_file(), name


@pytest.mark.lava
def test_snntorch_cnn_nir_to_loihi(tmp_path: Path) -> None:
    nir.write(tmp_path / "cnn.nir", snntorch_cnn(reset_mechanism="zero")[1])
    out = tmp_path / "out"
    code = cli.main([str(tmp_path / "cnn.nir"), "--target", "loihi", "--out", str(out),
                     "--quiet", "--nir-convention", "snntorch", "--samples", "8", "--steps", "8",
                     "--rate", "0.3", "--run-lava", "1"])
    assert code == EXIT_OK
    assert json.loads((out / "manifest.json").read_text())["checks"]["lava"]["identical"] is True
    fid = json.loads((out / "fidelity.json").read_text())
    assert fid["twin_equals_simulator"] is True and [r["name"] for r in fid["layers"]] == ["1", "5"]


def test_norse_nir_file_with_batch_axis_and_scalar_parameters(tmp_path: Path) -> None:
    """Norse writes 0-d parameters (only uncompressed) and keeps the batch axis on the Input."""
    nir.write(tmp_path / "norse.nir", norse_mlp()[1], compression=None)
    out = tmp_path / "out"
    code = cli.main([str(tmp_path / "norse.nir"), "--target", "sim", "--out", str(out),
                     "--quiet", "--nir-convention", "norse", "--samples", "16", "--rate", "0.3"])
    assert code == EXIT_OK
    fid = json.loads((out / "fidelity.json").read_text())
    assert fid["layers"][0]["neuron_steps"] == 16 * 16 * 16  # T = 16 default, 16 samples, (16,)
    assert fid["twin_equals_simulator"] is True


def test_calib_file_sets_inputs_and_steps(snn_nir: Path, tmp_path: Path) -> None:
    x = (np.random.default_rng(3).random((5, 6, 8)) < 0.4).astype(np.float32)  # [N, T, 8]
    np.savez(tmp_path / "calib.npz", spikes=x)
    out = tmp_path / "out"
    code = cli.main([str(snn_nir), "--target", "sim", "--out", str(out), "--quiet",
                     "--nir-convention", "snntorch", "--calib", str(tmp_path / "calib.npz")])
    assert code == EXIT_OK
    fid = json.loads((out / "fidelity.json").read_text())
    assert fid["samples"] == 5 and fid["layers"][0]["neuron_steps"] == 5 * 6 * 16


def test_pilotnet_netx_to_loihi(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = cli.main([str(PILOTNET_NET), "--target", "loihi", "--out", str(out), "--quiet",
                     "--samples", "2", "--run-lava", "0"])
    assert code == EXIT_OK
    mapping = json.loads((out / "mapping.json").read_text())
    assert mapping  # the mapper's own numbers are tested in tests/hardware/mapping
    energy = json.loads((out / "energy.json").read_text())
    names = [layer["name"] for layer in energy["layers"]]
    assert len(names) >= 10
    report = (out / "report.md").read_text()
    assert "fidelity (a netx file has no float model" in report
    assert (out / "mapping.md").is_file() and (out / "energy.md").is_file()


def test_unsupported_node_exits_4_naming_it(tmp_path: Path, capsys) -> None:
    g = nir.NIRGraph.from_list(nir.Input(np.array([2])), nir.I(np.ones(2)),
                               nir.Output(np.array([2])))
    nir.write(tmp_path / "integrator.nir", g)
    code = cli.main([str(tmp_path / "integrator.nir"), "--target", "sim", "--dt", "1e-3",
                     "--out", str(tmp_path / "out"), "--quiet"])
    assert code == EXIT_UNSUPPORTED
    assert "node 'i': node type I is not supported" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_other_hdf5_exits_4_naming_its_groups(tmp_path: Path, capsys) -> None:
    with h5py.File(tmp_path / "weights.h5", "w") as f:
        f.create_dataset("kernel", data=np.ones(3))
    code = cli.main([str(tmp_path / "weights.h5"), "--out", str(tmp_path / "out"), "--quiet"])
    assert code == EXIT_UNSUPPORTED
    assert "neither a NIR graph" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_corrupt_hdf5_exits_3(tmp_path: Path) -> None:
    bad = tmp_path / "broken.nir"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    assert cli.main([str(bad), "--out", str(tmp_path / "out"), "--quiet"]) == EXIT_BAD_MODEL


def test_missing_dt_and_checkpoint_targets_are_usage_errors(snn_nir: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "out")
    assert cli.main([str(snn_nir), "--target", "sim", "--out", out, "--quiet"]) == EXIT_USAGE
    assert cli.main([str(snn_nir), "--target", "onnx", "--out", out, "--quiet"]) == EXIT_USAGE


def _refused_at_quantize(graph: nir.NIRGraph, tmp_path: Path, capsys,
                         prefix: str = "quantize: NIR import: node ") -> str:
    nir.write(tmp_path / "g.nir", graph)
    code = cli.main([str(tmp_path / "g.nir"), "--target", "sim", "--dt", "1e-3", "--quiet",
                     "--samples", "2", "--steps", "4", "--out", str(tmp_path / "out")])
    assert code == EXIT_UNSUPPORTED and not (tmp_path / "out").exists()
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"spikeclip-export: {prefix}") and "\n" not in err, err
    return err


def _lif(n: int) -> nir.LIF:
    return nir.LIF(tau=np.full(n, 2e-3), r=np.ones(n), v_leak=np.zeros(n),
                   v_threshold=np.ones(n))


def test_delay_imports_but_is_refused_before_quantizing(tmp_path: Path, capsys) -> None:
    g = nir.NIRGraph.from_list(nir.Input(np.array([3])), nir.Delay(np.full(3, 2e-3)),
                               nir.Linear(np.ones((2, 3))), _lif(2), nir.Output(np.array([2])))
    err = _refused_at_quantize(g, tmp_path, capsys, prefix="quantize: ")
    assert "node 'delay': a Delay of whole steps imports" in err
    assert "edge delays only align Lava's pipeline" in err


def test_cubali_is_refused_until_li_neurons_deploy(tmp_path: Path, capsys) -> None:
    """The quantizer raised OverflowError on an LI's infinite threshold (exit 7) before."""
    cubali = nir.CubaLI(tau_syn=np.full(2, 4e-3), tau_mem=np.full(2, 2e-3), r=np.ones(2),
                        v_leak=np.zeros(2))
    g = nir.NIRGraph.from_list(nir.Input(np.array([3])), nir.Linear(np.ones((2, 3))), cubali,
                               nir.Output(np.array([2])))
    err = _refused_at_quantize(g, tmp_path, capsys)
    assert "node 'cubali': a CubaLI output (a CubaLIF that never spikes" in err
    assert "deploys once Lava reads v back" in err


def test_linear_readout_is_refused_until_li_neurons_deploy(tmp_path: Path, capsys) -> None:
    g = nir.NIRGraph.from_list(nir.Input(np.array([3])), nir.Linear(np.ones((2, 3))), _lif(2),
                               nir.Linear(np.ones((1, 2))), nir.Output(np.array([1])))
    err = _refused_at_quantize(g, tmp_path, capsys)
    assert "node 'output': a linear readout" in err
