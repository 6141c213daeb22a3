"""DDP under torchrun: 2 CPU ranks × batch B against 1 process × batch 2B on the same samples.

One `torchrun --standalone --nproc_per_node 2` launch runs this file as a worker (bottom of the
file) that trains the tiny model for STEPS steps twice, with and without SyncBatchNorm. The test
then trains the same init in this process at batch 2B and compares.

What is compared and why the tolerance is what it is:
- Shards: per step, rank 0's and rank 1's indices are disjoint and together are the 1-process
  batch (exact).
- With SyncBatchNorm, every BN layer normalizes with the statistics of all 2B samples, exactly
  the 1-process forward; DDP averages the ranks' mean-loss gradients, i.e. the gradient of the
  mean over 2B. Only float32 summation order differs (per-rank partial sums + all-reduce vs one
  sum; ~1e-7 relative). Adam's first steps move each weight by ≈ lr·g/(|g| + eps), so a
  rounding-level difference in g stays rounding-level unless the true g is 0: biases that feed
  a BatchNorm have exactly zero true gradient (the batch mean cancels them), Adam turns their
  rounding noise into ±lr steps in *any* run, so they are kept out of the optimizer here.
  Measured max |Δ| over all other weights and BN running statistics: 3e-7 after 3 steps;
  WEIGHT_TOL = 1e-5 leaves 30× margin and is 100× below LR, so one update that went a
  different way (or a missing gradient term) fails the test.
- Without SyncBatchNorm each rank normalizes with its own B samples: the forward is a different
  function, so the weights differ by O(lr) and each rank's running statistics are those of its
  half-batch; the test checks the difference is far above WEIGHT_TOL (the comparison can fail).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from spikeclip import SpikeCLIP, SpikeCLIPConfig, checkpoint
from spikeclip.training import distributed
from spikeclip.training.data import Indexed, TensorImages
from spikeclip.training.loop import LoopConfig, train_loop
from spikeclip.training.stages import cosine_loss

WORLD = 2
B = 4  # per-rank batch
STEPS = 3
N = WORLD * B * STEPS  # 24 samples: one epoch = STEPS steps, no padding
LR = 1e-3
WEIGHT_TOL = 1e-5
CFG = SpikeCLIPConfig.tiny()
# Biases that feed a BatchNorm: the batch mean cancels them, so their true gradient is 0 and
# Adam turns the rounding noise of that 0 into ±lr steps. They are left out of the optimizer.
DEAD_BIASES = frozenset(f"blocks.{i}.{name}.bias" for i in range(CFG.depth)
                        for name in ("attn.proj_conv", "mlp.fc1_conv", "mlp.fc2_conv"))


def _model() -> SpikeCLIP:
    torch.manual_seed(0)
    model = SpikeCLIP(CFG)
    with torch.no_grad():  # default init barely spikes: scale weights so gradients are alive
        for p in model.parameters():
            if p.ndim >= 2:
                p.mul_(4.0)
    return model


def _data() -> tuple[TensorImages, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    images = torch.randn(N, 3, CFG.img_size, CFG.img_size, generator=gen)
    targets = torch.randn(N, CFG.out_dim, generator=gen)
    return TensorImages(images, torch.zeros(N, dtype=torch.int64)), targets


def _train(batch_size: int, *, sync_bn: bool, workdir: Path | None) -> dict:
    """align-image-style training of the image tower; returns the final state and the indices
    this process saw per step."""
    model = _model()
    dataset, targets = _data()
    seen: list[list[int]] = []

    def step(batch: tuple) -> tuple[torch.Tensor, float]:
        images, _, idx = batch
        seen.append(idx.tolist())
        loss = cosine_loss(model.encode_image(images), targets[idx])
        return loss, float(loss.detach())

    cfg = LoopConfig(epochs=1, batch_size=batch_size, lr=LR, progress=False)
    params = [p for k, p in model.image_encoder.named_parameters() if k not in DEAD_BIASES]
    with distributed.data_parallel(model, "encode_image", model.image_encoder, sync_bn=sync_bn):
        train_loop(stage="align-image", modules={"model": model},
                   params=params, dataset=Indexed(dataset),
                   step_fn=step, cfg=cfg, workdir=workdir)
    state = {k: v.detach().clone() for k, v in model.image_encoder.state_dict().items()}
    return {"state": state, "seen": seen,
            "bn_classes": sorted({type(m).__name__ for m in model.modules() if "Norm" in
                                  type(m).__name__})}


@pytest.fixture(scope="module")
def ddp(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={WORLD}", __file__, str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    return {"out": out, "ranks": ranks, "reference": _train(WORLD * B, sync_bn=False,
                                                             workdir=None)}


def _max_diff(a: dict, b: dict, keys: list[str] | None = None) -> float:
    keys = keys or [k for k in a if a[k].is_floating_point()]
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in keys)


@pytest.mark.slow  # the torchrun fixture takes ~25 s
def test_ranks_see_disjoint_shards_that_make_the_big_batch(ddp: dict) -> None:
    ref_seen = ddp["reference"]["seen"]
    assert len(ref_seen) == STEPS and all(len(s) == WORLD * B for s in ref_seen)
    for run in ("sync", "nosync"):
        per_rank = [r[run]["seen"] for r in ddp["ranks"]]
        assert all(len(s) == STEPS and all(len(b) == B for b in s) for s in per_rank)
        all_0 = {i for b in per_rank[0] for i in b}
        all_1 = {i for b in per_rank[1] for i in b}
        assert not all_0 & all_1 and all_0 | all_1 == set(range(N))
        for j in range(STEPS):
            assert sorted(per_rank[0][j] + per_rank[1][j]) == sorted(ref_seen[j])


@pytest.mark.slow  # the torchrun fixture takes ~25 s
def test_sync_batchnorm_run_equals_the_single_process_big_batch(ddp: dict) -> None:
    ref = ddp["reference"]["state"]
    r0, r1 = (r["sync"]["state"] for r in ddp["ranks"])
    # DDP keeps the ranks' weights bitwise equal; SyncBN keeps their running stats equal too
    assert all(torch.equal(r0[k], r1[k]) for k in r0)
    diff = _max_diff(r0, ref)
    assert diff <= WEIGHT_TOL, diff
    # the run did move the weights (else equality would prove nothing)
    moved = _max_diff(ref, {k: v for k, v in _model().image_encoder.state_dict().items()})
    assert moved > 100 * WEIGHT_TOL
    # the SyncBatchNorm classes were put back after training
    assert ddp["ranks"][0]["sync"]["bn_classes"] == ["BatchNorm1d", "BatchNorm2d"]


@pytest.mark.slow  # the torchrun fixture takes ~25 s
def test_without_sync_batchnorm_the_statistics_differ(ddp: dict) -> None:
    ref = ddp["reference"]["state"]
    r0, r1 = (r["nosync"]["state"] for r in ddp["ranks"])
    running = [k for k in ref if k.endswith("running_mean")]
    weights = [k for k in ref if k.endswith("weight")]
    assert _max_diff(r0, ref, running) > 1000 * WEIGHT_TOL  # half-batch statistics
    assert _max_diff(r0, r1, running) > 1000 * WEIGHT_TOL  # and each rank has its own
    assert all(torch.equal(r0[k], r1[k]) for k in weights)  # weights still synchronized
    assert _max_diff(r0, ref, weights) > 10 * WEIGHT_TOL


@pytest.mark.slow  # the torchrun fixture takes ~25 s
def test_only_rank_zero_writes(ddp: dict) -> None:
    assert sorted(p.name for p in (ddp["out"] / "work0").iterdir()) == ["log.json", "state.pt"]
    assert not (ddp["out"] / "work1").exists() or not any((ddp["out"] / "work1").iterdir())


@pytest.mark.slow  # the torchrun fixture takes ~25 s
def test_spikeclip_train_under_torchrun(ddp: dict) -> None:
    assert [r["cli"]["gate_rc"] for r in ddp["ranks"]] == [2, 2]  # --angle-gate refused (usage)
    assert [r["cli"]["text_rc"] for r in ddp["ranks"]] == [0, 0]
    meta = checkpoint.load(ddp["out"] / "text.pt").metadata
    assert meta["stages"][-1]["world_size"] == WORLD
    log = json.loads((ddp["out"] / "text.pt.work" / "log.json").read_text())
    # 80 prompts, 8 held out (10%): 72 train, 36 per rank, batches of 9 -> 4 steps
    assert [e["steps"] for e in log] == [4]


def test_shard_pads_like_distributed_sampler() -> None:
    # 5 items on 2 ranks: padded to 6 with the head (item 0): rank 0 gets 0, 2, 4; rank 1 gets
    # 1, 3 and the repeated 0
    perm = [7, 3, 9, 1, 5]
    assert distributed.shard(perm, 0, 2) == [7, 9, 5]
    assert distributed.shard(perm, 1, 2) == [3, 1, 7]
    assert distributed.shard(perm, 0, 1) == perm
    with pytest.raises(distributed.DistributedError, match="rank 2 outside"):
        distributed.shard(perm, 2, 2)


TEXT_CFG = {**CFG.to_dict(), "out_dim": 384, "vocab_size": 30522, "text_len": 16}
"""Tiny towers with MiniLM's width and vocabulary, for `spikeclip-train align-text`."""


