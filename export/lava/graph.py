"""`to_lava`: a `LoihiNetwork` as a Lava 0.10 process graph (DESIGN §4–§5).

Every neuron population is a stock ``LIFReset`` (``PyLifResetModelBitAcc``, tag ``fixed_pt``;
the project's ``LIFResetSub`` for reset by subtraction, :mod:`export.lava.procs.lif_sub`)
with ``reset_interval = T`` and ``reset_offset = depth + 1``; every static synapse a stock
``Dense``/``DelayDense`` (dense layers) or ``Conv`` (conv layers; a delayed consumer of a conv
gets the project's weight-shared ``DelayConv``, not the conv's unrolled matrix as a
``DelaySparse``). The project's own processes (:mod:`export.lava.procs`) cover what
stock Lava lacks: token-shared linear layers with delay lines, attention, max-pool over
currents, the host readout, the static-input injection, and one spike recorder for all LIFs.

Two steps, because Lava processes run once: :func:`to_lava` checks and plans (delays aligned,
one Lava process per layer and per distinct out-edge delay — each delayed consumer of the
residual stream gets its own synapse replica, as on chip); :meth:`LavaGraph.build` instantiates
the processes for a batch of inputs (sources, injected biases, the recorder) and wires them.
Both read one table, :data:`LAVA_RULES`: per layer kind, the process class of each replica,
whether it carries delays, and its ``_make_<kind>`` builder (a kind without an entry is a
:class:`NoLavaRule`).
Ports keep each layer's torch layout (``(C, H, W)``, ``(C, N)``); stock Conv's ``(W, H, C)``
and Dense's flat vectors are reached through port ``reshape``/``transpose``/``flatten`` views.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from export.lava.errors import LavaInputError, LavaLoweringError
from hardware.ir import fixed, orientation
from hardware.ir.layers import (
    AttentionLayer,
    ConvLayer,
    CurrentInputLayer,
    DenseLayer,
    HostInputLayer,
    Layer,
    LIFLayer,
    MaxPoolLayer,
    ReadoutLayer,
    SpikeInputLayer,
    TokenLinearLayer,
)
from hardware.ir.network import LoihiNetwork
from hardware.ir.timing import Timing, TimingError, align_delays
from hardware.simulate.host_input import current_raster
from hardware.simulate.result import SimulationError


@dataclass(frozen=True, kw_only=True)
class LavaNode:
    """One layer's Lava realization.

    ``processes``: Lava process class per replica, keyed by out-edge delay (producers of a
    current) or ``{0: …}``, and a recurrent LIF's feedback synapse under :data:`FEEDBACK`;
    ``stock``: whether every one is a stock Lava process;
    ``placement``: the layer's (``neurocore``, ``neurocore-L2``, ``embedded``, ``host``);
    ``depth``: pipeline depth (steps); ``reset_offset``: the ``LIFReset`` offset (LIFs only).
    """

    name: str
    kind: str
    processes: Mapping[int, str]
    stock: bool
    placement: str
    depth: int
    reset_offset: int | None = None


#: The :attr:`LavaNode.processes` key of a recurrent LIF's feedback synapse (``RecurrentDense``).
FEEDBACK = -1

#: Lava process class name (as in :attr:`LavaNode.processes`) → ``module:Class``: where each
#: process a plan names lives (stock Lava, or the project's own under :data:`PROJECT_PREFIX`).
PROCESS_CLASSES: Mapping[str, str] = MappingProxyType({
    "LIFReset": "lava.proc.lif.process:LIFReset",
    "LIF": "lava.proc.lif.process:LIF",
    "Dense": "lava.proc.dense.process:Dense",
    "DelayDense": "lava.proc.dense.process:DelayDense",
    "Conv": "lava.proc.conv.process:Conv",
    "Sparse": "lava.proc.sparse.process:Sparse",
    "DelaySparse": "lava.proc.sparse.process:DelaySparse",
    "RingBuffer": "lava.proc.io.source:RingBuffer",
    "TokenLinear": "export.lava.procs.token_linear.process:TokenLinear",
    "DelayConv": "export.lava.procs.delay_conv.process:DelayConv",
    "SpikeAttention": "export.lava.procs.attention.process:SpikeAttention",
    "CurrentMaxPool": "export.lava.procs.maxpool.process:CurrentMaxPool",
    "HostReadout": "export.lava.procs.readout.process:HostReadout",
    "BiasInjection": "export.lava.procs.injection.process:BiasInjection",
    "SpikeRecorder": "export.lava.procs.recorder.process:SpikeRecorder",
    "LIFResetSub": "export.lava.procs.lif_sub.process:LIFResetSub",
    "RecurrentDense": "export.lava.procs.recurrent.process:RecurrentDense",
})  # fmt: skip
#: The module prefix of the project's own processes.
PROJECT_PREFIX = "export.lava.procs."


def is_project_process(process: str) -> bool:
    """Whether the process class ``process`` (a key of :data:`PROCESS_CLASSES`) is one of the
    project's own (CPU Python models only), not stock Lava."""
    return PROCESS_CLASSES[process].startswith(PROJECT_PREFIX)


