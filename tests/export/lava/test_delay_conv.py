"""`DelayConv`'s per-step convolution (`conv_spikes`) against torch's float64 conv2d, on 0/1
spikes and integer weights, with stride, padding, dilation and groups; and its 24-bit wrap."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from export.lava.procs.delay_conv.models import conv_spikes
from hardware.ir import fixed


@pytest.mark.parametrize(("stride", "padding", "dilation", "groups"), [
    ((1, 1), (1, 1), (1, 1), 1), ((2, 1), (0, 2), (1, 2), 2), ((2, 2), (1, 0), (2, 1), 4)])
def test_conv_spikes_equals_torch_conv2d(stride, padding, dilation, groups):
    rng = np.random.default_rng(3)
    s = (rng.random((8, 9, 7)) < 0.3).astype(np.float64)
    w = rng.integers(-256, 256, size=(12, 8 // groups, 3, 3))
    want = torch.nn.functional.conv2d(
        torch.from_numpy(s)[None], torch.from_numpy(w.astype(np.float64)), stride=stride,
        padding=padding, dilation=dilation, groups=groups)[0].numpy().astype(np.int64)
    params = {"out_shape": want.shape, "stride": stride, "padding": padding,
              "dilation": dilation, "groups": groups}
    got = conv_spikes(s, w.astype(np.float64), params)
    assert got.dtype == np.int64 and np.array_equal(got, want)
    assert np.count_nonzero(got) > got.size // 2  # not vacuous


def test_output_wraps_at_24_bits_as_lavas_conv():
    s = np.ones((1, 1, 1))
    params = {"out_shape": (1, 1, 1), "stride": (1, 1), "padding": (0, 0), "dilation": (1, 1),
              "groups": 1}
    big = conv_spikes(s, np.full((1, 1, 1, 1), float(1 << 23)), params)
    assert int(fixed.wrap_s24(big)[0, 0, 0]) == -(1 << 23)
