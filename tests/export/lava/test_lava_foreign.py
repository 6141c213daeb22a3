"""Foreign NIR networks deployed to Lava: the integer network from the quantizer (spike input,
dense and conv synapses with folded pooling, CUBA LIFs with biases; IF neurons, a synaptic
current, rounded decays, reset by subtraction in the project's ``LIFResetSub``, recurrence
through the project's ``RecurrentDense``: one step late, silent at each sample's first step)
runs in Lava 0.10 (``fixed_pt``) and equals the bit-accurate simulator on every spike of every
layer, 4 samples of 8 steps streamed through one build (measured: ~1 s for an MLP, ~3 s for a
CNN)."""

from __future__ import annotations

import pytest
from _foreign import (
    nir_conv1d,
    norse_cnn,
    norse_mlp,
    raster,
    rockpool_mlp,
    sinabs_cnn,
    sinabs_mlp,
    snntorch_cnn,
    snntorch_mlp,
    snntorch_recurrent,
)

from export.lava import compare_to_sim, run_lava, to_lava
from hardware.lower.from_foreign_nir import float_graph_from_foreign
from hardware.quantize.image import quantize_graph
from hardware.simulate.engine import simulate

pytestmark = [pytest.mark.lava, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

T = 8
NETS = {
    "snntorch-mlp": (lambda: snntorch_mlp(reset_mechanism="zero"), "snntorch", "zero"),
    "snntorch-cnn": (lambda: snntorch_cnn(reset_mechanism="zero"), "snntorch", "zero"),
    "norse-mlp": (norse_mlp, "norse", "zero"),
    "norse-cnn": (norse_cnn, "norse", "zero"),
    "snntorch-mlp-subtract": (snntorch_mlp, "snntorch", "subtract-delayed"),
    "sinabs-mlp": (lambda: sinabs_mlp(batch=32), "sinabs", "subtract"),
    "sinabs-cnn": (lambda: sinabs_cnn(batch=32), "sinabs", "subtract"),
    "rockpool-mlp": (rockpool_mlp, "rockpool", "subtract"),
    "nir-conv1d": (lambda: (None, nir_conv1d()), "nir", "zero"),  # a conv of height 1 on (C, 1, L)
    "snntorch-rleaky": (snntorch_recurrent, "snntorch", "subtract-delayed"),
}


@pytest.mark.parametrize("case", sorted(NETS))
def test_simulator_equals_lava(case: str) -> None:
    build, convention, reset = NETS[case]
    fg = float_graph_from_foreign(build()[1], T=T, convention=convention, reset=reset,
                                  dt=1e-3 if convention == "nir" else None)
    x = raster(fg.graph.input_shape, T, 32, 0.3, seed=1)
    net, _ = quantize_graph(fg.graph, x.transpose(0, 1))
    few = x[:, 24:28]  # 4 samples where every layer of every case spikes (output layers rarely)
    sim = simulate(net, few, keep_states=True)
    cmp = compare_to_sim(run_lava(to_lava(net), few.numpy()), sim, net)
    assert cmp.equal, cmp
    assert set(cmp.spike_mismatches) == set(sim.spikes)
    counts = [int(s.sum()) for s in sim.spikes.values()]
    # Norse's τ = 4-step output layer stays silent for 8 steps on every sample here.
    assert all(counts) or (case == "norse-mlp" and counts[0] > 0), counts
