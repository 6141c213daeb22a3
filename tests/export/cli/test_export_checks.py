"""Machine-readable verdicts of `spikeclip-export` (manifest.json "checks", fidelity.json "lava"),
the --require-* gates (exit 10 after the folder is written), the exactness WARNING and the
file modes of an export folder."""

from __future__ import annotations

import copy
import dataclasses
import json
import stat
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from export.cli import export as cli
from export.cli.checks import Requirements, evaluate
from spikeclip import SpikeCLIP, SpikeCLIPConfig, load, save
from spikeclip.errors import EXIT_CHECK_FAILED, EXIT_USAGE

SAMPLES = 16


def _tiny(path: Path, **changes) -> Path:
    torch.manual_seed(0)
    config = dataclasses.replace(SpikeCLIPConfig.tiny(), **changes)
    return save(path, SpikeCLIP(config), metadata={"dataset": "digits"})


@pytest.fixture(scope="module")
def sim_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A `--target sim` export of the tiny model on 16 digits test images: (checkpoint, out)."""
    base = tmp_path_factory.mktemp("sim")
    ckpt = _tiny(base / "tiny.pt")
    out = base / "export"
    code = cli.main([str(ckpt), "--target", "sim", "--samples", str(SAMPLES), "--out", str(out),
                     "--quiet", "--preset", "int8-45nm"])
    assert code == 0
    return ckpt, out


@pytest.mark.slow
def test_manifest_checks_match_an_independent_run(sim_export: tuple[Path, Path]) -> None:
    from hardware.ir.network import LoihiNetwork
    from hardware.quantize.twin import run_twin
    from hardware.simulate.engine import simulate
    from spikeclip.training.data import digits_splits

    ckpt_path, out = sim_export
    checks = json.loads((out / "manifest.json").read_text())["checks"]
    ckpt = load(ckpt_path)
    split = digits_splits(ckpt.config.img_size).test
    images, labels = split.images[:SAMPLES], split.labels[:SAMPLES]
    network = LoihiNetwork.load(out / "network.npz")
    sim = simulate(network, images)
    twin = run_twin(network, images.double())
    # Class matrix as documented for a checkpoint without a tokenizer (fidelity CLASS_MEANS_NOTE):
    # per-label means of the float64 model's normalized image features, a label without images
    # a zero row; predictions = argmax of normalized features · M.
    with torch.no_grad():
        enc64 = copy.deepcopy(ckpt.model.image_encoder).double().eval()
        f_float = enc64(images.double())
        feats = F.normalize(f_float, dim=-1)
        matrix = torch.stack([feats[labels == c].mean(0) if bool((labels == c).any())
                              else torch.zeros(feats.shape[-1], dtype=feats.dtype)
                              for c in range(int(labels.max()) + 1)])
    f_sim = torch.from_numpy(sim.feature)

    def predict(f: torch.Tensor) -> torch.Tensor:
        return (F.normalize(f, dim=-1) @ matrix.double().T).argmax(-1)

    p_float, p_sim = predict(f_float), predict(f_sim)
    fs = checks["float_vs_simulator"]
    assert fs["samples"] == SAMPLES
    assert fs["agreement"] == (p_float == p_sim).double().mean().item()
    assert fs["top1_float"] == (p_float == labels).double().mean().item()
    assert fs["top1_simulator"] == (p_sim == labels).double().mean().item()
    assert fs["top1_drop_pp"] == pytest.approx(100 * (fs["top1_float"] - fs["top1_simulator"]))
    assert checks["twin_equals_simulator"] is bool(torch.equal(twin.features, f_sim))
    totals = sim.totals()
    assert checks["counters"] == {k: v for k, v in totals.items() if k != "spikes"}
    assert {"ties", "overflow_u", "saturations_v"} <= set(checks["counters"])
    assert checks["exactness"]["T"] == 4 and checks["exactness"]["met"] is True  # T = 4 ≤ 7
    assert checks["lava"] is None  # --target sim has no Lava stage
    assert checks["requirements"] == [] and checks["passed"] is True
    assert json.loads((out / "fidelity.json").read_text())["lava"] is None


@pytest.mark.slow
def test_every_file_of_an_export_folder_is_0644(sim_export: tuple[Path, Path]) -> None:
    _, out = sim_export
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {"model.nir", "model.onnx", "network.npz", "manifest.json"} <= {p.name for p in files}
    modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert set(modes.values()) == {"0o644"}, modes


def test_nir_and_onnx_writers_make_0644_files(tmp_path: Path) -> None:
    from export.nir import to_nir, write_nir
    from export.onnx.ann_twin import export_ann_twin_image_encoder
    from spikeclip.ann_twin import build_ann_twin

    config = SpikeCLIPConfig.tiny()
    nir_path = write_nir(to_nir(SpikeCLIP(config).eval().image_encoder), tmp_path / "m.nir")
    onnx_path = export_ann_twin_image_encoder(build_ann_twin(config), tmp_path / "m.onnx")
    for path in (nir_path, onnx_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_training_json_and_state_writers_make_0644_files(tmp_path: Path) -> None:
    from spikeclip.training.io import atomic_save, atomic_write_json

    atomic_write_json({"epoch": 1}, tmp_path / "log.json")
    atomic_save({"step": torch.tensor(3)}, tmp_path / "state.pt")
    for name in ("log.json", "state.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


@pytest.mark.slow
def test_past_the_exactness_bound_warns_and_the_twin_gate_fails_after_writing(
    tmp_path: Path, capsys
) -> None:
    ckpt = _tiny(tmp_path / "t8.pt", T=8)
    out = tmp_path / "export"
    code = cli.main([str(ckpt), "--target", "sim", "--samples", "8", "--out", str(out),
                     "--preset", "int8-45nm", "--require-twin-exact",
                     "--require-agreement", "0"])
    captured = capsys.readouterr()
    assert code == EXIT_CHECK_FAILED, captured.err
    warnings = [line for line in captured.out.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "T = 8" in warnings[0] and "exactness bound" in warnings[0]
    # the folder is in place so the user can read why
    checks = json.loads((out / "manifest.json").read_text())["checks"]
    assert checks["exactness"] == {"T": 8, "met": False, "bound": checks["exactness"]["bound"]}
    results = {r["name"]: r for r in checks["requirements"]}
    assert results["twin_exact"]["passed"] is False and results["agreement"]["passed"] is True
    assert checks["passed"] is False
    assert "exact twin: False" in (out / "quantization.md").read_text()
    err = captured.err.strip().splitlines()
    assert err == [line for line in err if line.startswith("spikeclip-export: check failed:")]
    assert len(err) == 1 and "--require-twin-exact" in err[0] and "T = 8" in err[0]
    assert "--require-twin-exact FAILED" in (out / "report.md").read_text()


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--require-agreement", "1.01"], "must be a fraction between 0 and 1"),  # never passes
        (["--require-agreement", "-0.1"], "must be a fraction between 0 and 1"),
        (["--require-agreement", "nan"], "expected a finite number"),
        (["--require-top1-delta", "-1"], "must be a non-negative number"),
        (["--target", "nir", "--require-agreement", "0.9"], "need a target that simulates"),
        (["--target", "sim", "--require-lava-exact"], "needs a target with a Lava stage"),
        (["--target", "loihi", "--run-lava", "0", "--require-lava-exact"], "--run-lava N ≥ 1"),
    ],
)
def test_impossible_or_unmeasurable_gates_are_usage_errors(
    tmp_path: Path, argv: list[str], says: str, capsys
) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main([str(tmp_path / "never-read.pt"), "--out", str(tmp_path / "o"), *argv])
    assert exc.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "--require-" in err and says in err, err
    assert not (tmp_path / "o").exists()


CHECKS = {  # hand-made figures: 15 of 16 predictions agree, top-1 0.75 → 0.6875
    "float_vs_simulator": {"samples": 16, "agreement": 15 / 16, "top1_float": 0.75,
                           "top1_simulator": 0.6875, "top1_drop_pp": 100 * (0.75 - 0.6875)},
    "twin_equals_simulator": True,
    "exactness": {"T": 4, "met": True, "bound": "..."},
    "lava": {"ran": True, "samples": 2, "identical": False, "max_abs_feature_diff": 0.5,
             "spike_mismatches": 3, "stream_mismatches": 0},
}


@pytest.mark.parametrize(
    ("requirements", "passed"),
    [
        (Requirements(agreement=0.9375), True),  # exactly 15/16
        (Requirements(agreement=0.94), False),
        (Requirements(top1_drop_pp=6.25), True),  # 75 % → 68.75 %: 6.25 points
        (Requirements(top1_drop_pp=6.2), False),
        (Requirements(twin_exact=True), True),
        (Requirements(lava_exact=True), False),  # 3 neuron-steps differ
    ],
)
def test_gates_against_hand_made_figures(requirements: Requirements, passed: bool) -> None:
    (result,) = evaluate(requirements, CHECKS)
    assert result.passed is passed, result.detail


def test_gates_fail_when_a_figure_is_missing() -> None:
    lava_off = {"lava": {"ran": False, "samples": 0, "identical": None, "reason": "x"}}
    (lava,) = evaluate(Requirements(lava_exact=True), lava_off)
    assert not lava.passed and lava.detail == "Lava did not run"
    (twin,) = evaluate(Requirements(twin_exact=True),
                       dict(CHECKS, exactness={"T": 8, "met": False, "bound": "..."}))
    assert not twin.passed and "T = 8" in twin.detail
    (agree,) = evaluate(Requirements(agreement=0.5), {"float_vs_simulator": None})
    assert not agree.passed and "not measured" in agree.detail
