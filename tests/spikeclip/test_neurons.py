"""The LIF update rule, checked against sequences derived by hand."""

from __future__ import annotations

import math

import torch

from spikeclip.config import SpikeCLIPConfig
from spikeclip.neurons import ANNActivation, MultiStepLIF, lif_step, make_neuron


def _run(x, **kw):
    return MultiStepLIF(**kw).forward_with_voltage(torch.tensor(x, dtype=torch.float64))


def test_hand_derived_sequence_with_equality_case():
    # τ = 2, θ = 1, H = V + (X − V)/2, spike if H ≥ 1, then V = 0:
    # t0: H = 0 + (1 − 0)/2 = 0.5            → s 0, V 0.5
    # t1: H = 0.5 + (1.5 − 0.5)/2 = 1.0      → s 1 (H == θ fires), V 0
    # t2: H = 0 + 0.5/2 = 0.25               → s 0, V 0.25
    # t3: H = 0.25 + (2 − 0.25)/2 = 1.125    → s 1, V 0
    # t4: H = 0 + 0.25/2 = 0.125             → s 0, V 0.125
    s, v = _run([1.0, 1.5, 0.5, 2.0, 0.25], tau=2.0, v_threshold=1.0)
    assert s.tolist() == [0.0, 1.0, 0.0, 1.0, 0.0]
    assert v.tolist() == [0.5, 0.0, 0.25, 0.0, 0.125]


def test_strict_variant_does_not_fire_on_equality():
    # same input, spike only if H > 1:
    # t1: H = 1.0 → no spike, V 1.0;  t2: H = 1 + (0.5 − 1)/2 = 0.75
    # t3: H = 0.75 + (2 − 0.75)/2 = 1.375 → s 1, V 0;  t4: H = 0.125
    s, v = _run([1.0, 1.5, 0.5, 2.0, 0.25], tau=2.0, v_threshold=1.0, strict=True)
    assert s.tolist() == [0.0, 0.0, 0.0, 1.0, 0.0]
    assert v.tolist() == [0.5, 1.0, 0.75, 0.0, 0.125]


def test_attention_threshold_half():
    # θ = 0.5: t0 H = 1/2 = 0.5 ≥ 0.5 → s 1, V 0;  t1 H = 0;  t2 H = 0.5/2 = 0.25
    # t3 H = 0.25 + (0.5 − 0.25)/2 = 0.375;  t4 H = 0.375 + (1 − 0.375)/2 = 0.6875 → s 1, V 0
    s, v = _run([1.0, 0.0, 0.5, 0.5, 1.0], tau=2.0, v_threshold=0.5)
    assert s.tolist() == [1.0, 0.0, 0.0, 0.0, 1.0]
    assert v.tolist() == [0.0, 0.0, 0.25, 0.375, 0.0]


def test_neurons_are_independent_in_one_vectorized_call():
    # [T=2, B=1, 3 neurons]: each column follows its own hand-derived sequence
    # col 0: x 2, 0 → H 1 (s1, V0), then H 0;   col 1: x 0.5, 3 → H .25, then 1.625 (s1)
    # col 2: x −2, 0 → H −1 (no spike, V −1), then H −0.5
    x = torch.tensor([[[2.0, 0.5, -2.0]], [[0.0, 3.0, 0.0]]])
    s, v = MultiStepLIF().forward_with_voltage(x)
    assert s.tolist() == [[[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]]]
    assert v.tolist() == [[[0.0, 0.25, -1.0]], [[0.0, 0.0, -0.5]]]


def test_sigmoid_surrogate_gradient_alpha_4():
    # t0 only: H = x/2, u = H − 1; dS/dx = α σ(αu)(1 − σ(αu)) · 1/2, α = 4, x = 1 → u = −0.5
    x = torch.tensor([[1.0]], dtype=torch.float64, requires_grad=True)
    MultiStepLIF(v_threshold=1.0).forward(x).sum().backward()
    sig = 1.0 / (1.0 + math.exp(2.0))  # σ(4 · −0.5)
    assert math.isclose(x.grad.item(), 4.0 * sig * (1.0 - sig) * 0.5, rel_tol=1e-12)


def test_reset_is_detached():
    # x0 = 2 → H0 = 1 fires, V0 = H0 (1 − stopgrad(S0)) = 0 ⇒ dV0/dx0 = 0.5 · (1 − 1) = 0.
    # S1 depends on x0 only through V0, so dS1/dx0 must be exactly 0 (a non-detached reset
    # would give −H0 · dS0/dx0 · 1/2 · surrogate(u1) ≠ 0).
    x = torch.tensor([2.0, 0.0], dtype=torch.float64, requires_grad=True)
    s = MultiStepLIF().forward(x)
    s[1].backward()
    assert x.grad.tolist() == [0.0, 0.5 * 4.0 * _dsig(4.0 * (0.0 - 1.0))]


def _dsig(z: float) -> float:
    sig = 1.0 / (1.0 + math.exp(-z))
    return sig * (1.0 - sig)


def test_lif_step_is_the_single_rule():
    spike, v_next = lif_step(torch.tensor([0.5]), torch.tensor([1.5]), tau=2.0, v_threshold=1.0)
    assert spike.tolist() == [1.0] and v_next.tolist() == [0.0]
    spike, v_next = lif_step(
        torch.tensor([0.5]), torch.tensor([1.5]), tau=2.0, v_threshold=1.0, strict=True
    )
    assert spike.tolist() == [0.0] and v_next.tolist() == [1.0]


def test_make_neuron_follows_config():
    lif = make_neuron(SpikeCLIPConfig(strict_threshold=True), v_threshold=0.5)
    assert isinstance(lif, MultiStepLIF)
    assert (lif.tau, lif.v_threshold, lif.strict, lif.alpha) == (2.0, 0.5, True, 4.0)
    act = make_neuron(SpikeCLIPConfig(neuron="ann", T=1), v_threshold=0.5)
    assert isinstance(act, ANNActivation)
    assert act(torch.tensor([-1.0, 0.25, 3.0])).tolist() == [0.0, 0.25, 3.0]
