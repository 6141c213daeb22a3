"""What each framework's own NIR exporter writes: the facts export/nir/FOREIGN.md records.

Each test builds a small network in snnTorch 1.0.0, Norse 1.1.0, sinabs 3.1.3 or Rockpool 3.1.0,
exports it with the framework's exporter and asserts node types and parameter conventions
against the framework module's own parameters (β, τ⁻¹, dt, …), so that a new release that
changes them fails here and the document is updated with it.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import nir
import numpy as np
import pytest
import torch

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Norse's torch.jit.script FutureWarning at import
    import norse.torch as norse
import sinabs
import sinabs.layers as sl
import snntorch as snn
from rockpool.nn.combinators import Sequential as RockpoolSequential
from rockpool.nn.modules import LIFNeuronTorch, LIFTorch, LinearTorch
from rockpool.nn.modules.torch.nir import to_nir as rockpool_to_nir
from snntorch.export_nir import export_to_nir

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def arr(value) -> np.ndarray:
    """A NIR parameter (numpy array, torch tensor or number) as a float64 numpy array."""
    if isinstance(value, torch.Tensor):
        value = value.detach().numpy()
    return np.asarray(value, dtype=np.float64)


def types(graph: nir.NIRGraph) -> dict[str, str | None]:
    return {k: None if n is None else type(n).__name__ for k, n in graph.nodes.items()}


def written(graph: nir.NIRGraph, **kwargs) -> bytes:
    buffer = io.BytesIO()
    nir.write(buffer, graph, **kwargs)
    return buffer.getvalue()


def quiet(fn, *args, **kwargs):
    """Call an exporter that prints on stdout (snnTorch) or warns (the deprecated tracer)."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


# --------------------------------------------------------------------------- snnTorch 1.0.0


def test_snntorch_mlp_leaky_and_synaptic() -> None:
    torch.manual_seed(0)
    beta, alpha, beta2 = 0.9, 0.8, 0.7
    leaky = snn.Leaky(
        beta=torch.full((4,), beta), threshold=torch.full((4,), 1.5), init_hidden=True
    )
    syn = snn.Synaptic(
        alpha=torch.full((3,), alpha),
        beta=torch.full((3,), beta2),
        threshold=torch.ones(3),
        init_hidden=True,
        output=True,
    )
    net = torch.nn.Sequential(torch.nn.Linear(6, 4), leaky, torch.nn.Linear(4, 3), syn)
    g = quiet(export_to_nir, net, torch.zeros(1, 6), ignore_dims=[0])
    assert types(g) == {
        "input": "Input", "0": "Affine", "1": "LIF", "2": "Affine", "3": "CubaLIF",
        "output": "Output",
    }  # fmt: skip
    dt = 1e-4  # hard-coded in snntorch/export_nir.py
    lif, cuba = g.nodes["1"], g.nodes["3"]
    assert leaky.reset_mechanism == "subtract" and leaky.reset_delay  # what the module runs
    np.testing.assert_allclose(arr(lif.tau), dt / (1 - beta), rtol=1e-6)
    np.testing.assert_allclose(arr(lif.r), 1 / (1 - beta), rtol=1e-6)  # r = tau/dt
    assert np.all(arr(lif.v_leak) == 0) and np.all(arr(lif.v_threshold) == 1.5)
    assert np.all(arr(lif.v_reset) == 0)  # reset by subtraction is not recorded
    np.testing.assert_allclose(arr(cuba.tau_syn), dt / (1 - alpha), rtol=1e-6)
    np.testing.assert_allclose(arr(cuba.tau_mem), dt / (1 - beta2), rtol=1e-6)
    np.testing.assert_allclose(arr(cuba.w_in), arr(cuba.tau_syn) / dt, rtol=1e-6)
    np.testing.assert_allclose(arr(cuba.r), arr(cuba.tau_mem) / dt, rtol=1e-6)
    assert np.array_equal(arr(g.nodes["0"].weight), net[0].weight.detach().double().numpy())
    assert tuple(g.nodes["input"].input_type["input"]) == (6,)  # with ignore_dims=[0] only
    nir.read(io.BytesIO(written(g)))  # type-checked read


