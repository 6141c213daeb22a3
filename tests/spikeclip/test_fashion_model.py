"""The committed Fashion-MNIST model (examples/spikeclip-fashion.pt) on a fixed test subset, the
first 1,000 images of the official test set: the integer simulator's top-1 equals, image count
for image count, the figure examples/spikeclip-fashion.json records (`subset_1000`, written by
examples/model_report.py), and the float64 evaluation `spikeclip-eval` runs is within 0.2 pp of
the recorded float top-1.

The network is quantized here as `spikeclip-export` quantizes it (scales from the first 256
training images); the class matrix is the float text tower's (computed once on the host).
Skips, naming what is missing, when the checkpoint is not committed yet or Debian's
`dataset-fashion-mnist` package is not installed.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from _paths import REPO
from torch.utils.data import Subset

from export.nir import to_nir
from hardware.quantize.image import quantize
from hardware.simulate.engine import simulate
from spikeclip import checkpoint, evaluate, robustness
from spikeclip.training import data
from spikeclip.training.teachers import load_tokenizer

MODEL = REPO / "examples" / "spikeclip-fashion.pt"
RECORD = REPO / "examples" / "spikeclip-fashion.json"
SUBSET = 1000
CALIBRATION = 256
BATCH = 250  # simulated images per call: memory stays at one batch's activity

pytestmark = pytest.mark.slow  # ~40 s of CPU: a 1,000-image float64 evaluation and simulation


@pytest.fixture(scope="module")
def setup() -> tuple[checkpoint.Checkpoint, data.Splits, dict]:
    if not MODEL.exists():
        pytest.skip(f"{MODEL.relative_to(REPO)} is not committed yet")
    try:
        data.find_fashion_mnist()
    except data.DatasetNotFoundError as err:
        pytest.skip(str(err))  # names the apt-get install command
    ck = checkpoint.load(MODEL)
    record = json.loads(RECORD.read_text())[f"subset_{SUBSET}"]
    return ck, data.fashion_mnist_splits(ck.config.img_size, seed=0), record


def test_simulator_top1_on_the_first_1000_test_images_is_the_recorded_one(setup) -> None:
    ck, splits, record = setup
    net, _ = quantize(to_nir(ck.model.image_encoder), splits.train.images[:CALIBRATION])
    w = evaluate.checkpoint_class_matrix(ck)
    correct = 0
    for start in range(0, SUBSET, BATCH):
        x = splits.test.images[start : start + BATCH]
        feature = torch.from_numpy(simulate(net, x).feature)
        pred = (F.normalize(feature, dim=-1) @ w.to(feature.dtype).T).argmax(-1)
        correct += int((pred == splits.test.labels[start : start + BATCH]).sum())
    assert correct == record["correct"]["sim"]
    assert record["top1_sim"] == correct / SUBSET and record["samples"] == SUBSET


def test_float_top1_on_the_first_1000_test_images_is_within_0_2_pp_of_the_record(setup) -> None:
    ck, splits, record = setup
    result = evaluate.evaluate_label_set(
        ck.model, Subset(splits.test, range(SUBSET)), load_tokenizer(ck.metadata["tokenizer"]),
        robustness.base_set(ck.class_names), ck.templates, batch_size=64).result  # 1.5 GB peak
    assert result.n == SUBSET
    assert abs(result.top1 - record["top1_float_eval"]) <= 0.002
