"""The Loihi 2 hardware path: which processes can run on the chip, and compiling for it.

Running on a Loihi chip needs Intel's proprietary **lava-loihi** extension (INRC members only;
``lava.utils.loihi.is_installed()`` looks for ``lava.utils.loihi2_profiler``). It supplies
neurocore (``AbstractNcProcessModel``) and embedded-C (``CLoihiProcessModel``) process models;
``Loihi2HwCfg`` prefers them over Python models. The project's own processes
(:mod:`export.lava.procs`: token-linear, attention, max-pool, readout, bias injection, spike
recorder) have only fixed-point Python models, so they cannot run on the chip as they are.

- :func:`process_support` lists, for a Lava graph description (the :class:`LavaNode` records
  of ``export.lava.to_lava``), every Lava process class it uses and the neurocore/C models
  Lava's own model discovery finds for it in this install;
  :func:`without_chip_model` keeps the project processes among them that have none.
- :func:`hardware_path` does the whole check: with lava-loihi it builds the graph and compiles
  it with ``Loihi2HwCfg(select_tag="fixed_pt")``; without it, it returns a clear statement
  (:data:`NOT_INSTALLED`) and the listing, and never raises for the missing package.

Where lava-loihi is absent (as in CI), stock processes show no chip model either: their
neurocore models, where they exist, ship with lava-loihi, which is not here to inspect (a
host-side source such as ``RingBuffer`` needs lava-loihi's host↔chip adapters instead). The
report says so.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from export.lava.graph import PROCESS_CLASSES, is_project_process, load_process
from spikeclip.errors import UnsupportedError

NOT_INSTALLED = (
    "lava-loihi (Intel's Loihi extension of Lava, for INRC members) is not installed, so "
    "nothing was compiled for Loihi 2: the graph runs on CPU with "
    "Loihi2SimCfg(select_tag='fixed_pt'), bit-exact to Lava 0.10's fixed-point models."
)


class HardwarePathError(UnsupportedError, ValueError):
    """A graph description names a process this module does not know; names it."""


@dataclass(frozen=True, kw_only=True)
class ProcessSupport:
    """One Lava process class used by one layer.

    ``layer``: the layer; ``process``: class name; ``placement``: the layer's placement
    (``neurocore``, ``neurocore-L2``, ``embedded``, ``host``); ``project``: one of the
    project's own processes; ``chip_models``: names of the neurocore/C process models found
    for it in this install (empty: only Python models, it cannot run on the chip as it is).
    """

    layer: str
    process: str
    placement: str
    project: bool
    chip_models: tuple[str, ...] = ()

    @property
    def on_chip(self) -> bool:
        return bool(self.chip_models)


@dataclass(frozen=True, kw_only=True)
class HardwarePathReport:
    """``lava_loihi``: whether lava-loihi is installed; ``statement``: one paragraph for
    reports; ``support``: every process use; ``off_chip``: project processes with no
    neurocore/C model; ``compiled``: a ``Loihi2HwCfg`` compile succeeded; ``compile_error``:
    Lava's reason when it did not (``None`` otherwise)."""

    lava_loihi: bool
    statement: str
    support: tuple[ProcessSupport, ...]
    off_chip: tuple[ProcessSupport, ...]
    compiled: bool = False
    compile_error: str | None = None

    def markdown(self) -> str:
        """The statement and a table of the processes that cannot run on the chip."""
        lines = ["## Loihi 2 hardware path", "", self.statement, ""]
        if self.off_chip:
            lines += [
                "Project processes with no neurocore/C model (cannot run on the chip as they are):",
                "",
                "| layer | process | placement |",
                "|---|---|---|",
            ]
            lines += [f"| {p.layer} | {p.process} | {p.placement} |" for p in self.off_chip]
        return "\n".join(lines) + "\n"


def lava_loihi_installed() -> bool:
    """``lava.utils.loihi.is_installed()``; ``False`` when Lava itself cannot be imported."""
    try:
        from lava.utils import loihi
    except ImportError:
        return False
    return bool(loihi.is_installed())


def _chip_model_bases() -> tuple[type, ...]:
    """lava-loihi's neurocore and C model base classes, or ``()`` where they are absent."""
    bases: list[type] = []
    for module, name in (
        ("lava.magma.core.model.nc.model", "AbstractNcProcessModel"),
        ("lava.magma.core.model.c.model", "CLoihiProcessModel"),
    ):
        try:
            bases.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(bases)


def process_class(name: str) -> type:
    """The Lava process class called ``name`` (:data:`PROCESS_CLASSES`)."""
    if name not in PROCESS_CLASSES:
        raise HardwarePathError(f"hardware_path: unknown Lava process {name!r}")
    return load_process(name)