def test_snntorch_scalar_beta_breaks_type_inference() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(6, 4), snn.Leaky(beta=0.9, init_hidden=True))
    with pytest.raises(ValueError, match="Type inference error"):
        quiet(export_to_nir, net, torch.zeros(1, 6), ignore_dims=[0])


def test_snntorch_cnn_conv_avgpool_flatten() -> None:
    def leaky(shape):
        return snn.Leaky(beta=torch.full(shape, 0.9), threshold=torch.ones(shape), init_hidden=True)

    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3, padding=1), leaky((2, 8, 8)), torch.nn.AvgPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(32, 3), leaky((3,)),
    )  # fmt: skip
    g = quiet(export_to_nir, net, torch.zeros(1, 1, 8, 8), ignore_dims=[0])
    assert list(types(g).values()) == [
        "Input", "Conv2d", "LIF", "AvgPool2d", "Flatten", "Affine", "LIF", "Output",
    ]  # fmt: skip
    conv, pool, flat = g.nodes["0"], g.nodes["2"], g.nodes["3"]
    assert isinstance(conv.weight, torch.Tensor)  # torch tensors, not numpy
    assert tuple(conv.input_shape) == (8, 8)  # set by export_to_nir's infer_types()
    assert pool.kernel_size == 2 and pool.stride == 2 and tuple(pool.padding) == (0, 0)
    assert (flat.start_dim, flat.end_dim) == (0, -1)  # torch dims minus the batch axis
    assert arr(g.nodes["1"].tau).shape == (2, 8, 8)
    nir.read(io.BytesIO(written(g)))
    maxpool = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.MaxPool2d(2))
    with pytest.raises(AttributeError, match="input_type"):  # "module not implemented" → None
        quiet(export_to_nir, maxpool, torch.zeros(1, 1, 8, 8), ignore_dims=[0])


@pytest.mark.parametrize("kind", ["RLeaky", "RSynaptic"])
def test_snntorch_recurrent_becomes_a_lif_affine_cycle(kind: str) -> None:
    n = 4
    rec = (
        snn.RLeaky(beta=torch.full((n,), 0.9), linear_features=n, init_hidden=True, output=True)
        if kind == "RLeaky"
        else snn.RSynaptic(
            alpha=torch.full((n,), 0.8), beta=torch.full((n,), 0.9), linear_features=n,
            init_hidden=True, output=True,
        )
    )  # fmt: skip
    g = quiet(export_to_nir, torch.nn.Sequential(torch.nn.Linear(6, n), rec), torch.zeros(1, 6),
              ignore_dims=[0])  # fmt: skip
    neuron = "LIF" if kind == "RLeaky" else "CubaLIF"
    assert types(g) == {
        "input": "Input", "0": "Affine", "1.lif": neuron, "1.w_rec": "Affine", "output": "Output",
    }  # fmt: skip
    assert {("1.lif", "1.w_rec"), ("1.w_rec", "1.lif"), ("0", "1.lif")} <= set(g.edges)
    assert np.array_equal(arr(g.nodes["1.w_rec"].weight), rec.recurrent.weight.double().detach())
    nir.read(io.BytesIO(written(g)))


# --------------------------------------------------------------------------- Norse 1.1.0


