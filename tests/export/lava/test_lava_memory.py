"""The Lava stage's memory estimate (`export.lava.memory`), against array sizes counted by hand
on the residual hand network (`tests/_small_nets.residual_net`)."""

from __future__ import annotations

import numpy as np
import pytest
from _small_nets import residual_net

from export.lava import memory
from export.lava.graph import to_lava
from hardware.ir.layers import HostInputLayer, LIFLayer
from hardware.ir.network import Edge, LoihiNetwork
from spikeclip.errors import EXIT_MEMORY, InsufficientMemoryError
from spikeclip.memory import AvailableMemory

# residual_net, T = 3, as Lava processes (skip→lif2 carries the aligning 1-step delay):
#   in    RingBuffer   raster 3·2 per sample; output frame 2                        → 2
#   d1    Dense        weights 1×2 = 2; output 1                                     → 3
#   lif1  LIFReset     bias_mant 1, bias_exp 1; output 1; u, v 2                     → 5
#   d2    Dense        weights 1; output 1                                           → 2
#   skip  DelayDense   weights 2 + delays 2; delay line (1 + 1)·1                    → 6
#   lif2  LIFReset     as lif1                                                       → 5
#   recorder           ⌈2 neurons / 48⌉ = 1 word per step; B·3 + 2 (max depth) steps
FIXED = 2 + 3 + 5 + 2 + 6 + 5


@pytest.mark.parametrize("samples, steps", [(1, 5), (4, 14)])
def test_counts_every_array_of_the_hand_network(samples, steps):
    est = memory.estimate_lava_memory(to_lava(residual_net()), samples)
    assert est.processes == 7  # six layers + the spike recorder
    assert est.values == FIXED + samples * 3 * 2 + steps * 1
    assert est.array_bytes == 8 * est.values
    assert est.total_bytes == (512 << 20) + 6 * 8 * est.values


def test_refuses_with_exit_9_only_above_what_is_available():
    est = memory.estimate_lava_memory(to_lava(residual_net()), 1)
    enough = AvailableMemory(system=est.total_bytes)
    assert memory.check_lava_memory(est, what="x", available=enough) is enough
    with pytest.raises(InsufficientMemoryError, match=r"^m\.pt: stage lava: the Lava run needs "
                       r"about 512 MiB \(7 Lava processes") as err:
        memory.check_lava_memory(est, what="m.pt: stage lava",
                                 available=AvailableMemory(system=est.total_bytes - 1))
    assert err.value.exit_code == EXIT_MEMORY == 9


def test_rejects_no_samples():
    with pytest.raises(ValueError, match="n_samples"):
        memory.estimate_lava_memory(to_lava(residual_net()), 0)


def test_a_host_input_holds_a_mantissa_and_an_exponent_per_value_and_sample():
    # conv0 (1×1, 3 channels) on a 2×2 image → lif0: each streamed sample adds the injected
    # biases of its 3·2·2 = 12 neurons twice (BiasInjection's mant and exp), plus T = 4 steps
    # of one recorder word (⌈12 / 48⌉ = 1)
    net = LoihiNetwork(layers=(
        HostInputLayer(name="host", op="conv2d", weight=np.ones((3, 1, 1, 1)), bias=np.zeros(3),
                       in_shape=(1, 2, 2), bias_scale=64.0, bias_exp=3, exp_per_value=True),
        LIFLayer(name="lif0", shape=(3, 2, 2), du=4095, dv=2048, vth=64, bias_exp=3),
    ), edges=(Edge(src="host", dst="lif0"),), T=4)
    one, three = (memory.estimate_lava_memory(to_lava(net), b).values for b in (1, 3))
    assert three - one == 2 * (2 * 12) + 2 * 4 * 1
