"""The ANN twin of a foreign NIR graph (each neuron a ReLU) exported to ONNX: its MAC count
against hand-derived counts, onnxruntime against a float64 torch reference written here from
the snnTorch modules, and the energy report's ANN MACs taken from the file.

Hand counts (one MAC per weight use, batch 1; bias adds, pooling, ReLU are not MACs):
- snnTorch MLP Linear(8→16) → Leaky → Linear(16→4) → Leaky: 8·16 + 16·4 = 128 + 64 = 192;
- snnTorch CNN Conv(1→4, 3×3, pad 1) on 1×8×8 → Leaky → AvgPool(2) → Flatten → Linear(64→5)
  → Leaky: 4·8·8 outputs × 1·3·3 = 2,304, then 64·5 = 320; 2,624. The deployed network fuses
  AvgPool → Flatten → Linear into one dense 256 → 5 synapse, whose layer-shape count (1,280)
  is not the twin's.
"""

from __future__ import annotations

import json
from pathlib import Path

import nir
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from _foreign import snntorch_cnn, snntorch_mlp, snntorch_recurrent

from export.cli import export as cli
from export.onnx.foreign_twin import ReluTwin, export_foreign_twin, onnx_macs_per_neuron
from export.onnx.macs import count_onnx_macs
from spikeclip.errors import EXIT_OK

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _twin(graph: nir.NIRGraph, shape, path: Path):
    twin = ReluTwin(graph, shape)
    export_foreign_twin(twin, path)
    return twin, count_onnx_macs(path)


def _ort(path: Path, x: np.ndarray) -> np.ndarray:
    onnx.checker.check_model(onnx.load(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[0]


def _d(p: torch.Tensor) -> torch.Tensor:
    return p.detach().double()


def test_mlp_macs_and_onnxruntime(tmp_path: Path) -> None:
    net, graph = snntorch_mlp()
    twin, macs = _twin(graph, (8,), tmp_path / "mlp.onnx")
    assert macs.total == 192
    assert dict(onnx_macs_per_neuron(twin, macs)) == {"1": 128, "3": 64}
    x = torch.rand(1, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    h = torch.relu(x @ _d(net[0].weight).T + _d(net[0].bias))
    want = torch.relu(h @ _d(net[2].weight).T + _d(net[2].bias)).numpy()
    got = _ort(tmp_path / "mlp.onnx", x.numpy())
    assert want.any() and np.abs(got - want).max() <= 1e-5 * max(1.0, np.abs(want).max())


def test_cnn_macs_and_onnxruntime(tmp_path: Path) -> None:
    net, graph = snntorch_cnn()
    twin, macs = _twin(graph, (1, 8, 8), tmp_path / "cnn.onnx")
    assert macs.total == 2304 + 320
    assert dict(onnx_macs_per_neuron(twin, macs)) == {"1": 2304, "5": 320}
    x = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    h = torch.relu(F.conv2d(x, _d(net[0].weight), _d(net[0].bias), padding=1))
    h = F.avg_pool2d(h, 2).flatten(1)
    want = torch.relu(h @ _d(net[4].weight).T + _d(net[4].bias)).numpy()
    got = _ort(tmp_path / "cnn.onnx", x.numpy())
    assert want.any() and np.abs(got - want).max() <= 1e-5 * max(1.0, np.abs(want).max())


def test_recurrent_loop_carries_nothing_at_t_1(tmp_path: Path) -> None:
    """RLeaky(8→12 feed-forward, 12×12 recurrent) → Linear(12→4) → Leaky: the twin runs once,
    so the recurrent Affine adds no MAC: 8·12 + 12·4 = 144."""
    _, graph = snntorch_recurrent()
    _, macs = _twin(graph, (8,), tmp_path / "rec.onnx")
    assert macs.total == 8 * 12 + 12 * 4


def test_energy_report_takes_ann_macs_from_the_onnx_twin(tmp_path: Path) -> None:
    _, graph = snntorch_cnn(reset_mechanism="zero")
    nir.write(tmp_path / "cnn.nir", graph)
    out = tmp_path / "out"
    code = cli.main([str(tmp_path / "cnn.nir"), "--target", "sim", "--out", str(out), "--quiet",
                     "--nir-convention", "snntorch", "--samples", "4", "--steps", "4"])
    assert code == EXIT_OK
    assert count_onnx_macs(out / "model.onnx").total == 2624
    energy = json.loads((out / "energy.json").read_text())
    per_layer = {layer["name"]: layer["ann_macs"] for layer in energy["layers"]}
    assert per_layer == {"1.syn": 2304, "1": 0, "5.syn": 320, "5": 0}
    assert energy["totals"]["ann_onnx_macs"] == 2624
    manifest = json.loads((out / "manifest.json").read_text())
    assert "model.onnx" in manifest["artifacts"]


def test_a_delay_passes_its_input_on(tmp_path: Path) -> None:
    """Input(3) → Delay(2 steps) → Linear(3→2) → LIF: an ANN has no time; 3·2 = 6 MACs, and
    the output is ReLU(W x)."""
    w = np.array([[1.0, -2.0, 0.5], [0.25, 1.0, -1.0]])
    lif = nir.LIF(tau=np.full(2, 2e-3), r=np.ones(2), v_leak=np.zeros(2),
                  v_threshold=np.ones(2))
    graph = nir.NIRGraph.from_list(nir.Input(np.array([3])), nir.Delay(np.full(3, 2e-3)),
                                   nir.Linear(w), lif, nir.Output(np.array([2])))
    twin, macs = _twin(graph, (3,), tmp_path / "delay.onnx")
    assert macs.total == 6 and dict(onnx_macs_per_neuron(twin, macs)) == {"lif": 6}
    x = np.array([[1.0, 0.5, 2.0]])
    assert np.allclose(_ort(tmp_path / "delay.onnx", x), np.maximum(x @ w.T, 0), atol=1e-6)
