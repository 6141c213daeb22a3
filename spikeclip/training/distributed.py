"""Data-parallel training under `torchrun`: process group, shards, SyncBatchNorm, DDP routing.

Launch: `torchrun --nproc_per_node N -m export.cli.train STAGE ...` (or the console script).
torchrun sets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR/PORT; `init_from_env` joins the group
(gloo for CPU training, nccl when the tensors live on CUDA). Without torchrun everything here is
a no-op and `current()` is rank 0 of 1.

Semantics (what makes N ranks × batch b equal one process × batch N·b on the same samples):
- Shards: each epoch's permutation is padded with its own head to a multiple of N (as
  `torch.utils.data.DistributedSampler` does) and rank r takes `perm[r::N]`; with consecutive
  batches of b, step j of all ranks together covers `perm[N·b·j : N·b·(j+1)]`, the 1-process
  batch j. The ranks' shards are disjoint unless padding repeats head samples (n % N ≠ 0).
- Gradients: `DistributedDataParallel` averages them over ranks, so a per-rank *mean* loss gives
  the gradient of the mean over N·b. (A loss *summed* over the batch, like the paper's KL term,
  gives 1/N of the 1-process sum: the paper's DDP runs had the same scaling.)
- BatchNorm: `SyncBatchNorm1d/2d` take batch statistics over all ranks (sums, then centred
  first and second moments all-reduced; the all-reduce's backward all-reduces the gradient),
  so activations, gradients and running statistics equal the N·b run up to float rounding.
  torch's own `nn.SyncBatchNorm` refuses CPU tensors, hence this implementation (same math,
  any backend).
- Only rank 0 logs, shows progress and writes files (`is_main`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from spikeclip.errors import UsageError

ENV_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


class DistributedError(UsageError, RuntimeError):
    """A torchrun environment or option this module cannot use (message says which)."""


@dataclass(frozen=True, kw_only=True)
class DistContext:
    """This process's place in the group: `rank` of `world` (`local_rank` on its node);
    `backend` is None when no process group is running."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only rank that logs and writes files."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """True when more than one rank trains."""
        return self.world > 1


def current() -> DistContext:
    """The running group's context (rank 0 of 1 when there is none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistContext()
    return DistContext(rank=dist.get_rank(), world=dist.get_world_size(),
                       local_rank=int(os.environ.get("LOCAL_RANK", "0")),
                       backend=str(dist.get_backend()))


def backend_for(device: torch.device | str) -> str:
    """nccl for CUDA tensors, gloo otherwise (the training loop here runs on CPU)."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def init_from_env(*, device: torch.device | str = "cpu") -> DistContext:
    """Join the process group torchrun describes (WORLD_SIZE > 1); otherwise do nothing.
    Raises `DistributedError` when WORLD_SIZE > 1 but a torchrun variable is missing."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or (dist.is_available() and dist.is_initialized()):
        return current()
    missing = [v for v in ENV_VARS if v not in os.environ]
    if missing:
        raise DistributedError(f"WORLD_SIZE={world} but {', '.join(missing)} unset: launch with "
                               "torchrun --nproc_per_node N")
    dist.init_process_group(backend=backend_for(device), init_method="env://")
    return current()


@contextlib.contextmanager
def process_group(*, device: torch.device | str = "cpu") -> Iterator[DistContext]:
    """`init_from_env` for the block; leaves the group at exit only if this call joined it
    (a caller that already runs a group keeps it)."""
    joined = not (dist.is_available() and dist.is_initialized())
    ctx = init_from_env(device=device)
    try:
        yield ctx
    finally:
        if joined:
            shutdown()


def shutdown() -> None:
    """Leave the process group (no-op without one)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard(perm: list[int], rank: int, world: int) -> list[int]:
    """Rank `rank`'s share of `perm`: padded with its own head (cyclically) to a multiple of
    `world`, then every world-th element from `rank` (DistributedSampler's rule)."""
    if world <= 1:
        return list(perm)
    if not 0 <= rank < world:
        raise DistributedError(f"rank {rank} outside 0..{world - 1}")
    pad = (-len(perm)) % world
    padded = list(perm) + [perm[i % len(perm)] for i in range(pad)] if perm else []
    return padded[rank::world]


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; the gradient of each rank's input is the sum of the ranks' output
    gradients (every rank's loss depends on every rank's input through the sum)."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:  # noqa: D102
        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # noqa: D102
        out = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Differentiable sum over ranks (identity without a group)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    return _AllReduceSum.apply(tensor)


