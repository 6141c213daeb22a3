"""Put an image encoder's parameters on the Loihi grid of a :class:`QuantPlan`.

Why: after quantization the float model is only a proxy for the chip. It keeps weights the
hardware cannot hold, and its predictions differ from the integer network's wherever a rounding
error crosses a threshold: on the digits model, 6 of 450 test images, about as many as 2⁻⁸
relative weight noise changes in the float SNN itself. lava-dl's practice is that the trained
weights *are* the hardware weights (its blocks quantize in the forward pass). :func:`snap_to_grid`
does the same once, at the end of hardware-aware fine-tuning. It writes the fake-quant twin's
dequantized BN-folded weights (Ŵ = τ·w/s) and LIF biases (b̂ = τ·β/(64·s)) back into the
encoder's conv and BN parameters. The float model, the twin and the integer simulation then hold
one set of numbers.

How, per synapse node (the ``(conv, bn)`` pairs of
:func:`hardware.lower.from_torch.synapse_modules`, with the BN gain ``g = γ/√(σ² + ε)`` left as it
is):

- weights: ``conv.weight = Ŵ/g``, so folding gives Ŵ back;
- biases: a LIF's bias is the sum of its feeding synapses' BN shifts (the residual stream's
  in-LIFs sum every branch so far). LIFs are visited in graph order. Of each LIF's feeders, the
  first that no earlier LIF has fixed takes the snapped bias minus the others' shifts, through
  ``bn.bias``. The stream's last branch feeds only the host readout (float), so it keeps its
  bias.

Thresholds (:func:`snap_threshold`): Loihi fires on ``v > 64·vth``, the float model on
``H ≥ θ``; on the grid they differ exactly at ties, and float32 storage of the snapped values
(≤ 1 ulp) makes the float side of a tie a coin toss. The snapped model's ``v_threshold`` is
raised by :data:`TIE_OFFSET` (2⁻¹⁹: at most half a v-unit at the largest scale 2¹², far above
the float32 noise), so ``H ≥ θ`` fires on exactly the integer v Loihi fires on
(:func:`hardware.quantize.plan.vth_mantissa`); ``round(θ·s)`` is unchanged.

Left as they are (each measured by :mod:`hardware.fidelity.report`): the host-injected image current
(conv0 + BN on the host, rounded per sample to the 13-bit bias grid at each value's own
exponent), the attention LIF (exact already, DESIGN §5), and float32 storage of the snapped
values (≤ 1 ulp). Quantizing a snapped encoder with the same plan gives the same integers; the
tests check this.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor, nn

from hardware.lower.float_graph import FLIF
from hardware.lower.from_torch import bn_gain, fold_bn, graph_from_image_encoder, synapse_modules
from hardware.quantize.plan import QuantOptions, QuantPlan, current_feeders
from hardware.quantize.twin import fake_quantize
from spikeclip.model import SpikeCLIP

Pairs = list[tuple[nn.Module, nn.Module]]

MAX_LOG2_SCALE: int = QuantOptions.max_log2_scale
"""The largest scale the tie offset is sized for (``QuantOptions.max_log2_scale``'s default)."""
TIE_OFFSET = 2.0 ** -(MAX_LOG2_SCALE + 7)
"""What a snapped threshold sits above its grid value: ``64·s·TIE_OFFSET ≤ ½`` v-unit for every
scale ``s ≤ 2**MAX_LOG2_SCALE`` (module doc)."""


def tie_threshold(theta: float) -> float:
    """θ on the ``2**-MAX_LOG2_SCALE`` grid, plus :data:`TIE_OFFSET` (idempotent)."""
    grid = float(1 << MAX_LOG2_SCALE)
    return round(theta * grid) / grid + TIE_OFFSET


def snap_threshold(model: SpikeCLIP) -> SpikeCLIP:
    """A copy of ``model`` (eval mode, same parameters) whose ``v_threshold`` is
    :func:`tie_threshold` of its own (module doc). The attention threshold is left as it is:
    the attention LIF is exact, its tie rule built in (DESIGN §5)."""
    config = dataclasses.replace(model.config,
                                 v_threshold=tie_threshold(model.config.v_threshold))
    out = SpikeCLIP(config)
    out.load_state_dict(model.state_dict())
    return out.eval()


def _rows(pairs: Pairs) -> list[slice]:
    """Each pair's rows of the stacked synapse (its conv's output channels)."""
    out, start = [], 0
    for conv, _ in pairs:
        out.append(slice(start, start + conv.weight.shape[0]))
        start += conv.weight.shape[0]
    return out


def _shift(pairs: Pairs) -> Tensor:
    """The stacked BN-folded bias ``[C]`` (float64) of a synapse's pairs."""
    return torch.cat([fold_bn(conv, bn)[1] for conv, bn in pairs])


def _set_shift(pairs: Pairs, target: Tensor) -> None:
    """Set ``bn.bias`` so the folded bias of each pair equals its rows of ``target``."""
    for (conv, bn), rows in zip(pairs, _rows(pairs), strict=True):
        g = bn_gain(bn)
        b_conv = conv.bias.double() if conv.bias is not None else 0.0
        beta = target[rows] - g * b_conv + g * bn.running_mean.double()
        bn.bias.copy_(beta.to(bn.bias.dtype))


def _set_weight(pairs: Pairs, w_hat: Tensor) -> None:
    """Set each ``conv.weight`` so its folded weight equals its rows of ``w_hat``."""
    for (conv, bn), rows in zip(pairs, _rows(pairs), strict=True):
        g = bn_gain(bn).view(-1, *([1] * (conv.weight.dim() - 1)))
        conv.weight.copy_((w_hat[rows].reshape(conv.weight.shape) / g).to(conv.weight.dtype))


@torch.no_grad()
def snap_to_grid(encoder: nn.Module, plan: QuantPlan, prefix: str = "image_encoder") -> int:
    """Write ``plan``'s grid values into ``encoder`` (in place; see the module doc).

    ``plan`` must be one chosen for this encoder
    (:func:`hardware.quantize.image.plan_quantization`), with names under ``prefix``. Returns the
    number of synapse nodes snapped.
    """
    graph = graph_from_image_encoder(encoder, prefix)
    twin = fake_quantize(graph, plan)
    modules = synapse_modules(encoder, prefix)
    for name, pairs in modules.items():
        _set_weight(pairs, twin.node(name).weight.detach())
    fixed: set[str] = set()
    for node in graph.nodes:
        if not isinstance(node, FLIF) or node.role == "attention":
            continue
        feeders = [f for f in current_feeders(graph, node.name) if f in modules]
        free = [f for f in feeders if f not in fixed]
        if free:
            bias = twin.node(node.name).bias.detach()
            target = bias.reshape(bias.shape[0], -1)[:, 0]
            rest = sum((_shift(modules[f]) for f in feeders if f != free[0]),
                       torch.zeros_like(target))
            _set_shift(modules[free[0]], target - rest)
        fixed.update(feeders)
    return len(modules)
