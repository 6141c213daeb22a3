"""The LIF neuron of SpikeCLIP (one update rule) and the ANN twin's stand-in activation.

Membrane units are those of the layer input. Time is in steps; tensors are `[T, B, ...]`.
The update (forward Euler, "decay_input", v_reset = 0), per step t with V[-1] = 0:

    H[t] = V[t-1] + (X[t] - V[t-1]) / tau
    S[t] = 1 if H[t] >= θ else 0          (strict=True: H[t] > θ, Loihi's comparison)
    V[t] = H[t] · (1 - stopgrad(S[t]))    (hard reset to 0, detached reset)

Backward: dS/dH = α·σ(α(H-θ))·(1-σ(α(H-θ))) (sigmoid surrogate, α = 4 in the paper).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from spikeclip.config import SpikeCLIPConfig


class _SpikeFunction(torch.autograd.Function):
    """Heaviside of `u = H - θ` (`u >= 0`, or `u > 0` when strict) with the sigmoid surrogate."""

    @staticmethod
    def forward(ctx, u: Tensor, alpha: float, strict: bool) -> Tensor:
        ctx.save_for_backward(u)
        ctx.alpha = alpha
        return (u > 0).to(u.dtype) if strict else (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor, None, None]:
        (u,) = ctx.saved_tensors
        sig = torch.sigmoid(ctx.alpha * u)
        return grad_out * ctx.alpha * sig * (1.0 - sig), None, None


def spike_fn(u: Tensor, *, alpha: float = 4.0, strict: bool = False) -> Tensor:
    """Spikes (0./1. in u's dtype) from `u = H - θ`; gradient = sigmoid surrogate of slope α."""
    return _SpikeFunction.apply(u, alpha, strict)


def lif_step(
    v: Tensor,
    x: Tensor,
    *,
    tau: float,
    v_threshold: float,
    strict: bool = False,
    alpha: float = 4.0,
) -> tuple[Tensor, Tensor]:
    """One LIF step: THE update rule of the project's float model (see module docstring).

    v: membrane after the previous step's reset, x: input current of this step (same shape).
    Returns (spike, v_next), both of x's shape and dtype; spikes are 0./1.
    """
    h = v + (x - v) / tau
    spike = spike_fn(h - v_threshold, alpha=alpha, strict=strict)
    v_next = h * (1.0 - spike.detach())
    return spike, v_next


def lif_sequence(
    x: Tensor,
    *,
    tau: float,
    v_threshold: float,
    strict: bool = False,
    alpha: float = 4.0,
) -> tuple[Tensor, Tensor]:
    """Run `lif_step` over the leading time axis of `x [T, ...]` from V[-1] = 0.

    Returns (spikes [T, ...], v [T, ...]) where v[t] is the membrane after step t's reset.
    The only Python loop is over T; every neuron updates at once.
    """
    v = torch.zeros_like(x[0])
    spikes, voltages = [], []
    for x_t in x:
        s, v = lif_step(v, x_t, tau=tau, v_threshold=v_threshold, strict=strict, alpha=alpha)
        spikes.append(s)
        voltages.append(v)
    return torch.stack(spikes), torch.stack(voltages)


class MultiStepLIF(nn.Module):
    """Multi-step LIF on `[T, B, ...]` inputs; state starts at 0 on every call (no hidden state).

    Attributes: tau (steps), v_threshold (input units), strict (`>` instead of `>=`), alpha
    (surrogate slope). No parameters.
    """

    kind = "lif"

    def __init__(
        self,
        *,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        strict: bool = False,
        alpha: float = 4.0,
    ) -> None:
        super().__init__()
        self.tau = float(tau)
        self.v_threshold = float(v_threshold)
        self.strict = bool(strict)
        self.alpha = float(alpha)

    def forward(self, x: Tensor) -> Tensor:
        """Spikes `[T, B, ...]` (0./1., x's dtype) for input currents `x [T, B, ...]`."""
        return self.forward_with_voltage(x)[0]

    def forward_with_voltage(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(spikes, post-reset membrane), both `[T, B, ...]`."""
        return lif_sequence(
            x, tau=self.tau, v_threshold=self.v_threshold, strict=self.strict, alpha=self.alpha
        )

    def describe_attrs(self) -> dict[str, float | bool | str]:
        """Neuron parameters for `LayerRecord.attrs`."""
        return {
            "tau": self.tau,
            "v_threshold": self.v_threshold,
            "compare": ">" if self.strict else ">=",
            "v_reset": 0.0,
            "reset": "hard, detached",
            "decay_input": True,
            "discretization": "forward Euler, dt = 1 step",
        }

    def extra_repr(self) -> str:
        cmp = ">" if self.strict else ">="
        return f"tau={self.tau}, v_threshold={self.v_threshold}, fire when H {cmp} v_threshold"


class ANNActivation(nn.Module):
    """The ANN twin's stand-in for a LIF: ReLU, elementwise on `[T, B, ...]` (T = 1).

    Keeps `v_threshold` only so the twin's modules mirror the spiking ones; it is unused.
    """

    kind = "relu"

    def __init__(self, *, v_threshold: float = 1.0) -> None:
        super().__init__()
        self.v_threshold = float(v_threshold)

    def forward(self, x: Tensor) -> Tensor:
        """ReLU(x), same shape."""
        return torch.relu(x)

    def describe_attrs(self) -> dict[str, float | bool | str]:
        """Activation parameters for `LayerRecord.attrs` (none that matter)."""
        return {}


def make_neuron(config: SpikeCLIPConfig, *, v_threshold: float) -> MultiStepLIF | ANNActivation:
    """The neuron every encoder module builds: a LIF from `config`, or ReLU for the ANN twin."""
    if config.neuron == "ann":
        return ANNActivation(v_threshold=v_threshold)
    return MultiStepLIF(
        tau=config.tau,
        v_threshold=v_threshold,
        strict=config.strict_threshold,
        alpha=config.surrogate_alpha,
    )