def test_norse_mlp_lifbox_and_lif() -> None:
    torch.manual_seed(0)
    box, cell = norse.LIFBoxCell(), norse.LIFCell()
    net = norse.SequentialState(torch.nn.Linear(6, 4), box, torch.nn.Linear(4, 3), cell)
    g = quiet(norse.to_nir, net, torch.zeros(1, 6))
    assert types(g) == {
        "input": "Input", "0": "Affine", "1": "LIF", "2": "Affine", "3": "CubaLIF",
        "output": "Output",
    }  # fmt: skip
    dt = 1e-3  # norse.torch.to_nir's default dt
    lif, cuba = g.nodes["1"], g.nodes["3"]
    inv = box.p.tau_mem_inv.item()  # 100 /s, i.e. τ = 10 ms
    assert arr(lif.tau).shape == ()  # the module's shared scalars, not per neuron
    np.testing.assert_allclose(arr(lif.tau), dt / inv, rtol=1e-6)  # dt·τ, not τ
    assert arr(lif.r) == 1 and arr(lif.v_threshold) == box.p.v_th.item()
    np.testing.assert_allclose(arr(cuba.tau_syn), dt / cell.p.tau_syn_inv.item(), rtol=1e-6)
    np.testing.assert_allclose(arr(cuba.tau_mem), dt / cell.p.tau_mem_inv.item(), rtol=1e-6)
    assert arr(cuba.w_in) == 1 and arr(cuba.r) == 1
    assert tuple(g.nodes["input"].input_type["input"]) == (1, 6)  # batch axis kept
    with pytest.raises(TypeError, match="Scalar datasets"):  # nir.write's default gzip
        written(g)
    data = written(g, compression=None)
    with pytest.raises(ValueError, match="Type inference error"):
        nir.read(io.BytesIO(data))
    assert types(nir.read(io.BytesIO(data), type_check=False)) == types(g)


def test_norse_cnn_pool_flatten_and_recurrence_are_not_exported() -> None:
    cnn = norse.SequentialState(
        torch.nn.Conv2d(1, 2, 3, padding=1), norse.LIFBoxCell(), torch.nn.AvgPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(32, 3), norse.LIFBoxCell(),
    )  # fmt: skip
    g = quiet(norse.to_nir, cnn, torch.zeros(1, 1, 8, 8))
    assert types(g) == {
        "input": "Input", "0": "Conv2d", "1": "LIF", "2": None, "3": None, "4": "Affine",
        "5": "LIF", "output": "Output",
    }  # fmt: skip
    with pytest.raises(AttributeError):
        written(g, compression=None)
    rnn = norse.SequentialState(torch.nn.Linear(6, 4), norse.LIFRecurrentCell(4, 4))
    assert types(quiet(norse.to_nir, rnn, torch.zeros(1, 6)))["1"] is None


# --------------------------------------------------------------------------- sinabs 3.1.3


def test_sinabs_mlp_iaf_and_lif() -> None:
    batch = 2
    iaf = sl.IAFSqueeze(batch_size=batch)
    lif = sl.LIFSqueeze(tau_mem=torch.full((3,), 10.0), spike_threshold=torch.ones(3),
                        batch_size=batch)  # fmt: skip
    net = torch.nn.Sequential(torch.nn.Linear(6, 4), iaf, torch.nn.Linear(4, 3), lif)
    x = torch.zeros(batch, 6)
    net(x)
    g = quiet(sinabs.to_nir, net, x)
    assert types(g) == {
        "input": "Input", "0": "Affine", "1": "IF", "2": "Affine", "3": "LIF", "output": "Output",
    }  # fmt: skip
    assert iaf.reset_fn.__class__.__name__ == "MembraneSubtract"  # what sinabs runs
    assert iaf.spike_fn.__name__ == "MultiSpike" and lif.norm_input  # (1 − α)·input
    assert np.all(arr(g.nodes["1"].r) == 1) and arr(g.nodes["1"].v_threshold).shape == (4,)
    assert np.all(arr(g.nodes["1"].v_reset) == 0)  # subtraction not recorded
    assert np.all(arr(g.nodes["3"].tau) == 10.0)  # time steps, not seconds; no dt anywhere
    assert np.all(arr(g.nodes["3"].r) == 1)  # norm_input not recorded
    assert tuple(g.nodes["input"].input_type["input"]) == (6,)
    nir.read(io.BytesIO(written(g)))


def test_sinabs_scalar_lif_parameters_break_the_export() -> None:
    net = torch.nn.Sequential(
        torch.nn.Linear(6, 3), sl.LIFSqueeze(tau_mem=torch.full((3,), 10.0), batch_size=2)
    )
    net(torch.zeros(2, 6))
    with pytest.raises(AssertionError, match="same shape"):  # tau (3,), threshold ()
        quiet(sinabs.to_nir, net, torch.zeros(2, 6))


