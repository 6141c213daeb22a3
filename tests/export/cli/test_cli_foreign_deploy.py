"""`spikeclip-export` deploys sinabs, Rockpool, Norse and snnTorch networks whose neurons reset by
subtraction, integrate without leak (IF), keep a synaptic current, decay by a τ with no exact
12-bit decay (rounded, and said so) or feed their spikes back into themselves (snnTorch
``RLeaky``), each exported by its framework's own NIR exporter. (Rockpool has no convolution
module to export, so no Rockpool CNN: export/nir/FOREIGN.md §2.)

Per network, on one Bernoulli(0.3) raster (the ``--calib`` file, 32 samples × 8 steps): the
float executor of the written file equals the framework's own run spike for spike except at
counted threshold ties (|H − θ| < 1e-5); the export's checks say fake-quant twin == simulator
and Lava == simulator on 2 samples; the fidelity report's float-vs-simulator agreement is the
measured figure (``AGREEMENT``; the float side uses the framework's rule, ≥ for sinabs and
Rockpool, Loihi fires on >).
"""

from __future__ import annotations

import json
from pathlib import Path

import nir
import numpy as np
import pytest
from _foreign import (
    norse_cnn,
    raster,
    rockpool_mlp,
    run_norse,
    run_rockpool,
    run_sinabs,
    run_snntorch,
    sinabs_cnn,
    sinabs_mlp,
    snntorch_mlp,
    snntorch_recurrent,
)

from export.cli import export as cli
from hardware.lower.float_graph import FLIF
from hardware.lower.from_foreign_nir import float_graph_from_foreign
from hardware.lower.graph_run import run_graph
from spikeclip.errors import EXIT_OK

pytestmark = [pytest.mark.lava, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

T, N = 8, 32
#: case → (network, the framework's run, NIR convention, reset rule).
CASES = {
    "sinabs-mlp": (lambda: sinabs_mlp(batch=N), run_sinabs, "sinabs", "subtract"),
    "sinabs-cnn": (lambda: sinabs_cnn(batch=N), run_sinabs, "sinabs", "subtract"),
    "rockpool-mlp": (rockpool_mlp, run_rockpool, "rockpool", "subtract"),
    "norse-cnn": (norse_cnn, run_norse, "norse", "zero"),
    "snntorch-mlp": (snntorch_mlp, run_snntorch, "snntorch", "subtract-delayed"),
    "snntorch-rleaky": (snntorch_recurrent, run_snntorch, "snntorch", "subtract-delayed"),
}
#: The fidelity report's float-vs-simulator neuron-step agreement, measured (differing of all
#: neuron-steps: sinabs MLP 12 of 5,120, CNN 186 of 66,816; Rockpool 24 of 4,096; snnTorch 10
#: of 5,120, RLeaky 26 of 4,096; Norse CNN 39 of 66,816); the test holds it as a floor.
AGREEMENT: dict[str, float] = {
    "sinabs-mlp": 0.99765625, "sinabs-cnn": 0.9972162356321839, "rockpool-mlp": 0.994140625,
    "snntorch-mlp": 0.998046875, "snntorch-rleaky": 0.99365234375,
    "norse-cnn": 0.9994163074712644,
}


def _framework_vs_float(net, run, path: Path, x, convention: str, reset: str) -> int:
    """Spikes of the framework's run of ``net`` vs the float executor of the file at ``path``:
    asserts mismatches ≤ ties per layer, returns the total spike count."""
    fg = float_graph_from_foreign(nir.read(path, type_check=False), T=T, convention=convention,
                                  reset=reset)
    ours = run_graph(fg.graph, x.transpose(0, 1), compare=fg.graph.compare, keep_states=True)
    ref = run(net, x)
    lifs = [n for n in fg.graph.nodes if isinstance(n, FLIF)]
    total = 0
    for (_, s_ref), node in zip(sorted(ref.items()), lifs, strict=True):
        h = ours.v[node.name] + ours.spikes[node.name] * (node.reset_sub or 0.0)
        ties = int(((h - node.theta).abs() < 1e-5).sum())
        mism = int((ours.spikes[node.name] != s_ref.double()).sum())
        assert mism <= ties, f"{node.name}: {mism} spikes differ, {ties} ties"
        assert int(s_ref.sum()) > 0, f"{node.name}: silent"
        total += int(s_ref.sum())
    return total


@pytest.mark.parametrize("case", sorted(CASES))
def test_deploy_with_spikeclip_export(case: str, tmp_path: Path) -> None:
    build, run, convention, reset = CASES[case]
    net, graph = build()
    path = tmp_path / f"{case}.nir"
    if case == "sinabs-cnn":
        graph.infer_types()  # sinabs writes Conv2d input_shape = None: nir.write needs it
    # Norse writes its scalar τ and θ as 0-d arrays, which h5py cannot gzip: stored plain.
    nir.write(path, graph, compression=None if convention == "norse" else "gzip")
    shape = float_graph_from_foreign(graph, T=T, convention=convention).graph.input_shape
    x = raster(shape, T, N, 0.3, seed=1)  # [T, N, *shape]
    np.savez(tmp_path / "calib.npz", spikes=x.transpose(0, 1).numpy().astype(np.float32))
    out = tmp_path / "out"
    code = cli.main([str(path), "--target", "loihi", "--out", str(out), "--quiet",
                     "--nir-convention", convention, "--reset", reset,
                     "--calib", str(tmp_path / "calib.npz"), "--run-lava", "2"])
    assert code == EXIT_OK
    assert _framework_vs_float(net, run, path, x, convention, reset) > 0
    fid = json.loads((out / "fidelity.json").read_text())
    assert fid["twin_equals_simulator"] is True
    assert json.loads((out / "manifest.json").read_text())["checks"]["lava"]["identical"] is True
    assert fid["float_vs_simulator_neuron_step_agreement"] >= AGREEMENT[case] - 1e-12
    rounded = [n for n in fid["notes"] if "decay rounded" in n]  # τ = 4.52 steps: dv = 906
    assert len(rounded) == {"sinabs-mlp": 1, "rockpool-mlp": 2}.get(case, 0), fid["notes"]
    assert all("dv = 906" in n for n in rounded)
    assert all(n in (out / "fidelity.md").read_text() for n in rounded)
    if case == "snntorch-rleaky":  # 8 → 12 (feedback 12×12) → 4: the feedback on the cores
        groups = json.loads((out / "mapping.json").read_text())["scenarios"]["optimistic"]
        rec = next(g for g in groups["groups"] if g["inputs"] == ["1.lif.syn", "1.lif:rec"])
        assert (rec["input_axons"], rec["synapses"]) == (8 + 12, 8 * 12 + 12 * 12)
        energy = {ly["name"]: ly for ly in json.loads((out / "energy.json").read_text())["layers"]}
        assert energy["1.lif.rec"]["ann_macs"] == 12 * 12  # per sample: one RNN-cell step
        assert energy["1.lif.rec"]["sop_exact"] > 0
