"""A recurrent LIF's feedback synapse in the energy counts: its synaptic events, dense ops and
ANN MACs, derived by hand on a 3-neuron population with a known spike train."""

from __future__ import annotations

import numpy as np
import pytest
from _tiny_recurrent import W_REC, recurrent_net

from hardware.energy.counts import recurrent_counts
from hardware.energy.errors import EnergyCountError
from hardware.energy.network_counts import count_network

#: Spikes [T = 4, 3] of the population (one sample).
SPIKES = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]])


def test_recurrent_sops_count_delivered_spikes_times_column_nonzeros() -> None:
    # Step t's spikes arrive at t + 1; the last step's reach no step of the sample.
    # t=0: 1·1 + 1·2 = 3; t=1: 1 (j=1); t=2: 1 + 1 = 2; t=3: not delivered → 6 SOPs.
    c = recurrent_counts(name="lif.rec", spikes=SPIKES[:, None], weights=W_REC)
    assert c.sop_exact == 6
    assert c.in_events == 5  # spikes of t = 0…2
    assert c.ann_macs == 9  # one RNN step: N·N = 3·3 per sample
    assert c.snn_dense_ops == 36  # 3·3 per step × 4 steps
    assert (c.samples, c.steps, c.weights) == (1, 4, 9)


def test_batch_summed_spikes_give_the_same_totals() -> None:
    # Two samples: the train above and its reverse in time; batch-summed [T, N] with B = 2.
    other = SPIKES[::-1]  # t=0: [0,0,1] → 2; t=1: [1,1,0] → 2; t=2: [0,1,0] → 1 → 5 SOPs
    per = recurrent_counts(name="r", spikes=np.stack([SPIKES, other], 1), weights=W_REC)
    summed = recurrent_counts(name="r", spikes=SPIKES + other, weights=W_REC, batch_summed=2)
    assert per.sop_exact == summed.sop_exact == 11
    assert per.ann_macs == summed.ann_macs == 18
    assert per.snn_dense_ops == summed.snn_dense_ops == 72


def test_weights_must_be_square_over_the_population() -> None:
    with pytest.raises(EnergyCountError, match="recurrent weights"):
        recurrent_counts(name="r", spikes=SPIKES[:, None], weights=np.ones((3, 2)))


def test_count_network_adds_the_feedback_synapse_as_a_layer() -> None:
    inp = np.array([[1, 1], [0, 1], [0, 0], [1, 0]])  # fc: 2 + 1 + 0 + 1 = 4 events × 3 outs
    counts = {c.name: c for c in count_network(recurrent_net(), {"in": inp, "lif": SPIKES},
                                               samples=1)}
    assert list(counts) == ["fc", "lif", "lif.rec"]
    assert counts["lif.rec"].sop_exact == 6
    assert counts["fc"].sop_exact == 12
    assert counts["lif"].spikes_out == 6
    plain = count_network(recurrent_net(rec=False), {"in": inp, "lif": SPIKES}, samples=1)
    assert [c.name for c in plain] == ["fc", "lif"]
