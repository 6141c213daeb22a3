"""Run a :class:`~export.lava.graph.LavaGraph` in Lava (CPU, ``fixed_pt``) and read it back.

:func:`run_lava` streams B samples (one every T steps) through one build, always stops the Lava
runtime (:class:`LavaSession`, a context manager), and returns a :class:`LavaResult`: per-node
spike trains realigned to logical time by depth (``[T, B, *shape]``, the simulator's layout),
the readouts' integer input streams and float features. Failures inside Lava (a process model
raising in its child process, a runtime that does not answer) become :class:`LavaRunError`.
:func:`compare_to_sim` checks a result against ``hardware.simulate.engine``'s ``SimResult``.

Nothing outlives a run: a signal (:mod:`spikeclip.interrupts`) or any other exception tears the
runtime down (children killed, shared memory unlinked) before it propagates; Lava's children die
on their own within a fraction of a second if this process is SIGKILLed
(:func:`~spikeclip.interrupts.children_die_with_parent`); and the segments a run uses are
recorded under :func:`segment_registry` with its pid, so the next run unlinks those of a run
that died before it could (:func:`reap_dead_runs`).
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing as mp
import multiprocessing.resource_tracker
import os
import re
import signal
import stat
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import psutil

from export.lava.errors import LavaInputError, LavaLoweringError, LavaRunError
from export.lava.graph import LavaGraph, to_lava
from export.lava.procs.recorder.process import unpack_spikes
from hardware.ir.layers import CurrentInputLayer, SpikeInputLayer
from hardware.ir.network import LoihiNetwork
from spikeclip.interrupts import children_die_with_parent, deferred, pid_alive
from spikeclip.progress import bar

__all__ = [
    "LavaInputError",
    "LavaResult",
    "LavaRunError",
    "LavaSession",
    "SimComparison",
    "compare_to_sim",
    "reap_dead_runs",
    "run_in_lava",
    "run_lava",
    "segment_registry",
]


@dataclass(frozen=True, kw_only=True)
class LavaResult:
    """What a Lava run returns for ``n_samples`` streamed samples of ``T`` steps.

    ``spikes[lif]``: bool ``[T, B, *shape]``, entry ``[t, k]`` recorded at Lava step
    ``k·T + t + depth + 1``; ``stream[readout]``: int64 ``[T, B, *in_shape]``, the summed
    currents (wu) the readout received per logical step; ``features[readout]``: float64
    ``[B, F]``; ``n_steps``: Lava steps run; ``wall_s``: seconds for build + run + read;
    ``shared_memory``: names of the segments the runtime used (all unlinked on return).
    """

    T: int
    n_samples: int
    spikes: Mapping[str, np.ndarray]
    stream: Mapping[str, np.ndarray]
    features: Mapping[str, np.ndarray]
    n_steps: int
    wall_s: float
    shared_memory: tuple[str, ...] = ()


#: Seconds between liveness checks of the runtime's child processes while a run is going.
POLL_S = 0.2
#: A run is split into at most this many ``RunSteps`` calls so the progress bar can move (Lava
#: keeps every state across them; the Lava-vs-simulator tests run split).
PROGRESS_CHUNKS = 16
#: Seconds Lava gets to report a child's failure itself once a child has died.
GRACE_S = 2.0
#: Seconds the teardown waits, in all, for the child processes it SIGKILLed to exit.
TERM_S = 5.0
#: Where a live run lists its shared memory segments (Linux's POSIX shared memory folder).
SHM_DIR = Path("/dev/shm")
_SEGMENT = re.compile(r"psm_[0-9a-f]{1,64}")  # names multiprocessing.shared_memory makes
_RECORD = re.compile(r"(?P<pid>[0-9]+)\.(json|tmp)")  # .tmp: killed while writing it


def segment_registry() -> Path | None:
    """This user's folder of per-run segment records (``<pid>.json``), created ``0o700``
    under ``$XDG_RUNTIME_DIR`` (else the temp folder); None if it is not safely ours."""
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
    folder = base / f"spikeclip-lava-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = folder.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None
    return folder


def reap_dead_runs(registry: Path | None = None) -> list[str]:
    """Unlink the segments recorded by runs whose process is gone; returns their names.

    Only names recorded in ``<pid>.json`` (or a half-written ``<pid>.tmp``) by a run of this
    user whose pid is not alive, that look like ``multiprocessing.shared_memory`` names and
    are files of this user in :data:`SHM_DIR`, are unlinked (a live run's record, or a reused
    pid, is left alone); the dead runs' records are deleted.
    """
    registry = segment_registry() if registry is None else registry
    if registry is None:
        return []
    reaped: list[str] = []
    for record in sorted(registry.iterdir()):
        match = _RECORD.fullmatch(record.name)
        if not match or pid_alive(int(match["pid"])):
            continue
        try:
            names = json.loads(record.read_text(encoding="ascii")).get("segments", [])
        except (OSError, ValueError, AttributeError):
            names = []
        for name in names:
            if not isinstance(name, str) or not _SEGMENT.fullmatch(name):
                continue
            path = SHM_DIR / name
            with contextlib.suppress(FileNotFoundError):
                if path.lstat().st_uid == os.getuid() and stat.S_ISREG(path.lstat().st_mode):
                    path.unlink()
                    reaped.append(name)
        with contextlib.suppress(FileNotFoundError):
            record.unlink()
    return reaped


class LavaSession:
    """Context manager around one Lava graph: ``run()`` it, read Vars, always release it.

    ``with LavaSession(anchor, n_steps) as s: s.run(); data = s.get(var)``. ``run`` executes
    Lava's blocking ``run`` in a worker thread and watches it: an exception (Lava re-raises a
    process model's exception as a bare ``RuntimeError``), a child process that died, or
    ``timeout_s`` elapsed becomes a :class:`LavaRunError` — after the runtime has been torn
    down (children terminated, then killed; Lava's shared memory segments unlinked; its
    watchdog manager stopped), because Lava's own ``stop`` hangs once a child has failed.
    On exit after a good run, Lava's ``stop`` runs with ``stop_timeout_s`` (teardown and
    :class:`LavaRunError` if it hangs). ``shared_memory`` lists the segment names the runtime
    created (for leak checks). The teardown reads Lava 0.10 runtime internals (its actors,
    shared memory manager and watchdog manager; see :meth:`_teardown`): pinned to that version.
    """

    def __init__(
        self, anchor: Any, n_steps: int, *, timeout_s: float = 600.0, stop_timeout_s: float = 30.0
    ) -> None:
        self.anchor = anchor
        self.n_steps = int(n_steps)
        self.timeout_s = float(timeout_s)
        self.stop_timeout_s = float(stop_timeout_s)
        self.shared_memory: tuple[str, ...] = ()
        self._started = False
        self._released = False
        self._stop_error: BaseException | None = None
        self._registry = segment_registry()
        self._worker: threading.Thread | None = None
        self._before: set[int] = set()  # pids of this process's children before the run
        self._record = None if self._registry is None else self._registry / f"{os.getpid()}.json"

    def __enter__(self) -> LavaSession:
        return self

    # -- running -----------------------------------------------------------------------------

    def run(self) -> None:
        """Compile and run ``n_steps`` steps with ``Loihi2SimCfg(select_tag="fixed_pt")``."""
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg

        self._started = True
        errors: list[BaseException] = []

        steps = bar(total=self.n_steps, desc="lava: steps", unit="step")
        chunk = max(1, math.ceil(self.n_steps / PROGRESS_CHUNKS))

        def work() -> None:
            try:
                done = 0
                while done < self.n_steps:  # in chunks, for the bar (the state carries on)
                    k = min(chunk, self.n_steps - done)
                    self.anchor.run(condition=RunSteps(num_steps=k),
                                    run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
                    done += k
                    steps.update(k)
            except BaseException as err:  # noqa: BLE001 - handed to the watching thread
                errors.append(err)
            finally:
                steps.close()

        reap_dead_runs(self._registry)
        worker = threading.Thread(target=work, name="lava-run", daemon=True)
        self._worker = worker
        _start_resource_tracker()  # now, so it is not one of the run's children (_kill_strays)
        self._before = {c.pid for c in psutil.Process().children()}
        deadline = time.monotonic() + self.timeout_s
        died_at: float | None = None
        try:
            with children_die_with_parent():
                worker.start()
                while worker.is_alive():
                    worker.join(POLL_S)
                    self._note_shared_memory()
                    now = time.monotonic()
                    if worker.is_alive() and died_at is None and self._dead_children():
                        died_at = now
                    if worker.is_alive() and died_at is not None and now - died_at > GRACE_S:
                        dead = self._dead_children()
                        self._fail(f"child process(es) {dead} died during the run")
                    if worker.is_alive() and now > deadline:
                        self._fail(f"the run did not finish within {self.timeout_s:g} s")
        except KeyboardInterrupt:
            self._teardown()  # the worker stays blocked in Lava (a daemon thread); children go
            raise
        if errors:
            err = errors[0]
            self._fail(f"{type(err).__name__}: {err}", cause=err)

    @property
    def children(self) -> tuple[int, ...]:
        """Process ids of the runtime's live child processes (Lava's actors)."""
        return tuple(
            a.pid for a in self._actors() if not getattr(a, "_is_done", False) and a.is_alive()
        )

    def get(self, var: Any) -> np.ndarray:
        """``var.get()`` as a numpy array; a failure tears down and raises LavaRunError."""
        try:
            return np.asarray(var.get())
        except Exception as err:  # Lava raises bare exceptions from its runtime
            self._fail(f"reading {var.name!r} of {var.process.name!r} failed: {err}", cause=err)
        except KeyboardInterrupt:
            self._teardown()
            raise

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._started or self._released:
            return
        if exc is not None and not isinstance(exc, Exception):
            self._teardown()  # a signal (or exit): no waiting on Lava's stop protocol
            return
        stopper = threading.Thread(target=self._stop_quietly, name="lava-stop", daemon=True)
        stopper.start()
        try:
            stopper.join(self.stop_timeout_s)
        except KeyboardInterrupt:
            self._teardown()
            raise
        if stopper.is_alive() or self._stop_error is not None:
            reason = (
                f"Lava's stop did not return within {self.stop_timeout_s:g} s"
                if stopper.is_alive()
                else f"Lava's stop failed: {self._stop_error}"
            )
            self._teardown()
            if exc is None:
                raise LavaRunError(f"export.lava: {reason}")
        self._released = True
        self._forget_segments()

    def _stop_quietly(self) -> None:
        try:
            self.anchor.stop()
        except BaseException as err:  # noqa: BLE001 - reported by __exit__
            self._stop_error = err

    # -- failure handling --------------------------------------------------------------------

    def _runtime(self) -> Any:
        return getattr(self.anchor, "runtime", None)

    def _actors(self) -> list[Any]:
        infra = getattr(self._runtime(), "_messaging_infrastructure", None)
        return list(getattr(infra, "actors", []) or [])

    def _dead_children(self) -> list[str]:
        return [
            f"{a.name} (exit code {a.exitcode})"
            for a in self._actors()
            if not getattr(a, "_is_done", False) and a.exitcode is not None
        ]

    def _note_shared_memory(self) -> None:
        infra = getattr(self._runtime(), "_messaging_infrastructure", None)
        smm = getattr(infra, "smm", None)
        handles = getattr(smm, "_shared_memory_handles", None) or []
        if len(handles) > len(self.shared_memory):
            self.shared_memory = tuple(h.name for h in handles)
            self._remember_segments()

    def _remember_segments(self) -> None:
        """Record the segment names with this pid (for :func:`reap_dead_runs`)."""
        if self._record is None:
            return
        text = json.dumps({"pid": os.getpid(), "segments": list(self.shared_memory)})
        tmp = self._record.with_suffix(".tmp")
        with contextlib.suppress(OSError):
            tmp.write_text(text, encoding="ascii")
            os.replace(tmp, self._record)

    def _forget_segments(self) -> None:
        if self._record is not None:
            with contextlib.suppress(FileNotFoundError):
                self._record.unlink()

    def _child_tracebacks(self) -> str:
        tails = []
        for actor in self._actors():
            try:
                exc = actor.exception
            except (OSError, EOFError, ValueError):
                continue
            if exc:
                lines = [ln for ln in str(exc[1]).strip().splitlines() if ln.strip()]
                tails.append(lines[-1] if lines else repr(exc[0]))
        return "; ".join(tails)

    def _fail(self, reason: str, cause: BaseException | None = None) -> None:
        self._note_shared_memory()
        detail = self._child_tracebacks()
        self._teardown()
        msg = f"export.lava: Lava run failed: {reason}"
        if detail:
            msg += f" [in child: {detail}]"
        raise LavaRunError(msg) from cause

    def _teardown(self) -> None:
        """Release what Lava's runtime holds without its (hanging) stop protocol; a signal
        arriving meanwhile is raised only after it (:func:`~spikeclip.interrupts.deferred`)."""
        with deferred():
            self._release_runtime()
            self._forget_segments()

    def _release_runtime(self) -> None:
        self._released = True
        if self._worker is not None:
            # Lava may still be starting processes in the worker thread: from now on a child
            # forked there exits at once (see _exit_if_abandoned); stray ones are killed below.
            setattr(self._worker, _ABANDONED, True)
        runtime = self._runtime()
        if runtime is not None:
            self._release_actors(runtime)
        self._kill_strays()

    def _kill_strays(self) -> None:
        """SIGKILL every child of this process that appeared during the run and is not yet
        gone: Lava forks its actors in the worker thread, one may have been in flight, and not
        yet listed, when the run was torn down. The worker is marked abandoned before this
        pass, so a child it forks later exits by itself (:func:`_exit_if_abandoned`)."""
        new = [c for c in psutil.Process().children() if c.pid not in self._before]
        for child in new:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.send_signal(signal.SIGKILL)
        pids = {c.pid for c in new}
        _kill_and_reap([p for p in mp.active_children() if p.pid in pids])
        # Those multiprocessing had not registered yet are not reaped here (it will): wait
        # until they are dead (a zombie is), which for a large process takes a moment.
        deadline = time.monotonic() + TERM_S
        while time.monotonic() < deadline and any(_running(c) for c in new):
            time.sleep(POLL_S / 10)

    def _release_actors(self, runtime: Any) -> None:
        # Actors Lava already joined are closed (and dead); handle the others.
        _kill_and_reap([a for a in self._actors() if not getattr(a, "_is_done", False)])
        infra = getattr(runtime, "_messaging_infrastructure", None)
        if getattr(infra, "smm", None) is not None:
            infra.smm.shutdown()  # unlinks every segment the runtime created
        watchdog = getattr(runtime, "_watchdog_manager", None)
        if watchdog is not None:
            watchdog.stop()
        # Lava's Process.__del__ calls stop(), which would wait forever on dead children.
        runtime._is_started = False
        runtime._is_running = False


def _running(proc: psutil.Process) -> bool:
    """True while ``proc`` exists and is not a zombie."""
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker (if not running) with SIGHUP blocked.

    The tracker unlinks the shared memory of processes that died without doing it. It ignores
    SIGINT and SIGTERM itself, not SIGHUP, which a closed terminal sends to the whole process
    group; a blocked signal stays blocked across its ``exec``, as CPython does for the other
    two. (Killed, the tracker is relaunched with a warning on stderr and segments may leak.)
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    try:
        multiprocessing.resource_tracker.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _kill_and_reap(procs: list[Any]) -> None:
    """SIGKILL ``procs`` (this process's multiprocessing children, Lava's actors among them)
    and reap them, waiting at most :data:`TERM_S` in all; never blocks beyond that.

    SIGKILL, not SIGTERM: the children ignore SIGINT, SIGTERM and SIGHUP (see
    :mod:`spikeclip.interrupts`: a signal to the process group must not kill Lava's memory
    manager before it unlinks its segments), and one forked a moment ago may still run this
    process's inherited Python handler, which would swallow a SIGTERM. A child that cannot be
    reaped in time is dropped from multiprocessing's list (``multiprocessing.process.
    _children``), or the interpreter's exit would wait for it forever (it still dies with this
    process: see :func:`~spikeclip.interrupts.children_die_with_parent`).
    """
    for proc in procs:
        with contextlib.suppress(ValueError, OSError):
            if proc.exitcode is None:
                proc.kill()
    deadline = time.monotonic() + TERM_S
    for proc in procs:
        with contextlib.suppress(ValueError):  # a closed process object: already done
            mp.Process.join(proc, max(0.0, deadline - time.monotonic()))
            if proc.exitcode is None:
                mp.process._children.discard(proc)  # see the docstring
                if hasattr(proc, "_is_done"):
                    proc._is_done = True  # Lava would join it forever
            elif hasattr(proc, "_is_done"):
                proc.join()  # Lava's bookkeeping: reads its exception, closes pipes, marks done


#: Attribute set on a torn-down run's worker thread: children it forks exit at once.
_ABANDONED = "_spikeclip_lava_abandoned"


def _exit_if_abandoned() -> None:
    """In a child just forked: exit at once if the forking thread's run was torn down."""
    if getattr(threading.current_thread(), _ABANDONED, False):
        os._exit(1)


