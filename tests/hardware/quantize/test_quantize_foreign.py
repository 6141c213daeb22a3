"""Foreign NIR graphs through the quantizer: simulator vs the fake-quant twin (bit for bit) and
vs the float executor (the fidelity of the deployed network), and what the quantizer refuses.

Networks: `tests/_foreign.py`, 8 steps × 64 Bernoulli(0.3) samples, calibrated on the same
samples; the float executor runs with Loihi's strict ``>`` (its agreement with each framework's
own rule and run is tests/hardware/lower/test_foreign_nir.py). Loihi's decays are hand-derived
per layer: ``dv = round(4096/τ)``, ``du = round(4096/τ_syn) − 1`` (4095 without a synaptic
current), 0 for IF; reset by subtraction ``reset_sub = 64·vth·Δ/θ`` (Δ = θ for sinabs and
Rockpool, θ/β = 2θ for snnTorch's one-step-late default). Measured float-vs-simulator
differences (neuron-steps): the ``MEASURED`` table.
"""

from __future__ import annotations

import dataclasses

import nir
import numpy as np
import pytest
import torch
from _foreign import (
    export_to_nir,
    norse_mlp,
    quiet,
    raster,
    rockpool_mlp,
    sinabs_cnn,
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
from spikeclip.errors import EXIT_DOES_NOT_FIT, EXIT_UNSUPPORTED

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

T, B = 8, 64
#: sinabs' LIF τ_mem = 4 steps and Rockpool's τ = 4 ms at dt = 1 ms decay by exp(−1/4) per step
#: (FOREIGN.md): dv = round(4096·(1 − e^(−1/4))) = round(906.03) = 906 (du = 905 for τ_syn).
DV_EXP4 = 906


def synaptic_mlp_without_bias():
    """``snntorch_synaptic_mlp`` with the bias into the Synaptic layer zeroed (a constant current
    into a CUBA synapse has no Loihi encoding; the quantizer refuses it)."""
    net, _ = snntorch_synaptic_mlp()
    with torch.no_grad():
        net[0].bias.zero_()
    return net, quiet(export_to_nir, net, torch.zeros(1, 8), ignore_dims=[0])


def _two_lifs(tau1: float, tau2: float):
    """Input(2) → Linear → LIF(τ = tau1 steps) → Linear → LIF(τ = tau2 steps), dt = 1 s."""
    def lif(tau):
        return nir.LIF(tau=np.full(3, tau), r=np.ones(3), v_leak=np.zeros(3),
                       v_threshold=np.ones(3), v_reset=np.zeros(3))

    return None, nir.NIRGraph.from_list(
        nir.Input(np.array([2])), nir.Linear(np.full((3, 2), 0.75)), lif(tau1),
        nir.Linear(np.full((3, 3), 1.25)), lif(tau2), nir.Output(np.array([3])))


#: case → (network, NIR convention, reset rule, Loihi (du, dv) per LIF, reset_sub / (64·vth)).
NETS = {
    "snntorch-mlp": (lambda: snntorch_mlp(reset_mechanism="zero"), "snntorch", "zero",
                     [(4095, 2048)] * 2, None),
    "snntorch-cnn": (lambda: snntorch_cnn(reset_mechanism="zero"), "snntorch", "zero",
                     [(4095, 2048)] * 2, None),
    "norse-mlp": (norse_mlp, "norse", "zero", [(4095, 1024)] * 2, None),
    # snnTorch's default reset (subtract θ one step late: V = H − θ/β, β = 0.5).
    "snntorch-mlp-subtract": (snntorch_mlp, "snntorch", "subtract-delayed",
                              [(4095, 2048)] * 2, 2.0),
    "snntorch-cnn-subtract": (snntorch_cnn, "snntorch", "subtract-delayed",
                              [(4095, 2048)] * 2, 2.0),
    # CUBA: α = 0.75 → τ_syn = 4 (du = 1023), β = 0.5 → τ = 2 (dv = 2048).
    "snntorch-synaptic": (synaptic_mlp_without_bias, "snntorch", "subtract-delayed",
                          [(1023, 2048), (4095, 2048)], 2.0),
    "sinabs-mlp": (lambda: sinabs_mlp(batch=B), "sinabs", "subtract",
                   [(4095, 0), (4095, DV_EXP4)], 1.0),
    "sinabs-cnn": (lambda: sinabs_cnn(batch=B), "sinabs", "subtract", [(4095, 0)] * 2, 1.0),
    "rockpool-mlp": (rockpool_mlp, "rockpool", "subtract", [(DV_EXP4 - 1, DV_EXP4)] * 2, 1.0),
    # RLeaky: a recurrent Linear(12→12) from its spikes into its input, one step later.
    "snntorch-rleaky": (snntorch_recurrent, "snntorch", "subtract-delayed", [(4095, 2048)] * 2,
                        2.0),
    # Two time constants in one graph, and τ = 3: 4096/3 rounds to dv = 1365 (τ̂ = 3.0007).
    "nir-tau-2-and-3": (lambda: _two_lifs(2.0, 3.0), "nir", "zero", [(4095, 2048), (4095, 1365)],
                        None),
}
#: Measured float-vs-simulator differing neuron-steps (all layers; of 10,240 for the MLPs,
#: 133,632 for the CNNs, 8,192 for Rockpool and the Synaptic MLP, 3,072 for the NIR graph).
MEASURED: dict[str, int] = {
    "snntorch-mlp": 13, "snntorch-cnn": 144, "norse-mlp": 6, "snntorch-mlp-subtract": 18,
    "snntorch-cnn-subtract": 167, "snntorch-synaptic": 42, "sinabs-mlp": 19, "sinabs-cnn": 346,
    "rockpool-mlp": 43, "nir-tau-2-and-3": 0, "snntorch-rleaky": 24,
}


def _deployed(case: str):
    build, convention, reset, _, _ = NETS[case]
    _, graph = build()
    fg = float_graph_from_foreign(graph, T=T, convention=convention, reset=reset,
                                  dt=1.0 if convention == "nir" else None)
    x = raster(fg.graph.input_shape, T, B, 0.3, seed=1)  # [T, B, *shape]
    net, record = quantize_graph(fg.graph, x.transpose(0, 1))
    return fg.graph, net, record, x


@pytest.mark.parametrize("case", sorted(NETS))
def test_simulator_equals_twin_and_agrees_with_float(case: str) -> None:
    graph, net, record, x = _deployed(case)
    _, _, _, decays, sub = NETS[case]
    assert isinstance(net.layers[0], SpikeInputLayer)
    lifs = [ly for ly in net.layers if isinstance(ly, LIFLayer)]
    assert [(ly.du, ly.dv) for ly in lifs] == decays
    assert [ly.reset_sub for ly in lifs] == [
        None if sub is None else round(64 * ly.vth * sub) for ly in lifs]
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
    assert 0 < total and differ <= MEASURED[case], f"{case}: {differ} of {total} differ"


def test_recurrent_weights_are_the_exported_matrix_and_matter() -> None:
    """RLeaky's recurrent Linear W (12×12), gain r = 2 (β = 0.5), on the grid of the LIF's
    scale s: ``rec_weights·2^e = round(2·W·s/τ) = round(W·s)`` (τ = 2, within half a grid step);
    dropping the feedback changes the simulated spikes (the recurrence is exercised)."""
    net_t, _ = snntorch_recurrent()
    _, net, _, x = _deployed("snntorch-rleaky")
    lif = net.layer("1.lif")
    w = net_t[1].recurrent.weight.detach().double().numpy()
    s, e = lif.meta["scale"], lif.rec_weight_exp
    step = (2 if lif.rec_sign_mode == "mixed" else 1) * 2**e
    assert np.abs(lif.rec_weights * 2.0**e - w * s).max() <= step / 2 + 1e-9
    assert np.count_nonzero(lif.rec_weights) > 100
    plain = dataclasses.replace(net, layers=tuple(
        dataclasses.replace(ly, rec_weights=None) if ly.name == "1.lif" else ly
        for ly in net.layers))
    with_rec = simulate(net, x, keep_states=True).spikes["1.lif"]
    without = simulate(plain, x, keep_states=True).spikes["1.lif"]
    assert int((np.asarray(with_rec) != np.asarray(without)).sum()) > 100


def test_rounded_decays_are_recorded() -> None:
    """τ = 3 steps: the layer runs τ̂ = 4096/1365; its meta and the quantization record say so."""
    _, net, record, _ = _deployed("nir-tau-2-and-3")
    lif = net.layer("lif_1")
    assert lif.meta["rounded_decay"] == {"tau": 4096 / 1365, "tau_syn": None, "du": 4095,
                                         "dv": 1365}
    assert "rounded_decay" not in net.layer("lif").meta  # τ = 2: exact
    assert any("'lif_1'" in n and "1365" in n for n in record.notes), record.notes


def _refused(build, convention: str, reset: str, match: str) -> None:
    _, graph = build()
    fg = float_graph_from_foreign(graph, T=T, convention=convention, reset=reset,
                                  dt=1.0 if convention == "nir" else None)
    x = raster(fg.graph.input_shape, T, 4, 0.3, seed=1).transpose(0, 1)
    with pytest.raises(FloatGraphError, match=match) as err:
        quantize_graph(fg.graph, x)
    assert err.value.exit_code == EXIT_UNSUPPORTED


def test_cuba_neurons_with_a_bias_are_refused() -> None:
    _refused(snntorch_synaptic_mlp, "snntorch", "zero",
             r"neuron '1'.*bias\) into a synaptic current")


def test_tau_without_a_12_bit_decay_does_not_fit() -> None:
    """τ = 10,000 steps: 4096/τ rounds to dv = 0, which would be an integrator (exit 5)."""
    _, graph = _two_lifs(2.0, 10_000.0)
    fg = float_graph_from_foreign(graph, T=T, dt=1.0)
    x = raster((2,), T, 4, 0.5, seed=1).transpose(0, 1)
    with pytest.raises(QuantizationRangeError, match=r"lif_1.*τ = 10000 steps.*rounds to 0") as e:
        quantize_graph(fg.graph, x)
    assert e.value.exit_code == EXIT_DOES_NOT_FIT
