"""An LI output (NIR ``LI``: a leaky integrator that never spikes) through the quantizer and
the bit-accurate simulator: a Loihi LIF whose threshold mantissa is ``VTH_MAX`` (never reached:
calibration keeps |v|·margin ≤ 64·VTH_MAX), its membrane v recorded as the network's output.

References (independent of the quantizer): the LI's equations in float64 driven by the
simulator's own spikes of the layer below — with the integer layer's weights (the decay's
truncation bounds the difference, derived below) and with the file's float weights (8-bit weight
grid; measured)."""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch
from _foreign import raster

from hardware.ir import fixed
from hardware.lower.float_graph import FloatGraphError
from hardware.lower.from_foreign_nir import float_graph_from_foreign
from hardware.quantize.image import quantize_graph
from hardware.simulate.engine import simulate
from spikeclip.errors import EXIT_UNSUPPORTED

T, B = 8, 16


def _graph(*, feed_lif: bool = False, cuba: bool = False) -> nir.NIRGraph:
    """Input(4) → Affine → LIF(τ 2 ms, r 2, θ 1) → Linear → LI(τ 4 ms, r 4) [→ Linear → LIF],
    dt = 1 ms: τ = 2 and 4 steps; ``cuba``: a CubaLI(τ_syn 2 ms, w_in 2, τ_mem 4 ms, r 4)."""
    rng = np.random.default_rng(0)

    def lif(n: int):
        return nir.LIF(tau=np.full(n, 2e-3), r=np.full(n, 2.0), v_leak=np.zeros(n),
                       v_threshold=np.ones(n), v_reset=np.zeros(n))

    nodes = [nir.Input(np.array([4])), nir.Affine(rng.normal(0, 1, (6, 4)), np.zeros(6)), lif(6),
             nir.Linear(rng.normal(0, 1, (3, 6))),
             nir.CubaLI(tau_syn=np.full(3, 2e-3), tau_mem=np.full(3, 4e-3), r=np.full(3, 4.0),
                        v_leak=np.zeros(3), w_in=np.full(3, 2.0)) if cuba else
             nir.LI(tau=np.full(3, 4e-3), r=np.full(3, 4.0), v_leak=np.zeros(3))]
    if feed_lif:
        nodes += [nir.Linear(np.ones((2, 3))), lif(2)]
    return nir.NIRGraph.from_list(*nodes, nir.Output(np.array([2 if feed_lif else 3])))


def _deployed(*, cuba: bool = False):
    g = _graph(cuba=cuba)
    fg = float_graph_from_foreign(g, T=T, convention="nir", reset="zero", dt=1e-3)
    x = raster((4,), T, B, 0.4, seed=1)  # [T, B, 4]
    net, _ = quantize_graph(fg.graph, x.transpose(0, 1))
    return g, net, simulate(net, x, keep_states=True)


def _li_reference(weight: torch.Tensor, spikes: np.ndarray) -> np.ndarray:
    """``H[t] = H[t−1] + (r·W·s[t] − H[t−1])/τ`` (NIR LI, forward Euler, τ = 4, r = 4), float64."""
    s = torch.tensor(spikes, dtype=torch.float64)
    h = torch.zeros(s.shape[1], weight.shape[0], dtype=torch.float64)
    out = []
    for t in range(s.shape[0]):
        h = h + (4.0 * s[t] @ weight.T - h) / 4.0
        out.append(h)
    return torch.stack(out).numpy()


def test_li_is_a_lif_that_never_fires() -> None:
    _, net, sim = _deployed()
    li = net.layer("li")
    assert (li.vth, li.du, li.dv) == (fixed.VTH_MAX, 4095, 1024)  # dv = 4096/τ, no current
    assert li.meta["role"] == "li" and li.meta["theta"] == "inf"
    assert int(np.asarray(sim.spikes["li"]).sum()) == 0
    v = np.asarray(sim.v["li"])
    assert 0 < np.abs(v).max() <= fixed.VTH_MAX << fixed.ACT_SHIFT
    assert int(np.asarray(sim.spikes["lif"]).sum()) > 0


def test_li_membrane_follows_its_equations_on_the_integer_weights() -> None:
    """With the integer weights (wu) the only difference is the decay's truncation toward zero,
    < 1 v-unit per step, carried with factor 1 − dv/4096 = 3/4: |e| < Σ (3/4)^k = 4 v-units."""
    _, net, sim = _deployed()
    syn = net.layer("li.syn")
    # Loihi: v ← trunc0(v·3/4) + 64·a, a = W·s·2^e wu; the reference adds r·I/τ = I per step.
    w_v = torch.tensor(np.asarray(syn.weights, np.float64) * 2.0**syn.weight_exp * 64)
    ref = _li_reference(w_v, np.asarray(sim.spikes["lif"]))
    err = np.abs(ref - np.asarray(sim.v["li"], np.float64))
    assert err.max() < 4.0, err.max()
    assert np.abs(ref).max() > 1e5  # a real signal (|v| up to ~10⁶ v-units here)


def test_li_membrane_decodes_to_the_float_li() -> None:
    """Decoded ``v/(64·s)`` against the LI of the file's float weights on the same spikes: the
    8-bit weight grid's error, measured 0.0274 of max |H| 3.66 (0.75 %)."""
    g, net, sim = _deployed()
    s = net.layer("li").meta["scale"]
    ref = _li_reference(torch.tensor(np.asarray(g.nodes["linear"].weight)),
                        np.asarray(sim.spikes["lif"]))
    err = np.abs(ref - np.asarray(sim.v["li"], np.float64) / (fixed.V_PER_WU * s))
    assert err.max() <= 0.03 and np.abs(ref).max() > 3.0


def test_cubali_membrane_decodes_to_the_float_cubali() -> None:
    """CubaLI: ``I ← I + (w_in·W·s − I)/τ_syn``, then ``v ← v + (r·I − v)/τ_mem`` (NIR, forward
    Euler with the new current) in float64 on the simulator's spikes; Loihi ``du = 2047``
    (4096/2 − 1), ``dv = 1024``, never fires; measured 0.0444 of max |v| 5.57 (0.8 %)."""
    g, net, sim = _deployed(cuba=True)
    li = net.layer("cubali")
    assert (li.vth, li.du, li.dv) == (fixed.VTH_MAX, 2047, 1024)
    assert int(np.asarray(sim.spikes["cubali"]).sum()) == 0
    w = torch.tensor(np.asarray(g.nodes["linear"].weight))
    spikes = torch.tensor(np.asarray(sim.spikes["lif"]), dtype=torch.float64)
    i = v = torch.zeros(B, 3, dtype=torch.float64)
    ref = []
    for t in range(T):
        i = i + (2.0 * spikes[t] @ w.T - i) / 2.0
        v = v + (4.0 * i - v) / 4.0
        ref.append(v)
    dec = np.asarray(sim.v["cubali"], np.float64) / (fixed.V_PER_WU * li.meta["scale"])
    err = np.abs(torch.stack(ref).numpy() - dec)
    assert err.max() <= 0.05 and np.abs(dec).max() > 5.0


def test_an_li_feeding_other_nodes_is_refused() -> None:
    fg = float_graph_from_foreign(_graph(feed_lif=True), T=T, convention="nir", reset="zero",
                                  dt=1e-3)
    x = raster((4,), T, 4, 0.4, seed=1).transpose(0, 1)
    with pytest.raises(FloatGraphError, match=r"neuron 'li'.*graded output feeds") as err:
        quantize_graph(fg.graph, x)
    assert err.value.exit_code == EXIT_UNSUPPORTED
