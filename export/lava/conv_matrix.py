"""A torch-orientation conv layer as a sparse matrix (for Lava's ``DelaySparse``).

Lava's ``Conv`` has no delays, so a conv whose consumer needs one (conv4 feeding the residual
stream) becomes a ``DelaySparse`` per delayed consumer. Row ``(co, y, x)`` and column
``(ci, y', x')`` are C-order flat indices of the ``(C, H, W)`` output and input; entry
``W[co, ci − g·C_in/g, ky, kx]`` where ``y' = y·s_y − p_y + ky·d_y`` (likewise x) lies inside the
input (zero padding contributes nothing). Integer semantics then equal Lava's Conv except the
24-bit output wrap, which Sparse does not apply (the simulator counts wraps; any wrap also
means u overflowed, which the quantizer rejects).
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix

from hardware.layers import ConvLayer


def conv_as_sparse(layer: ConvLayer) -> csr_matrix:
    """``(prod(out_shape), prod(in_shape))`` int32 CSR matrix of ``layer`` (see module doc)."""
    w = np.asarray(layer.weights, dtype=np.int32)
    c_out, c_grp, kh, kw = w.shape
    c_in, h, wd = layer.in_shape
    _, ho, wo = layer.out_shape
    (sy, sx), (py, px), (dy, dx) = layer.stride, layer.padding, layer.dilation
    per_group = c_out // layer.groups
    co, ci, ky, kx, y, x = np.meshgrid(
        np.arange(c_out),
        np.arange(c_grp),
        np.arange(kh),
        np.arange(kw),
        np.arange(ho),
        np.arange(wo),
        indexing="ij",
        sparse=False,
    )
    iy = y * sy - py + ky * dy
    ix = x * sx - px + kx * dx
    cin = (co // per_group) * c_grp + ci
    vals = w[co, ci, ky, kx]
    keep = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < wd) & (vals != 0)
    rows = (co * ho + y) * wo + x
    cols = (cin * h + iy) * wd + ix
    mat = csr_matrix(
        (vals[keep], (rows[keep], cols[keep])),
        shape=(c_out * ho * wo, c_in * h * wd),
        dtype=np.int32,
    )
    mat.sum_duplicates()
    return mat
