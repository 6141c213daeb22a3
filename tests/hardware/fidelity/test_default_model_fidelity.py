"""Acceptance of the quantized default model (examples/spikeclip-digits.pt) on the 450 digits
test images: float vs integer simulation prediction agreement ≥ 99 %, top-1 within 1 pp, the
twin bit-exact, and the figures examples/README.md states."""

from __future__ import annotations

import re

import pytest
from _paths import REPO

from export.nir import to_nir
from hardware.fidelity.report import fidelity
from hardware.quantize.image import quantize
from spikeclip import checkpoint
from spikeclip.evaluate import checkpoint_class_matrix
from spikeclip.training.data import digits_splits

ROOT = REPO
MODEL = ROOT / "examples" / "spikeclip-digits.pt"
README_LINE = re.compile(
    r"top-1 float ([0-9.]+) %, fake-quant twin ([0-9.]+) %, simulator ([0-9.]+) %;\s*"
    r"prediction agreement float↔simulator ([0-9.]+) %"
)


@pytest.mark.skipif(not MODEL.is_file(), reason="examples/spikeclip-digits.pt not built")
def test_default_model_meets_the_fidelity_targets():
    ck = checkpoint.load(MODEL)
    splits = digits_splits(ck.config.img_size, seed=0)
    net, _ = quantize(to_nir(ck.model.image_encoder), splits.train.images[:256])
    rep = fidelity(ck.model.image_encoder, net, splits.test.images, splits.test.labels,
                   checkpoint_class_matrix(ck), noise_seeds=0)
    assert rep.samples == 450
    assert rep.agreement_float_sim >= 0.99
    assert abs(rep.top1_float - rep.top1_sim) <= 0.01
    assert rep.twin_sim_bit_exact
    assert rep.totals["overflow_u"] == 0 and rep.totals["saturations_v"] == 0
    m = README_LINE.search((ROOT / "examples" / "README.md").read_text())
    assert m, "examples/README.md: the hardware-path line is missing"
    stated = [float(x) / 100 for x in m.groups()]
    got = [rep.top1_float, rep.top1_twin, rep.top1_sim, rep.agreement_float_sim]
    assert got == pytest.approx(stated, abs=5e-5)