os.register_at_fork(after_in_child=_exit_if_abandoned)


def run_lava(graph: LavaGraph, inputs: Any, *, timeout_s: float = 600.0) -> LavaResult:
    """Build ``graph`` for ``inputs`` (see :meth:`LavaGraph.build`), run, read, release.

    Raises :class:`LavaInputError` (a :class:`LavaRunError`) for inputs that do not fit,
    :class:`LavaRunError` for a failed or timed-out run (children and shared memory released).
    """
    start = time.perf_counter()
    build = graph.build(inputs)
    timing = graph.timing
    B, T = build.n_samples, graph.network.T
    spikes: dict[str, np.ndarray] = {}
    stream: dict[str, np.ndarray] = {}
    features: dict[str, np.ndarray] = {}
    with LavaSession(build.anchor, build.n_steps, timeout_s=timeout_s) as session:
        session.run()
        if build.recorder is not None:
            words = session.get(build.recorder.words)  # [n_steps, n_words], row time_step − 1
            total = build.recorder.proc_params["offsets"][-1]
            steps = unpack_spikes(words, total)  # bool [n_steps, Σ neurons]
            for name, (col, shape) in build.recorded.items():
                idx = timing.logical_indices(name, B)  # [T, B]
                spikes[name] = steps[idx, col : col + math.prod(shape)].reshape(T, B, *shape)
        for name, proc in build.readouts.items():
            s = session.get(proc.stream).astype(np.int64)  # [B, T, *in_shape]
            stream[name] = np.swapaxes(s, 0, 1)
            features[name] = session.get(proc.features).astype(np.float64)
    return LavaResult(
        T=T,
        n_samples=B,
        spikes=MappingProxyType(spikes),
        stream=MappingProxyType(stream),
        features=MappingProxyType(features),
        n_steps=build.n_steps,
        wall_s=time.perf_counter() - start,
        shared_memory=session.shared_memory,
    )


