"""``BiasInjection``: writes each streamed sample's bias into a LIF's ``bias_mant``/``bias_exp``.

The host computes the static input of every sample (conv0 + BN of the image, or the token +
position embeddings) and encodes it as 13-bit mantissas and 3-bit exponents
(``HostInputLayer``, ``fixed.host_bias_encode``; DESIGN §5). This process holds them in
``mant`` and ``exp`` ``(n_samples, *shape)`` and writes sample k through two RefPorts in the
post-management phase of Lava step ``k·T + depth``, i.e. just before the target's logical
step 0 of sample k (Lava step ``k·T + depth + 1``, where its ``LIFReset`` zeroes u and v;
``depth`` is the target's pipeline depth, 0 for an input layer). Sample 0 has no earlier step:
the target LIF is created with ``bias_mant = mant[0]``, ``bias_exp = exp[0]`` (during a
pipeline fill the bias acts before the reset, harmlessly).
Placement ``host``.
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import RefPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var


class BiasInjection(AbstractProcess):
    """Vars ``mant`` and ``exp`` int32 ``(n_samples, *shape)``; RefPorts ``bias`` and
    ``bias_exp`` ``shape`` (connect them with :meth:`connect_vars` to the target LIF's
    ``bias_mant`` and ``bias_exp``). Parameters ``T``, ``depth`` (the target's pipeline depth,
    default 0), ``placement``.
    """

    def __init__(
        self,
        *,
        mant: np.ndarray,
        exp: np.ndarray,
        T: int,
        depth: int = 0,
        placement: str = "host",
        name: str | None = None,
    ) -> None:
        m, e = np.asarray(mant), np.asarray(exp)
        if m.ndim < 2 or e.shape != m.shape:
            raise ValueError(
                f"BiasInjection {name!r}: mant and exp must be (n_samples, *shape), got "
                f"{m.shape} and {e.shape}"
            )
        super().__init__(
            T=int(T), depth=int(depth), n_samples=int(m.shape[0]), placement=placement, name=name
        )
        self.mant = Var(shape=m.shape, init=m.astype(np.int32))
        self.exp = Var(shape=e.shape, init=e.astype(np.int32))
        self.bias = RefPort(shape=m.shape[1:])
        self.bias_exp = RefPort(shape=m.shape[1:])

    def connect_vars(self, bias_mant: Var, bias_exp: Var) -> None:
        """Connect the RefPorts to the target LIF's ``bias_mant`` and ``bias_exp``."""
        self.bias.connect_var(bias_mant)
        self.bias_exp.connect_var(bias_exp)
