"""What the simulator returns and raises: :class:`SimResult`, :class:`SimulationError`,
:class:`MissingRuleError`, and the float exactness bounds both simulator paths use (one home for
them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from spikeclip.errors import UnsupportedError, UsageError

#: float32 holds every integer below 2²⁴ exactly.
F32_EXACT = 1 << 24
#: float64 holds every integer below 2⁵³ exactly.
F64_EXACT = 1 << 53


def exact_float_dtype(bound: float) -> torch.dtype | None:
    """float32 when every integer of magnitude ≤ ``bound`` is exact in it (< 2²⁴), float64
    below 2⁵³, else None (no float type holds them all)."""
    if bound < F32_EXACT:
        return torch.float32
    if bound < F64_EXACT:
        return torch.float64
    return None


_NUMPY = {torch.float32: np.float32, torch.float64: np.float64, torch.int64: np.int64}


def as_tensor(x: np.ndarray, dt: torch.dtype) -> torch.Tensor:
    """An integer numpy array (weights, spikes, currents) as a ``dt`` tensor: one numpy
    conversion into a fresh array (read-only layer arrays included), shared by the tensor."""
    return torch.from_numpy(np.asarray(x).astype(_NUMPY[dt]))


class SimulationError(UsageError):
    """The inputs do not fit the network, or a layer cannot be simulated exactly (names it)."""


class MissingRuleError(UnsupportedError):
    """A simulator path has no rule for a layer kind: ``backend``, ``kind`` and ``layer`` name
    it (a layer kind added to :mod:`hardware.ir.layers` needs one entry in each path's table)."""

    def __init__(self, backend: str, kind: str, layer: str) -> None:
        self.backend, self.kind, self.layer = backend, kind, layer
        super().__init__(f"simulate ({backend}): no rule for layer kind {kind!r} (layer {layer!r})")


@dataclass(frozen=True, kw_only=True)
class SimResult:
    """Result of :func:`simulate` for a batch of ``batch_size`` samples, ``T`` steps each.

    spike_counts[lif]: int64 ``[T, *shape]``: spikes per step and neuron **summed over the
        batch** (divide by ``batch_size`` for a rate); the energy counters read these.
    spikes[lif] / v[lif] / u[lif]: bool / int64 ``[T, B, *shape]`` (only with ``keep_states``);
        ``v`` is the voltage after the spike reset (what Lava's Monitor shows), ``u`` the current.
    features[readout]: float64 ``[B, F]``; stream[readout]: the decoded stream
        ``X_t = a_t·input_scale + input_bias`` ``[T, B, *in_shape]`` (with ``keep_states``).
    overflow_u[lif]: neuron-steps whose new u left the 24-bit range (Lava's single ±2²⁴
        correction was applied); saturations_v[lif]: neuron-steps where v was clipped to
        ±(2²³−1); ties[lif]: neuron-steps with v exactly at ``vth << 6`` (no spike under ``>``);
        int32_wraps[lif]: neuron-steps where the new u or v left ±2³¹ and Lava's int32
        arithmetic wrapped it (``fixed.wrap_s32``; emulated, so the states stay Lava's).
    conv_wraps[conv]: outputs changed by the 24-bit wrap; host_clipped[host]: injected bias
        mantissas that saturated at 13 bits (each summed over batch and steps).
    max_abs_a / max_abs_u / max_abs_v [lif or readout]: largest |a| (wu), |u| before the
        correction and |v| before saturation (v-units) seen.
    """

    T: int
    batch_size: int
    spike_counts: Mapping[str, np.ndarray]
    features: Mapping[str, np.ndarray]
    overflow_u: Mapping[str, int]
    saturations_v: Mapping[str, int]
    ties: Mapping[str, int]
    int32_wraps: Mapping[str, int]
    conv_wraps: Mapping[str, int]
    host_clipped: Mapping[str, int]
    max_abs_a: Mapping[str, int]
    max_abs_u: Mapping[str, int]
    max_abs_v: Mapping[str, int]
    spikes: Mapping[str, np.ndarray] = field(default_factory=dict)
    v: Mapping[str, np.ndarray] = field(default_factory=dict)
    u: Mapping[str, np.ndarray] = field(default_factory=dict)
    stream: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def feature(self) -> np.ndarray:
        """The features of the network's only readout (error if there is not exactly one)."""
        if len(self.features) != 1:
            raise SimulationError(f"network has {len(self.features)} readouts; use .features")
        return next(iter(self.features.values()))

    def totals(self) -> dict[str, int]:
        """Whole-network counters: spikes, overflows, saturations, ties, int32 wraps, conv
        wraps, host clips."""
        return {
            "spikes": int(sum(int(c.sum()) for c in self.spike_counts.values())),
            "overflow_u": int(sum(self.overflow_u.values())),
            "saturations_v": int(sum(self.saturations_v.values())),
            "ties": int(sum(self.ties.values())),
            "int32_wraps": int(sum(self.int32_wraps.values())),
            "conv_wraps": int(sum(self.conv_wraps.values())),
            "host_clipped": int(sum(self.host_clipped.values())),
        }
