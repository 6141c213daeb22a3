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

Left as they are (each measured by :mod:`hardware.fidelity.report`): the host-injected image current
(conv0 + BN on the host, rounded per sample to the 13-bit bias grid), the spike rule at exact
ties (float ≥, Loihi >), the attention LIF (exact already, DESIGN §5), and float32 storage of the
snapped values (≤ 1 ulp). Quantizing a snapped encoder with the same plan gives the same
integers; the tests check this.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hardware.lower.float_graph import FLIF
from hardware.lower.from_torch import bn_gain, fold_bn, graph_from_image_encoder, synapse_modules
from hardware.quantize.plan import QuantPlan, current_feeders
from hardware.quantize.twin import fake_quantize

Pairs = list[tuple[nn.Module, nn.Module]]


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