def _cli(out: Path, rank: int) -> dict:
    """spikeclip-train under torchrun: --angle-gate refused; align-text trains and rank 0
    alone writes the model and the work folder (72 train sentences, 9 per rank and step)."""
    from export.cli import train as cli_train

    cfg = out / f"text_cfg{rank}.json"
    cfg.write_text(json.dumps(TEXT_CFG))
    gate = cli_train.main(["finetune", "--teacher", "minilm", "--dataset", "digits",
                           "--out", str(out / "gate.pt"), "--angle-gate", "5"])
    text = cli_train.main(["align-text", "--teacher", "minilm", "--dataset", "digits",
                           "--config", str(cfg), "--out", str(out / "text.pt"), "--epochs", "1",
                           "--batch-size", "9", "--cache-dir", "", "--no-progress"])
    return {"gate_rc": gate, "text_rc": text}


def _worker(out: Path) -> None:
    ctx = distributed.init_from_env()
    try:
        result = {"cli": _cli(out, ctx.rank)}
        for run, sync in (("sync", True), ("nosync", False)):
            workdir = out / f"work{ctx.rank}" if run == "sync" else None
            result[run] = _train(B, sync_bn=sync, workdir=workdir)
        torch.save(result, out / f"rank{ctx.rank}.pt")
    finally:
        distributed.shutdown()


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
