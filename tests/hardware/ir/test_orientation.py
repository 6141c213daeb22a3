"""`hardware.ir.orientation`: torch (C, H, W) ↔ Lava (W, H, C), against Lava's own scipy
convolution and hand-picked entries."""

from __future__ import annotations

import numpy as np
import torch

from hardware.ir import orientation


def test_conv_orientation_matches_lavas_scipy_convolution() -> None:
    """torch's float64 NCHW cross-correlation, moved to Lava's WHC with the one set of
    helpers, equals Lava's own ``utils.conv`` (flipped-kernel scipy convolution on (W, H, C))."""
    from lava.proc.conv import utils as lava_conv

    rng = np.random.default_rng(5)
    x = rng.integers(0, 2, size=(4, 7, 5))  # (C, H, W)
    w = rng.integers(-256, 256, size=(6, 2, 3, 2))  # (C_out, C_in/g, kH, kW)
    stride, padding, dilation = (1, 2), (1, 0), (2, 1)
    ours = torch.nn.functional.conv2d(
        torch.from_numpy(x[None]).double(), torch.from_numpy(w).double(), stride=stride,
        padding=padding, dilation=dilation, groups=2)[0].numpy()
    w_lava = orientation.conv_weight_to_lava(w)
    lava = lava_conv.conv_scipy(
        orientation.chw_to_lava(x),
        w_lava,
        w_lava.shape[1:3],
        orientation.yx_to_lava(stride),
        orientation.yx_to_lava(padding),
        orientation.yx_to_lava(dilation),
        2,
    )
    assert np.array_equal(orientation.chw_to_lava(np.rint(lava)), ours)


def test_orientation_helpers_by_hand() -> None:
    x = np.arange(24).reshape(2, 3, 4)  # (C, H, W)
    assert orientation.chw_to_lava(x).shape == (4, 3, 2)
    assert orientation.chw_to_lava(x)[3, 2, 1] == x[1, 2, 3]
    assert np.array_equal(orientation.chw_to_lava(orientation.chw_to_lava(x)), x)
    assert orientation.yx_to_lava((1, 2)) == (2, 1) and orientation.yx_to_lava(3) == (3, 3)
    w = np.arange(2 * 1 * 2 * 3).reshape(2, 1, 2, 3)  # (C_out, C_in, kH, kW)
    wl = orientation.conv_weight_to_lava(w)
    assert wl.shape == (2, 3, 2, 1)  # (C_out, kW, kH, C_in)
    assert wl[1, 0, 0, 0] == w[1, 0, 1, 2]  # both spatial axes flipped
