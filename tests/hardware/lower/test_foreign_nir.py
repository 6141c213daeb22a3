"""`hardware.lower.from_foreign_nir`: foreign NIR graphs → FloatGraph, run by `graph_run`.

References: each framework's own simulation of the network it exported (snnTorch 1.0.0,
Norse 1.1.0, sinabs 3.1.3, Rockpool 3.1.0; `tests/_foreign.py`), compared spike for spike on
every neuron layer except at counted threshold ties (|H − θ| below 1e-5: float32 there vs
float64 here may round across θ); and hand-derived values for the node kinds no framework
exports (IF, Threshold, LI, Scale).
"""

from __future__ import annotations

import math

import nir
import numpy as np
import pytest
import torch
from _foreign import (
    norse_cnn,
    norse_mlp,
    raster,
    rockpool_mlp,
    run_norse,
    run_rockpool,
    run_sinabs,
    run_snntorch,
    sinabs_cnn,
    sinabs_mlp,
    snntorch_cnn,
    snntorch_mlp,
    snntorch_recurrent,
    snntorch_synaptic_mlp,
)

from hardware.lower.float_graph import FLIF, FSynapse
from hardware.lower.from_foreign_nir import ForeignNIRError, float_graph_from_foreign
from hardware.lower.graph_run import run_graph
from spikeclip.errors import EXIT_UNSUPPORTED, UsageError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

T, B = 16, 32


def fidelity(net, graph, run, *, convention: str, reset: str, rate: float = 0.3):
    """``[(layer, spikes, mismatches, ties)]`` for every neuron layer: the framework's run of
    ``net`` vs ours of ``graph`` on one Bernoulli raster."""
    fg = float_graph_from_foreign(graph, T=T, convention=convention, reset=reset)
    x = raster(fg.graph.input_shape, T, B, rate, seed=1)
    ref = run(net, x)
    ours = run_graph(fg.graph, x.transpose(0, 1), compare=fg.graph.compare, keep_states=True)
    lifs = [n for n in fg.graph.nodes if isinstance(n, FLIF)]
    assert len(lifs) == len(ref)
    rows = []
    for (_, s_ref), node in zip(sorted(ref.items()), lifs, strict=True):
        h = ours.v[node.name] + ours.spikes[node.name] * (node.reset_sub or 0.0)
        ties = int(((h - node.theta).abs() < 1e-5).sum())  # H near θ (post-reset v + reset)
        mism = int((ours.spikes[node.name] != s_ref.double()).sum())
        rows.append((node.name, int(s_ref.sum()), mism, ties))
    return rows


