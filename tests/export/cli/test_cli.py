"""`spikeclip-export`: end to end on the tiny config, exit codes per bad input, atomicity."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _paths import DEFAULT_MODEL

from export.cli import export as cli
from export.cli import stages
from export.cli.exit_codes import (
    EXIT_BAD_MODEL,
    EXIT_LAVA_FAILED,
    EXIT_UNSUPPORTED,
    EXIT_USAGE,
    classify,
)
from hardware.lower.float_graph import FloatGraphError
from spikeclip import SpikeCLIP, SpikeCLIPConfig, save
from spikeclip.ann_twin import build_ann_twin

EXPORT = shutil.which("spikeclip-export", path=str(Path(sys.executable).parent))


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save(path, SpikeCLIP(SpikeCLIPConfig.tiny()), metadata={"dataset": "digits"})
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess:
    assert EXPORT is not None, "spikeclip-export is not installed"
    return subprocess.run([EXPORT, *args], capture_output=True, text=True, timeout=600)


@pytest.mark.lava
def test_end_to_end_loihi_on_tiny(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "export"
    done = run_cli(
        str(tiny_checkpoint),
        "--target",
        "loihi",
        "--samples",
        "16",
        "--run-lava",
        "1",
        "--require-lava-exact",
        "--require-twin-exact",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    expected = {
        "model.nir",
        "text_encoder.nir",
        "image_stem.nir",
        "model.onnx",
        "network.npz",
        "quantization.md",
        "quantization.json",
        "mapping.md",
        "mapping.json",
        "fidelity.md",
        "fidelity.json",
        "energy.md",
        "energy.json",
        "energy_per_layer.png",
        "energy_firing_rate.png",
        "manifest.json",
        "report.md",
    }
    assert expected <= {p.name for p in out.iterdir()}
    lava_files = {p.name for p in (out / "lava").iterdir()}
    assert lava_files == {"image_encoder.md", "text_encoder.net", "hardware_path.md"}
    assert "not installed" in (out / "lava" / "hardware_path.md").read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format_version"] == stages.MANIFEST_FORMAT_VERSION
    digest = __import__("hashlib").sha256(tiny_checkpoint.read_bytes()).hexdigest()
    assert manifest["checkpoint"]["sha256"] == digest
    assert manifest["target"] == "loihi" and manifest["options"]["run_lava"] == 1
    fidelity = json.loads((out / "fidelity.json").read_text())
    assert fidelity["samples"] == 16
    assert fidelity["twin_sim_bit_exact"] is True  # DESIGN §4: the twin is exact
    # The Lava verdict is machine-readable in both JSON files (same figures).
    lava = manifest["checks"]["lava"]
    assert lava["ran"] is True and lava["samples"] == 1 and lava["identical"] is True
    assert lava["max_abs_feature_diff"] == 0.0 and lava["spike_mismatches"] == 0
    assert fidelity["lava"] == lava
    assert "Lava vs simulator: identical on 1 samples" in (out / "fidelity.md").read_text()
    gates = {r["name"]: r["passed"] for r in manifest["checks"]["requirements"]}
    assert gates == {"lava_exact": True, "twin_exact": True}
    report = (out / "report.md").read_text()
    assert stages.BIT_ACCURACY_STATEMENT in report
    assert "what runs where" in report and "Lava check" in report
    # The ONNX MAC count of the tiny ANN twin (433,344 by hand in test_onnx_export, + 16 for
    # the time-weighted readout at T = 1) is reported.
    assert "433,360 MACs" in done.stdout
    # Every file of the folder (lava/ included) is an ordinary readable file.
    modes = {str(f.relative_to(out)): oct(f.stat().st_mode & 0o777)
             for f in out.rglob("*") if f.is_file()}
    assert set(modes.values()) == {"0o644"}, modes
    # No staging folder is left beside the output.
    assert [p.name for p in tmp_path.iterdir()] == ["export"]


def test_target_nir_writes_only_the_graph(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "nir"
    assert cli.main([str(tiny_checkpoint), "--target", "nir", "--out", str(out), "--quiet"]) == 0
    assert {p.name for p in out.iterdir()} == {
        "model.nir", "text_encoder.nir", "image_stem.nir", "manifest.json", "report.md"
    }
    import nir
    from snntorch.import_nir import import_from_nir

    graph = nir.read(str(out / "model.nir"))
    assert len(graph.nodes) > 10
    # The standard-only parts load in a foreign importer with no surgery (issue 24).
    for part in ("text_encoder.nir", "image_stem.nir"):
        net = import_from_nir(nir.read(str(out / part)))
        assert sum(p.numel() for p in net.parameters()) > 0, part


def test_missing_checkpoint_exit_code(tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert cli.main([str(tmp_path / "nope.pt"), "--target", "nir", "--out", str(out)]) == (
        EXIT_BAD_MODEL
    )
    assert not out.exists()


class _Payload:
    def __reduce__(self):  # executed only if someone unpickles the file
        return (Path.touch, (Path(MARKER),))


MARKER = "/tmp/spikeclip-export-test-marker-must-not-exist"


def test_malicious_pickle_refused_and_not_run(tmp_path: Path) -> None:
    Path(MARKER).unlink(missing_ok=True)
    bad = tmp_path / "evil.pt"
    with open(bad, "wb") as handle:
        pickle.dump({"state_dict": _Payload()}, handle)
    done = run_cli(str(bad), "--target", "nir", "--out", str(tmp_path / "o"))
    assert done.returncode == EXIT_BAD_MODEL, done.stderr
    assert "spikeclip-export: load:" in done.stderr and len(done.stderr.splitlines()) == 1
    assert not Path(MARKER).exists()
    assert not (tmp_path / "o").exists()


def test_corrupt_checkpoint_exit_code(tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"PK\x03\x04 truncated")
    assert cli.main([str(bad), "--target", "nir", "--out", str(tmp_path / "o")]) == (
        EXIT_BAD_MODEL
    )


def test_unknown_target_is_a_usage_error(tiny_checkpoint: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main([str(tiny_checkpoint), "--target", "tpu"])
    assert exc.value.code == EXIT_USAGE


def test_no_dataset_says_what_to_pass(tmp_path: Path) -> None:
    ckpt = tmp_path / "nodata.pt"
    save(ckpt, SpikeCLIP(SpikeCLIPConfig.tiny()))
    done = run_cli(str(ckpt), "--target", "sim", "--out", str(tmp_path / "o"))
    assert done.returncode == EXIT_USAGE
    assert "--calib digits" in done.stderr


def test_unsupported_layer_exit_code(tmp_path: Path) -> None:
    # The ANN twin's ReLU has no NIR form: the export names the module and exits 4.
    ckpt = tmp_path / "ann.pt"
    save(ckpt, build_ann_twin(SpikeCLIPConfig.tiny()))
    out = tmp_path / "o"
    assert cli.main([str(ckpt), "--target", "nir", "--out", str(out)]) == EXIT_UNSUPPORTED
    assert not out.exists()


def test_loihi1_target_runs_what_needs_graded_spikes_off_the_neurocores(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    # Loihi 1 has no graded spikes: the max-pool paths and the attention LIFs run on its x86
    # cores and the host computes the readout's input from spikes (hardware/mapping/offload.py);
    # the export succeeds and the mapping report lists what moved.
    out = tmp_path / "o"
    code = cli.main(
        [
            str(tiny_checkpoint),
            "--target",
            "loihi1",
            "--samples",
            "8",
            "--run-lava",
            "0",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    text = (out / "mapping.md").read_text()
    assert "Moved off the neurocores" in text and "| embedded |" in text


def test_loihi1_target_exits_0_on_the_default_model(tmp_path: Path) -> None:
    # Issue 23: `--target loihi1` used to exit 5 for every SpikeCLIP ("relay:pool2:
    # graded_spike_bits 1 > 0"); the committed default model now maps with offload.
    out = tmp_path / "o"
    args = [str(DEFAULT_MODEL), "--target", "loihi1", "--samples", "8", "--run-lava", "0"]
    assert cli.main([*args, "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "mapping.json").read_text())
    assert summary["generation"] == "loihi1"
    assert summary["chips_range"] == [1, 1]
    assert "| embedded |" in (out / "mapping.md").read_text()


def test_lava_failure_mid_run_leaves_no_folder(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from export.lava import runner

    def broken(*_args, **_kwargs):
        raise runner.LavaRunError("injected failure in a Lava process model")

    monkeypatch.setattr(runner, "run_lava", broken)
    out = tmp_path / "o"
    code = cli.main(
        [
            str(tiny_checkpoint),
            "--target",
            "loihi",
            "--samples",
            "8",
            "--run-lava",
            "1",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == EXIT_LAVA_FAILED
    assert "injected failure in a Lava process model" in capsys.readouterr().err  # this one
    assert list(tmp_path.iterdir()) == []


def test_help_explains_targets() -> None:
    done = run_cli("--help")
    assert done.returncode == 0
    for word in ("loihi", "loihi1", "sim", "nir", "onnx", "exit codes", "--run-lava"):
        assert word in done.stdout


def test_grid_note_says_whether_export_uses_the_snapped_grid() -> None:
    from export.cli.stages import _grid_note

    scales = {"image_encoder.tokenizer.lif0": 1024.0, "image_encoder.output": 512.0}
    snapped = {"stages": [{"command": "finetune"},
                          {"command": "finetune --hardware-aware", "grid_snap": True,
                           "scales": dict(scales)}]}
    assert _grid_note({"stages": [{"command": "finetune"}]}, scales) == ""
    assert _grid_note({}, scales) == ""
    assert "on the grid the model was snapped to" in _grid_note(snapped, scales)
    other = dict(scales, **{"image_encoder.output": 256.0})
    note = _grid_note(snapped, other)
    assert "WARNING" in note and "1 scale(s) differ, first image_encoder.output" in note
    unsnapped = {"stages": [dict(snapped["stages"][1], grid_snap=False)]}
    assert _grid_note(unsnapped, other) == ""


def test_a_stage_error_that_names_its_stage_is_not_prefixed_twice() -> None:
    named = classify("quantize", FloatGraphError("quantize: neuron 'lif': IF with a bias"))
    assert str(named) == "quantize: neuron 'lif': IF with a bias"  # was "quantize: quantize: …"
    plain = classify("quantize", FloatGraphError("neuron 'lif': IF with a bias"))
    assert str(plain) == "quantize: neuron 'lif': IF with a bias"
    assert named.exit_code == plain.exit_code == EXIT_UNSUPPORTED
