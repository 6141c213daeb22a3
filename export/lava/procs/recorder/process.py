"""``SpikeRecorder``: one host process recording the spike trains of up to 64 populations.

Stock Lava needs one sink ``RingBuffer`` per population, Lava 0.10 cannot concatenate ports of
different processes (``ConcatPort`` is not implemented), and ``Var.get`` ships an array one
element per message (~20 µs each). So this process has one InPort ``s_in_<i>`` per population
(flat, ``sizes[i]`` neurons; connect ``lif.s_out.flatten()``; ports beyond ``len(sizes)`` stay
unconnected) and packs each step's concatenated spikes, 48 to a float64 word (exact: every word
< 2⁴⁸), into one Var ``words`` ``(n_steps, ⌈Σ sizes / 48⌉)``: row ``time_step − 1``. Read it
with one get and :func:`unpack_spikes`. Placement ``host``.
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var

#: Most populations one recorder takes (its model declares this many port types).
MAX_POPULATIONS = 64
#: Spikes packed per float64 word (below the 53-bit mantissa, so packing is exact).
WORD_BITS = 48


def pack_spikes(bits: np.ndarray) -> np.ndarray:
    """0/1 vector ``(n,)`` → float64 words ``(⌈n/48⌉,)``; bit j of word w is entry 48·w + j."""
    n_words = -(-bits.size // WORD_BITS)
    padded = np.zeros(n_words * WORD_BITS, dtype=np.float64)
    padded[: bits.size] = bits
    return padded.reshape(n_words, WORD_BITS) @ np.exp2(np.arange(WORD_BITS))


def unpack_spikes(words: np.ndarray, n: int) -> np.ndarray:
    """Inverse of :func:`pack_spikes` on ``[..., n_words]`` → bool ``[..., n]``."""
    w = np.asarray(words, dtype=np.float64).astype(np.int64)[..., None]
    bits = (w >> np.arange(WORD_BITS)) & 1
    return bits.reshape(*w.shape[:-2], -1)[..., :n].astype(bool)


class SpikeRecorder(AbstractProcess):
    """Ports ``s_in_0 … s_in_63``; Var ``words`` float64 ``(n_steps, ⌈Σ sizes/48⌉)``.
    Neuron j of population i is entry ``offsets[i] + j`` of each unpacked row."""

    def __init__(
        self,
        *,
        sizes: tuple[int, ...],
        n_steps: int,
        placement: str = "host",
        name: str | None = None,
    ) -> None:
        sizes = tuple(int(s) for s in sizes)
        if not 1 <= len(sizes) <= MAX_POPULATIONS:
            raise ValueError(
                f"SpikeRecorder {name!r}: {len(sizes)} populations, expected 1 … {MAX_POPULATIONS}"
            )
        offsets = tuple(int(x) for x in np.cumsum((0, *sizes)))
        super().__init__(
            sizes=sizes, offsets=offsets, n_steps=int(n_steps), placement=placement, name=name
        )
        # Lava's builder wants every port type the model declares to exist on the process.
        for i in range(MAX_POPULATIONS):
            setattr(self, f"s_in_{i}", InPort(shape=(sizes[i] if i < len(sizes) else 1,)))
        n_words = -(-offsets[-1] // WORD_BITS)
        self.words = Var(shape=(int(n_steps), n_words), init=0.0)

    def port(self, i: int) -> InPort:
        """The InPort of population ``i``."""
        return getattr(self, f"s_in_{i}")