CASES = {
    # snnTorch's Leaky/Synaptic default: reset by subtraction one step late.
    "snntorch-mlp": (snntorch_mlp, run_snntorch, "snntorch", "subtract-delayed"),
    "snntorch-cnn": (snntorch_cnn, run_snntorch, "snntorch", "subtract-delayed"),
    "snntorch-synaptic": (snntorch_synaptic_mlp, run_snntorch, "snntorch", "subtract-delayed"),
    "norse-lifbox": (norse_mlp, run_norse, "norse", "zero"),
    "norse-lifcell": (lambda: norse_mlp(cuba=True), run_norse, "norse", "zero"),
    "norse-cnn": (norse_cnn, run_norse, "norse", "zero"),
    "snntorch-rleaky": (snntorch_recurrent, run_snntorch, "snntorch", "subtract-delayed"),
    "snntorch-rsynaptic": (lambda: snntorch_recurrent(kind="RSynaptic"), run_snntorch,
                           "snntorch", "subtract-delayed"),
    # sinabs: IAF and exponential LIF, SingleSpike (≥), reset by subtraction.
    "sinabs-mlp": (sinabs_mlp, run_sinabs, "sinabs", "subtract"),
    "sinabs-cnn": (sinabs_cnn, run_sinabs, "sinabs", "subtract"),
    # Rockpool: exact exponential decays, one spike per step at most, subtract reset.
    "rockpool-liftorch": (rockpool_mlp, run_rockpool, "rockpool", "subtract"),
    "rockpool-lifneuron": (lambda: rockpool_mlp(neuron="LIFNeuronTorch"), run_rockpool,
                           "rockpool", "subtract"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_float_executor_equals_the_framework(case: str) -> None:
    build, run, convention, reset = CASES[case]
    net, graph = build()
    rows = fidelity(net, graph, run, convention=convention, reset=reset)
    for name, spikes, mism, ties in rows:
        assert spikes > 0, f"{case} {name}: silent layer, the test would prove nothing"
        assert mism <= ties, f"{case} {name}: {mism} spikes differ, {ties} ties"
    assert sum(m for _, _, m, _ in rows) == 0  # measured: no ties on these seeds


def test_snntorch_zero_reset_modules_import_with_reset_zero() -> None:
    net, graph = snntorch_mlp(reset_mechanism="zero")
    rows = fidelity(net, graph, run_snntorch, convention="snntorch", reset="zero")
    assert all(m == 0 and s > 0 for _, s, m, _ in rows)


def test_the_reset_rule_matters() -> None:
    """The file cannot tell (v_reset = 0 always): importing snnTorch's default Leaky with the
    NIR reset-to-zero rule computes another network."""
    net, graph = snntorch_mlp()
    rows = fidelity(net, graph, run_snntorch, convention="snntorch", reset="zero")
    assert sum(m for _, _, m, _ in rows) > 100


def test_cnn_chain_becomes_one_conv_and_one_dense() -> None:
    """Conv → LIF → AvgPool → Flatten → Affine → LIF: the pool and flatten fold into the dense
    matrix, ``W'[o, (c, y, x)] = W[o, (c, y//2, x//2)]/4``; r = τ/dt = 2 (β = 0.5) on both."""
    net, graph = snntorch_cnn()
    fg = float_graph_from_foreign(graph, T=4, convention="snntorch", reset="subtract-delayed")
    syn = [n for n in fg.graph.nodes if isinstance(n, FSynapse)]
    assert [s.kind for s in syn] == ["conv", "dense"]
    conv_w = net[0].weight.detach().double()
    assert torch.allclose(syn[0].weight, 2 * conv_w, rtol=1e-12, atol=0)
    assert syn[0].padding == (1, 1) and syn[0].stride == (1, 1)
    w = net[4].weight.detach().double().view(5, 4, 4, 4)
    expect = w.repeat_interleave(2, 2).repeat_interleave(2, 3).reshape(5, 256) / 4 * 2
    assert torch.allclose(syn[1].weight, expect, rtol=1e-12, atol=0)
    lifs = [n for n in fg.graph.nodes if isinstance(n, FLIF)]
    assert torch.allclose(lifs[0].bias, 2 * net[0].bias.double().view(4, 1, 1).expand(4, 8, 8))
    assert [n.tau for n in lifs] == [2.0, 2.0] and lifs[0].reset_sub == 2.0  # θ/β


def test_conv_then_pool_fuses_into_one_strided_conv() -> None:
    """Input → Conv2d(3×3) → SumPool2d(2) → IF: one conv of kernel 3 + (2 − 1)·1 = 4, stride 2,
    equal to the two ops in sequence."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(2, 1, 3, 3))
    g = nir.NIRGraph.from_list(
        nir.Input(np.array([1, 6, 6])),
        nir.Conv2d(input_shape=(6, 6), weight=w, stride=1, padding=0, dilation=1, groups=1,
                   bias=np.zeros(2)),
        nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                      padding=np.array([0, 0])),
        nir.IF(r=np.ones((2, 2, 2)), v_threshold=np.ones((2, 2, 2)), v_reset=np.zeros((2, 2, 2))),
        nir.Output(np.array([2, 2, 2])),
    )
    fg = float_graph_from_foreign(g, T=1, dt=1.0)
    (syn,) = [n for n in fg.graph.nodes if isinstance(n, FSynapse)]
    assert syn.kind == "conv" and syn.weight.shape == (2, 1, 4, 4) and syn.stride == (2, 2)
    x = torch.as_tensor(rng.random((3, 1, 6, 6)))
    seq = torch.nn.functional.avg_pool2d(torch.nn.functional.conv2d(x, torch.as_tensor(w)), 2) * 4
    fused = torch.nn.functional.conv2d(x, syn.weight, stride=2)
    assert torch.allclose(fused, seq, rtol=1e-12, atol=1e-12)


def test_if_threshold_li_and_scale_by_hand() -> None:
    """Input(1) → Scale(2) → IF(r=1, θ=1.5, dt=0.5 s) and → Threshold(0.5), and Affine → LI.

    Input 1, 1, 1: IF gets dt·r·2 = 1 per step: H = 1, 2 (spike, V = 0), 1 → spikes 0, 1, 0.
    Threshold: H = 2 > 0.5 every step. LI(τ = 1 s = 2 steps, r = 1): X = 3·1 = 3,
    H = V + (3 − V)/2 = 1.5, 2.25, 2.625.
    """
    one = np.ones(1)
    g = nir.NIRGraph(
        nodes={
            "in": nir.Input(one.astype(int)), "scale": nir.Scale(2 * one),
            "if": nir.IF(r=one, v_threshold=1.5 * one, v_reset=0 * one),
            "thr": nir.Threshold(0.5 * one), "w": nir.Linear(3 * np.ones((1, 1))),
            "li": nir.LI(tau=one, r=one, v_leak=0 * one),
            "o1": nir.Output(one.astype(int)), "o2": nir.Output(one.astype(int)),
            "o3": nir.Output(one.astype(int)),
        },
        edges=[("in", "scale"), ("scale", "if"), ("scale", "thr"), ("in", "w"), ("w", "li"),
               ("if", "o1"), ("thr", "o2"), ("li", "o3")],
    )
    fg = float_graph_from_foreign(g, T=3, dt=0.5)
    assert fg.outputs == ("if", "thr", "li")
    run = run_graph(fg.graph, torch.ones(1, 3, 1), compare=">", keep_states=True)
    assert run.spikes["if"].flatten().tolist() == [0, 1, 0]
    assert run.spikes["thr"].flatten().tolist() == [1, 1, 1]
    assert run.spikes["li"].flatten().tolist() == [1.5, 2.25, 2.625]


def test_snntorch_recurrent_loop_becomes_the_neurons_recurrent_matrix() -> None:
    """RLeaky's ``recurrent`` Linear (β = 0.5: r = 2, τ = 2) → ``2·W_rec``, its bias → 2·b."""
    net, graph = snntorch_recurrent()
    fg = float_graph_from_foreign(graph, T=4, convention="snntorch", reset="subtract-delayed")
    lif = fg.graph.node("1.lif")
    rec = net[1].recurrent
    assert torch.allclose(lif.recurrent, 2 * rec.weight.double(), rtol=1e-12, atol=0)
    assert torch.allclose(lif.bias, 2 * (net[0].bias + rec.bias).double(), rtol=1e-6)


def test_loop_between_two_neurons_is_refused() -> None:
    one = np.ones(2)

    def lif():
        return nir.LIF(tau=2 * one, r=one, v_leak=0 * one, v_threshold=one, v_reset=0 * one)

    g = nir.NIRGraph(
        nodes={"in": nir.Input(np.array([2])), "a": lif(), "w": nir.Linear(np.eye(2)),
               "b": lif(), "back": nir.Linear(np.eye(2)), "out": nir.Output(np.array([2]))},
        edges=[("in", "a"), ("a", "w"), ("w", "b"), ("b", "back"), ("back", "a"), ("b", "out")],
    )
    with pytest.raises(ForeignNIRError, match=r"node '[ab]'.*self-recurrence only") as err:
        float_graph_from_foreign(g, T=4, dt=1.0)
    assert err.value.exit_code == EXIT_UNSUPPORTED


def _lif_graph(**over) -> nir.NIRGraph:
    n = 3
    p = {"tau": np.full(n, 2e-4), "r": np.ones(n), "v_leak": np.zeros(n),
         "v_threshold": np.ones(n), "v_reset": np.zeros(n)} | over
    return nir.NIRGraph.from_list(nir.Input(np.array([2])), nir.Linear(np.ones((n, 2))),
                                  nir.LIF(**p), nir.Output(np.array([n])))


@pytest.mark.parametrize("over, reason", [
    ({"v_reset": np.full(3, 0.5)}, "v_reset"),
    ({"tau": np.array([2e-4, 3e-4, 2e-4])}, "tau differs"),
    ({"v_threshold": np.array([1.0, 2.0, 1.0])}, "v_threshold differs"),
])
def test_unrepresentable_parameters_are_refused(over, reason) -> None:
    with pytest.raises(ForeignNIRError, match=reason):
        float_graph_from_foreign(_lif_graph(**over), T=2, dt=1e-4)


def test_unsupported_node_type_is_named() -> None:
    g = nir.NIRGraph.from_list(nir.Input(np.array([2])), nir.I(np.ones(2)),
                               nir.Output(np.array([2])))
    with pytest.raises(ForeignNIRError, match=r"node 'i'.*I is not supported"):
        float_graph_from_foreign(g, T=2, dt=1e-4)


def test_missing_dt_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="dt"):
        float_graph_from_foreign(_lif_graph(), T=2)
    fg = float_graph_from_foreign(_lif_graph(), T=2, dt=1e-4)  # τ = 2e-4/1e-4 = 2 steps
    assert [n.tau for n in fg.graph.nodes if isinstance(n, FLIF)] == [2.0]
    assert math.isclose(fg.dt, 1e-4)
