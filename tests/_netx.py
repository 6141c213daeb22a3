"""Writing small lava-dl netx HDF5 files (the layout slayer's ``export_hdf5`` writes and
``lava.lib.dl.netx.hdf5.Network`` reads)."""

from __future__ import annotations

import numpy as np


def netx_block(layer, i: int, kind: str, shape, **data):
    """Group ``/layer/<i>`` of block type ``kind`` with ``shape`` and the datasets ``data``."""
    g = layer.create_group(str(i))
    g.create_dataset("type", (1,), "S10", [kind.encode()])
    g.create_dataset("shape", data=np.asarray(shape))
    for key, value in data.items():
        g.create_dataset(key, data=np.asarray(value))
    return g
