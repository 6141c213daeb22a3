"""Per-layer counts of a whole model from its recorded spikes (or from its structure alone).

Input contract (what a simulator result or forward hooks must provide): ``spikes`` maps the name
of every neuron layer of the `layer_specs` (e.g. ``image_encoder.tokenizer.lif0``,
``image_encoder.blocks.0.attn.q_lif``) to its output spikes, an integer/bool array
``[T, B, *out_shape]`` with ``out_shape`` as in the layer's `describe()` record (``(C, H, W)``
for tokenizer and MLP neurons, ``(C, N)`` for Q/K/V/attention neurons; channel = head·d + j).
A weight layer's input is its source neuron's output; dense-input layers (conv0, the head) need
no activity and run ``dense_runs`` times per sample (T: repeated each step; 1: hoisted).
With ``batch_summed=True`` the arrays are ``[T, *out_shape]`` spike counts summed over the
``samples`` samples (the simulator's ``SimResult.spike_counts``); the totals are identical, but
attention layers then raise (their AND-popcounts need per-sample Q/K/V spikes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from hardware.energy.counts import (
    LayerCounts,
    attention_counts,
    conv_counts,
    dense_counts,
    lif_counts,
    linear_counts,
    split_heads,
)
from hardware.energy.errors import EnergyCountError
from hardware.energy.structure import LayerSpec


def _spikes(
    spikes: Mapping[str, object], spec: LayerSpec, src: str, steps: int, samples: int
) -> np.ndarray:
    """Spikes of ``src`` as ``[T, B, *spec.in_shape]`` (a flatten such as (C,h,w)→(C,N) is ok).

    ``samples=0``: batch-summed ``[T, *spec.in_shape]``.
    """
    if src not in spikes:
        raise EnergyCountError(f"{spec.name}: no spikes recorded for its input layer {src!r}")
    a = np.asarray(spikes[src])
    lead = (steps, samples) if samples else (steps,)
    shape = (*lead, *spec.in_shape)
    if a.shape[: len(lead)] != lead or a.size != int(np.prod(shape, dtype=np.int64)):
        raise EnergyCountError(
            f"{spec.name}: spikes of {src!r} have shape {a.shape}, expected {shape}"
        )
    return a.reshape(shape)


def _dense(spec: LayerSpec, order: str, samples: int, steps: int, runs: int) -> LayerCounts:
    return dense_counts(
        name=spec.name,
        op=spec.op,
        macs_per_run=spec.macs_per_step(order),
        in_numel=int(np.prod(spec.in_shape, dtype=np.int64)),
        out_numel=int(np.prod(spec.out_shape, dtype=np.int64)),
        weights=spec.weights,
        samples=samples,
        steps=steps,
        runs_per_sample=runs,
        bias=spec.bias,
    )


def count_layer(
    spec: LayerSpec,
    spikes: Mapping[str, object],
    *,
    samples: int,
    steps: int,
    order: str = "q_ktv",
    dense_runs: int = 1,
    batch_summed: bool = False,
) -> LayerCounts:
    """`LayerCounts` of one layer from the recorded spikes (see the module docstring)."""
    if spec.dense_input:
        return _dense(spec, order, samples, steps, dense_runs)
    per = 0 if batch_summed else samples
    summed = samples if batch_summed else 0
    if spec.op == "attention":
        if batch_summed:
            raise EnergyCountError(
                f"{spec.name}: attention popcounts need per-sample Q/K/V spikes, not batch sums"
            )
        q, k, v = (split_heads(_spikes(spikes, spec, s, steps, per), spec.heads)
                   for s in spec.sources)  # fmt: skip
        return attention_counts(name=spec.name, q=q, k=k, v=v, order=order)
    if spec.op == "neuron":
        out = _spikes(spikes, spec, spec.name, steps, per)
        return lif_counts(name=spec.name, spikes=out, batch_summed=summed)
    x = _spikes(spikes, spec, spec.sources[0], steps, per)
    if spec.op == "linear":
        return linear_counts(name=spec.name, x=x, out_features=spec.out_shape[-1],
                             bias=spec.bias, batch_summed=summed)  # fmt: skip
    return conv_counts(
        name=spec.name, x=x, out_channels=spec.out_shape[0], kernel=spec.kernel,
        stride=spec.stride, padding=spec.padding, groups=spec.groups, bias=spec.bias,
        batch_summed=summed,
    )  # fmt: skip


def count_model(
    specs: Sequence[LayerSpec],
    spikes: Mapping[str, object],
    *,
    samples: int,
    steps: int,
    order: str = "q_ktv",
    dense_runs: int = 1,
    batch_summed: bool = False,
) -> list[LayerCounts]:
    """`count_layer` for every spec, in order."""
    return [
        count_layer(
            s,
            spikes,
            samples=samples,
            steps=steps,
            order=order,
            dense_runs=dense_runs,
            batch_summed=batch_summed,
        )  # fmt: skip
        for s in specs
    ]


def full_activity(specs: Sequence[LayerSpec], *, samples: int, steps: int) -> dict[str, np.ndarray]:
    """Every neuron spiking at every step (int8 ones): the dense upper bound of the counts."""
    return {
        s.name: np.ones((steps, samples, *s.out_shape), dtype=np.int8)
        for s in specs
        if s.op == "neuron"
    }


def record_float_spikes(
    root: torch.nn.Module, images: torch.Tensor, specs: Sequence[LayerSpec], *, prefix: str = ""
) -> dict[str, np.ndarray]:
    """Spikes of every neuron spec from one float forward of ``root`` on ``images`` (no grad).

    ``root`` is the module the spec names are relative to after stripping ``prefix`` (e.g. a
    `SpikeCLIP` with prefix ``""`` and names ``image_encoder.…``). Returns int8 arrays
    ``[T, B, *out_shape]``. This is the float model's activity, not the bit-accurate one.
    """
    recorded: dict[str, np.ndarray] = {}
    handles = []
    for spec in specs:
        if spec.op != "neuron":
            continue
        module = root.get_submodule(spec.name.removeprefix(prefix))

        def hook(_m, _inp, out, name=spec.name):
            recorded[name] = out.detach().to(torch.int8).numpy()

        handles.append(module.register_forward_hook(hook))
    was_training = root.training
    root.eval()
    try:
        with torch.no_grad():
            root(images)
    finally:
        root.train(was_training)
        for h in handles:
            h.remove()
    return recorded


def split_fused_qkv(spikes: Mapping[str, object], suffix: str = ".attn.qkv_lif") -> dict:
    """Rename a deployed network's fused Q|K|V neuron spikes to the model's three neuron layers.

    The lowered network (``hardware.lower.from_torch``) fuses ``q_lif``, ``k_lif``, ``v_lif`` into
    one ``….attn.qkv_lif`` of shape ``(3·D, h, w)`` (Q, K, V channel blocks in that order). Each
    such entry (``[T, B, 3D, h, w]`` or batch-summed ``[T, 3D, h, w]``) becomes
    ``….attn.q_lif`` / ``k_lif`` / ``v_lif`` of ``(D, h, w)``; other entries pass unchanged.
    """
    out: dict[str, object] = {}
    for name, value in spikes.items():
        if not name.endswith(suffix):
            out[name] = value
            continue
        a = np.asarray(value)
        if a.ndim < 4 or a.shape[-3] % 3:
            raise EnergyCountError(f"{name}: shape {a.shape} is not [..., 3·D, h, w]")
        base = name.removesuffix("qkv_lif")
        for part, block in zip(("q", "k", "v"), np.split(a, 3, axis=-3), strict=True):
            out[f"{base}{part}_lif"] = block
    return out


QKV_LEAVES = ("q_lif", "k_lif", "v_lif")


def spikes_from_simulator(
    spikes: Mapping[str, object], specs: Sequence[LayerSpec]
) -> dict[str, np.ndarray]:
    """Per-sample simulator spikes ``{lif: bool [T, B, *net_shape]}`` in the model's layout.

    The integer network keeps token layers as ``(C, N)`` and fuses Q|K|V into one
    ``….attn.qkv_lif`` of ``3·C`` channels (Q, K, V blocks in that order, channel axis 2). Each
    neuron spec of ``specs`` gets its array reshaped to ``[T, B, *spec.out_shape]`` (same element
    order: channels first, then tokens row-major). Raises `EnergyCountError` for a neuron the
    simulator did not record or a size that does not match.
    """
    out: dict[str, np.ndarray] = {}
    for spec in specs:
        if spec.op != "neuron":
            continue
        base, _, leaf = spec.name.rpartition(".")
        fused = f"{base}.qkv_lif"
        if spec.name in spikes:
            a = np.asarray(spikes[spec.name])
        elif leaf in QKV_LEAVES and fused in spikes:
            block = QKV_LEAVES.index(leaf)
            a = np.split(np.asarray(spikes[fused]), 3, axis=2)[block]
        else:
            raise EnergyCountError(f"{spec.name}: no spikes recorded by the simulator")
        want = int(np.prod(spec.out_shape))
        if a.ndim < 3 or int(np.prod(a.shape[2:])) != want:
            raise EnergyCountError(
                f"{spec.name}: simulator shape {a.shape} does not hold {spec.out_shape} per step"
            )
        out[spec.name] = a.reshape(*a.shape[:2], *spec.out_shape)
    return out
