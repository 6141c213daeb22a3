"""Conv1d, CubaLI and Delay NIR nodes in the foreign import (float executor) and what deploys.

References: sinabs 3.1.3's own run of a Conv1d network it exported (spike for spike); the NIR
1.0.8 equations of CubaLI (``nir/ir/neuron.py``: τ_syn İ = −I + w_in·S, τ_mem v̇ = (v_leak −
v) + R·I) stepped by forward Euler in a float64 loop written here; Delay (``nir/ir/delay.py``:
y(t) = x(t − τ)) by hand-derived sequences. Deployment: Conv1d lowers to a 2-D conv of height 1
and the simulator equals the fake-quant twin bit for bit; Delay and CubaLI have no integer layer
in this branch and are refused before quantizing (tests/export/cli/test_cli_foreign.py).
"""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch
from _foreign import nir_conv1d, raster, run_sinabs, sinabs_conv1d

from hardware.ir.layers import ConvLayer
from hardware.lower.float_graph import FLIF, FloatGraphError, FSynapse
from hardware.lower.from_foreign_nir import ForeignNIRError, float_graph_from_foreign
from hardware.lower.graph_run import run_graph
from hardware.quantize.image import quantize_graph
from hardware.quantize.twin import run_twin
from hardware.simulate.engine import simulate
from spikeclip.errors import EXIT_UNSUPPORTED

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _lif(shape, tau: float = 2e-3, r: float = 2.0) -> nir.LIF:
    return nir.LIF(tau=np.full(shape, tau), r=np.full(shape, r), v_leak=np.zeros(shape),
                   v_threshold=np.ones(shape))


# --------------------------------------------------------------------------------------- Conv1d


def test_conv1d_equals_sinabs_and_becomes_a_height_1_conv() -> None:
    T, B = 16, 32
    net, graph = sinabs_conv1d(batch=B)
    fg = float_graph_from_foreign(graph, T=T, convention="sinabs", reset="subtract")
    syn = fg.graph.node("1.syn")
    assert isinstance(syn, FSynapse) and syn.kind == "conv"
    assert syn.in_shape == (2, 1, 8) and syn.out_shape == (4, 1, 8)
    assert syn.weight.shape == (4, 2, 1, 3) and syn.padding == (0, 1)
    x = raster((2, 8), T, B, 0.3, seed=1)
    ref = run_sinabs(net, x)
    ours = run_graph(fg.graph, x.transpose(0, 1), compare=fg.graph.compare, keep_states=True)
    for i, s_ref in ref.items():
        s = ours.spikes[str(i)]
        assert s_ref.sum() > 0 and s.shape == s_ref.shape
        assert int((s != s_ref.double()).sum()) == 0, f"layer {i}"


def test_conv1d_deploys_and_the_simulator_equals_the_twin() -> None:
    """Measured: 38 of 8,192 (lif1) and 29 of 768 (lif2) neuron-steps differ from the float
    executor (the conv layer's scale is 128 where the same weights as a dense layer get 4096:
    conv weights have no weight exponent here, so the 2^7 bias grid is coarse); twin == sim."""
    T, B = 8, 32
    fg = float_graph_from_foreign(nir_conv1d(), T=T, dt=1e-3)
    x = raster((2, 10), T, B, 0.4, seed=1)
    net, _ = quantize_graph(fg.graph, x.transpose(0, 1))
    conv = net.layer("lif1.syn")
    assert isinstance(conv, ConvLayer) and conv.in_shape == (2, 1, 10)
    sim = simulate(net, x.numpy(), keep_states=True)
    twin = run_twin(net, x.transpose(0, 1), keep_states=True)
    flt = run_graph(fg.graph, x.transpose(0, 1), compare=">", keep_states=True)
    for name in ("lif1", "lif2"):
        s = np.asarray(sim.spikes[name])
        assert s.sum() > 0
        assert np.array_equal(twin.spikes[name].numpy(), s)
        assert (flt.spikes[name].numpy() != s).mean() < 0.05


# --------------------------------------------------------------------------------------- CubaLI


