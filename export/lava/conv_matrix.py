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
from scipy.sparse import coo_matrix, csr_matrix

from hardware.ir.layers import ConvLayer


def conv_as_sparse(layer: ConvLayer) -> csr_matrix:
    """``(prod(out_shape), prod(in_shape))`` int32 CSR matrix of ``layer`` (see module doc).

    Built one kernel offset ``(ky, kx)`` at a time from the nonzero weights, so the transient
    memory is about 12 bytes per stored entry (int32 rows, columns, values) and no dense
    index grid over all ``(co, ci, ky, kx, y, x)`` is ever made: the paper's conv4 has ~69 M
    entries.
    """
    w = np.asarray(layer.weights, dtype=np.int32)
    c_out, c_grp, kh, kw = w.shape
    c_in, h, wd = layer.in_shape
    _, ho, wo = layer.out_shape
    (sy, sx), (py, px), (dy, dx) = layer.stride, layer.padding, layer.dilation
    per_group = c_out // layer.groups
    y, x = np.meshgrid(np.arange(ho), np.arange(wo), indexing="ij")
    rows, cols, vals = [], [], []
    for ky in range(kh):
        for kx in range(kw):
            iy, ix = y * sy - py + ky * dy, x * sx - px + kx * dx
            inside = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < wd)
            out_pos, in_pos = (y * wo + x)[inside], (iy * wd + ix)[inside]  # [P]
            co, ci = np.nonzero(w[:, :, ky, kx])  # [E]
            cin = (co // per_group) * c_grp + ci
            rows.append((co[:, None] * (ho * wo) + out_pos).astype(np.int32).ravel())
            cols.append((cin[:, None] * (h * wd) + in_pos).astype(np.int32).ravel())
            vals.append(np.repeat(w[co, ci, ky, kx], out_pos.size))
    mat = coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(c_out * ho * wo, c_in * h * wd),
        dtype=np.int32,
    ).tocsr()
    mat.sum_duplicates()
    return mat
