"""``BiasInjection``: writes each streamed sample's bias mantissas into a LIF's ``bias_mant``.

The host computes the static input of every sample (conv0 + BN of the image, or the token +
position embeddings) and encodes it as 13-bit mantissas at the target LIF's ``bias_exp``
(``HostInputLayer``; DESIGN §5). This process holds them in ``mant`` ``(n_samples, *shape)``
and writes sample k through a RefPort in the post-management phase of Lava step
``k·T + depth``, i.e. just before the target's logical step 0 of sample k (Lava step
``k·T + depth + 1``, where its ``LIFReset`` zeroes u and v; ``depth`` is the target's pipeline
depth, 0 for an input layer). Sample 0 has no earlier step: the target LIF is created with
``bias_mant = mant[0]`` (during a pipeline fill the bias acts before the reset, harmlessly).
Placement ``host``.
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import RefPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var


class BiasInjection(AbstractProcess):
    """Var ``mant`` int32 ``(n_samples, *shape)``; RefPort ``bias`` ``shape`` (connect it with
    :meth:`connect_var` to the target LIF's ``bias_mant``). Parameters ``T``, ``depth``
    (the target's pipeline depth, default 0), ``placement``.
    """

    def __init__(
        self,
        *,
        mant: np.ndarray,
        T: int,
        depth: int = 0,
        placement: str = "host",
        name: str | None = None,
    ) -> None:
        m = np.asarray(mant)
        if m.ndim < 2:
            raise ValueError(
                f"BiasInjection {name!r}: mant must be (n_samples, *shape), got {m.shape}"
            )
        super().__init__(
            T=int(T), depth=int(depth), n_samples=int(m.shape[0]), placement=placement, name=name
        )
        self.mant = Var(shape=m.shape, init=m.astype(np.int32))
        self.bias = RefPort(shape=m.shape[1:])

    def connect_var(self, var: Var) -> None:
        """Connect the RefPort to ``var`` (the target LIF's ``bias_mant``)."""
        self.bias.connect_var(var)