def test_cubali_follows_the_nir_equations() -> None:
    """Affine(4→5) → CubaLI (τ_syn 4 ms, τ_mem 2 ms, r 2, w_in 1.5) at dt = 1 ms, output v."""
    T, B, dt = 6, 8, 1e-3
    rng = np.random.default_rng(2)
    w, b = rng.normal(size=(5, 4)), rng.normal(size=5)
    tau_syn, tau_mem, r, w_in = 4e-3, 2e-3, 2.0, 1.5
    node = nir.CubaLI(tau_syn=np.full(5, tau_syn), tau_mem=np.full(5, tau_mem), r=np.full(5, r),
                      v_leak=np.zeros(5), w_in=np.full(5, w_in))
    g = nir.NIRGraph.from_list(nir.Input(np.array([4])), nir.Affine(weight=w, bias=b), node,
                               nir.Output(np.array([5])))
    fg = float_graph_from_foreign(g, T=T, dt=dt)
    x = raster((4,), T, B, 0.5, seed=3)  # [T, B, 4]
    run = run_graph(fg.graph, x.transpose(0, 1), keep_states=True)
    (li,) = [n for n in fg.graph.nodes if isinstance(n, FLIF)]
    i = torch.zeros(B, 5, dtype=torch.float64)
    v = torch.zeros(B, 5, dtype=torch.float64)
    want = []
    for t in range(T):
        s = x[t] @ torch.as_tensor(w).T + torch.as_tensor(b)
        i = i + dt / tau_syn * (-i + w_in * s)
        v = v + dt / tau_mem * (0.0 - v + r * i)
        want.append(v)
    assert torch.allclose(run.spikes[li.name], torch.stack(want), rtol=1e-12, atol=1e-12)


def test_cubali_with_a_leak_is_refused() -> None:
    node = nir.CubaLI(tau_syn=np.full(2, 4e-3), tau_mem=np.full(2, 2e-3), r=np.ones(2),
                      v_leak=np.full(2, 0.5))
    g = nir.NIRGraph.from_list(nir.Input(np.array([2])), node, nir.Output(np.array([2])))
    with pytest.raises(ForeignNIRError, match="node 'cubali'.*v_leak") as err:
        float_graph_from_foreign(g, T=2, dt=1e-3)
    assert err.value.exit_code == EXIT_UNSUPPORTED


# ---------------------------------------------------------------------------------------- Delay


def _delay_graph(delay_s, *, bias: float = 0.0) -> nir.NIRGraph:
    """Input(1) → Delay → Affine(w = 1, bias) → LI(τ = dt: H = X, stateless) → Output."""
    one = np.ones(1)
    return nir.NIRGraph.from_list(
        nir.Input(np.array([1])), nir.Delay(np.asarray(delay_s, dtype=float).reshape(1)),
        nir.Affine(weight=np.ones((1, 1)), bias=bias * one),
        nir.LI(tau=1e-3 * one, r=one, v_leak=0 * one), nir.Output(np.array([1])))


def test_delay_shifts_by_whole_steps() -> None:
    """Input 1, 0, 1, 1, 0 delayed 2 ms at dt = 1 ms: 0, 0, 1, 0, 1; bias 0.5 after the delay
    is the neuron's from t = 0: 0.5, 0.5, 1.5, 0.5, 1.5."""
    x = torch.tensor([1.0, 0, 1, 1, 0]).view(1, 5, 1)
    fg = float_graph_from_foreign(_delay_graph(2e-3, bias=0.5), T=5, dt=1e-3)
    (syn,) = [n for n in fg.graph.nodes if isinstance(n, FSynapse)]
    assert syn.delay == 2 and syn.meta["delay_nodes"] == ("delay",)
    run = run_graph(fg.graph, x, keep_states=True)
    assert run.spikes["li"].flatten().tolist() == [0.5, 0.5, 1.5, 0.5, 1.5]