def test_sinabs_cnn_conv_sumpool_flatten() -> None:
    batch = 2
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3, padding=1), sl.IAFSqueeze(batch_size=batch), sl.SumPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(32, 3), sl.IAFSqueeze(batch_size=batch),
    )  # fmt: skip
    x = torch.zeros(batch, 1, 8, 8)
    net(x)
    g = quiet(sinabs.to_nir, net, x)
    assert list(types(g).values()) == [
        "Input", "Conv2d", "IF", "SumPool2d", "Flatten", "Affine", "IF", "Output",
    ]  # fmt: skip
    assert g.nodes["0"].input_shape is None
    with pytest.raises(TypeError):  # h5py cannot write input_shape=None
        written(g)
    g.infer_types()
    assert tuple(g.nodes["0"].input_shape) == (8, 8)
    pool = g.nodes["2"]
    assert tuple(pool.kernel_size) == (2, 2) and tuple(pool.stride) == (2, 2)
    assert (g.nodes["3"].start_dim, g.nodes["3"].end_dim) == (0, -1)
    assert arr(g.nodes["1"].v_threshold).shape == (2, 8, 8)
    nir.read(io.BytesIO(written(g)))
    avg = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.AvgPool2d(2))
    with pytest.raises(NotImplementedError, match="AvgPool2d"):
        quiet(sinabs.to_nir, avg, x)


def test_sinabs_recurrent_layers_are_not_exported() -> None:
    rec = sl.IAFRecurrent(rec_connect=torch.nn.Linear(4, 4))
    net = torch.nn.Sequential(torch.nn.Linear(6, 4), rec)
    x = torch.zeros(2, 1, 6)  # IAFRecurrent is not a Squeeze layer: [B, T, N]
    net(x)
    with pytest.raises(NotImplementedError, match="IAFRecurrent"):
        quiet(sinabs.to_nir, net, x)


# --------------------------------------------------------------------------- Rockpool 3.1.0


def test_rockpool_mlp_lif_is_cubalif() -> None:
    torch.manual_seed(0)
    lif = LIFTorch(4, bias=0.25)
    neuron = LIFNeuronTorch(3)
    net = RockpoolSequential(LinearTorch((6, 4)), lif, LinearTorch((4, 3), has_bias=True), neuron)
    g = quiet(rockpool_to_nir, net)
    assert types(g) == {
        "input": "Input", "0_LinearTorch": "Linear", "1_LIFTorch": "CubaLIF",
        "2_LinearTorch": "Affine", "3_LIFNeuronTorch": "LIF", "output": "Output",
    }  # fmt: skip
    dt, tau = lif.dt, lif.tau_mem.detach().double().numpy()
    cuba = g.nodes["1_LIFTorch"]
    np.testing.assert_allclose(arr(cuba.tau_mem), tau, rtol=1e-6)  # seconds
    np.testing.assert_allclose(arr(cuba.r), tau * np.exp(-dt / tau) / dt, rtol=1e-5)
    assert np.all(arr(cuba.w_in) == 1) and np.all(arr(cuba.v_leak) == 0)  # bias 0.25 dropped
    weight = g.nodes["0_LinearTorch"].weight
    assert np.array_equal(arr(weight), net[0].weight.detach().double().numpy().T)  # (in, out)
    assert tuple(g.nodes["input"].input_type["input"]) == (1, 6)  # batch axis kept
    assert tuple(g.nodes["output"].input_type["input"]) == (1, 1, 3)  # batch, time
    with pytest.raises(ValueError, match="Type inference error"):
        nir.read(io.BytesIO(written(g)))
    assert types(nir.read(io.BytesIO(written(g)), type_check=False)) == types(g)


def test_rockpool_recurrent_weights_are_dropped() -> None:
    rec = LIFTorch(4, has_rec=True)
    g = quiet(rockpool_to_nir, RockpoolSequential(LinearTorch((6, 4)), rec))
    assert rec.w_rec.detach().abs().sum() > 0
    assert types(g) == {
        "input": "Input", "0_LinearTorch": "Linear", "1_LIFTorch": "CubaLIF", "output": "Output",
    }  # fmt: skip
    assert not any(s == d or (d, s) in g.edges for s, d in g.edges)  # no cycle
