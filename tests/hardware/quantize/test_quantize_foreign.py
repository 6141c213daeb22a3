"""Foreign NIR graphs through the quantizer: simulator vs the fake-quant twin (bit for bit) and
vs the float executor (the fidelity of the deployed network), and what the quantizer refuses.

Networks: `tests/_foreign.py` (snnTorch modules with ``reset_mechanism="zero"``, Loihi's reset;
Norse ``LIFBoxCell`` resets to zero by design), 8 steps × 64 Bernoulli(0.3) samples, calibrated
on the same samples. Measured float-vs-simulator agreement (neuron-steps): snnTorch MLP 6 + 7
differing of 10,240, CNN 131 + 13 of 133,632, Norse MLP 6 + 0 of 10,240 (≥ 99.9 % each).
"""

from __future__ import annotations

import nir
import numpy as np
import pytest
from _foreign import (
    norse_mlp,
    raster,
    sinabs_mlp,
    snntorch_cnn,
    snntorch_mlp,
    snntorch_recurrent,
    snntorch_synaptic_mlp,
)

from hardware.ir.layers import LIFLayer, SpikeInputLayer
from hardware.lower.float_graph import FloatGraphError
from hardware.lower.from_foreign_nir import float_graph_from_foreign
from hardware.lower.graph_run import run_graph
from hardware.quantize.image import quantize_graph
from hardware.quantize.plan import QuantizationRangeError
from hardware.quantize.twin import run_twin
from hardware.simulate.engine import simulate
from spikeclip.errors import EXIT_UNSUPPORTED

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

T, B = 8, 64
NETS = {
    "snntorch-mlp": (lambda: snntorch_mlp(reset_mechanism="zero"), "snntorch"),
    "snntorch-cnn": (lambda: snntorch_cnn(reset_mechanism="zero"), "snntorch"),
    "norse-mlp": (norse_mlp, "norse"),
}


def _deployed(case: str):
    build, convention = NETS[case]
    _, graph = build()
    fg = float_graph_from_foreign(graph, T=T, convention=convention, reset="zero")
    x = raster(fg.graph.input_shape, T, B, 0.3, seed=1)  # [T, B, *shape]
    net, record = quantize_graph(fg.graph, x.transpose(0, 1))
    return fg.graph, net, record, x


@pytest.mark.parametrize("case", sorted(NETS))
def test_simulator_equals_twin_and_agrees_with_float(case: str) -> None:
    graph, net, record, x = _deployed(case)
    assert isinstance(net.layers[0], SpikeInputLayer)
    lifs = [ly for ly in net.layers if isinstance(ly, LIFLayer)]
    assert [(ly.du, ly.dv) for ly in lifs] == [(4095, 4096 // int(graph.tau))] * len(lifs)
    sim = simulate(net, x, keep_states=True)
    twin = run_twin(net, x.transpose(0, 1), keep_states=True)
    flt = run_graph(graph, x.transpose(0, 1), compare=">", keep_states=True)
    differ = total = 0
    for ly in lifs:
        s = np.asarray(sim.spikes[ly.name])
        assert s.sum() > 0, f"{case} {ly.name}: silent"
        assert np.array_equal(twin.spikes[ly.name].numpy(), s)  # fake-quant twin: bit for bit
        differ += int((flt.spikes[ly.name].numpy() != s).sum())
        total += s.size
    assert 0 < total and differ / total < 2e-3, f"{case}: {differ} of {total} differ"


def _refused(build, convention: str, reset: str, match: str) -> None:
    _, graph = build()
    fg = float_graph_from_foreign(graph, T=T, convention=convention, reset=reset,
                                  dt=1.0 if convention == "nir" else None)
    x = raster(fg.graph.input_shape, T, 4, 0.3, seed=1).transpose(0, 1)
    with pytest.raises(FloatGraphError, match=match) as err:
        quantize_graph(fg.graph, x)
    assert err.value.exit_code == EXIT_UNSUPPORTED


def test_subtract_reset_is_refused_not_changed() -> None:
    _refused(snntorch_mlp, "snntorch", "subtract-delayed", r"neuron '1'.*reset by subtraction")


def test_recurrent_neurons_are_refused() -> None:
    _refused(lambda: snntorch_recurrent(), "snntorch", "zero", r"neuron '1.lif'.*recurrent")


def test_sinabs_integrators_are_refused() -> None:
    _refused(lambda: sinabs_mlp(batch=4), "sinabs", "zero", r"neuron '1'.*integrator")


def test_cuba_neurons_are_refused() -> None:
    _refused(snntorch_synaptic_mlp, "snntorch", "zero", r"neuron '1'.*synaptic current")


def _two_lifs(tau1: float, tau2: float):
    """Input(2) → Linear → LIF(τ = tau1 steps) → Linear → LIF(τ = tau2 steps), dt = 1 s."""
    def lif(tau):
        return nir.LIF(tau=np.full(3, tau), r=np.ones(3), v_leak=np.zeros(3),
                       v_threshold=np.ones(3), v_reset=np.zeros(3))

    return None, nir.NIRGraph.from_list(
        nir.Input(np.array([2])), nir.Linear(np.ones((3, 2))), lif(tau1),
        nir.Linear(np.ones((3, 3))), lif(tau2), nir.Output(np.array([3])))


def test_time_constants_must_be_shared() -> None:
    _refused(lambda: _two_lifs(2.0, 4.0), "nir", "zero", r"neuron 'lif_1'.*differs from the graph")


def test_tau_must_divide_4096() -> None:
    """dv = 4096/τ must be an integer: τ = 3 steps has none (exit 5, does not fit)."""
    _, graph = _two_lifs(3.0, 3.0)
    fg = float_graph_from_foreign(graph, T=T, dt=1.0)
    x = raster((2,), T, 4, 0.5, seed=1).transpose(0, 1)
    with pytest.raises(QuantizationRangeError, match="non-integer dv"):
        quantize_graph(fg.graph, x)