def test_delays_in_a_conv_chain_add_up() -> None:
    """Input(1, 4, 4) → Delay(1) → Conv2d(1→2, 3×3) → Delay(2) → LI(τ = dt): one conv
    synapse 3 steps late; its output at t is the conv of the input at t − 3."""
    rng = np.random.default_rng(4)
    w = rng.normal(size=(2, 1, 3, 3))
    conv = nir.Conv2d(input_shape=(4, 4), weight=w, stride=1, padding=0, dilation=1, groups=1,
                      bias=np.zeros(2))
    g = nir.NIRGraph.from_list(
        nir.Input(np.array([1, 4, 4])), nir.Delay(np.full((1, 4, 4), 1e-3)), conv,
        nir.Delay(np.full((2, 2, 2), 2e-3)),
        nir.LI(tau=np.full((2, 2, 2), 1e-3), r=np.ones((2, 2, 2)), v_leak=np.zeros((2, 2, 2))),
        nir.Output(np.array([2, 2, 2])))
    fg = float_graph_from_foreign(g, T=6, dt=1e-3)
    (syn,) = [n for n in fg.graph.nodes if isinstance(n, FSynapse)]
    assert syn.kind == "conv" and syn.delay == 3
    x = torch.as_tensor(rng.random((2, 6, 1, 4, 4)))
    out = run_graph(fg.graph, x, keep_states=True).spikes["li"]  # [T, B, 2, 2, 2]
    want = torch.nn.functional.conv2d(x.flatten(0, 1), torch.as_tensor(w)).view(2, 6, 2, 2, 2)
    assert torch.all(out[:3] == 0)
    assert torch.allclose(out[3:], want.transpose(0, 1)[:3], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("delay_s, bias, reason", [
    (2.5e-3, 0.0, r"node 'delay'.*2\.5 steps.*not a whole"),
    (-1e-3, 0.0, r"node 'delay'.*not a whole, non-negative"),
])
def test_unrepresentable_delays_are_refused(delay_s, bias, reason) -> None:
    with pytest.raises(ForeignNIRError, match=reason) as err:
        float_graph_from_foreign(_delay_graph(delay_s, bias=bias), T=4, dt=1e-3)
    assert err.value.exit_code == EXIT_UNSUPPORTED


def test_per_element_delays_and_delayed_biases_are_refused() -> None:
    g = nir.NIRGraph.from_list(nir.Input(np.array([2])), nir.Delay(np.array([1e-3, 2e-3])),
                               _lif((2,)), nir.Output(np.array([2])))
    with pytest.raises(ForeignNIRError, match="node 'delay': delay differs between"):
        float_graph_from_foreign(g, T=4, dt=1e-3)
    g = nir.NIRGraph.from_list(nir.Input(np.array([2])),
                               nir.Affine(weight=np.eye(2), bias=np.ones(2)),
                               nir.Delay(np.full(2, 1e-3)), _lif((2,)), nir.Output(np.array([2])))
    with pytest.raises(ForeignNIRError, match="node 'delay': a Delay after a bias"):
        float_graph_from_foreign(g, T=4, dt=1e-3)


def test_a_delay_in_a_recurrent_loop_is_refused() -> None:
    g = nir.NIRGraph(
        nodes={"in": nir.Input(np.array([2])), "lif": _lif((2,)), "w": nir.Linear(np.eye(2)),
               "d": nir.Delay(np.full(2, 1e-3)), "out": nir.Output(np.array([2]))},
        edges=[("in", "lif"), ("lif", "w"), ("w", "d"), ("d", "lif"), ("lif", "out")])
    with pytest.raises(ForeignNIRError, match="node 'lif': a Delay in the recurrent loop"):
        float_graph_from_foreign(g, T=4, dt=1e-3)


def test_the_quantizer_refuses_a_delayed_synapse() -> None:
    """quantize_graph used to drop a NIR Delay silently when called directly (only the CLI
    refused it): the integer network fired at t where the float one fires at t + 1."""
    g = nir.NIRGraph.from_list(nir.Input(np.array([2])), nir.Delay(np.full(2, 1e-3)),
                               nir.Linear(np.eye(2) * 2.0), _lif((2,)), nir.Output(np.array([2])))
    fg = float_graph_from_foreign(g, T=4, dt=1e-3)
    x = raster(fg.graph.input_shape, 4, 8, 0.5, seed=0)
    refusal = r"node 'delay': a Delay of whole steps.*1 step\(s\) before synapse"
    with pytest.raises(FloatGraphError, match=refusal) as err:
        quantize_graph(fg.graph, x.transpose(0, 1))
    assert err.value.exit_code == EXIT_UNSUPPORTED
