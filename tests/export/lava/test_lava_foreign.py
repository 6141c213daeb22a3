"""Foreign NIR networks deployed to Lava: the integer network from the quantizer (spike input,
dense and conv synapses with folded pooling, CUBA LIFs with biases) runs in Lava 0.10
(``fixed_pt``) and equals the bit-accurate simulator on every spike of every layer, 4 samples
of 8 steps streamed through one build (measured: ~1 s for the MLP, ~3 s for the CNN)."""

from __future__ import annotations

import pytest
from _foreign import nir_conv1d, norse_mlp, raster, snntorch_cnn, snntorch_mlp

from export.lava import compare_to_sim, run_lava, to_lava
from hardware.lower.from_foreign_nir import float_graph_from_foreign
from hardware.quantize.image import quantize_graph
from hardware.simulate.engine import simulate

pytestmark = [pytest.mark.lava, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

T = 8
NETS = {
    "snntorch-mlp": (lambda: snntorch_mlp(reset_mechanism="zero"), "snntorch"),
    "snntorch-cnn": (lambda: snntorch_cnn(reset_mechanism="zero"), "snntorch"),
    "norse-mlp": (norse_mlp, "norse"),
    "nir-conv1d": (lambda: (None, nir_conv1d()), "nir"),  # a conv of height 1 on (C, 1, L)
}


@pytest.mark.parametrize("case", sorted(NETS))
def test_simulator_equals_lava(case: str) -> None:
    build, convention = NETS[case]
    fg = float_graph_from_foreign(build()[1], T=T, convention=convention, reset="zero",
                                  dt=1e-3 if convention == "nir" else None)
    x = raster(fg.graph.input_shape, T, 32, 0.3, seed=1)
    net, _ = quantize_graph(fg.graph, x.transpose(0, 1))
    few = x[:, :4]
    sim = simulate(net, few, keep_states=True)
    cmp = compare_to_sim(run_lava(to_lava(net), few.numpy()), sim, net)
    assert cmp.equal, cmp
    assert set(cmp.spike_mismatches) == set(sim.spikes) and sum(
        int(s.sum()) for s in sim.spikes.values()) > 0
