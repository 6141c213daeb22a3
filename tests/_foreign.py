"""Small networks built in snnTorch 1.0.0, Norse 1.1.0, sinabs 3.1.3 and Rockpool 3.1.0,
exported with their own NIR exporters, and run by the frameworks themselves (the independent
reference of the NIR import tests).

Each ``*_net`` returns ``(module, nir graph)``; each ``run_*`` takes an input raster
``[T, B, *shape]`` and returns ``{layer index: spikes [T, B, *shape]}`` for every neuron layer,
from zero state (float32, as the frameworks compute).
"""

from __future__ import annotations

import contextlib
import io
import warnings

import nir
import numpy as np
import torch

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Norse's torch.jit.script FutureWarning at import
    import norse.torch as norse
import snntorch as snn
from snntorch.export_nir import export_to_nir


def quiet(fn, *args, **kwargs):
    """Call an exporter that prints on stdout (snnTorch) or warns (the deprecated tracer)."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def leaky(shape, beta: float, thr: float = 1.0, **kw) -> snn.Leaky:
    """An snnTorch Leaky with per-neuron β and threshold (scalars break its exporter)."""
    return snn.Leaky(beta=torch.full(shape, beta), threshold=torch.full(shape, thr),
                     init_hidden=True, **kw)


def _louder(net, factor: float = 3.0):
    """Scale every weight by ``factor`` (default inits leave deep layers silent)."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Linear | torch.nn.Conv2d):
                m.weight.mul_(factor)
    return net


def snntorch_mlp(seed: int = 0, *, beta: float = 0.5, **kw):
    """Linear(8→16) → Leaky → Linear(16→4) → Leaky, exported with ``ignore_dims=[0]``."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), leaky((16,), beta, **kw),
                              torch.nn.Linear(16, 4), leaky((4,), beta, **kw))
    _louder(net)
    return net, quiet(export_to_nir, net, torch.zeros(1, 8), ignore_dims=[0])


def snntorch_cnn(seed: int = 0, *, beta: float = 0.5, **kw):
    """Conv(1→4, 3, pad 1) → Leaky → AvgPool(2) → Flatten → Linear(64→5) → Leaky on 1×8×8."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), leaky((4, 8, 8), beta, **kw), torch.nn.AvgPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(64, 5), leaky((5,), beta, **kw),
    )  # fmt: skip
    _louder(net)
    return net, quiet(export_to_nir, net, torch.zeros(1, 1, 8, 8), ignore_dims=[0])


def snntorch_synaptic_mlp(seed: int = 0):
    """Linear(8→12) → Synaptic(α 0.75, β 0.5) → Linear(12→4) → Leaky(β 0.5)."""
    torch.manual_seed(seed)
    syn = snn.Synaptic(alpha=torch.full((12,), 0.75), beta=torch.full((12,), 0.5),
                       threshold=torch.ones(12), init_hidden=True)
    net = torch.nn.Sequential(torch.nn.Linear(8, 12), syn, torch.nn.Linear(12, 4),
                              leaky((4,), 0.5))
    _louder(net)
    return net, quiet(export_to_nir, net, torch.zeros(1, 8), ignore_dims=[0])


def run_sequential(net: torch.nn.Module, x: torch.Tensor, neuron_types) -> dict[int, torch.Tensor]:
    """Step a ``Sequential`` whose neurons keep their own state (snnTorch ``init_hidden``)."""
    for m in net:
        if isinstance(m, snn.SpikingNeuron):
            for attr in ("mem", "syn", "spk"):
                if hasattr(m, attr):
                    setattr(m, attr, torch.zeros(0))
    out: dict[int, list[torch.Tensor]] = {}
    with torch.no_grad():
        for t in range(x.shape[0]):
            h = x[t].float()
            for i, m in enumerate(net):
                h = m(h)
                if isinstance(m, neuron_types):
                    out.setdefault(i, []).append(h)
    return {i: torch.stack(v) for i, v in out.items()}


def run_snntorch(net, x):
    return run_sequential(net, x, snn.SpikingNeuron)