def mean_over_ranks(value: float) -> float:
    """Mean of a Python float over ranks (for logs; the value itself without a group)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t) / dist.get_world_size()


class _SyncBatchNormMixin:
    """Training-mode forward with batch statistics over all ranks (module docstring); eval mode,
    or a single rank, is the parent BatchNorm unchanged."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn: Any = self
        if not (bn.training and dist.is_available() and dist.is_initialized()
                and dist.get_world_size() > 1):
            return super().forward(x)  # type: ignore[misc]
        bn._check_input_dim(x)
        dims = [0, *range(2, x.ndim)]
        shape = [1, -1] + [1] * (x.ndim - 2)
        count = x.new_tensor([x.numel() // x.shape[1]])
        total = all_reduce_sum(torch.cat([x.sum(dims), count]))
        n = total[-1]
        rough = (total[:-1] / n).view(shape)
        # corrected two-pass: mean = rough + mean(x − rough), var = mean((x − rough)²) − (…)²;
        # exact for a constant channel (x − mean = 0 exactly, as in torch's own batch_norm)
        d = x - rough
        c = x.shape[1]
        moments = all_reduce_sum(torch.cat([d.sum(dims), (d * d).sum(dims)])) / n
        shift = moments[:c]
        mean = rough.view(-1) + shift
        var = (moments[c:] - shift * shift).clamp_min(0)
        centred = x - mean.view(shape)
        y = centred * torch.rsqrt(var + bn.eps).view(shape)
        if bn.affine:
            y = y * bn.weight.view(shape) + bn.bias.view(shape)
        if bn.track_running_stats:
            with torch.no_grad():
                bn.num_batches_tracked.add_(1)
                factor = (1.0 / float(bn.num_batches_tracked) if bn.momentum is None
                          else bn.momentum)
                bn.running_mean.mul_(1 - factor).add_(factor * mean.detach())
                unbiased = var.detach() * n / (n - 1).clamp_min(1)
                bn.running_var.mul_(1 - factor).add_(factor * unbiased)
        return y


class SyncBatchNorm1d(_SyncBatchNormMixin, nn.BatchNorm1d):
    """`nn.BatchNorm1d` with cross-rank batch statistics in training (still an instance of
    BatchNorm1d: code that inspects the model sees no difference)."""


class SyncBatchNorm2d(_SyncBatchNormMixin, nn.BatchNorm2d):
    """`nn.BatchNorm2d` with cross-rank batch statistics in training."""


_SYNC_OF: dict[type, type] = {nn.BatchNorm1d: SyncBatchNorm1d, nn.BatchNorm2d: SyncBatchNorm2d}


def convert_sync_batchnorm(module: nn.Module) -> list[tuple[nn.Module, type]]:
    """Turn every plain BatchNorm1d/2d inside `module` into its Sync variant in place (the class
    changes, the object, parameters and buffers stay, so optimizers and state dicts are
    untouched). Returns what `revert_sync_batchnorm` needs."""
    changed = []
    for m in module.modules():
        sync = _SYNC_OF.get(type(m))
        if sync is not None:
            changed.append((m, type(m)))
            m.__class__ = sync
    return changed


def revert_sync_batchnorm(changed: list[tuple[nn.Module, type]]) -> None:
    """Undo `convert_sync_batchnorm`."""
    for m, cls in changed:
        m.__class__ = cls


class _Route(nn.Module):
    """What DDP wraps: `trained` (so DDP sees its parameters) and the method that runs it."""

    def __init__(self, trained: nn.Module, fn: Any) -> None:
        super().__init__()
        self.trained = trained
        self.fn = fn

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


@contextlib.contextmanager
def data_parallel(owner: nn.Module, method: str, trained: nn.Module, *, sync_bn: bool,
                  find_unused_parameters: bool = False) -> Iterator[nn.Module | None]:
    """Inside the block, `owner.<method>(...)` runs through `DistributedDataParallel` over
    `trained` (the tower being trained), so the training loop and the stages stay as they
    are: e.g. `data_parallel(model, "encode_image", model.image_encoder, sync_bn=True)`.

    DDP broadcasts rank 0's parameters and buffers once at entry and averages gradients in
    backward; buffers are not re-broadcast per forward (SyncBatchNorm keeps running statistics
    equal on all ranks). Without a group (or with one rank) this yields None and changes
    nothing. The instance attribute and the BatchNorm classes are restored on exit.
    """
    if not current().enabled:
        yield None
        return
    if method in owner.__dict__:
        raise DistributedError(f"{type(owner).__name__}.{method} is already routed")
    changed = convert_sync_batchnorm(trained) if sync_bn else []
    route = _Route(trained, getattr(owner, method))
    devices = None if next(trained.parameters()).device.type == "cpu" else [
        next(trained.parameters()).device]
    ddp = DistributedDataParallel(route, device_ids=devices, forward_sync_buffers=False,
                                  find_unused_parameters=find_unused_parameters)
    object.__setattr__(owner, method, ddp)  # instance attribute: not a registered submodule
    try:
        yield ddp
    finally:
        del owner.__dict__[method]
        revert_sync_batchnorm(changed)


__all__ = ["DistContext", "DistributedError", "SyncBatchNorm1d", "SyncBatchNorm2d",
           "all_reduce_sum", "backend_for", "convert_sync_batchnorm", "current",
           "data_parallel", "init_from_env", "mean_over_ranks", "process_group",
           "revert_sync_batchnorm",
           "shard", "shutdown"]
