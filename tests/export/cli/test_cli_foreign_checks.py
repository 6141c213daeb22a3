"""`spikeclip-export NET.nir --require-agreement F`: CI gates a foreign deployment on its
fidelity figure, the spike agreement over every neuron-step of every spiking layer between the
float NIR executor and the bit-accurate simulator. Exit 10 naming the figure when it is below F,
0 when at or above; gates a foreign network cannot measure are usage errors (exit 2).

Reference for the figure: snnTorch's own run of the network (its float executor equals snnTorch
spike for spike, tests/hardware/lower/test_foreign_nir.py) against our simulator's run of the
``network.npz`` the export wrote, on the same ``--calib`` spikes, counted here.
"""

from __future__ import annotations

import json
from pathlib import Path

import nir
import numpy as np
import pytest
from _foreign import raster, run_snntorch, snntorch_mlp
from _paths import PILOTNET_NET

from export.cli import export as cli
from hardware.ir.network import LoihiNetwork
from hardware.simulate.engine import simulate
from spikeclip.errors import EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

T, B = 8, 32


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory):
    """The snnTorch MLP's NIR file, its calibration spikes and the reference agreement."""
    root = tmp_path_factory.mktemp("gate")
    net, graph = snntorch_mlp(reset_mechanism="zero")
    nir.write(root / "mlp.nir", graph)
    x = raster((8,), T, B, 0.3, seed=5)  # [T, B, 8]
    np.savez(root / "calib.npz", spikes=x.transpose(0, 1).numpy())
    out = root / "out"
    assert _export(root, out) == EXIT_OK
    sim = simulate(LoihiNetwork.load(out / "network.npz"), x.numpy(), keep_states=True)
    ref = run_snntorch(net, x)  # {Sequential index: spikes [T, B, n]}
    differ = sum(int((ref[i].numpy() != np.asarray(sim.spikes[str(i)])).sum()) for i in ref)
    total = sum(ref[i].numel() for i in ref)
    return root, 1.0 - differ / total, differ, out


def _export(root: Path, out: Path, *gates: str) -> int:
    return cli.main([str(root / "mlp.nir"), "--target", "sim", "--out", str(out), "--quiet",
                     "--nir-convention", "snntorch", "--calib", str(root / "calib.npz"),
                     *gates])


def test_the_figure_is_the_spike_agreement(deployed) -> None:
    _, agreement, differ, out = deployed
    assert 0 < differ  # the test below needs a figure below 1
    checks = json.loads((out / "manifest.json").read_text())["checks"]
    fs = checks["float_vs_simulator"]
    assert fs["agreement"] == pytest.approx(agreement, abs=1e-12)
    assert fs["samples"] == B and "neuron-steps" in fs["measure"]
    assert checks["twin_equals_simulator"] is True


def test_manifest_keeps_the_foreign_sections(deployed, tmp_path: Path) -> None:
    """The report stage rebuilt ``checks`` and dropped what the foreign stages had put there
    (the mapping line, the fidelity figure)."""
    root, agreement, _, _ = deployed
    assert _export(root, tmp_path / "hw", "--target", "loihi", "--run-lava", "0") == EXIT_OK
    checks = json.loads((tmp_path / "hw" / "manifest.json").read_text())["checks"]
    assert "cores on 1 chip" in checks["mapping"]
    assert checks["float_vs_simulator"]["agreement"] == pytest.approx(agreement, abs=1e-12)


def test_require_agreement_passes_at_the_figure(deployed, tmp_path: Path) -> None:
    root, agreement, _, _ = deployed
    need = np.floor(agreement * 1e6) / 1e6
    assert _export(root, tmp_path / "ok", "--require-agreement", f"{need}") == EXIT_OK
    checks = json.loads((tmp_path / "ok" / "manifest.json").read_text())["checks"]
    assert checks["passed"] is True and checks["requirements"][0]["name"] == "agreement"


def test_require_agreement_fails_above_the_figure_with_exit_10(deployed, tmp_path: Path,
                                                                 capsys) -> None:
    root, agreement, _, _ = deployed
    need = np.ceil(agreement * 1e6) / 1e6 + 1e-6
    capsys.readouterr()
    assert _export(root, tmp_path / "low", "--require-agreement", f"{need}") == EXIT_CHECK_FAILED
    err = capsys.readouterr().err
    assert "check failed: --require-agreement" in err
    assert f"{agreement:.6f}" in err and "neuron-steps" in err
    assert (tmp_path / "low" / "manifest.json").is_file()  # the folder is written first


def test_gates_a_foreign_network_cannot_measure_are_usage_errors(deployed, tmp_path: Path,
                                                                  capsys) -> None:
    root, *_ = deployed
    assert _export(root, tmp_path / "a", "--require-top1-delta", "1") == EXIT_USAGE
    assert "--require-top1-delta needs a SpikeCLIP checkpoint" in capsys.readouterr().err
    code = cli.main([str(PILOTNET_NET), "--target", "sim", "--out", str(tmp_path / "b"),
                     "--quiet", "--samples", "1", "--require-agreement", "0.9"])
    assert code == EXIT_USAGE and "lava-dl netx" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_require_twin_exact_reads_the_foreign_twin(deployed, tmp_path: Path, capsys) -> None:
    """The twin equals the simulator on these samples, but T = 8 > 7: the quantizer's exactness
    bound (DESIGN §4) does not hold, so the gate fails (exit 10) saying both."""
    root, *_ = deployed
    capsys.readouterr()
    assert _export(root, tmp_path / "t", "--require-twin-exact") == EXIT_CHECK_FAILED
    err = capsys.readouterr().err
    assert "twin == simulator bit for bit: True; exactness bound met: False (T = 8" in err