def norse_mlp(seed: int = 0, *, dt: float = 1e-3, cuba: bool = False):
    """Linear(8→16) → LIFBoxCell → Linear(16→4) → LIFBoxCell (or LIFCell when ``cuba``);
    τ_mem = 4 ms, τ_syn = 4 ms at dt = 1 ms (4 steps), v_th = 0.5."""
    torch.manual_seed(seed)
    box = norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=torch.tensor(250.0),
                                                  v_th=torch.tensor(0.5)))
    last = (norse.LIFCell(norse.LIFParameters(tau_mem_inv=torch.tensor(250.0),
                                              tau_syn_inv=torch.tensor(250.0),
                                              v_th=torch.tensor(0.5)))
            if cuba else norse.LIFBoxCell(norse.LIFBoxParameters(
                tau_mem_inv=torch.tensor(250.0), v_th=torch.tensor(0.5))))
    net = norse.SequentialState(torch.nn.Linear(8, 16), box, torch.nn.Linear(16, 4), last)
    _louder(net)
    return net, quiet(norse.to_nir, net, torch.zeros(1, 8), dt=dt)


#: Norse 1.1.0's ``to_nir`` (norse/torch/utils/export_nir.py ``_extract_norse_module``) maps
#: only Conv2d, Linear, LIFCell, LIFBoxCell, LIBoxCell and IAFCell; any other module becomes a
#: ``None`` node that ``nir.write`` cannot store. The torch modules the CNN needs, in NIR:
_NORSE_GAPS = {
    torch.nn.AvgPool2d: lambda m, _shape: nir.AvgPool2d(
        kernel_size=np.array(_pair(m.kernel_size)), stride=np.array(_pair(m.stride)),
        padding=np.array(_pair(m.padding))),
    torch.nn.Flatten: lambda m, shape: nir.Flatten(
        input_type={"input": np.array(shape)}, start_dim=m.start_dim - 1, end_dim=m.end_dim),
}


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def norse_cnn(seed: int = 0, *, dt: float = 1e-3):
    """Conv(1→4, 3, pad 1) → LIFBoxCell → AvgPool(2) → Flatten → Linear(64→5) → LIFBoxCell on
    1×8×8, τ_mem = 4 ms at dt = 1 ms, v_th = 0.5, exported with ``norse.to_nir``; the pooling
    and flatten nodes Norse leaves ``None`` are filled in from the same torch modules
    (``_NORSE_GAPS``) and the conv's input shape is set, everything else is Norse's output."""
    torch.manual_seed(seed)

    def box():
        return norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=torch.tensor(250.0),
                                                       v_th=torch.tensor(0.5)))

    net = norse.SequentialState(torch.nn.Conv2d(1, 4, 3, padding=1), box(), torch.nn.AvgPool2d(2),
                                torch.nn.Flatten(), torch.nn.Linear(64, 5), box())
    _louder(net)
    with torch.no_grad():
        net[4].weight.mul_(3.0)  # Norse's LIFBox integrates dt/τ = 1/4 of its input
    shapes: dict[int, tuple[int, ...]] = {}  # each module's input shape, batch axis dropped
    hooks = [m.register_forward_hook(
        lambda _m, inp, _out, i=i: shapes.__setitem__(i, tuple(inp[0].shape[1:])))
        for i, m in enumerate(net)]
    graph = quiet(norse.to_nir, net, torch.zeros(1, 1, 8, 8), dt=dt)
    for h in hooks:
        h.remove()
    for name, node in list(graph.nodes.items()):
        if node is None:
            module = net[int(name)]
            graph.nodes[name] = _NORSE_GAPS[type(module)](module, shapes[int(name)])
    # Norse writes Conv2d input_shape = None (``nir.write`` needs it) and keeps the batch axis
    # on the Input, which breaks ``infer_types``: the sample's (H, W), given here.
    graph.nodes["0"].input_shape = np.array(shapes[0][1:])
    return net, graph


