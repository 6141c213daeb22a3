"""The training loop every stage shares: deterministic batches, Adam + cosine schedule, model
selection on a validation metric, resumable checkpoints, progress bar, JSON log per epoch.

Batches: epoch e visits `EpochBatches(n, batch_size, seed).indices(e)`, a permutation drawn from
a generator seeded with (seed, e) only, so the order never depends on what ran before (a resumed
run skips the batches already done). Under torchrun (`distributed`), rank r of N takes
`distributed.shard(perm, r, N)` (DistributedSampler's padding and stride); only rank 0 shows
progress and writes log.json / state.pt.

Resume state (`<workdir>/state.pt`, written every `save_every` steps, every
`state_every_epochs` epoch ends, after the last epoch, and when `max_steps` stops a run): module,
optimizer and scheduler states, position (epoch, step in epoch, global step), the epoch's running
loss, the best score and best weights, the log so far, and the torch / numpy / python RNG states.
Resuming from it gives the same weights as an uninterrupted run (same ops in the same order).
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from spikeclip.errors import UsageError
from spikeclip.safe_load import check_finite, read_torch_file
from spikeclip.training import distributed
from spikeclip.training.io import atomic_save, atomic_write_json

STATE_FILE = "state.pt"
LOG_FILE = "log.json"


@dataclass(frozen=True, kw_only=True)
class LoopConfig:
    """Hyperparameters of one stage's loop (defaults: the paper code's Adam, amsgrad, wd 0,
    cosine schedule stepped per epoch; lr and epochs are per stage)."""

    epochs: int
    batch_size: int
    lr: float
    eta_min: float = 0.0
    amsgrad: bool = True
    weight_decay: float = 0.0
    seed: int = 42
    drop_last: bool = False
    max_steps: int | None = None  # stop (with a resume checkpoint) after this many steps
    save_every: int = 0  # steps between resume checkpoints (0: only at epoch ends)
    state_every_epochs: int = 1  # epochs between end-of-epoch resume checkpoints (last: always)
    progress: bool = True
    num_workers: int = 0


@dataclass(frozen=True, kw_only=True)
class LoopResult:
    """`completed` is False when `max_steps` stopped the run. `best_score` is the validation
    score of the weights left in the modules (the last epoch's when there is no evaluator);
    `history` is the per-epoch log."""

    completed: bool
    global_step: int
    steps_run: int  # optimizer steps taken by this call (global_step minus the resumed start)
    best_score: float | None
    best_epoch: int | None
    history: list[dict] = field(default_factory=list)


class EpochBatches:
    """Index batches for one epoch: permutation from `Generator(seed · 1000003 + epoch)`, then
    this rank's share (`distributed.shard`: `perm[rank::world]` after padding to a multiple of
    world), then consecutive batches."""

    def __init__(self, n: int, batch_size: int, seed: int, *, drop_last: bool = False,
                 rank: int = 0, world: int = 1) -> None:
        if n <= 0 or batch_size <= 0:
            raise ValueError(f"EpochBatches: need n > 0 and batch_size > 0 (got {n}, {batch_size})")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.drop_last, self.rank, self.world = drop_last, rank, world

    def indices(self, epoch: int) -> list[list[int]]:
        gen = torch.Generator().manual_seed(self.seed * 1000003 + epoch)
        perm = torch.randperm(self.n, generator=gen).tolist()
        mine = distributed.shard(perm, self.rank, self.world)
        batches = [mine[i : i + self.batch_size] for i in range(0, len(mine), self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        return batches

    def steps_per_epoch(self) -> int:
        return len(self.indices(0))


def _rng_state() -> dict:
    np_state = np.random.get_state()  # noqa: NPY002 (global state, saved for resume)
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)),
                      *[float(v) if isinstance(v, float) else int(v) for v in np_state[2:]])}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        (name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (seeds the legacy global RNG)
    torch.manual_seed(seed)


StepFn = Callable[[tuple], tuple[torch.Tensor | None, float]]


def _module_states(modules: dict[str, nn.Module]) -> dict[str, dict]:
    return {k: copy.deepcopy(m.state_dict()) for k, m in modules.items()}


def train_loop(
    *, stage: str, modules: dict[str, nn.Module], params: list[nn.Parameter], dataset: Dataset,
    step_fn: StepFn, cfg: LoopConfig, evaluate: Callable[[], dict[str, float]] | None = None,
    score_key: str = "", higher_is_better: bool = True, workdir: str | Path | None = None,
    resume: bool = False,
) -> LoopResult:
    """Train `params` (belonging to `modules`) on `dataset` for `cfg.epochs` epochs.

    `step_fn(batch)` returns `(loss_to_backprop or None, loss value to log)`; None skips the
    optimizer step (gradient-angle gate). After each epoch `evaluate()` returns validation
    metrics; the weights with the best `metrics[score_key]` are kept and restored at the end.
    With `workdir`, the log goes to `<workdir>/log.json` and resume state to `state.pt`;
    `resume=True` continues from that state when it exists (read by `spikeclip.safe_load`: a
    damaged file is a `CheckpointError`, exit 3; another stage's state a `ResumeStateError`).
    """
    run = _Run(stage=stage, modules=modules, params=params, dataset=dataset, cfg=cfg,
               workdir=workdir)
    run.start(resume)
    while run.pos["epoch"] < cfg.epochs:
        if not run.epoch(step_fn):
            return run.result(completed=False)
        run.end_epoch(evaluate, score_key, higher_is_better)
    if run.best["states"] is not None:
        for k, m in modules.items():
            m.load_state_dict(run.best["states"][k])
    return run.result(completed=True)


class ResumeStateError(UsageError):
    """`--resume` found a `state.pt` this stage cannot continue from (another stage's)."""


class _Run:
    """One `train_loop` call: optimizer, schedule, position, best weights and log, with the
    resume state they make up (module docstring)."""

    def __init__(self, *, stage: str, modules: dict[str, nn.Module], params: list[nn.Parameter],
                 dataset: Dataset, cfg: LoopConfig, workdir: str | Path | None) -> None:
        self.stage, self.modules, self.dataset, self.cfg = stage, modules, dataset, cfg
        self.optimizer = torch.optim.Adam(params, lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8,
                                          weight_decay=cfg.weight_decay, amsgrad=cfg.amsgrad)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.optimizer, T_max=max(cfg.epochs, 1), eta_min=cfg.eta_min)
        self.ctx = distributed.current()
        self.batches = EpochBatches(len(dataset), cfg.batch_size,  # type: ignore[arg-type]
                                    cfg.seed, drop_last=cfg.drop_last, rank=self.ctx.rank,
                                    world=self.ctx.world)
        self.wd = Path(workdir) if workdir is not None else None
        self.pos: dict = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "loss_sum": 0.0,
                          "loss_n": 0, "samples": 0, "seconds": 0.0}
        self.best: dict = {"score": None, "epoch": None, "states": None}
        self.history: list[dict] = []
        self.start_step = 0

    def start(self, resume: bool) -> None:
        """Continue from `state.pt` (with `resume`, where it exists), else seed everything."""
        if resume and self.wd is not None and (self.wd / STATE_FILE).is_file():
            self._restore(self.wd / STATE_FILE)
        else:
            seed_everything(self.cfg.seed)
        self.start_step = self.pos["global_step"]

    def _restore(self, path: Path) -> None:
        state = read_torch_file(path)
        if not isinstance(state, dict) or state.get("stage") != self.stage:
            found = state.get("stage") if isinstance(state, dict) else type(state).__name__
            raise ResumeStateError(f"{path}: resume state of stage {found!r}, not "
                                   f"{self.stage!r}; name another --workdir or drop --resume")
        for k, m in self.modules.items():
            check_finite(state["modules"][k], path)
            m.load_state_dict(state["modules"][k])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.pos, self.best = dict(state["position"]), dict(state["best"])
        self.history = list(state["history"])
        _set_rng_state(state["rng"])

    def save_state(self) -> None:
        if self.wd is None or not self.ctx.is_main:
            return
        atomic_save({"stage": self.stage,
                     "modules": {k: m.state_dict() for k, m in self.modules.items()},
                     "optimizer": self.optimizer.state_dict(),
                     "scheduler": self.scheduler.state_dict(), "position": self.pos,
                     "best": self.best, "history": self.history, "rng": _rng_state()},
                    self.wd / STATE_FILE)

    def _stop_now(self) -> bool:
        return self.cfg.max_steps is not None and self.pos["global_step"] >= self.cfg.max_steps

    def result(self, *, completed: bool) -> LoopResult:
        return LoopResult(completed=completed, global_step=self.pos["global_step"],
                          steps_run=self.pos["global_step"] - self.start_step,
                          best_score=self.best["score"], best_epoch=self.best["epoch"],
                          history=self.history)

    def epoch(self, step_fn: StepFn) -> bool:
        """Run the rest of the current epoch's batches; False when `max_steps` stopped it
        first (the resume state is then saved)."""
        pos, epoch = self.pos, self.pos["epoch"]
        plan = self.batches.indices(epoch)[pos["step_in_epoch"] :]
        for m in self.modules.values():
            m.train()
        loader = DataLoader(self.dataset, batch_sampler=plan, num_workers=self.cfg.num_workers)
        bar = tqdm(loader, total=len(plan), leave=False,
                   disable=not (self.cfg.progress and self.ctx.is_main),
                   desc=f"{self.stage} epoch {epoch + 1}/{self.cfg.epochs}")
        t0 = time.perf_counter()
        for batch in _iter(bar):
            if self._stop_now():
                pos["seconds"] += time.perf_counter() - t0
                self.save_state()
                return False
            self._step(step_fn, batch, epoch, t0, bar)
        bar.close()
        pos["seconds"] += time.perf_counter() - t0
        if self._stop_now() and pos["step_in_epoch"] < len(self.batches.indices(epoch)):
            self.save_state()
            return False
        return True

    def _step(self, step_fn: StepFn, batch: tuple, epoch: int, t0: float, bar: tqdm) -> None:
        pos = self.pos
        self.optimizer.zero_grad(set_to_none=True)
        loss, value = step_fn(batch)
        if loss is not None:
            loss.backward()
            self.optimizer.step()
        if not math.isfinite(value):
            raise FloatingPointError(f"{self.stage}: loss is {value} at epoch {epoch + 1}, "
                                     f"step {pos['step_in_epoch']}")
        pos["step_in_epoch"] += 1
        pos["global_step"] += 1
        pos["loss_sum"] += value
        pos["loss_n"] += 1
        pos["samples"] += len(batch[0])
        elapsed = pos["seconds"] + time.perf_counter() - t0
        bar.set_postfix(loss=f"{value:.4f}", img_s=f"{pos['samples'] / max(elapsed, 1e-9):.0f}")
        if self.cfg.save_every and pos["global_step"] % self.cfg.save_every == 0:
            self.save_state()

    def end_epoch(self, evaluate: Callable[[], dict[str, float]] | None, score_key: str,
                  higher_is_better: bool) -> None:
        """Log the finished epoch (validation metrics, best weights), step the schedule, write
        log.json and, every `state_every_epochs` epochs and after the last, state.pt."""
        pos, epoch = self.pos, self.pos["epoch"]
        entry = {"stage": self.stage, "epoch": epoch + 1,
                 "lr": self.optimizer.param_groups[0]["lr"],
                 "train_loss": distributed.mean_over_ranks(pos["loss_sum"]
                                                           / max(pos["loss_n"], 1)),
                 "steps": pos["loss_n"], "seconds": round(pos["seconds"], 3),
                 "samples_per_s": round(pos["samples"] / max(pos["seconds"], 1e-9), 1)}
        if evaluate is not None:
            metrics = evaluate()
            entry.update({f"val_{k}": v for k, v in metrics.items()})
            score = metrics[score_key]
            best = self.best["score"]
            if best is None or (score > best if higher_is_better else score < best):
                self.best = {"score": score, "epoch": epoch + 1,
                             "states": _module_states(self.modules)}
        self.history.append(entry)
        self.scheduler.step()
        pos.update(epoch=epoch + 1, step_in_epoch=0, loss_sum=0.0, loss_n=0, samples=0,
                   seconds=0.0)
        if self.wd is not None and self.ctx.is_main:
            atomic_write_json(self.history, self.wd / LOG_FILE)
        if (epoch + 1) % self.cfg.state_every_epochs == 0 or epoch + 1 == self.cfg.epochs:
            self.save_state()


def _iter(bar: tqdm) -> Iterator:
    yield from bar
