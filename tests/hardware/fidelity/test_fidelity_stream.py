"""The fidelity report streamed in small batches, on one or two worker processes, equals the
report of one batch of everything; without a class matrix it uses the per-label means of the
float64 model's own features; the noise floor runs on the first ``noise_samples`` images only."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from _quant_helpers import active_tiny_encoder, tiny_images

from hardware.fidelity.report import CLASS_MEANS_NOTE, fidelity
from hardware.lower.from_torch import graph_from_image_encoder
from hardware.quantize.image import quantize_graph


def _setup():
    enc = active_tiny_encoder()
    net, _ = quantize_graph(graph_from_image_encoder(enc), tiny_images(8, seed=1))
    images = tiny_images(11, seed=3).float()
    labels = torch.arange(11) % 3
    cm = F.normalize(torch.randn(3, 12, generator=torch.Generator().manual_seed(4)), dim=-1)
    return enc, net, images, labels, cm


def test_report_does_not_depend_on_the_batch_size_or_workers():
    enc, net, images, labels, cm = _setup()
    one = fidelity(enc, net, images, labels, cm, batch_size=11, noise_seeds=1, workers=1)
    streamed = fidelity(enc, net, images, labels, cm, batch_size=4, noise_seeds=1,  # 4 + 4 + 3
                        workers=1)
    forked = fidelity(enc, net, images, labels, cm, batch_size=3, noise_seeds=2, workers=2)
    assert streamed.to_dict() == one.to_dict()
    want = one.to_dict()
    got = forked.to_dict()
    assert got.pop("noise_floor_agreement")[0] == want.pop("noise_floor_agreement")[0]
    assert got == want
    assert one.totals["spikes"] > 100  # the network is active: the counts compared are not 0


def test_class_means_when_no_class_matrix():
    enc, net, images, labels, _ = _setup()
    with torch.no_grad():  # the float64 model itself, not the graph the report runs
        feats = F.normalize(enc.double()(images.double()), dim=-1)
    enc.float()
    means = torch.stack([feats[labels == c].mean(0) for c in range(3)])
    given = fidelity(enc, net, images, labels, means, batch_size=4, noise_seeds=1, workers=1)
    implied = fidelity(enc, net, images, labels, None, batch_size=4, noise_seeds=1, workers=1)
    want = float(((feats @ means.T).argmax(-1) == labels).double().mean())
    assert implied.top1_float == given.top1_float == want
    assert implied.top1_sim == given.top1_sim
    assert CLASS_MEANS_NOTE in implied.notes and CLASS_MEANS_NOTE not in given.notes


def test_noise_floor_on_the_first_samples_only():
    enc, net, images, labels, cm = _setup()
    kw = dict(batch_size=4, noise_rel=4.0, noise_seeds=3, workers=1)  # flips some
    subset = fidelity(enc, net, images, labels, cm, noise_samples=5, **kw)
    first5 = fidelity(enc, net, images[:5], labels[:5], cm, noise_samples=5, **kw)
    full = fidelity(enc, net, images, labels, cm, noise_samples=64, **kw)
    assert subset.noise_floor_samples == 5 and full.noise_floor_samples == 11
    assert subset.noise_floor_agreement == first5.noise_floor_agreement
    assert all(round(a * 5) == a * 5 for a in subset.noise_floor_agreement)  # k of 5 images
    assert min(full.noise_floor_agreement) < 1.0  # the noise does change predictions
    assert "on the first 5 of 11 images" in subset.to_markdown()
    assert subset.to_dict()["noise_floor_samples"] == 5
    assert fidelity(enc, net, images, labels, cm, noise_seeds=0, workers=1
                    ).noise_floor_samples == 0


def test_class_means_with_a_label_without_images():
    enc, net, images, _, _ = _setup()
    labels = torch.tensor([0, 2] * 5 + [0])  # label 1 has no image
    with torch.no_grad():
        feats = F.normalize(enc.double()(images.double()), dim=-1)
    enc.float()
    means = torch.stack([feats[labels == 0].mean(0), torch.zeros(12, dtype=torch.float64),
                         feats[labels == 2].mean(0)])
    want = float(((feats @ means.T).argmax(-1) == labels).double().mean())
    rep = fidelity(enc, net, images, labels, None, batch_size=4, noise_seeds=0, workers=1)
    assert rep.top1_float == want > 0.5
