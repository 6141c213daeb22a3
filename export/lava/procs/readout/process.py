"""``HostReadout``: records the residual stream of each streamed sample and decodes features.

Input ``a_in`` ``in_shape`` = ``(D, N)`` or ``(D,)``: the summed branch currents (wu, int32)
of one logical step. Samples stream one every T steps; logical step t of sample k reaches this
process at Lava ``time_step = k·T + t + depth + 1`` (``depth`` its pipeline depth). The model
stores ``a`` in ``stream[k, t]`` and, at a sample's last step, computes (float64, ``ReadoutLayer``
semantics)::

    X_t = a_t · input_scale + input_bias[:, None]          (decoded stream)
    x_t = mean of X_t over token_axis                        (token_axis None: no mean)
    features[k] = head_weight @ Σ_t time_weights[t] · x_t + head_bias

Steps outside ``[depth + 1, depth + n_samples·T]`` are ignored (pipeline fill and drain).
Placement ``host``.
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var


class HostReadout(AbstractProcess):
    """Vars: ``stream`` int32 ``(n_samples, T, *in_shape)``; ``features`` float64
    ``(n_samples, F)``; the float parameters ``time_weights`` ``(T,)``, ``input_bias`` ``(D,)``,
    ``head_weight`` ``(F, D)``, ``head_bias`` ``(F,)``. Parameters: ``T``, ``depth``,
    ``n_samples``, ``input_scale``, ``token_axis`` (``None`` or an axis ≥ 1 of ``in_shape``),
    ``placement`` (default ``"host"``).
    """

    def __init__(
        self,
        *,
        in_shape: tuple[int, ...],
        T: int,
        depth: int,
        n_samples: int,
        time_weights: np.ndarray,
        head_weight: np.ndarray,
        head_bias: np.ndarray,
        input_scale: float,
        input_bias: np.ndarray,
        token_axis: int | None = 1,
        placement: str = "host",
        name: str | None = None,
    ) -> None:
        in_shape = tuple(int(x) for x in in_shape)
        hw = np.asarray(head_weight, np.float64)
        super().__init__(
            in_shape=in_shape,
            T=int(T),
            depth=int(depth),
            n_samples=int(n_samples),
            input_scale=float(input_scale),
            token_axis=token_axis,
            placement=placement,
            name=name,
        )
        self.a_in = InPort(shape=in_shape)
        self.stream = Var(shape=(n_samples, T, *in_shape), init=0)
        self.features = Var(shape=(n_samples, hw.shape[0]), init=0.0)
        self.time_weights = Var(shape=(T,), init=np.asarray(time_weights, np.float64))
        self.input_bias = Var(shape=(in_shape[0],), init=np.asarray(input_bias, np.float64))
        self.head_weight = Var(shape=hw.shape, init=hw)
        self.head_bias = Var(shape=(hw.shape[0],), init=np.asarray(head_bias, np.float64))