def chip_models_of(cls: type) -> tuple[str, ...]:
    """Names of the neurocore/C models Lava's compiler would find for process class ``cls``.

    Uses the compiler's own discovery (``ProcGroupDiGraphs._find_proc_models``: the process's
    module, its folder and the namespace packages of every Lava repository installed), which
    needs an instance only for its class and module: an uninitialized one is passed (with
    ``_runtime = None``, so that Lava's ``__del__`` finds nothing to stop).
    """
    from lava.magma.compiler.compiler_graphs import ProcGroupDiGraphs

    bases = _chip_model_bases()
    if not bases:
        return ()
    probe = cls.__new__(cls)
    probe._runtime = None
    models = ProcGroupDiGraphs._find_proc_models(probe)
    return tuple(sorted(m.__name__ for m in models if issubclass(m, bases)))


def process_support(
    nodes: Iterable[Any], *, find_chip_models: Callable[[type], tuple[str, ...]] = chip_models_of
) -> tuple[ProcessSupport, ...]:
    """One :class:`ProcessSupport` per (layer, distinct process class) of a graph description.

    ``nodes``: records with ``name``, ``processes`` (delay → class name) and ``placement``
    (``export.lava.LavaNode``: ``to_lava(net).nodes.values()``). Raises
    :class:`HardwarePathError` for an unknown process name.
    """
    cache: dict[str, tuple[str, ...]] = {}
    out = []
    for node in nodes:
        for proc in dict.fromkeys(node.processes.values()):
            cls = process_class(proc)
            if proc not in cache:
                cache[proc] = tuple(find_chip_models(cls))
            out.append(
                ProcessSupport(
                    layer=node.name,
                    process=proc,
                    placement=node.placement,
                    project=is_project_process(proc),
                    chip_models=cache[proc],
                )
            )
    return tuple(out)


def without_chip_model(support: Iterable[ProcessSupport]) -> tuple[ProcessSupport, ...]:
    """The project processes with no neurocore/C model (they cannot run on the chip)."""
    return tuple(p for p in support if p.project and not p.on_chip)


def _statement(installed: bool, support: tuple[ProcessSupport, ...], off: tuple) -> str:
    names = sorted({p.process for p in off})
    tail = (
        f" {len(off)} layer(s) use project processes with only Python models "
        f"({', '.join(names)}): they cannot run on the chip as they are and would need "
        "neurocore or embedded-C models (or stay on the host)."
        if off
        else " Every project process in this graph has a neurocore/C model."
    )
    if installed:
        return "lava-loihi is installed; the graph was compiled with Loihi2HwCfg." + tail
    stock = sorted({p.process for p in support if not p.project})
    stock_note = (
        f" The stock processes ({', '.join(stock)}) get their neurocore models, where they "
        "exist, from lava-loihi, which cannot be inspected here."
        if stock
        else ""
    )
    return NOT_INSTALLED + stock_note + tail


def hardware_path(
    graph: Any, inputs: Any = None, *, compile_graph: bool = True
) -> HardwarePathReport:
    """Check (and, with lava-loihi, compile) a ``LavaGraph`` for Loihi 2.

    Without lava-loihi: the report's ``statement`` says so and lists the off-chip processes;
    nothing is built and ``inputs`` may be ``None``. With it and ``compile_graph``:
    ``graph.build(inputs)`` (inputs as for ``LavaGraph.build``; ``None`` is a
    :class:`HardwarePathError`) then
    ``compile(run_cfg=Loihi2HwCfg(select_tag="fixed_pt"))``; a compile failure is returned as
    ``compile_error`` (Lava's reason) next to the listing that usually explains it.
    """
    installed = lava_loihi_installed()
    support = process_support(graph.nodes.values())
    off = without_chip_model(support)
    compiled, error = False, None
    if installed and compile_graph:
        from lava.magma.core.run_configs import Loihi2HwCfg

        if inputs is None:
            raise HardwarePathError(
                "hardware_path: lava-loihi is installed; pass the inputs of a batch so the "
                "graph can be built and compiled (or compile_graph=False)"
            )

        build = graph.build(inputs, record_spikes=False)
        try:
            build.anchor.compile(run_cfg=Loihi2HwCfg(select_tag="fixed_pt"))
            compiled = True
        except Exception as err:  # noqa: BLE001 - Lava's compiler raises bare Exceptions;
            # the reason is returned in the report, not hidden.
            error = f"{type(err).__name__}: {err}"
    statement = _statement(installed, support, off)
    if error:
        statement = statement.replace("was compiled", "failed to compile") + f" ({error})"
    return HardwarePathReport(
        lava_loihi=installed,
        statement=statement,
        support=support,
        off_chip=off,
        compiled=compiled,
        compile_error=error,
    )
