"""The fidelity report streamed in small batches equals the report of one batch of everything,
and the per-class feature means streamed in batches equal the means of one float run."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from _quant_helpers import active_tiny_encoder, tiny_images

from hardware.fidelity.report import fidelity
from hardware.fidelity.stream import class_means
from hardware.lower.from_torch import graph_from_image_encoder
from hardware.quantize.image import quantize_graph
from spikeclip.config import SpikeCLIPConfig
from spikeclip.model import SpikeCLIP


def test_report_does_not_depend_on_the_batch_size():
    enc = active_tiny_encoder()
    net, _ = quantize_graph(graph_from_image_encoder(enc), tiny_images(8, seed=1))
    images = tiny_images(11, seed=3).float()
    labels = torch.arange(11) % 3
    cm = F.normalize(torch.randn(3, 12, generator=torch.Generator().manual_seed(4)), dim=-1)
    one = fidelity(enc, net, images, labels, cm, batch_size=11, noise_seeds=1)
    streamed = fidelity(enc, net, images, labels, cm, batch_size=4, noise_seeds=1)  # 4 + 4 + 3
    assert streamed.to_dict() == one.to_dict()


def test_class_means_streamed_equal_one_run():
    torch.manual_seed(0)
    model = SpikeCLIP(SpikeCLIPConfig.tiny()).eval()
    images = tiny_images(9, seed=6).float()
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 0])
    with torch.no_grad():
        feats = F.normalize(model.encode_image(images).double(), dim=-1)
    want = torch.stack([feats[labels == c].mean(0) for c in range(3)])
    got = class_means(model, images, labels, batch_size=2)
    assert got.shape == (3, 12)
    torch.testing.assert_close(got.double(), want, rtol=0, atol=1e-6)