def load_process(process: str) -> type:
    """The Lava process class called ``process`` (imports its module: loads Lava)."""
    module, cls = PROCESS_CLASSES[process].split(":")
    return getattr(importlib.import_module(module), cls)


#: The backend name in :class:`NoLavaRule` messages.
BACKEND = "lava"


class NoLavaRule(LavaLoweringError):
    """:data:`LAVA_RULES` (the Lava backend's table of layer kinds) has no entry for a layer's
    kind: nothing says how to build it in Lava. ``kind`` and ``backend`` (``"lava"``) name the
    gap, ``layer`` the layer (exit 4, like every lowering error)."""

    def __init__(self, layer: str, kind: str) -> None:
        self.kind = kind
        self.backend = BACKEND
        super().__init__(
            layer,
            f"no rule for layer kind {kind!r} in backend {BACKEND!r} (export.lava.graph."
            f"LAVA_RULES knows {', '.join(sorted(LAVA_RULES))})",
        )


def lava_rule(layer: Layer) -> LavaRule:
    """``layer``'s entry of :data:`LAVA_RULES`; :class:`NoLavaRule` where its kind has none."""
    rule = LAVA_RULES.get(layer.KIND)
    if rule is None:
        raise NoLavaRule(layer.name, layer.KIND)
    return rule


@dataclass(frozen=True, kw_only=True, eq=False)
class LavaGraph:
    """The plan of a Lava process graph: the delay-aligned ``network``, its ``timing`` and
    one :class:`LavaNode` per layer (``nodes``, in topological order)."""

    network: LoihiNetwork
    timing: Timing
    nodes: Mapping[str, LavaNode]

    def table(self) -> str:
        """A Markdown table: layer, kind, Lava process(es) with delays, placement, depth."""
        rows = [
            "| layer | kind | Lava process (delay) | stock | placement | depth |",
            "|---|---|---|---|---|---|",
        ]
        for n in self.nodes.values():
            procs = ", ".join(f"{p} ({d})" for d, p in n.processes.items())
            rows.append(
                f"| {n.name} | {n.kind} | {procs} | {'yes' if n.stock else 'no'} | "
                f"{n.placement} | {n.depth} |"
            )
        return "\n".join(rows)

    def custom_processes(self) -> tuple[tuple[str, str], ...]:
        """``(layer, process)`` pairs that use the project's own processes. These have only
        CPU Python models: a Loihi hardware run (``Loihi2HwCfg``, lava-loihi) would need
        NcProcessModels/CProcessModels for them, so it is not supported."""
        return tuple(
            (n.name, p)
            for n in self.nodes.values()
            for p in n.processes.values()
            if is_project_process(p)
        )

    def build(self, inputs: Any, *, record_spikes: bool = True) -> LavaBuild:
        """Instantiate and wire the Lava processes for a batch of ``inputs``.

        ``inputs`` as for ``hardware.simulate.engine.simulate``: images ``[B, C, H, W]`` for a
        ``conv2d`` host input, token ids ``[B, L]`` for an ``embedding`` one, a 0/1 raster
        ``[T, B, *shape]`` for a spike input, integer currents ``[T, B, *shape]`` for a
        current input; one array or a ``{layer name: array}`` mapping.
        The B samples stream one every T steps. ``record_spikes`` adds one
        :class:`SpikeRecorder` fed by every LIF. Raises :class:`LavaInputError` (a
        :class:`LavaRunError`) naming the layer when the inputs do not fit.
        """
        return _Builder(self, _inputs_for(self.network, inputs), record_spikes).build()


