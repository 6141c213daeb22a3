"""``SpikeAttention``: per-head ``P = Q·(KᵀV)`` on binary q|k|v spikes (DESIGN §5).

Input ``s_in`` ``(3C, N)``: q rows ``[0, C)``, k rows ``[C, 2C)``, v rows ``[2C, 3C)``; head h
uses channels ``[h·d, (h+1)·d)`` of each, ``d = C / heads``. Per step and head::

    M = K_hᵀ V_h      M[i, j] = Σ_n k[i, n]·v[j, n]        (d × d, entries 0 … N)
    P = Q_h M         P[j, n] = Σ_i q[i, n]·M[i, j]        (d × N, entries 0 … d·N)

Output ``a_out`` ``(C, N)``: ``P << p_shift`` in wu, sent ``latency + delay`` steps after the
spikes arrive (``latency`` is ``AttentionLayer.latency``, 1 by default: M is the per-step weight
matrix the embedded core writes; the consuming LIF's threshold folds ``qk_scale`` and 1/τ).
Placement ``embedded``. ``N ≤ 255`` so that M fits an 8-bit weight.
"""

from __future__ import annotations

from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess

from hardware.ir import fixed

#: M's entries (0 … N) must fit an unsigned 8-bit weight.
MAX_TOKENS = (1 << fixed.WEIGHT_BITS) - 1


class SpikeAttention(AbstractProcess):
    """Ports ``s_in`` ``(3·channels, tokens)`` spikes, ``a_out`` ``(channels, tokens)`` wu.

    Parameters: ``channels`` C, ``tokens`` N (≤ 255), ``heads`` (divides C), ``p_shift``
    (0 … 16), ``latency`` (≥ 0), ``delay`` (0 … 62), ``placement`` (default ``"embedded"``).
    """

    def __init__(
        self,
        *,
        channels: int,
        tokens: int,
        heads: int,
        p_shift: int = 0,
        latency: int = 1,
        delay: int = 0,
        placement: str = "embedded",
        name: str | None = None,
    ) -> None:
        if heads < 1 or channels % heads:
            raise ValueError(
                f"SpikeAttention {name!r}: {channels} channels not divisible by {heads} heads"
            )
        if not 1 <= tokens <= MAX_TOKENS:
            raise ValueError(f"SpikeAttention {name!r}: tokens {tokens} outside [1, {MAX_TOKENS}]")
        if latency < 0 or not 0 <= delay <= fixed.MAX_DELAY:
            raise ValueError(
                f"SpikeAttention {name!r}: latency {latency} < 0 or delay {delay} "
                f"outside [0, {fixed.MAX_DELAY}]"
            )
        super().__init__(
            channels=int(channels),
            tokens=int(tokens),
            heads=int(heads),
            p_shift=int(p_shift),
            latency=int(latency),
            delay=int(delay),
            placement=placement,
            name=name,
        )
        self.s_in = InPort(shape=(3 * int(channels), int(tokens)))
        self.a_out = OutPort(shape=(int(channels), int(tokens)))
