"""`export.lava.conv_matrix.conv_as_sparse`: the matrix times the flat input is the conv."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from export.lava.conv_matrix import conv_as_sparse
from hardware.ir.layers import ConvLayer


@pytest.mark.parametrize(
    ("c_in", "c_out", "k", "stride", "padding", "dilation", "groups"),
    [(3, 4, 3, 1, 1, 1, 1), (4, 6, 3, 2, 1, 1, 2), (2, 3, (3, 2), (1, 2), (2, 0), (2, 1), 1)],
)
def test_matrix_equals_torch_conv(c_in, c_out, k, stride, padding, dilation, groups):
    gen = torch.Generator().manual_seed(0)
    kh, kw = (k, k) if isinstance(k, int) else k
    w = torch.randint(-128, 128, (c_out, c_in // groups, kh, kw), generator=gen) * 2
    w[w.abs() < 40] = 0  # zero weights are not stored
    x = torch.randint(0, 2, (c_in, 7, 6), generator=gen)
    pair = lambda v: (v, v) if isinstance(v, int) else v  # noqa: E731
    want = F.conv2d(x[None].double(), w.double(), stride=stride, padding=padding,
                    dilation=dilation, groups=groups)[0]
    layer = ConvLayer(name="c", weights=w.numpy().astype(np.int32), in_shape=(c_in, 7, 6),
                      stride=pair(stride), padding=pair(padding), dilation=pair(dilation),
                      groups=groups)
    assert tuple(layer.out_shape) == tuple(want.shape)
    mat = conv_as_sparse(layer)
    assert mat.dtype == np.int32 and mat.shape == (want.numel(), x.numel())
    assert mat.nnz == int((mat.toarray() != 0).sum())  # only nonzero weights stored
    got = mat.astype(np.int64) @ x.numpy().reshape(-1).astype(np.int64)
    assert np.array_equal(got, want.numpy().reshape(-1).astype(np.int64))
