"""Export the ANN twin's image tower to ONNX and check the file against torch with onnxruntime.

The file is what `export.onnx.macs.count_onnx_macs` counts (the ANN baseline of the energy
report). Export uses torch's TorchScript-based exporter (``dynamo=False``: it needs no
``onnxscript``), opset 17, a fixed batch of 1 unless ``dynamic_batch`` is set (then the batch
dimension is named ``batch``). Files are written atomically (temp file + ``os.replace``).
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from spikeclip.ann_twin import is_ann_twin
from spikeclip.atomic_io import write_bytes_atomic
from spikeclip.errors import SpikeCLIPError
from spikeclip.model import SpikeCLIP

OPSET = 17
INPUT_NAME = "image"
OUTPUT_NAME = "features"


class OnnxExportError(SpikeCLIPError, RuntimeError):
    """Export failed, or the exported file disagrees with torch beyond the tolerance."""


def export_onnx(
    module: nn.Module,
    example: torch.Tensor,
    path: str | os.PathLike,
    *,
    dynamic_batch: bool = False,
    opset: int = OPSET,
    input_name: str = INPUT_NAME,
    output_names: Sequence[str] = (OUTPUT_NAME,),
) -> Path:
    """Write ``module`` (in eval mode) traced on ``example`` to ``path``; returns the path.

    One input ``input_name`` (default ``image``) and outputs ``output_names`` (default one,
    ``features``); the model is checked with ``onnx.checker`` before it replaces ``path``.
    """
    path = Path(path)
    buffer = io.BytesIO()  # built in memory, checked, then written atomically
    was_training = module.training
    module.eval()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export")
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            # shape checks in forward() become constants: the file is for a fixed input shape
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            torch.onnx.export(
                module,
                (example,),
                buffer,
                dynamo=False,
                opset_version=opset,
                input_names=[input_name],
                output_names=list(output_names),
                dynamic_axes=(
                    {name: {0: "batch"} for name in (input_name, *output_names)}
                    if dynamic_batch else None
                ),
            )
        onnx.checker.check_model(onnx.load_from_string(buffer.getvalue()))
    except (RuntimeError, onnx.checker.ValidationError) as err:
        raise OnnxExportError(f"{path}: ONNX export failed: {err}") from err
    finally:
        module.train(was_training)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def export_ann_twin_image_encoder(
    model: SpikeCLIP, path: str | os.PathLike, *, batch: int = 1
) -> Path:
    """Export ``model.image_encoder`` of an ANN twin (`spikeclip.ann_twin`) on a zero image."""
    if not is_ann_twin(model):
        raise OnnxExportError(f"{path}: model is not an ANN twin (config.neuron != 'ann')")
    cfg = model.config
    example = torch.zeros(batch, cfg.in_channels, cfg.img_size, cfg.img_size)
    return export_onnx(model.image_encoder, example, path)


def check_against_torch(
    module: nn.Module,
    path: str | os.PathLike,
    inputs: torch.Tensor,
    *,
    rtol: float = 1e-4,
    atol: float = 1e-5,
) -> float:
    """Run ``path`` in onnxruntime (CPU) and ``module`` in torch on ``inputs``; max |difference|.

    Raises `OnnxExportError` naming the file when any element differs by more than
    ``atol + rtol·|torch value|``, or is NaN on either side (NaN equals nothing).
    """
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            want = module(inputs).double().numpy()
    finally:
        module.train(was_training)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: inputs.numpy()})[0]
    if got.shape != want.shape:
        raise OnnxExportError(f"{path}: onnxruntime output {got.shape} != torch {want.shape}")
    diff = np.abs(got.astype(np.float64) - want)
    if not np.all(diff <= atol + rtol * np.abs(want)):  # written so that NaN fails
        raise OnnxExportError(
            f"{path}: onnxruntime differs from torch by up to {diff.max():.3g} "
            f"(rtol {rtol}, atol {atol})"
        )
    return float(diff.max())
