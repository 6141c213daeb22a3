"""``DelayConv``: Lava's ``Conv`` (fixed point) whose output is sent ``delay`` extra steps later.

Per Lava step, for spikes ``s`` ``(C_in, H, W)`` (torch orientation)::

    a = wrap_s24(conv2d(s, W_eff, stride, padding, dilation, groups))

with ``W_eff = weights · 2**weight_exp`` (what the stock ``Conv`` replica at delay 0 holds:
``hardware.ir.layers.ConvLayer.effective_weights``) and the 24-bit output wrap of Lava's
``PyConvModelFixed``. The result is sent ``1 + delay`` steps later (a synapse's latency plus this
consumer's delay, DESIGN §4). It replaces one ``DelaySparse`` replica of the conv's unrolled
matrix per delayed consumer of the residual stream: the paper's conv4 is ~69 M sparse entries
per replica, this process holds the 1.3 M kernel weights and ``1 + delay`` output frames.
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var

from hardware.ir import fixed


class DelayConv(AbstractProcess):
    """Ports: ``s_in`` spikes ``in_shape`` ``(C_in, H, W)``; ``a_out`` current (wu)
    ``out_shape`` ``(C_out, H_out, W_out)``.

    Vars: ``weights`` int ``(C_out, C_in/groups, kh, kw)`` (effective weights, see module doc).
    Parameters: ``in_shape``, ``out_shape``, ``stride``, ``padding``, ``dilation`` (pairs, y then
    x), ``groups``, ``delay`` (extra steps, 0 … 62), ``placement`` (default ``"neurocore"``).
    """

    def __init__(
        self,
        *,
        weights: np.ndarray,
        in_shape: tuple[int, int, int],
        out_shape: tuple[int, int, int],
        stride: tuple[int, int] = (1, 1),
        padding: tuple[int, int] = (0, 0),
        dilation: tuple[int, int] = (1, 1),
        groups: int = 1,
        delay: int = 0,
        placement: str = "neurocore",
        name: str | None = None,
    ) -> None:
        w = np.asarray(weights)
        if w.ndim != 4:
            raise ValueError(f"DelayConv {name!r}: weights must be 4-D, got {w.shape}")
        if not 0 <= int(delay) <= fixed.MAX_DELAY:
            raise ValueError(f"DelayConv {name!r}: delay {delay} outside [0, {fixed.MAX_DELAY}]")
        super().__init__(
            in_shape=tuple(int(x) for x in in_shape),
            out_shape=tuple(int(x) for x in out_shape),
            stride=tuple(int(x) for x in stride),
            padding=tuple(int(x) for x in padding),
            dilation=tuple(int(x) for x in dilation),
            groups=int(groups),
            delay=int(delay),
            placement=placement,
            name=name,
        )
        self.s_in = InPort(shape=tuple(in_shape))
        self.a_out = OutPort(shape=tuple(out_shape))
        self.weights = Var(shape=w.shape, init=w.astype(np.int32))
