"""``CurrentMaxPool``: max over windows of integer currents, padding counting as −∞ (DESIGN §5).

Input ``a_in`` ``(C, H, W)`` (wu; the sum of all connected current sources, in torch layout),
output ``a_out`` ``(C, H', W')`` with torch's output size
``⌊(n + 2p − k)/s⌋ + 1``. As ``torch.nn.functional.max_pool2d``: padded positions never win
(padding ≤ kernel/2, so every window holds a real element). The BN shift of the layer is not
here: it is added after the max as the next LIF's bias (exact). Sent ``latency + delay`` steps
after the currents arrive (``MaxPoolLayer.latency``, 0 by default: same step). No neurocore
computes a max: placement ``embedded`` (or ``host``).
"""

from __future__ import annotations

from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess

from hardware.ir import fixed


def pool_out_hw(
    hw: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
) -> tuple[int, int]:
    """torch's pooled size per axis: ``⌊(n + 2p − k)/s⌋ + 1``."""
    return tuple((n + 2 * p - k) // s + 1 for n, k, s, p in zip(hw, kernel, stride, padding))


class CurrentMaxPool(AbstractProcess):
    """Ports ``a_in`` ``in_shape`` = (C, H, W), ``a_out`` (C, H', W') (both wu, int32).

    Parameters: ``kernel``, ``stride``, ``padding`` as (y, x) pairs; ``latency`` (≥ 0),
    ``delay`` (0 … 62); ``placement`` (default ``"embedded"``).
    """

    def __init__(
        self,
        *,
        in_shape: tuple[int, int, int],
        kernel: tuple[int, int] = (3, 3),
        stride: tuple[int, int] = (2, 2),
        padding: tuple[int, int] = (1, 1),
        latency: int = 0,
        delay: int = 0,
        placement: str = "embedded",
        name: str | None = None,
    ) -> None:
        kernel, stride, padding = (tuple(int(x) for x in p) for p in (kernel, stride, padding))
        if any(2 * p > k for p, k in zip(padding, kernel)):
            raise ValueError(
                f"CurrentMaxPool {name!r}: padding {padding} exceeds half the kernel {kernel}"
            )
        if latency < 0 or not 0 <= delay <= fixed.MAX_DELAY:
            raise ValueError(
                f"CurrentMaxPool {name!r}: latency {latency} < 0 or delay {delay} "
                f"outside [0, {fixed.MAX_DELAY}]"
            )
        c, h, w = (int(x) for x in in_shape)
        out_hw = pool_out_hw((h, w), kernel, stride, padding)
        super().__init__(
            in_shape=(c, h, w),
            kernel=kernel,
            stride=stride,
            padding=padding,
            latency=int(latency),
            delay=int(delay),
            placement=placement,
            name=name,
        )
        self.a_in = InPort(shape=(c, h, w))
        self.a_out = OutPort(shape=(c, *out_hw))