def run_in_lava(
    network: LoihiNetwork, inputs: Any, n_samples: int | None = None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Lower ``network`` to Lava, stream the first ``n_samples`` of ``inputs``, return
    ``(features {readout: [B, F]}, spikes {lif: bool [T, B, *shape]})`` (the CLI's entry).

    ``inputs`` as for ``hardware.simulate.engine.simulate``. Raises :class:`LavaLoweringError` for a
    network or inputs that cannot be lowered, :class:`LavaRunError` for a failed run.
    """
    graph = to_lava(network)
    if n_samples is not None:
        inputs = _first(network, inputs, n_samples)
    result = run_lava(graph, inputs)
    return dict(result.features), dict(result.spikes)


def _first(network: LoihiNetwork, inputs: Any, n: int) -> Any:
    """The first ``n`` samples of ``inputs`` (as for ``simulate``): time-major rasters
    ``[T, B, …]`` (spike and current inputs) are cut on axis 1, host inputs ``[B, …]`` on 0."""
    if n < 1:
        raise LavaLoweringError("<network>", f"n_samples must be ≥ 1, got {n}")

    def cut(name: str | None, x: Any) -> np.ndarray:
        x = np.asarray(x)
        rasters = (SpikeInputLayer, CurrentInputLayer)
        time_major = name is not None and isinstance(network.layer(name), rasters)
        return x[:, :n] if time_major else x[:n]

    if isinstance(inputs, Mapping):
        return {k: cut(k, v) for k, v in inputs.items()}
    kinds = ("host_input", "spike_input", "current_input")
    sources = [ly.name for ly in network.layers if ly.KIND in kinds]
    return cut(sources[0] if len(sources) == 1 else None, inputs)


@dataclass(frozen=True, kw_only=True)
class SimComparison:
    """Lava vs simulator: per-LIF count of differing neuron-steps (``spike_mismatches``),
    per-readout count of differing stream entries and max |Δ feature|, LIFs recorded with
    different shapes (``shape_mismatches``, not compared), names on one side only
    (``missing``), and ``equal``."""

    spike_mismatches: Mapping[str, int]
    stream_mismatches: Mapping[str, int]
    feature_max_abs_diff: Mapping[str, float]
    missing: tuple[str, ...]
    shape_mismatches: tuple[str, ...] = ()

    @property
    def equal(self) -> bool:
        """Every compared node identical, features identical, nothing missing."""
        return (
            not self.missing
            and not self.shape_mismatches
            and not any(self.spike_mismatches.values())
            and not any(self.stream_mismatches.values())
            and not any(self.feature_max_abs_diff.values())
        )


def compare_to_sim(
    lava: LavaResult, sim: Any, network: LoihiNetwork | None = None
) -> SimComparison:
    """Compare ``lava`` with a ``SimResult`` run with ``keep_states=True`` on the same inputs.

    Spikes are compared exactly per LIF; readout streams exactly after decoding the simulator's
    float stream back to integers when ``network`` is given (``(X − bias)/input_scale``);
    features by max absolute difference. LIFs missing on either side are listed in ``missing``.
    """
    missing = tuple(sorted(set(lava.spikes) ^ set(sim.spikes)))
    spikes: dict[str, int] = {}
    shapes: list[str] = []
    for n in sorted(set(lava.spikes) & set(sim.spikes)):
        ref = np.asarray(sim.spikes[n])
        if ref.shape != lava.spikes[n].shape:
            shapes.append(n)
            continue
        spikes[n] = int(np.count_nonzero(lava.spikes[n] != ref))
    streams: dict[str, int] = {}
    if network is not None:
        for name, a in lava.stream.items():
            if name not in sim.stream:
                continue
            layer = network.layer(name)
            lead = (-1, *([1] * (len(layer.in_shape) - 1)))
            decoded = a.astype(np.float64) * layer.input_scale + np.asarray(
                layer.input_bias, np.float64
            ).reshape(lead)
            streams[name] = int(np.count_nonzero(decoded != np.asarray(sim.stream[name])))
    feats = {
        n: float(np.max(np.abs(lava.features[n] - np.asarray(sim.features[n])), initial=0.0))
        for n in sorted(set(lava.features) & set(sim.features))
    }
    missing += tuple(sorted(set(lava.features) ^ set(sim.features)))
    return SimComparison(
        shape_mismatches=tuple(shapes),
        spike_mismatches=MappingProxyType(spikes),
        stream_mismatches=MappingProxyType(streams),
        feature_max_abs_diff=MappingProxyType(feats),
        missing=missing,
    )
