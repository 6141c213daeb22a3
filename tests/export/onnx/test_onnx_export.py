"""Export of the ANN twin to ONNX, checked against torch with onnxruntime; MACs from the file."""

from __future__ import annotations

import pytest
import torch

from export.onnx.ann_twin import (
    OnnxExportError,
    check_against_torch,
    export_ann_twin_image_encoder,
    export_onnx,
)
from export.onnx.macs import count_onnx_macs
from hardware.energy.structure import dense_ops_per_step, layer_specs
from spikeclip.ann_twin import build_ann_twin
from spikeclip.config import SpikeCLIPConfig
from spikeclip.model import SpikeCLIP


@pytest.fixture(scope="module")
def tiny_twin_onnx(tmp_path_factory):
    torch.manual_seed(0)
    twin = build_ann_twin(SpikeCLIPConfig.tiny())
    path = export_ann_twin_image_encoder(twin, tmp_path_factory.mktemp("onnx") / "twin.onnx")
    return twin, path


def test_tiny_twin_matches_torch_in_onnxruntime(tiny_twin_onnx) -> None:
    twin, path = tiny_twin_onnx
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    assert check_against_torch(twin.image_encoder, path, x) < 1e-5
    with pytest.raises(OnnxExportError, match="differs"):
        check_against_torch(twin.image_encoder, path, x, rtol=0.0, atol=-1.0)


def test_tiny_twin_onnx_macs_equal_hand_count(tiny_twin_onnx) -> None:
    twin, path = tiny_twin_onnx
    macs = count_onnx_macs(path)
    # Hand count (tiny: 16×16 image, tokenizer 3→4→8→8→16→16, D=16, 2 blocks, 2 heads of d=8,
    # MLP 32, N=16 tokens, out 12; MACs = out elements · C_in · k²):
    # conv0 4·256·3·9 = 27,648; conv1 8·256·4·9 = 73,728; conv2 8·256·8·9 = 147,456;
    # conv3 16·64·8·9 = 73,728; conv4 16·16·16·9 = 36,864 → 359,424.
    # per block: Q, K, V, proj 4·(16·16·16) = 16,384; attention Q(KᵀV) 2·H·N·d² = 4,096;
    # MLP 2·(16·32·16) = 16,384 → 36,864, ×2 = 73,728. head 16·12 = 192. Total 433,344.
    # The time-weighted readout (T = 1) is an Einsum of 1·16 = 16 MACs.
    assert macs.total == 433_344 + 16
    assert macs.act_x_act == 2 * 2 * 2_048  # KᵀV and Q·M per block: H·N·d² = 2·16·64
    by_name = {n.name: n.macs for n in macs.nodes}
    assert by_name["/tokenizer/conv2/Conv"] == 147_456
    # The structure count (from describe()) agrees with the file, node class by node class.
    specs = layer_specs(twin.image_encoder.describe("image_encoder", "image"))
    assert dense_ops_per_step(specs, "q_ktv") == macs.total - 16


def test_export_refuses_a_spiking_model(tmp_path) -> None:
    with pytest.raises(OnnxExportError, match="not an ANN twin"):
        export_ann_twin_image_encoder(SpikeCLIP(SpikeCLIPConfig.tiny()), tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


class _Scaled(torch.nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


def test_nan_in_the_onnx_output_is_a_difference(tmp_path) -> None:
    # x · NaN in the file vs x · 1 in torch: |NaN − x| > tol is False, so a plain `>` test
    # would pass this file; it must be refused.
    x = torch.ones(1, 3)
    path = export_onnx(_Scaled(float("nan")), x, tmp_path / "nan.onnx")
    same = export_onnx(_Scaled(2.0), x, tmp_path / "two.onnx")
    assert check_against_torch(_Scaled(2.0), same, x) == 0.0  # the same module passes
    with pytest.raises(OnnxExportError, match="differs"):
        check_against_torch(_Scaled(1.0), path, x)