def run_norse(net, x) -> dict[int, torch.Tensor]:
    """Norse cells with explicit state, stepped one layer at a time (torch modules stateless)."""
    state: list = [None] * len(net)
    out: dict[int, list[torch.Tensor]] = {}
    with torch.no_grad():
        for t in range(x.shape[0]):
            h = x[t].float()
            for i, m in enumerate(net):
                if not isinstance(m, norse.LIFBoxCell | norse.LIFCell):
                    h = m(h)
                else:
                    h, state[i] = m(h, state[i])
                    out.setdefault(i, []).append(h)
    return {i: torch.stack(v) for i, v in out.items()}


def raster(shape, T: int, B: int, rate: float, seed: int) -> torch.Tensor:
    """Bernoulli 0/1 spikes ``[T, B, *shape]`` (float64)."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((T, B, *shape), generator=g) < rate).to(torch.float64)


def _sinabs_export(net, x: torch.Tensor):
    """sinabs' own NIR graph of ``net`` for inputs shaped like ``x``: one forward pass first
    (sinabs sizes its states from it), the states reset afterwards."""
    import sinabs

    net(x)
    g = quiet(sinabs.to_nir, net, x)
    sinabs.reset_states(net)
    return g


def sinabs_mlp(seed: int = 0, batch: int = 32):
    """Linear(8→16) → IAFSqueeze → Linear(16→4) → LIFSqueeze(τ = 4 steps), single spikes per
    step (``SingleSpike``: compare ≥) and reset by subtraction (sinabs' default)."""
    import sinabs.layers as sl
    from sinabs.activation import SingleSpike

    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(8, 16), sl.IAFSqueeze(batch_size=batch, spike_fn=SingleSpike),
        torch.nn.Linear(16, 4),
        sl.LIFSqueeze(tau_mem=torch.full((4,), 4.0), spike_threshold=torch.ones(4),
                      spike_fn=SingleSpike, batch_size=batch),
    )  # fmt: skip
    _louder(net)
    x = torch.zeros(batch, 8)
    return net, _sinabs_export(net, x)


def sinabs_cnn(seed: int = 0, batch: int = 32):
    """Conv(1→4, 3, pad 1) → IAFSqueeze → SumPool2d(2) → Flatten → Linear(64→5) → IAFSqueeze."""
    import sinabs.layers as sl
    from sinabs.activation import SingleSpike

    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), sl.IAFSqueeze(batch_size=batch, spike_fn=SingleSpike),
        sl.SumPool2d(2), torch.nn.Flatten(), torch.nn.Linear(64, 5),
        sl.IAFSqueeze(batch_size=batch, spike_fn=SingleSpike),
    )  # fmt: skip
    _louder(net)
    x = torch.zeros(batch, 1, 8, 8)
    return net, _sinabs_export(net, x)


def sinabs_conv1d(seed: int = 0, batch: int = 32):
    """Conv1d(2→4, 3, pad 1) on 2×8 → IAFSqueeze → Flatten → Linear(32→5) → IAFSqueeze."""
    import sinabs.layers as sl
    from sinabs.activation import SingleSpike

    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Conv1d(2, 4, 3, padding=1), sl.IAFSqueeze(batch_size=batch, spike_fn=SingleSpike),
        torch.nn.Flatten(), torch.nn.Linear(32, 5),
        sl.IAFSqueeze(batch_size=batch, spike_fn=SingleSpike),
    )  # fmt: skip
    with torch.no_grad():
        net[0].weight.mul_(3.0)
        net[3].weight.mul_(3.0)
    x = torch.zeros(batch, 2, 8)
    return net, _sinabs_export(net, x)