def to_lava(network: LoihiNetwork) -> LavaGraph:
    """Plan ``network`` as a Lava process graph (see module doc); nothing runs yet.

    Raises :class:`LavaLoweringError` naming the layer for an unsupported layer kind, a delay
    above 62 steps, or a delayed edge whose source cannot carry a delay (a spike edge).
    """
    try:
        net = align_delays(network)
        timing = Timing.of(net)
    except TimingError as err:
        raise LavaLoweringError(err.layer, err.reason) from err
    nodes: dict[str, LavaNode] = {}
    for name in net.topological_order():
        layer = net.layer(name)
        rule = lava_rule(layer)
        delays = tuple(sorted({e.delay for e in net.out_edges(name)})) or (0,)
        if not rule.carries_delays and delays != (0,):
            raise LavaLoweringError(
                name,
                f"{layer.KIND} output edges need delays {delays}; only synapses and "
                "current-producing processes carry delays in Lava",
            )
        hosts = [e.src for e in net.in_edges(name) if net.layer(e.src).OUTPUT == "bias"]
        if len(hosts) > 1:
            raise LavaLoweringError(
                name,
                f"fed by {len(hosts)} host inputs {hosts}; one LIF "
                "bias can carry one injected input",
            )
        if isinstance(layer, LIFLayer) and layer.reset_interval is not None:
            want = (net.T, timing.reset_offset(name))
            if (layer.reset_interval, layer.reset_offset) != want:
                raise LavaLoweringError(
                    name,
                    f"reset_interval/offset {(layer.reset_interval, layer.reset_offset)} "
                    f"differ from the pipeline's (T, depth + 1) = {want}",
                )
        procs = {d: rule.process(layer, d) for d in delays}
        if isinstance(layer, LIFLayer) and layer.rec_weights is not None:
            procs[FEEDBACK] = "RecurrentDense"
        nodes[name] = LavaNode(
            name=name,
            kind=layer.KIND,
            processes=MappingProxyType(procs),
            stock=not any(is_project_process(p) for p in procs.values()),
            placement=layer.placement,
            depth=timing.depth[name],
            reset_offset=timing.reset_offset(name) if isinstance(layer, LIFLayer) else None,
        )
    return LavaGraph(network=net, timing=timing, nodes=MappingProxyType(nodes))


# ---------------------------------------------------------------------------------------------
# Building: inputs, host encoding, processes, wiring.
# ---------------------------------------------------------------------------------------------


def _inputs_for(network: LoihiNetwork, inputs: Any) -> dict[str, np.ndarray]:
    sources = [
        ly
        for ly in network.layers
        if isinstance(ly, HostInputLayer | SpikeInputLayer | CurrentInputLayer)
    ]
    if isinstance(inputs, Mapping):
        missing = [ly.name for ly in sources if ly.name not in inputs]
        if missing:
            raise LavaInputError(missing[0], "no input given for this input layer")
        return {ly.name: np.asarray(inputs[ly.name]) for ly in sources}
    if len(sources) != 1:
        raise LavaInputError(
            "<network>", f"{len(sources)} input layers; pass a {{layer name: array}} mapping"
        )
    return {sources[0].name: np.asarray(inputs)}


def host_bias_mantissas(layer: HostInputLayer, x: np.ndarray) -> np.ndarray:
    """Per-sample bias mantissas ``[B, *out_shape]`` (int64) of a host input layer
    (:func:`host_bias_encoding`)."""
    return host_bias_encoding(layer, x)[0]


