"""Layer records of the `LoihiNetwork` schema (v1): frozen, keyword-only, validated on construction.

Orientation is torch's throughout: conv tensors are ``(C, H, W)`` per sample, conv kernels
``(C_out, C_in/groups, kH, kW)``, token tensors ``(C, N)`` (channels, tokens: the Conv1d layout of
Spikformer blocks), dense inputs flattened in C order. ``export.lava`` converts to Lava's
``(W, H, C)`` in one place (:mod:`hardware.ir.orientation`).

Every layer has a ``name`` (unique in its network), a ``placement`` (where it runs: see
:data:`PLACEMENTS`) and ``meta`` (free-form JSON provenance, e.g. ``{"scale": 64.0}``).
What a layer emits (:attr:`Layer.OUTPUT`) and accepts (:attr:`Layer.ACCEPTS`) is one of

- ``"spikes"``: binary events, one per neuron per step (LIF, spike input);
- ``"current"``: an integer synaptic input ``a`` in weight units (wu) per step (synapses, or
  graded external input: ``CurrentInputLayer``); several edges into one layer are summed (as
  Lava's InPort does);
- ``"bias"``: a per-sample value written into a LIF's ``bias_mant`` (host input injection).

``latency`` is the number of Lava steps between a layer receiving the inputs of one logical step
and emitting its output for it: 1 for every synapse (Lava's Dense/Conv send at t+1 what they
summed at t), 0 for neurons. Custom (extension) processes in ``export.lava`` must implement exactly
the ``latency`` recorded here; ``LoihiNetwork.depth`` is computed from it.

Integer fields are validated against the widths in :mod:`hardware.ir.fixed` (each width named in
:attr:`Layer.FIELD_WIDTHS`); a violation raises :class:`NetworkValidationError` naming the layer
and the field. Integer arrays are stored read-only as the smallest dtype that holds the width
(int16 for weights and ``bias_mant``, int8 for ``bias_exp``); float arrays keep float32/float64.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, ClassVar, Literal

import numpy as np

from hardware.ir import fixed
from spikeclip.errors import UnsupportedError

Placement = Literal["neurocore", "neurocore-L2", "embedded", "host"]
#: ``neurocore``: a Loihi neurocore op (LIF update, spike × static weight);
#: ``neurocore-L2``: needs Loihi 2 (graded spikes or conv weight sharing);
#: ``embedded``: the chip's x86 cores (max, spike × spike); ``host``: the host CPU.
#: The one home of this list (every layer's ``placement`` is validated against it).
PLACEMENTS: tuple[str, ...] = ("neurocore", "neurocore-L2", "embedded", "host")

Signal = Literal["spikes", "current", "bias", "none"]


class NetworkValidationError(UnsupportedError, ValueError):
    """A layer, edge or network field violates the schema. ``layer`` and ``field`` name it."""

    def __init__(self, layer: str, field_name: str, reason: str) -> None:
        self.layer = layer
        self.field = field_name
        self.reason = reason
        super().__init__(f"LoihiNetwork layer {layer!r}, field {field_name!r}: {reason}")


# ---------------------------------------------------------------------------------------------
# Normalizers (used by __post_init__; each raises NetworkValidationError).
# ---------------------------------------------------------------------------------------------


def _set(obj: object, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


def _int_tuple(layer: str, name: str, value: Any, length: int | None = None) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in (value if np.ndim(value) else (value,) * (length or 1)))
    except (TypeError, ValueError) as err:
        raise NetworkValidationError(layer, name, f"expected integers, got {value!r}") from err
    if length is not None and len(out) != length:
        raise NetworkValidationError(layer, name, f"expected {length} integers, got {out}")
    return out


def _positive_shape(layer: str, name: str, value: Any) -> tuple[int, ...]:
    shape = _int_tuple(layer, name, value)
    if not shape or min(shape) < 1:
        raise NetworkValidationError(layer, name, f"shape must be non-empty and positive: {shape}")
    return shape


def _int_scalar(layer: str, name: str, value: Any, lo: int, hi: int, width: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise NetworkValidationError(layer, name, f"expected an integer ({width}), got {value!r}")
    v = int(value)
    if not lo <= v <= hi:
        raise NetworkValidationError(layer, name, f"{v} outside {width} range [{lo}, {hi}]")
    return v


def _int_array(
    layer: str,
    name: str,
    value: Any,
    lo: int,
    hi: int,
    width: str,
    dtype: type,
    shape: tuple[int, ...] | None = None,
) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iub" and not (
        arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))
    ):
        raise NetworkValidationError(layer, name, f"expected integers ({width}), got {arr.dtype}")
    # Range check on the values as given, before any cast: uint64 2**64 - 1 or float 2**63
    # would wrap to another int64 that may pass the check.
    if arr.size and (arr.min() < lo or arr.max() > hi):
        shown = [v.item() for v in (arr.min(), arr.max())]
        raise NetworkValidationError(
            layer, name, f"values in [{shown[0]}, {shown[1]}] outside {width} range [{lo}, {hi}]"
        )
    arr = arr.astype(np.int64)
    if shape is not None:
        if arr.ndim == 0:
            arr = np.broadcast_to(arr, shape)
        if arr.shape != shape:
            raise NetworkValidationError(layer, name, f"shape {arr.shape} != expected {shape}")
    return _readonly(arr.astype(dtype))


def _float_array(layer: str, name: str, value: Any, shape: tuple[int, ...] | None) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype not in (np.float32, np.float64):
        if arr.dtype.kind not in "iuf":
            raise NetworkValidationError(layer, name, f"expected a float array, got {arr.dtype}")
        arr = arr.astype(np.float64)
    if shape is not None and arr.shape != shape:
        raise NetworkValidationError(layer, name, f"shape {arr.shape} != expected {shape}")
    if not np.all(np.isfinite(arr)):
        raise NetworkValidationError(layer, name, "contains NaN or inf")
    return _readonly(arr)


def json_mapping(layer: str, name: str, value: Mapping[str, Any]) -> Mapping[str, Any]:
    """Read-only JSON-normalized copy of ``value`` (tuples → lists); typed error if not JSON."""
    try:
        normalized = json.loads(json.dumps(dict(value), allow_nan=False))
    except (TypeError, ValueError) as err:
        raise NetworkValidationError(layer, name, f"must be JSON-serializable: {err}") from err
    return MappingProxyType(normalized)


def conv_out_len(n_in: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """torch's conv/pool output length of one axis: ``⌊(n + 2p − d(k − 1) − 1)/s⌋ + 1``."""
    return (n_in + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def conv_out_hw(
    hw: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
) -> tuple[int, int]:
    """:func:`conv_out_len` per spatial axis ``(y, x)``."""
    return tuple(  # type: ignore[return-value]
        conv_out_len(n, k, s, p, d) for n, k, s, p, d in zip(hw, kernel, stride, padding, dilation)
    )


# ---------------------------------------------------------------------------------------------
# Base record.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, eq=False)
class Layer:
    """Common fields; subclasses add theirs. Compare with ``==`` (arrays compared exactly)."""

    name: str
    placement: Placement = "neurocore"
    meta: Mapping[str, Any] = field(default_factory=dict)

    KIND: ClassVar[str] = ""
    OUTPUT: ClassVar[Signal] = "none"
    ACCEPTS: ClassVar[frozenset[str]] = frozenset()
    #: field name → width label (e.g. ``"u12"``: unsigned 12-bit; ``"s13"``: signed 13-bit).
    FIELD_WIDTHS: ClassVar[Mapping[str, str]] = MappingProxyType({})

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or "\n" in self.name:
            raise NetworkValidationError(str(self.name), "name", "must be a non-empty string")
        if self.placement not in PLACEMENTS:
            raise NetworkValidationError(
                self.name, "placement", f"{self.placement!r} not in {PLACEMENTS}"
            )
        _set(self, "meta", json_mapping(self.name, "meta", self.meta))

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                if not (
                    isinstance(a, np.ndarray)
                    and isinstance(b, np.ndarray)
                    and a.dtype == b.dtype
                    and np.array_equal(a, b)
                ):
                    return False
            elif (dict(a) if isinstance(a, Mapping) else a) != (
                dict(b) if isinstance(b, Mapping) else b
            ):
                return False
        return True

    __hash__ = None  # type: ignore[assignment]


def _check_weight_grid(
    layer: str, weights: np.ndarray, sign_mode: str, num_weight_bits: int
) -> None:
    if not np.array_equal(fixed.weight_on_grid_8(weights, sign_mode, num_weight_bits), weights):
        step = 1 << fixed.weight_truncate_bits(sign_mode, num_weight_bits)
        raise NetworkValidationError(
            layer,
            "weights",
            f"not on the {sign_mode} grid of num_weight_bits={num_weight_bits} (multiples of "
            f"{step}); round onto it in the quantizer (Lava would floor silently)",
        )


def _weights_8(
    layer: str, value: Any, ndim: int, sign_mode: str | None, num_weight_bits: int
) -> tuple[np.ndarray, str]:
    raw = _int_array(layer, "weights", value, -(1 << 62), 1 << 62, "integer", np.int64)
    if raw.ndim != ndim:
        raise NetworkValidationError(layer, "weights", f"expected {ndim}-D, got shape {raw.shape}")
    mode = fixed.sign_mode_of(raw) if sign_mode is None else sign_mode
    if mode not in fixed.SIGN_MODES:
        raise NetworkValidationError(layer, "sign_mode", f"{mode!r} not in {fixed.SIGN_MODES}")
    lo, hi = fixed.weight_limits_8(mode)
    w = _int_array(layer, "weights", raw, lo, hi, f"8-bit {mode}", np.int16)
    _check_weight_grid(layer, w, mode, num_weight_bits)
    return w, mode


_NWB = (fixed.NUM_WEIGHT_BITS_MIN, fixed.NUM_WEIGHT_BITS_MAX, "num_weight_bits 1..8")
_WEXP = (fixed.WEIGHT_EXP_MIN, fixed.WEIGHT_EXP_MAX, "s4")
_SYNAPSE_WIDTHS = MappingProxyType(
    {"weights": "s9 (8-bit magnitude + sign)", "num_weight_bits": "u4 (1..8)", "weight_exp": "s4"}
)


# ---------------------------------------------------------------------------------------------
# Neurons and inputs.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, eq=False)
class LIFLayer(Layer):
    """Loihi CUBA LIF population (Lava ``LIF``; ``LIFReset`` when ``reset_interval`` is set).

    Per step (``hardware.simulate.reference.lif``), with ``a`` the sum of all input currents
    (wu)::

        u ← wrap_u_once_s24(trunc0(u·(4096 − (du + 1))/4096) + (a << 6))
        v ← saturate_v_s24(trunc0(v·(4096 − dv)/4096) + u + (bias_mant << bias_exp))
        s ← v > (vth << 6);  v ← 0 where s (v ← v − reset_sub where s, when set)

    where Lava forms both sums in int32 (``fixed.wrap_s32`` before the correction and the
    saturation; the identity while they stay inside ±2³¹).

    Fields: ``shape`` (neuron layout, e.g. ``(C, H, W)`` or ``(C, N)``); ``du``, ``dv``
    (unsigned 12-bit, one per layer as in Lava); ``vth`` (unsigned 17-bit mantissa, one per
    layer: per-neuron thresholds must be folded into weights and bias); ``bias_mant`` (signed
    13-bit, per neuron, int16 of ``shape``; a scalar broadcasts) and ``bias_exp`` (unsigned
    3-bit, per neuron, int8); ``reset_interval``/``reset_offset``: ``LIFReset`` zeroes u and v
    at Lava steps with ``time_step % reset_interval == reset_offset % reset_interval`` (time
    starts at 1; ``hardware.ir.timing.Timing.reset_offset`` gives ``depth + 1``). ``None``
    means a plain ``LIF``. ``reset_sub``: reset by subtraction, the v-units (unsigned 23-bit,
    ``0 … 2²³ − 1``; one per layer) taken off v where the neuron spiked, instead of Lava's reset
    to 0 (sinabs, snnTorch's default, Rockpool; a microcode neuron on Loihi 2, the project's
    ``LIFResetSub`` Lava process in :mod:`export.lava.procs.lif_sub`); ``None`` resets to 0.
    ``dv = 0`` is a non-leaky integrator (IF) and ``du < 4095`` keeps a decaying synaptic
    current (CUBA), both Lava's own semantics.

    Recurrence: ``rec_weights`` int ``(N, N)`` (N = prod(shape), C-order), a Dense from the
    population's own spikes back into its input with Lava ``Dense``'s one-step latency: step t
    adds ``floor((W_rec @ s[t−1]) << rec_weight_exp)`` wu to ``a`` (``s[−1] = 0``: each sample
    starts without feedback). On Lava's 8-bit grid of ``rec_sign_mode`` / ``rec_num_weight_bits``
    as :class:`DenseLayer` weights; ``rec_weight_exp`` signed 4-bit. ``None``: no recurrence.
    In Lava: the project's ``RecurrentDense`` (:mod:`export.lava.procs.recurrent`).
    """

    shape: tuple[int, ...]
    du: int
    dv: int
    vth: int
    bias_mant: Any = 0
    bias_exp: Any = 0
    reset_interval: int | None = None
    reset_offset: int = 0
    reset_sub: int | None = None
    rec_weights: Any = None
    rec_weight_exp: int = 0
    rec_sign_mode: str | None = None
    rec_num_weight_bits: int = fixed.NUM_WEIGHT_BITS_MAX

    KIND: ClassVar[str] = "lif"
    OUTPUT: ClassVar[Signal] = "spikes"
    ACCEPTS: ClassVar[frozenset[str]] = frozenset({"current", "bias"})
    FIELD_WIDTHS: ClassVar[Mapping[str, str]] = MappingProxyType(
        {"du": "u12", "dv": "u12", "vth": "u17", "bias_mant": "s13", "bias_exp": "u3",
         "rec_weights": "s9 (8-bit magnitude + sign)", "rec_weight_exp": "s4"}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        n = self.name
        shape = _positive_shape(n, "shape", self.shape)
        _set(self, "shape", shape)
        _set(self, "du", _int_scalar(n, "du", self.du, 0, fixed.DECAY_MAX, "u12"))
        _set(self, "dv", _int_scalar(n, "dv", self.dv, 0, fixed.DECAY_MAX, "u12"))
        _set(self, "vth", _int_scalar(n, "vth", self.vth, 0, fixed.VTH_MAX, "u17"))
        lo, hi = fixed.BIAS_MANT_MIN, fixed.BIAS_MANT_MAX
        _set(
            self,
            "bias_mant",
            _int_array(n, "bias_mant", self.bias_mant, lo, hi, "s13", np.int16, shape),
        )
        lo, hi = fixed.BIAS_EXP_MIN, fixed.BIAS_EXP_MAX
        _set(
            self, "bias_exp", _int_array(n, "bias_exp", self.bias_exp, lo, hi, "u3", np.int8, shape)
        )
        if self.reset_interval is not None:
            _set(
                self,
                "reset_interval",
                _int_scalar(n, "reset_interval", self.reset_interval, 1, 1 << 30, "steps ≥ 1"),
            )
        _set(
            self,
            "reset_offset",
            _int_scalar(n, "reset_offset", self.reset_offset, 0, 1 << 30, "steps ≥ 0"),
        )
        if self.reset_sub is not None:
            _set(self, "reset_sub", _int_scalar(n, "reset_sub", self.reset_sub, 0, fixed.V_MAX,
                                                "u23 v-units"))
        self._check_recurrence(math.prod(shape))

    def _check_recurrence(self, size: int) -> None:
        n = self.name
        nwb = _int_scalar(n, "rec_num_weight_bits", self.rec_num_weight_bits, *_NWB)
        _set(self, "rec_num_weight_bits", nwb)
        _set(self, "rec_weight_exp", _int_scalar(n, "rec_weight_exp", self.rec_weight_exp, *_WEXP))
        if self.rec_weights is None:
            return
        w, mode = _weights_8(n, self.rec_weights, 2, self.rec_sign_mode, nwb)
        if w.shape != (size, size):
            raise NetworkValidationError(n, "rec_weights", f"shape {w.shape}, the population "
                                         f"needs ({size}, {size})")
        _set(self, "rec_weights", w)
        _set(self, "rec_sign_mode", mode)

    @property
    def in_shape(self) -> tuple[int, ...]:
        return self.shape

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.shape

    @property
    def latency(self) -> int:
        return 0


@dataclass(frozen=True, kw_only=True, eq=False)
class SpikeInputLayer(Layer):
    """External spike raster (Lava ``RingBuffer`` source): ``shape`` per step, latency 0."""

    shape: tuple[int, ...]
    placement: Placement = "host"

    KIND: ClassVar[str] = "spike_input"
    OUTPUT: ClassVar[Signal] = "spikes"

    def __post_init__(self) -> None:
        super().__post_init__()
        _set(self, "shape", _positive_shape(self.name, "shape", self.shape))

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.shape

    @property
    def in_shape(self) -> tuple[int, ...]:
        return ()

    @property
    def latency(self) -> int:
        return 0


@dataclass(frozen=True, kw_only=True, eq=False)
class CurrentInputLayer(Layer):
    """External integer currents (graded spikes) straight into a LIF's ``a_in``, latency 0.

    ``shape`` per step; the input is an integer raster ``[T, B, *shape]`` in weight units,
    each value a signed :data:`GRADED_INPUT_BITS`-bit payload (Loihi 2's graded spike); the
    consumer LIF adds ``a << 6`` to u exactly as for a synaptic current. In Lava: a
    ``RingBuffer`` source connected to ``LIF.a_in`` (the lava-dl netx input block is fed this
    way: its ``inp`` port is not wired to the neuron, so the PilotNet tutorial connects its
    encoder to ``in_layer.neuron.a_in``; :mod:`hardware.lower.from_netx`).
    """

    shape: tuple[int, ...]
    placement: Placement = "host"

    KIND: ClassVar[str] = "current_input"
    OUTPUT: ClassVar[Signal] = "current"
    FIELD_WIDTHS: ClassVar[Mapping[str, str]] = MappingProxyType({"input": "s24 per value"})

    def __post_init__(self) -> None:
        super().__post_init__()
        _set(self, "shape", _positive_shape(self.name, "shape", self.shape))

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.shape

    @property
    def in_shape(self) -> tuple[int, ...]:
        return ()

    @property
    def latency(self) -> int:
        return 0


#: Width of one graded input value of a :class:`CurrentInputLayer` (Loihi 2's graded spike
#: payload is at most 24 bits, signed; ``|a| << 6`` then stays inside Lava's int32 arithmetic).
GRADED_INPUT_BITS = 24


@dataclass(frozen=True, kw_only=True, eq=False)
class HostInputLayer(Layer):
    """Static input computed in float on the host and injected as the bias of one LIF.

    ``op = "conv2d"``: ``x = conv2d(image, weight, stride, padding) + bias[:, None, None]``
    (conv0 with BN folded; ``weight`` float ``(C_out, C_in, kH, kW)``, ``bias`` ``(C_out,)``,
    ``in_shape`` ``(C_in, H, W)``, ``out_shape`` ``(C_out, H', W')``).
    ``op = "embedding"``: ``x = weight[token_ids] + bias`` (token table ``(V, D)``, position
    table ``bias`` ``(L, D)``, ``in_shape`` ``(L,)`` of int ids, ``out_shape`` ``(L, D)``).
    Then per neuron ``β = x · bias_scale`` v-units and ``(bias_mant, bias_exp) =
    fixed.host_bias_encode(β, bias_exp, exp_per_value)`` (13-bit mantissa: rounding and clipping
    are counted): one exponent ``bias_exp`` for every value, or with ``exp_per_value`` each
    value at the smallest exponent ≥ ``bias_exp`` that holds it. The target LIF (one ``"bias"``
    edge) must have ``bias_mant == 0`` and ``bias_exp == this bias_exp``: the host replaces its
    mantissas (and with ``exp_per_value`` its exponents) per sample. Latency 0.
    """

    op: Literal["conv2d", "embedding"]
    weight: Any
    bias: Any
    in_shape: tuple[int, ...]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    bias_scale: float = 1.0
    bias_exp: int = 0
    exp_per_value: bool = False
    placement: Placement = "host"

    KIND: ClassVar[str] = "host_input"
    OUTPUT: ClassVar[Signal] = "bias"
    FIELD_WIDTHS: ClassVar[Mapping[str, str]] = MappingProxyType(
        {"bias_exp": "u3", "weight": "float", "bias": "float"}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        n = self.name
        if self.op not in ("conv2d", "embedding"):
            raise NetworkValidationError(n, "op", f"{self.op!r} not in ('conv2d', 'embedding')")
        _set(self, "in_shape", _positive_shape(n, "in_shape", self.in_shape))
        _set(self, "stride", _int_tuple(n, "stride", self.stride, 2))
        _set(self, "padding", _int_tuple(n, "padding", self.padding, 2))
        _set(
            self,
            "bias_exp",
            _int_scalar(n, "bias_exp", self.bias_exp, fixed.BIAS_EXP_MIN, fixed.BIAS_EXP_MAX, "u3"),
        )
        if not (isinstance(self.bias_scale, int | float) and math.isfinite(self.bias_scale)):
            raise NetworkValidationError(
                n, "bias_scale", f"must be a finite float: {self.bias_scale!r}"
            )
        _set(self, "bias_scale", float(self.bias_scale))
        if not isinstance(self.exp_per_value, bool | np.bool_):
            raise NetworkValidationError(
                n, "exp_per_value", f"must be a bool: {self.exp_per_value!r}"
            )
        _set(self, "exp_per_value", bool(self.exp_per_value))
        weight = _float_array(n, "weight", self.weight, None)
        if self.op == "conv2d":
            if weight.ndim != 4 or len(self.in_shape) != 3 or weight.shape[1] != self.in_shape[0]:
                raise NetworkValidationError(
                    n,
                    "weight",
                    f"conv2d needs (C_out, C_in, kH, kW) matching in_shape "
                    f"{self.in_shape}, got {weight.shape}",
                )
            bias = _float_array(n, "bias", self.bias, (weight.shape[0],))
        else:
            if weight.ndim != 2 or len(self.in_shape) != 1:
                raise NetworkValidationError(
                    n, "weight", "embedding needs (V, D) and in_shape (L,)"
                )
            bias = _float_array(n, "bias", self.bias, (self.in_shape[0], weight.shape[1]))
        _set(self, "weight", weight)
        _set(self, "bias", bias)

    @property
    def out_shape(self) -> tuple[int, ...]:
        if self.op == "embedding":
            return (self.in_shape[0], int(self.weight.shape[1]))
        kh, kw = self.weight.shape[2:]
        h, w = conv_out_hw(self.in_shape[1:], (kh, kw), self.stride, self.padding)
        return (int(self.weight.shape[0]), h, w)

    @property
    def latency(self) -> int:
        return 0


# ---------------------------------------------------------------------------------------------
# Synapses (spikes → current), latency 1.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, eq=False)
class DenseLayer(Layer):
    """Lava ``Dense`` (``PyDenseModelBitAcc``): ``a = (W @ s) << weight_exp``, floor-shifted sum.

    ``weights`` int ``(N_out, N_in)``, already on Lava's grid: inside
    ``fixed.weight_limits_8(sign_mode)`` and multiples of ``2**fixed.weight_truncate_bits``
    (Lava's clip and truncation are then the identity; off-grid weights are rejected).
    ``sign_mode`` defaults to Lava's automatic choice. ``num_weight_bits`` 1 … 8; ``weight_exp``
    signed 4-bit −8 … 7. ``in_shape``/``out_shape`` are the (C-order) layouts of the source and
    target populations; default flat. Effective weight in wu: ``w · 2**weight_exp``.
    """

    weights: Any
    num_weight_bits: int = fixed.NUM_WEIGHT_BITS_MAX
    weight_exp: int = 0
    sign_mode: str | None = None
    in_shape: tuple[int, ...] | None = None
    out_shape: tuple[int, ...] | None = None

    KIND: ClassVar[str] = "dense"
    OUTPUT: ClassVar[Signal] = "current"
    ACCEPTS: ClassVar[frozenset[str]] = frozenset({"spikes"})
    FIELD_WIDTHS: ClassVar[Mapping[str, str]] = _SYNAPSE_WIDTHS

    def __post_init__(self) -> None:
        super().__post_init__()
        n = self.name
        nwb = _int_scalar(n, "num_weight_bits", self.num_weight_bits, *_NWB)
        _set(self, "num_weight_bits", nwb)
        _set(self, "weight_exp", _int_scalar(n, "weight_exp", self.weight_exp, *_WEXP))
        w, mode = _weights_8(n, self.weights, 2, self.sign_mode, nwb)
        _set(self, "weights", w)
        _set(self, "sign_mode", mode)
        n_out, n_in = w.shape
        for fname, default, size in (("in_shape", (n_in,), n_in), ("out_shape", (n_out,), n_out)):
            shape = (
                default
                if getattr(self, fname) is None
                else _positive_shape(n, fname, getattr(self, fname))
            )
            if math.prod(shape) != size:
                raise NetworkValidationError(
                    n, fname, f"{shape} has {math.prod(shape)} elements, weights need {size}"
                )
            _set(self, fname, shape)

    @property
    def latency(self) -> int:
        return 1


@dataclass(frozen=True, kw_only=True, eq=False)
class ConvLayer(Layer):
    """Lava ``Conv`` (``PyConvModelFixed``), torch orientation: ``a = wrap_s24(conv2d(s, W_eff))``.

    ``weights`` int ``(C_out, C_in/groups, kH, kW)`` (torch cross-correlation), on the 8-bit grid
    of ``sign_mode``/``num_weight_bits`` exactly as Dense weights (Lava's Conv neither clips nor
    truncates, so the grid is enforced here). ``in_shape`` ``(C_in, H, W)``; ``stride``,
    ``padding`` (zeros), ``dilation`` as ``(y, x)`` pairs; the output is wrapped to signed 24
    bits (``fixed.wrap_s24``).

    ``weight_exp`` (signed 4-bit, default 0) scales the stored mantissas exactly:
    ``W_eff = weights · 2**weight_exp`` (:attr:`effective_weights`), which must be integers
    (with ``weight_exp < 0`` every weight is a multiple of ``2**−weight_exp``; validated), so it
    is the same whether applied to each weight or to the sum. Lava's Conv ignores its own
    ``weight_exp``: ``export.lava`` hands it ``W_eff``. It lets a conv carry the mantissa width
    Loihi stores (``num_weight_bits``) for weights that are not on the ``weight_exp = 0`` grid,
    e.g. a lava-dl netx conv (:mod:`hardware.lower.from_netx`).
    """

    weights: Any
    in_shape: tuple[int, int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    num_weight_bits: int = fixed.NUM_WEIGHT_BITS_MAX
    sign_mode: str | None = None
    weight_exp: int = 0

    KIND: ClassVar[str] = "conv"
    OUTPUT: ClassVar[Signal] = "current"
    ACCEPTS: ClassVar[frozenset[str]] = frozenset({"spikes"})
    FIELD_WIDTHS: ClassVar[Mapping[str, str]] = MappingProxyType(
        {
            "weights": "s9 (8-bit magnitude + sign)",
            "num_weight_bits": "u4 (1..8)",
            "weight_exp": "s4 (exact: weights · 2**weight_exp are integers)",
            "output": f"wrap s{fixed.CONV_OUT_BITS}",
        }
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        n = self.name
        nwb = _int_scalar(n, "num_weight_bits", self.num_weight_bits, *_NWB)
        _set(self, "num_weight_bits", nwb)
        w, mode = _weights_8(n, self.weights, 4, self.sign_mode, nwb)
        _set(self, "weights", w)
        _set(self, "sign_mode", mode)
        exp = _int_scalar(n, "weight_exp", self.weight_exp, *_WEXP)
        if exp < 0 and np.any(w.astype(np.int64) % (1 << -exp)):
            raise NetworkValidationError(
                n,
                "weight_exp",
                f"{exp}: weights must be multiples of {1 << -exp} so that weights · 2**weight_exp "
                "are integers (Lava's Conv takes the effective integers)",
            )
        _set(self, "weight_exp", exp)
        in_shape = _positive_shape(n, "in_shape", self.in_shape)
        if len(in_shape) != 3:
            raise NetworkValidationError(n, "in_shape", f"expected (C, H, W), got {in_shape}")
        _set(self, "in_shape", in_shape)
        for fname, lo in (("stride", 1), ("padding", 0), ("dilation", 1)):
            pair = _int_tuple(n, fname, getattr(self, fname), 2)
            if min(pair) < lo:
                raise NetworkValidationError(n, fname, f"{pair} must be ≥ {lo}")
            _set(self, fname, pair)
        groups = _int_scalar(n, "groups", self.groups, 1, 1 << 20, "≥ 1")
        _set(self, "groups", groups)
        c_out, c_in_g = w.shape[:2]
        if in_shape[0] != c_in_g * groups or c_out % groups:
            raise NetworkValidationError(
                n,
                "groups",
                f"C_in={in_shape[0]}, C_out={c_out}, kernel C_in/groups={c_in_g}, groups={groups}",
            )
        if min(self.out_shape[1:]) < 1:
            raise NetworkValidationError(n, "weights", f"empty output {self.out_shape}")

    @property
    def kernel_size(self) -> tuple[int, int]:
        return (int(self.weights.shape[2]), int(self.weights.shape[3]))

    @property
    def effective_weights(self) -> np.ndarray:
        """``weights · 2**weight_exp`` as int64 (exact, see the class doc): what Lava's Conv
        holds and what every simulator convolves with."""
        w = self.weights.astype(np.int64)
        return w << self.weight_exp if self.weight_exp >= 0 else w >> -self.weight_exp

    @property
    def out_shape(self) -> tuple[int, ...]:
        h, w = conv_out_hw(
            self.in_shape[1:], self.kernel_size, self.stride, self.padding, self.dilation
        )
        return (int(self.weights.shape[0]), h, w)

    @property
    def latency(self) -> int:
        return 1


@dataclass(frozen=True, kw_only=True, eq=False)
class TokenLinearLayer(Layer):
    """A linear layer shared by all tokens (Conv1d k=1): ``a[:, n] = (W @ s[:, n]) << weight_exp``.

    ``weights`` int ``(C_out, C_in)`` with the Dense fixed-point fields and grid; ``tokens`` N;
    input ``(C_in, N)``, output ``(C_out, N)``. Integer semantics equal a Lava Dense with weights
    ``kron(W, I_N)`` in the ``(C, N)`` C-order flattening; ``export.lava`` lowers it to the
    project's own process (which also carries edge delays). Latency 1.
    """

    weights: Any
    tokens: int
    num_weight_bits: int = fixed.NUM_WEIGHT_BITS_MAX
    weight_exp: int = 0
    sign_mode: str | None = None

    KIND: ClassVar[str] = "token_linear"
    OUTPUT: ClassVar[Signal] = "current"
    ACCEPTS: ClassVar[frozenset[str]] = frozenset({"spikes"})
    FIELD_WIDTHS: ClassVar[Mapping[str, str]] = _SYNAPSE_WIDTHS

    def __post_init__(self) -> None:
        super().__post_init__()
        n = self.name
        nwb = _int_scalar(n, "num_weight_bits", self.num_weight_bits, *_NWB)
        _set(self, "num_weight_bits", nwb)
        _set(self, "weight_exp", _int_scalar(n, "weight_exp", self.weight_exp, *_WEXP))
        _set(self, "tokens", _int_scalar(n, "tokens", self.tokens, 1, 1 << 30, "≥ 1"))
        w, mode = _weights_8(n, self.weights, 2, self.sign_mode, nwb)
        _set(self, "weights", w)
        _set(self, "sign_mode", mode)

    @property
    def in_shape(self) -> tuple[int, ...]:
        return (int(self.weights.shape[1]), self.tokens)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (int(self.weights.shape[0]), self.tokens)

    @property
    def latency(self) -> int:
        return 1


# ---------------------------------------------------------------------------------------------
# Extension ops (not neurocore synapses).
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, eq=False)
class AttentionLayer(Layer):
    """Spike × spike attention without softmax, integer-exact: ``P = Q·(KᵀV)`` per head.

    Input: one spike tensor ``(3·channels, tokens)`` holding q | k | v stacked along channels
    (rows ``[0, C)``, ``[C, 2C)``, ``[2C, 3C)``); head h uses channels ``[h·d, (h+1)·d)``,
    ``d = channels/heads``, of each. Per head ``M = K_hᵀ V_h`` (d × d, entries 0 … tokens) and
    ``P_h = Q_h M``; output current ``a = P << p_shift`` (wu), shape ``(channels, tokens)``.
    ``tokens ≤ 255`` so that M fits an 8-bit weight. ``qk_scale`` is the float model's factor
    (0.125): the consuming LIF folds it and 1/τ into its threshold, ``vth = θ·τ/qk_scale``
    (8 for θ = 0.5, τ = 2, p_shift 0), with ``bias_mant = 1, bias_exp = 0`` so that Loihi's
    ``v > vth << 6`` equals the float ``H ≥ θ`` exactly (T ≤ 7; for T > 7 set
    ``p_shift = T − 7`` and scale vth alike). Placement ``embedded`` (per-step weight writes).
    ``latency`` (default 1, like a synapse) is what the Lava process must implement.
    """

    channels: int
    tokens: int
    heads: int
    qk_scale: float = 0.125
    p_shift: int = 0
    latency: int = 1
    placement: Placement = "embedded"

    KIND: ClassVar[str] = "attention"
    OUTPUT: ClassVar[Signal] = "current"
    ACCEPTS: ClassVar[frozenset[str]] = frozenset({"spikes"})
    MAX_TOKENS: ClassVar[int] = (1 << fixed.WEIGHT_BITS) - 1

    def __post_init__(self) -> None:
        super().__post_init__()
        n = self.name
        _set(self, "channels", _int_scalar(n, "channels", self.channels, 1, 1 << 20, "≥ 1"))
        _set(
            self,
            "tokens",
            _int_scalar(
                n,
                "tokens",
                self.tokens,
                1,
                self.MAX_TOKENS,
                f"1..{self.MAX_TOKENS} (M entries fit 8 bits)",
            ),
        )
        _set(self, "heads", _int_scalar(n, "heads", self.heads, 1, self.channels, "1..channels"))
        if self.channels % self.heads:
            raise NetworkValidationError(
                n, "heads", f"{self.channels} channels not divisible by {self.heads} heads"
            )
        _set(self, "p_shift", _int_scalar(n, "p_shift", self.p_shift, 0, 16, "0..16"))
        _set(self, "latency", _int_scalar(n, "latency", self.latency, 0, 8, "0..8"))
        if not (isinstance(self.qk_scale, int | float) and self.qk_scale > 0):
            raise NetworkValidationError(
                n, "qk_scale", f"must be a positive float: {self.qk_scale!r}"
            )
        _set(self, "qk_scale", float(self.qk_scale))

    @property
    def in_shape(self) -> tuple[int, ...]:
        return (3 * self.channels, self.tokens)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (self.channels, self.tokens)


@dataclass(frozen=True, kw_only=True, eq=False)
class MaxPoolLayer(Layer):
    """Max-pool over integer currents ``(C, H, W)`` (BN folded before it; padding counts as −∞).

    ``kernel``, ``stride``, ``padding`` as ``(y, x)`` pairs (SpikeCLIP: 3, 2, 1); output size as
    torch. No neurocore computes a max: placement ``embedded`` or ``host``. ``latency``
    (default 0: the max is taken in the step the currents arrive) is what the Lava process must
    implement.
    """

    in_shape: tuple[int, int, int]
    kernel: tuple[int, int] = (3, 3)
    stride: tuple[int, int] = (2, 2)
    padding: tuple[int, int] = (1, 1)
    latency: int = 0
    placement: Placement = "embedded"

    KIND: ClassVar[str] = "maxpool"
    OUTPUT: ClassVar[Signal] = "current"
    ACCEPTS: ClassVar[frozenset[str]] = frozenset({"current"})

    def __post_init__(self) -> None:
        super().__post_init__()
        n = self.name
        in_shape = _positive_shape(n, "in_shape", self.in_shape)
        if len(in_shape) != 3:
            raise NetworkValidationError(n, "in_shape", f"expected (C, H, W), got {in_shape}")
        _set(self, "in_shape", in_shape)
        for fname, lo in (("kernel", 1), ("stride", 1), ("padding", 0)):
            pair = _int_tuple(n, fname, getattr(self, fname), 2)
            if min(pair) < lo:
                raise NetworkValidationError(n, fname, f"{pair} must be ≥ {lo}")
            _set(self, fname, pair)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel)):
            raise NetworkValidationError(n, "padding", "must be at most half the kernel (torch)")
        _set(self, "latency", _int_scalar(n, "latency", self.latency, 0, 8, "0..8"))

    @property
    def out_shape(self) -> tuple[int, ...]:
        h, w = conv_out_hw(self.in_shape[1:], self.kernel, self.stride, self.padding)
        return (self.in_shape[0], h, w)


@dataclass(frozen=True, kw_only=True, eq=False)
class ReadoutLayer(Layer):
    """Host readout of the residual stream: decode, token mean, time weights, head (float).

    Input: the summed currents ``a`` (wu) of its in-edges, shape ``in_shape`` = ``(D, N)``
    (tokens) or ``(D,)``. Per logical step t: ``X_t = a_t · input_scale + input_bias[:, None]``
    (float, ``input_bias`` ``(D,)``: the branches' BN shifts), ``x_t = mean over token_axis``
    (``None``: no mean), then ``feature = head_weight @ Σ_t time_weights[t]·x_t + head_bias``
    (``time_weights`` ``(T,)`` used raw, ``head_weight`` ``(D_out, D)``). A sink; placement host.
    """

    in_shape: tuple[int, ...]
    time_weights: Any
    head_weight: Any
    head_bias: Any
    input_scale: float
    input_bias: Any
    token_axis: int | None = 1
    placement: Placement = "host"

    KIND: ClassVar[str] = "readout"
    ACCEPTS: ClassVar[frozenset[str]] = frozenset({"current"})

    def __post_init__(self) -> None:
        super().__post_init__()
        n = self.name
        in_shape = _positive_shape(n, "in_shape", self.in_shape)
        _set(self, "in_shape", in_shape)
        if self.token_axis is not None:
            _set(
                self,
                "token_axis",
                _int_scalar(
                    n, "token_axis", self.token_axis, 1, len(in_shape) - 1, "an axis after channels"
                ),
            )
        tw = _float_array(n, "time_weights", self.time_weights, None)
        if tw.ndim != 1:
            raise NetworkValidationError(n, "time_weights", f"expected (T,), got {tw.shape}")
        _set(self, "time_weights", tw)
        hw = _float_array(n, "head_weight", self.head_weight, None)
        if hw.ndim != 2 or hw.shape[1] != in_shape[0]:
            raise NetworkValidationError(
                n, "head_weight", f"expected (D_out, {in_shape[0]}), got {hw.shape}"
            )
        _set(self, "head_weight", hw)
        _set(self, "head_bias", _float_array(n, "head_bias", self.head_bias, (hw.shape[0],)))
        _set(self, "input_bias", _float_array(n, "input_bias", self.input_bias, (in_shape[0],)))
        if not (isinstance(self.input_scale, int | float) and math.isfinite(self.input_scale)):
            raise NetworkValidationError(
                n, "input_scale", f"must be a finite float: {self.input_scale!r}"
            )
        _set(self, "input_scale", float(self.input_scale))

    @property
    def out_shape(self) -> tuple[int, ...]:
        return ()

    @property
    def latency(self) -> int:
        return 0


#: kind string → layer class (the serialization and dispatch table).
LAYER_TYPES: Mapping[str, type[Layer]] = MappingProxyType(
    {
        cls.KIND: cls
        for cls in (
            LIFLayer,
            SpikeInputLayer,
            CurrentInputLayer,
            HostInputLayer,
            DenseLayer,
            ConvLayer,
            TokenLinearLayer,
            AttentionLayer,
            MaxPoolLayer,
            ReadoutLayer,
        )
    }
)
