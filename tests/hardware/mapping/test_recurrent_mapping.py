"""A recurrent LIF's feedback synapse (``LIFLayer.rec_weights``) on the cores: a dense N×N
input from the population itself, counted by hand on a 2 → 3 network."""

from __future__ import annotations

from _tiny_recurrent import recurrent_net

from hardware.ir.network import LoihiNetwork
from hardware.mapping.kinds import layer_ops_per_image
from hardware.mapping.mapper import map_network
from hardware.mapping.profiles import load_target


def _lif_group(net: LoihiNetwork, target: str):
    mapping = map_network(net, load_target(target))
    return next(g for g in mapping.scenarios["optimistic"].groups if g.name == "lif")


def test_loihi1_group_stores_the_recurrent_synapses() -> None:
    # Input axons: 2 from fc's source + 3 fed back = 5; synapses 2·3 + 3·3 = 15 (dense).
    # Memory (nengo-loihi layout, 8-bit weights, one core of 3 neurons): each axon holds one
    # block of 3 synapses, 3·8 + 10 header = 34 → one 64-bit word: (2 + 3) axons × 64 = 320.
    # Output axons: the population's 3 neurons each reach its own one core = 3.
    g = _lif_group(recurrent_net(), "loihi1")
    assert g.inputs == ("fc", "lif:rec")
    assert g.sources == ("in", "lif")
    assert (g.input_axons, g.synapses) == (5, 15)
    assert g.demand["memory_bits"] == 320
    assert (g.demand["input_axons"], g.demand["output_axons"]) == (5, 3)
    plain = _lif_group(recurrent_net(rec=False), "loihi1")  # the same layer without feedback
    assert (plain.input_axons, plain.synapses, plain.demand["memory_bits"]) == (2, 6, 128)


def test_loihi2_group_counts_the_recurrent_input() -> None:
    g = _lif_group(recurrent_net(), "loihi2")
    assert (g.input_axons, g.synapses) == (5, 15)
    plain = _lif_group(recurrent_net(rec=False), "loihi2")
    assert g.stored_bits > plain.stored_bits


def test_dense_equivalent_ops_include_the_feedback() -> None:
    # (3 neuron updates + 3·3 recurrent synapse ops) × T = 4 steps.
    net = recurrent_net()
    assert layer_ops_per_image(net, net.layer("lif")) == 48
    assert layer_ops_per_image(recurrent_net(rec=False), recurrent_net(False).layer("lif")) == 12