def nir_conv1d(seed: int = 0):
    """A hand-written NIR graph (no framework exports a deployable one): Input(2, 10) →
    Conv1d(2→4, k 3) → LIF → Flatten → Affine(32→3) → LIF, τ = 2 ms, r = 2, θ = 1 (dt 1 ms:
    τ = 2 steps, reset to 0, Loihi's neuron)."""
    import nir
    import numpy as np

    rng = np.random.default_rng(seed)

    def lif(shape):
        return nir.LIF(tau=np.full(shape, 2e-3), r=np.full(shape, 2.0), v_leak=np.zeros(shape),
                       v_threshold=np.ones(shape))

    return nir.NIRGraph(
        nodes={"input": nir.Input(np.array([2, 10])),
               "conv": nir.Conv1d(input_shape=10, weight=rng.normal(0, 0.8, (4, 2, 3)), stride=1,
                                  padding=0, dilation=1, groups=1, bias=rng.normal(0, 0.1, 4)),
               "lif1": lif((4, 8)),
               "flat": nir.Flatten(start_dim=0, end_dim=-1, input_type={"input": np.array([4, 8])}),
               "fc": nir.Affine(weight=rng.normal(0, 0.5, (3, 32)), bias=np.zeros(3)),
               "lif2": lif((3,)), "output": nir.Output(np.array([3]))},
        edges=[("input", "conv"), ("conv", "lif1"), ("lif1", "flat"), ("flat", "fc"),
               ("fc", "lif2"), ("lif2", "output")])


def run_sinabs(net, x) -> dict[int, torch.Tensor]:
    """sinabs ``…Squeeze`` layers take ``[B·T, …]`` batch-major; one call runs all T steps."""
    import sinabs

    sinabs.reset_states(net)
    T, B = x.shape[:2]
    recorded: dict[int, torch.Tensor] = {}
    hooks = [m.register_forward_hook(lambda _m, _i, out, i=i: recorded.__setitem__(i, out))
             for i, m in enumerate(net) if isinstance(m, sinabs.layers.StatefulLayer)]
    with torch.no_grad():
        net(x.float().transpose(0, 1).reshape(B * T, *x.shape[2:]))
    for h in hooks:
        h.remove()
    return {i: s.reshape(B, T, *s.shape[1:]).transpose(0, 1) for i, s in recorded.items()}


def snntorch_recurrent(seed: int = 0, *, kind: str = "RLeaky"):
    """Linear(8→12) → RLeaky / RSynaptic (all-to-all recurrent Linear(12→12)) → Linear(12→4) →
    Leaky; β = 0.5 (α = 0.75), default reset (subtract, one step late)."""
    torch.manual_seed(seed)
    n = 12
    rec = (snn.RLeaky(beta=torch.full((n,), 0.5), linear_features=n, init_hidden=True)
           if kind == "RLeaky" else
           snn.RSynaptic(alpha=torch.full((n,), 0.75), beta=torch.full((n,), 0.5),
                         linear_features=n, init_hidden=True))
    net = torch.nn.Sequential(torch.nn.Linear(8, n), rec, torch.nn.Linear(n, 4),
                              leaky((4,), 0.5))
    _louder(net)
    return net, quiet(export_to_nir, net, torch.zeros(1, 8), ignore_dims=[0])


def rockpool_mlp(seed: int = 0, *, neuron: str = "LIFTorch"):
    """LinearTorch(8→12) → LIFTorch → LinearTorch(12→4) → LIFTorch (or ``LIFNeuronTorch``),
    τ_mem = τ_syn = 4 ms at dt = 1 ms, one spike per step at most (``max_spikes_per_dt=1``)."""
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFNeuronTorch, LIFTorch, LinearTorch
    from rockpool.nn.modules.torch.nir import to_nir

    torch.manual_seed(seed)

    def cell(n: int):
        if neuron == "LIFNeuronTorch":
            return LIFNeuronTorch(n, tau_mem=0.004, max_spikes_per_dt=1)
        return LIFTorch(n, tau_mem=0.004, tau_syn=0.004, max_spikes_per_dt=1)

    net = Sequential(LinearTorch((8, 12)), cell(12), LinearTorch((12, 4)), cell(4))
    with torch.no_grad():
        net[0].weight.mul_(2.0)
    return net, quiet(to_nir, net)


def run_rockpool(net, x) -> dict[int, torch.Tensor]:
    """Rockpool modules take ``[B, T, N]`` and record every layer's output spikes."""
    net.reset_state()
    with torch.no_grad():
        _, _, rec = net(x.float().transpose(0, 1), record=True)
    return {i: rec[f"{name}_output"].transpose(0, 1)
            for i, name in enumerate(net.modules()) if "LIF" in name}