def host_bias_encoding(layer: HostInputLayer, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample bias ``(mantissas, exponents)`` ``[B, *out_shape]`` (int64) of a host input.

    ``conv2d``: ``x`` images ``[B, C, H, W]`` → ``hardware.lower.graph_run.host_input_current``
    (the one float64 host encoding, shared with the simulator); ``embedding``: ``x`` token ids
    ``[B, L]`` → ``weight[ids] + bias``. Then ``fixed.host_bias_encode(value·bias_scale,
    bias_exp, exp_per_value)`` (round half up, saturate at 13 bits).
    """
    if layer.op == "conv2d":
        if x.ndim != 4 or tuple(x.shape[1:]) != layer.in_shape:
            raise LavaInputError(
                layer.name, f"expected images [B, {layer.in_shape}], got {tuple(x.shape)}"
            )
        import torch

        from hardware.lower.graph_run import host_input_current

        value = host_input_current(
            torch.from_numpy(np.array(layer.weight)),
            torch.from_numpy(np.array(layer.bias)),
            layer.stride,
            layer.padding,
            torch.from_numpy(np.asarray(x, np.float64)),
        ).numpy()
    else:
        if x.ndim != 2 or tuple(x.shape[1:]) != layer.in_shape or x.dtype.kind not in "iu":
            raise LavaInputError(
                layer.name,
                f"expected integer token ids [B, {layer.in_shape}], got {x.dtype} {tuple(x.shape)}",
            )
        vocab = layer.weight.shape[0]
        if x.size and (x.min() < 0 or x.max() >= vocab):
            raise LavaInputError(layer.name, f"token ids outside [0, {vocab})")
        value = np.asarray(layer.weight, np.float64)[x] + np.asarray(layer.bias, np.float64)
    mant, exp, _ = fixed.host_bias_encode(value * layer.bias_scale, layer.bias_exp,
                                          layer.exp_per_value)
    return mant, exp


_SIGN_MODE = {"mixed": "MIXED", "excitatory": "EXCITATORY", "inhibitory": "INHIBITORY"}


def _lava_sign_mode(mode: str):
    from lava.utils.weightutils import SignMode

    return getattr(SignMode, _SIGN_MODE[mode])


#: How a consumer's input port is laid out relative to the layer's torch shape.
_SAME, _WHC, _FLAT = "same", "whc", "flat"


@dataclass
class _Input:
    port: Any
    shape: tuple[int, ...]
    layout: str


@dataclass
class LavaBuild:
    """Instantiated Lava processes of one :class:`LavaGraph` for ``n_samples`` samples.

    ``processes[(layer, delay)]``: the Lava process of each layer replica; ``recorder``: the
    :class:`SpikeRecorder` of all LIFs (``None`` without recording) and ``recorded[lif]`` =
    ``(first entry, shape)`` in each unpacked row of its ``words``; ``readouts[name]``: the
    :class:`HostReadout` processes; ``injections[name]``: the :class:`BiasInjection`
    processes; ``n_steps``: Lava steps to run (``n_samples·T + max_depth``). Lava processes
    run once: build again to rerun.
    """

    graph: LavaGraph
    n_samples: int
    n_steps: int
    processes: dict[tuple[str, int], Any] = field(default_factory=dict)
    recorder: Any = None
    recorded: dict[str, tuple[int, tuple[int, ...]]] = field(default_factory=dict)
    readouts: dict[str, Any] = field(default_factory=dict)
    injections: dict[str, Any] = field(default_factory=dict)

    @property
    def anchor(self) -> Any:
        """A process of the (connected) graph to call ``run``/``stop`` on."""
        return next(iter(self.processes.values()))


class _Builder:
    """Creates one build: each layer's processes by its :data:`LAVA_RULES` entry's ``build``
    (a ``_make_<kind>`` method), then the edges."""

    def __init__(self, graph: LavaGraph, inputs: dict[str, np.ndarray], record: bool) -> None:
        self.g = graph
        self.net = graph.network
        self.inputs = inputs
        self.record = record
        self.n = self._n_samples()
        self.out = LavaBuild(graph=graph, n_samples=self.n, n_steps=graph.timing.n_steps(self.n))
        #: (layer, delay) → callable giving a fresh torch-layout view of the output port.
        self.views: dict[tuple[str, int], Callable[[], Any]] = {}
        #: layer → input ports (one per replica).
        self.ins: dict[str, list[_Input]] = {}
        self.host_bias: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # (mant, exp)

    def _n_samples(self) -> int:
        sizes = set()
        for name, x in self.inputs.items():
            axis = 1 if isinstance(self.net.layer(name), SpikeInputLayer | CurrentInputLayer) else 0
            if x.ndim <= axis:
                raise LavaInputError(name, f"no sample axis {axis} in an input of shape {x.shape}")
            sizes.add(int(x.shape[axis]))
        if len(sizes) != 1 or min(sizes) < 1:
            raise LavaInputError("<network>", f"inputs disagree on the sample count: {sizes}")
        return sizes.pop()

    def build(self) -> LavaBuild:
        for _, layer in self._ordered():
            lava_rule(layer).build(self, layer)
        if self.record:
            self._make_recorder()
        for e in self.net.edges:
            if isinstance(self.net.layer(e.src), HostInputLayer):
                continue  # wired by _make_lif (RefPort to bias_mant)
            for dst in self.ins[e.dst]:
                self._connect(self.views[(e.src, e.delay)](), self.net.layer(e.src), dst)
        return self.out

    def _make_recorder(self) -> None:
        from export.lava.procs.recorder.process import SpikeRecorder

        lifs = [ly for _, ly in self._ordered() if isinstance(ly, LIFLayer)]
        if not lifs:
            return
        rec = SpikeRecorder(
            sizes=tuple(math.prod(ly.shape) for ly in lifs),
            n_steps=self.out.n_steps,
            name="spike_recorder",
        )
        offsets = rec.proc_params["offsets"]
        for i, ly in enumerate(lifs):
            self.out.processes[(ly.name, 0)].s_out.flatten().connect(rec.port(i))
            self.out.recorded[ly.name] = (offsets[i], tuple(ly.shape))
        self.out.recorder = rec

    def _ordered(self):
        return ((n, self.net.layer(n)) for n in self.net.topological_order())

    def _delays(self, name: str) -> tuple[int, ...]:
        return tuple(self.g.nodes[name].processes)

    def _add(self, layer: Layer, delay: int, proc: Any, view: Callable[[], Any]) -> None:
        self.out.processes[(layer.name, delay)] = proc
        self.views[(layer.name, delay)] = view

    @staticmethod
    def _connect(view: Any, src: Layer, dst: _Input) -> None:
        port = view
        shape = tuple(src.out_shape)
        if dst.layout == _FLAT:
            if len(shape) > 1:
                port = port.flatten()
        else:
            if shape != dst.shape:
                port = port.reshape(dst.shape)
            if dst.layout == _WHC:
                port = port.transpose([2, 1, 0])
        port.connect(dst.port)

    # -- sources -------------------------------------------------------------------------

    def _make_host_input(self, layer: HostInputLayer) -> None:
        self.host_bias[layer.name] = host_bias_encoding(layer, self.inputs[layer.name])

    def _make_spike_input(self, layer: SpikeInputLayer) -> None:
        raster = self.inputs[layer.name]
        if (
            raster.ndim < 2
            or raster.shape[0] != self.net.T
            or tuple(raster.shape[2:]) != (layer.shape)
        ):
            raise LavaInputError(
                layer.name,
                f"expected spikes [T={self.net.T}, B, {layer.shape}], got {tuple(raster.shape)}",
            )
        if not np.isin(raster, (0, 1)).all():
            raise LavaInputError(layer.name, "spikes must be 0 or 1")
        self._ring_buffer(layer, raster)

    def _make_current_input(self, layer: CurrentInputLayer) -> None:
        """A ``RingBuffer`` of integer currents wired straight to the consumers' ``a_in``
        (latency 0: Lava's RingBuffer sends ``data[time_step − 1]`` in the same step)."""
        try:
            raster = current_raster(layer, self.inputs[layer.name], self.net.T)
        except SimulationError as err:
            raise LavaInputError(layer.name, str(err)) from err
        self._ring_buffer(layer, raster)

    def _ring_buffer(self, layer: SpikeInputLayer | CurrentInputLayer, raster: Any) -> None:
        """The layer's source: a ``RingBuffer`` streaming ``raster`` ``[T, B, *shape]``."""
        from lava.proc.io.source import RingBuffer

        # data[..., k·T + t] = raster[t, k]: sample k's step t is sent at time_step k·T + t + 1.
        flat = np.swapaxes(raster, 0, 1).reshape(self.n * self.net.T, *layer.shape)
        src = RingBuffer(data=np.moveaxis(flat, 0, -1).astype(np.int32))
        self._add(layer, 0, src, lambda: src.s_out)

    # -- neurons -------------------------------------------------------------------------

    def _make_lif(self, layer: LIFLayer) -> None:
        from lava.proc.lif.process import LIFReset

        from export.lava.procs.injection.process import BiasInjection
        from export.lava.procs.lif_sub.process import LIFResetSub

        hosts = [
            e.src
            for e in self.net.in_edges(layer.name)
            if isinstance(self.net.layer(e.src), HostInputLayer)
        ]
        mant, exp = np.asarray(layer.bias_mant), np.asarray(layer.bias_exp)
        if hosts:
            per_sample, per_sample_exp = (
                a.reshape(self.n, *layer.shape) for a in self.host_bias[hosts[0]])
            mant, exp = per_sample[0], per_sample_exp[0]
        sub = {} if layer.reset_sub is None else {"reset_sub": layer.reset_sub}
        lif = (LIFReset if layer.reset_sub is None else LIFResetSub)(
            **sub,
            shape=layer.shape,
            du=layer.du,
            dv=layer.dv,
            vth=layer.vth,
            bias_mant=mant.astype(np.int32),
            bias_exp=exp.astype(np.int32),
            reset_interval=self.net.T,
            reset_offset=self.g.timing.reset_offset(layer.name),
            name=layer.name,
        )
        self._add(layer, 0, lif, lambda: lif.s_out)
        self.ins[layer.name] = [_Input(lif.a_in, layer.shape, _SAME)]
        if layer.rec_weights is not None:
            self._make_feedback(layer, lif)
        if hosts:
            inj = BiasInjection(
                mant=per_sample,
                exp=per_sample_exp,
                T=self.net.T,
                depth=self.g.timing.depth[layer.name],
                placement=self.net.layer(hosts[0]).placement,
                name=hosts[0],
            )
            inj.connect_vars(lif.bias_mant, lif.bias_exp)
            self.out.injections[hosts[0]] = inj

    def _make_feedback(self, layer: LIFLayer, lif: Any) -> None:
        """The population's recurrent Dense: ``s_out`` → ``RecurrentDense`` → ``a_in``."""
        from export.lava.procs.recurrent.process import RecurrentDense

        rec = RecurrentDense(
            weights=layer.rec_weights, weight_exp=layer.rec_weight_exp,
            num_weight_bits=layer.rec_num_weight_bits, sign_mode=layer.rec_sign_mode,
            reset_interval=self.net.T, reset_offset=self.g.timing.reset_offset(layer.name),
            placement=layer.placement, name=f"{layer.name}.rec",
        )
        lif.s_out.flatten().connect(rec.s_in)
        rec.a_out.reshape(layer.shape).connect(lif.a_in)
        self.out.processes[(layer.name, FEEDBACK)] = rec

    # -- synapses ------------------------------------------------------------------------

    def _make_dense(self, layer: DenseLayer) -> None:
        from lava.proc.dense.process import DelayDense, Dense

        ins = []
        for d in self._delays(layer.name):
            common = dict(
                weights=np.asarray(layer.weights, np.int32),
                weight_exp=layer.weight_exp,
                num_weight_bits=layer.num_weight_bits,
                sign_mode=_lava_sign_mode(layer.sign_mode),
                name=f"{layer.name}@{d}",
            )
            proc = Dense(**common) if d == 0 else DelayDense(delays=d, **common)
            shape = tuple(layer.out_shape)
            self._add(
                layer,
                d,
                proc,
                (lambda p=proc, s=shape: p.a_out.reshape(s) if len(s) > 1 else p.a_out),
            )
            ins.append(_Input(proc.s_in, tuple(layer.in_shape), _FLAT))
        self.ins[layer.name] = ins

    def _make_conv(self, layer: ConvLayer) -> None:
        """Delay 0: a stock ``Conv``; each delayed consumer: a :class:`DelayConv` (the same
        weight-shared kernel and 24-bit wrap, plus a delay line of output frames)."""
        from lava.proc.conv.process import Conv

        from export.lava.procs.delay_conv.process import DelayConv

        ins = []
        for d in self._delays(layer.name):
            if d == 0:
                proc = Conv(  # Lava's Conv ignores weight_exp: it gets weights · 2**weight_exp
                    weight=orientation.conv_weight_to_lava(
                        layer.effective_weights).astype(np.int32),
                    input_shape=tuple(orientation.chw_to_lava(np.empty(layer.in_shape)).shape),
                    padding=orientation.yx_to_lava(layer.padding),
                    stride=orientation.yx_to_lava(layer.stride),
                    dilation=orientation.yx_to_lava(layer.dilation),
                    groups=layer.groups,
                    num_weight_bits=layer.num_weight_bits,
                    name=f"{layer.name}@0",
                )
                want = tuple(reversed(layer.out_shape))
                if tuple(proc.a_out.shape) != want:
                    raise LavaLoweringError(
                        layer.name,
                        f"Lava Conv output {proc.a_out.shape} != expected (W, H, C) {want}",
                    )
                self._add(layer, d, proc, lambda p=proc: p.a_out.transpose([2, 1, 0]))
                ins.append(_Input(proc.s_in, tuple(layer.in_shape), _WHC))
            else:
                proc = DelayConv(
                    weights=layer.effective_weights, in_shape=layer.in_shape,
                    out_shape=layer.out_shape, stride=layer.stride, padding=layer.padding,
                    dilation=layer.dilation, groups=layer.groups, delay=d,
                    placement=layer.placement, name=f"{layer.name}@{d}",
                )
                self._add(layer, d, proc, lambda p=proc: p.a_out)
                ins.append(_Input(proc.s_in, tuple(layer.in_shape), _SAME))
        self.ins[layer.name] = ins

    # -- the project's processes with a delay line (token-linear, attention, max-pool) -----

    def _make_delayed(self, layer: TokenLinearLayer | AttentionLayer | MaxPoolLayer) -> None:
        """One project process per distinct outgoing delay of ``layer`` (each delayed consumer
        gets its own copy, as on chip), made by the kind's :class:`_DelayedProcess`. Their input
        ports all receive the layer's input (same shape); ``a_out`` is the output."""
        spec = _DELAYED[layer.KIND]
        make = load_process(spec.process)
        params = {f: getattr(layer, f) for f in spec.fields}
        ins = []
        for d in self._delays(layer.name):
            proc = make(**params, delay=d, placement=layer.placement, name=f"{layer.name}@{d}")
            self._add(layer, d, proc, lambda p=proc: p.a_out)
            ins.append(_Input(getattr(proc, spec.in_port), tuple(layer.in_shape), _SAME))
        self.ins[layer.name] = ins

    def _make_readout(self, layer: ReadoutLayer) -> None:
        from export.lava.procs.readout.process import HostReadout

        proc = HostReadout(
            in_shape=layer.in_shape,
            T=self.net.T,
            depth=self.g.timing.depth[layer.name],
            n_samples=self.n,
            time_weights=np.asarray(layer.time_weights),
            head_weight=np.asarray(layer.head_weight),
            head_bias=np.asarray(layer.head_bias),
            input_scale=layer.input_scale,
            input_bias=np.asarray(layer.input_bias),
            token_axis=layer.token_axis,
            placement=layer.placement,
            name=layer.name,
        )
        self.out.processes[(layer.name, 0)] = proc
        self.out.readouts[layer.name] = proc
        self.ins[layer.name] = [_Input(proc.a_in, tuple(layer.in_shape), _SAME)]


@dataclass(frozen=True, kw_only=True)
class _DelayedProcess:
    """A project process (:mod:`export.lava.procs`) with its own delay line: class ``process``
    (:data:`PROCESS_CLASSES`), built from the layer fields ``fields`` (same names), input
    port ``in_port``."""

    process: str
    in_port: str
    fields: tuple[str, ...]


_DELAYED: Mapping[str, _DelayedProcess] = MappingProxyType({
    "token_linear": _DelayedProcess(
        process="TokenLinear", in_port="s_in",
        fields=("weights", "tokens", "weight_exp", "num_weight_bits", "sign_mode"),
    ),
    "attention": _DelayedProcess(
        process="SpikeAttention", in_port="s_in",
        fields=("channels", "tokens", "heads", "p_shift", "latency"),
    ),
    "maxpool": _DelayedProcess(
        process="CurrentMaxPool", in_port="a_in",
        fields=("in_shape", "kernel", "stride", "padding", "latency"),
    ),
})  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class LavaRule:
    """How the layers of one kind become Lava processes: one entry of :data:`LAVA_RULES`.

    ``process(layer, delay)``: the Lava process class name of ``layer``'s replica whose
    consumers receive its output ``delay`` extra steps later; ``carries_delays``: whether that
    process can delay its output (one replica per distinct out-edge delay), else every out-edge
    must have delay 0;
    ``build(builder, layer)``: creates the layer's processes and ports in a build.
    """

    process: Callable[[Any, int], str]
    carries_delays: bool
    build: Callable[[_Builder, Any], None]


def _only(process: str) -> Callable[[Layer, int], str]:
    return lambda _layer, _delay: process


def _lif_process(layer: LIFLayer, _delay: int) -> str:
    """Stock ``LIFReset``; the project's ``LIFResetSub`` for reset by subtraction."""
    return "LIFReset" if layer.reset_sub is None else "LIFResetSub"


def _delayed_rule(kind: str) -> LavaRule:
    return LavaRule(process=_only(_DELAYED[kind].process), carries_delays=True,
                    build=_Builder._make_delayed)  # fmt: skip


#: The Lava backend's table of layer kinds (``Layer.KIND``): a new kind is one entry here.
LAVA_RULES: Mapping[str, LavaRule] = MappingProxyType({
    "host_input": LavaRule(process=_only("BiasInjection"), carries_delays=False,
                           build=_Builder._make_host_input),
    "spike_input": LavaRule(process=_only("RingBuffer"), carries_delays=False,
                            build=_Builder._make_spike_input),
    "current_input": LavaRule(process=_only("RingBuffer"), carries_delays=False,
                              build=_Builder._make_current_input),
    "lif": LavaRule(process=_lif_process, carries_delays=False, build=_Builder._make_lif),
    "dense": LavaRule(process=lambda _ly, d: "Dense" if d == 0 else "DelayDense",
                      carries_delays=True, build=_Builder._make_dense),
    "conv": LavaRule(process=lambda _ly, d: "Conv" if d == 0 else "DelayConv",
                     carries_delays=True, build=_Builder._make_conv),
    "token_linear": _delayed_rule("token_linear"),
    "attention": _delayed_rule("attention"),
    "maxpool": _delayed_rule("maxpool"),
    "readout": LavaRule(process=_only("HostReadout"), carries_delays=False,
                        build=_Builder._make_readout),
})  # fmt: skip
