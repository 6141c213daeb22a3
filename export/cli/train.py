"""`spikeclip-train`: the four training stages as sub-commands.

    spikeclip-train align-text  --teacher SPEC --dataset D (--config NAME | --init CKPT) --out OUT
    spikeclip-train align-image --teacher SPEC --dataset D --init CKPT --out OUT.pt
    spikeclip-train finetune-teacher --teacher SPEC --dataset D --init CKPT --out TOWER.pt
    spikeclip-train finetune    --teacher SPEC --teacher-weights TOWER.pt --dataset D
                                --init CKPT --out OUT.pt

Teacher specs: `open_clip:NAME[@TAG]`, `hf:NAME_OR_DIR`, `minilm`, `minilm+conv`.
Data-parallel: `torchrun --nproc_per_node N -m export.cli.train STAGE ...` trains the stage's
tower with DistributedDataParallel (gloo on CPU), `--batch-size` per rank, disjoint shards,
SyncBatchNorm in align-image and finetune (as the paper; `--no-sync-bn` turns it off), and only
rank 0 logs and writes files (`spikeclip.training.distributed`). What each stage writes and the
exit codes (a failure is one line on stderr) are listed below.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import textwrap
import time
from pathlib import Path

import torch

from export.cli.args import (
    HELP_WIDTH,
    HelpFormatter,
    help_epilog,
    nonnegative_float,
    nonnegative_int,
    output_path,
    positive_float,
    positive_int,
)
from spikeclip import checkpoint
from spikeclip.errors import EXIT_INCOMPLETE, SpikeCLIPError
from spikeclip.memory import check_memory, estimate_memory
from spikeclip.model import SpikeCLIP
from spikeclip.outputs import check_output_file, is_torch_file_of
from spikeclip.training import data, distributed, presets, prompts, stages
from spikeclip.training.loop import LoopConfig
from spikeclip.training.teachers import (
    TOWER_FORMAT,
    Teacher,
    load_teacher,
    save_image_tower,
    teacher_class_matrix,
)

STAGE_DEFAULTS = {  # paper code's values where it has them (digest §4-§7); epochs are ours
    "align-text": {"lr": 5e-3, "eta_min": 5e-4, "batch_size": 1024, "epochs": 20},
    "align-image": {"lr": 5e-3, "eta_min": 5e-4, "batch_size": 196, "epochs": 50},
    "finetune-teacher": {"lr": 5e-6, "eta_min": 1e-8, "batch_size": 32, "epochs": 20},
    "finetune": {"lr": 5e-4, "eta_min": 1e-5, "batch_size": 196, "epochs": 200},
}


MAX_STEPS_NOTE = (f"A stage stopped by --max-steps before its last epoch exits {EXIT_INCOMPLETE} "
                  "and leaves WORKDIR/state.pt: continue with --resume.")

STAGE_DESCRIPTIONS = {
    "align-text": "Stage 1: train the spiking text tower to point like the teacher's text "
                  "features on the dataset's class prompts (plus --corpus sentences).",
    "align-image": "Stage 2: train the spiking image tower to match the teacher's image "
                   "features on the dataset's training images.",
    "finetune-teacher": "Stage 3: fine-tune the teacher's image tower with cross-entropy "
                        "against the spiking text tower's class matrix (its output is "
                        "finetune's --teacher-weights).",
    "finetune": "Stage 4: fine-tune the spiking image tower with cross-entropy plus KL to the "
                "fine-tuned teacher (--hardware-aware: through the Loihi fake-quant twin).",
}
"""One sentence per sub-command (its --help description and its line in the command list)."""

WRITES = (
    "OUT (--out: a model.pt; finetune-teacher: the teacher's image tower), written atomically, "
    "replacing only a file of that kind and never an input; WORKDIR (--workdir, default "
    "OUT.work) with log.json (one entry per epoch) and state.pt (resume with --resume); the "
    "teacher's features, cached under --cache-dir."
)

EPILOG = help_epilog(writes=WRITES, note=MAX_STEPS_NOTE)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spikeclip-train", description=__doc__,
                                epilog=EPILOG, formatter_class=HelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="STAGE",
                           title="stages (spikeclip-train STAGE --help for each one's options)")
    for name, defaults in STAGE_DEFAULTS.items():
        s = sub.add_parser(name, help=STAGE_DESCRIPTIONS[name],
                           description=textwrap.fill(STAGE_DESCRIPTIONS[name], HELP_WIDTH),
                           epilog=EPILOG,
                           formatter_class=HelpFormatter)
        _add_files(s)
        _add_loop(s, defaults)
        _add_stage_options(s, name)
    return p


def _add_files(s: argparse.ArgumentParser) -> None:
    """What a stage reads and writes: teacher, data, model, output, work folder, cache."""
    s.add_argument("--teacher", required=True, help="teacher spec (see module help)")
    s.add_argument("--teacher-weights", help="image tower file from finetune-teacher")
    s.add_argument("--dataset", required=True, choices=data.DATASETS,
                   help="training data (files under --data-root; digits is bundled)")
    s.add_argument("--data-root", default="data", help="folder holding the dataset files")
    s.add_argument("--out", required=True, type=output_path,
                   help="output file: a model.pt (finetune-teacher: the teacher's image "
                   "tower); an existing file is replaced only if it is one of those")
    s.add_argument("--workdir", help="log/resume folder (default OUT.work)")
    s.add_argument("--resume", action="store_true", help="continue from WORKDIR/state.pt")
    s.add_argument("--cache-dir", default=".cache/spikeclip-features",
                   help="teacher feature cache folder ('' disables)")
    s.add_argument("--init", help="start from this model.pt")
    s.add_argument("--config", default="tiny",
                   help="model config when no --init: paper, tiny, digits, fashion or a JSON "
                   "file (refused with exit 9 before building when this machine lacks the "
                   "memory for it at --batch-size)")


def _add_loop(s: argparse.ArgumentParser, defaults: dict[str, float]) -> None:
    """The training loop's options (`spikeclip.training.loop.LoopConfig`) and the runtime's."""
    s.add_argument("--seed", type=nonnegative_int, default=42,
                   help="loop seed (init, batch order)")
    s.add_argument("--split-seed", type=nonnegative_int, default=0, help="dataset split seed")
    s.add_argument("--epochs", type=positive_int, default=defaults["epochs"],
                   help="training epochs")
    s.add_argument("--batch-size", type=positive_int, default=defaults["batch_size"],
                   help="samples per step (per rank under torchrun)")
    s.add_argument("--lr", type=positive_float, default=defaults["lr"],
                   help="peak learning rate (AdamW, cosine schedule)")
    s.add_argument("--eta-min", type=nonnegative_float, default=defaults["eta_min"],
                   help="final learning rate of the cosine schedule")
    s.add_argument("--no-amsgrad", action="store_true", help="plain AdamW (paper: AMSGrad)")
    s.add_argument("--weight-decay", type=nonnegative_float, default=0.0,
                   help="AdamW weight decay")
    s.add_argument("--max-steps", type=positive_int,
                   help="stop after this many steps (resumable; default: no limit)")
    s.add_argument("--save-every", type=nonnegative_int, default=0,
                   help="steps between resume saves (0: only at epoch ends)")
    s.add_argument("--state-every-epochs", type=positive_int, default=1,
                   help="epochs between end-of-epoch resume saves (the last epoch always)")
    s.add_argument("--workers", type=nonnegative_int, default=0,
                   help="data-loader worker processes")
    s.add_argument("--threads", type=positive_int,
                   help="torch.set_num_threads (default: torch's choice)")
    s.add_argument("--deterministic", action="store_true",
                   help="torch.use_deterministic_algorithms(True)")
    s.add_argument("--no-progress", action="store_true", help="no progress bars")
    s.add_argument("--no-sync-bn", action="store_true",
                   help="under torchrun: per-rank BatchNorm statistics (paper: synced)")


def _add_stage_options(s: argparse.ArgumentParser, name: str) -> None:
    """The options only some stages have."""
    if name == "align-text":
        s.add_argument("--corpus", help="extra sentences, one per line")
        s.add_argument("--init-embeddings", action="store_true",
                       help="initialize token embeddings from the teacher's table")
    if name == "align-image":
        s.add_argument("--select", choices=("cos_loss", "top1"), default="cos_loss",
                       help="validation figure that selects the epoch")
    if name in ("finetune-teacher", "finetune"):
        s.add_argument("--logit-scale", type=positive_float, default=1.0,
                       help="multiplies the cosine logits (paper: 1)")
        s.add_argument("--teacher-text", action="store_true",
                       help="class matrix from the teacher's text tower (paper: spiking)")
    if name == "finetune":
        s.add_argument("--kl-weight", type=nonnegative_float, default=1.0,
                       help="weight of the KL term (paper: 1)")
        s.add_argument("--temperature", type=positive_float, default=1.0,
                       help="KL temperature τ (paper: 1)")
        s.add_argument("--hardware-aware", action="store_true",
                       help="fine-tune the image tower through its Loihi fake-quant twin "
                       "(straight-through rounding; hardware.quantize.hardware_aware) to "
                       "recover accuracy lost to quantization, then store its grid values "
                       "and a threshold 2^-19 above θ, so the float rule H ≥ θ fires where "
                       "Loihi's v > vth does, ties included (hardware.quantize.grid_snap): "
                       "the saved model is the hardware's; needs --init")
        s.add_argument("--agree-weight", type=nonnegative_float, default=1.0,
                       help="with --hardware-aware: weight of the float↔twin feature term "
                       "mean(1 − cos(f_twin, f_float)) (default 1; the term is ~1e-3, so "
                       "weights of 100s are needed for it to steer training)")
        s.add_argument("--margin-weight", type=nonnegative_float, default=0.0,
                       help="with --hardware-aware: weight of a label-free hinge on the "
                       "top-1 − top-2 cos-logit gap of the float and twin logits (default 0: "
                       "off); it moves decisions away from ties, where float and simulated "
                       "predictions differ")
        s.add_argument("--margin", type=nonnegative_float, default=0.05,
                       help="with --margin-weight: the gap (cosine units) below which the "
                       "hinge acts")
        s.add_argument("--no-grid-snap", action="store_true",
                       help="with --hardware-aware: keep the trained float weights and "
                       "threshold instead of the grid values")
        s.add_argument("--angle-gate", type=nonnegative_float,
                       help="degrees; > 0 enables the gradient-angle gate")


def _loop_config(a: argparse.Namespace) -> LoopConfig:
    return LoopConfig(epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, eta_min=a.eta_min,
                      amsgrad=not a.no_amsgrad, weight_decay=a.weight_decay, seed=a.seed,
                      max_steps=a.max_steps, save_every=a.save_every,
                      state_every_epochs=a.state_every_epochs,
                      progress=not a.no_progress, num_workers=a.workers)


TRAINED_TOWERS = {"align-text": ("text",), "align-image": ("image",),
                  "finetune-teacher": (), "finetune": ("image",)}
"""The SpikeCLIP towers a stage runs a training batch through (finetune-teacher trains the
teacher: the SpikeCLIP only makes the class matrix)."""


def _model(a: argparse.Namespace) -> tuple[SpikeCLIP, dict]:
    """The model to train: --init's (checked when loading), else one built from --config once
    `spikeclip.memory` says this machine holds it and a --batch-size batch of activations
    through the trained tower (else `InsufficientMemoryError`, exit 9, nothing allocated)."""
    if a.init:
        ck = checkpoint.load(a.init)
        return ck.model.train(), dict(ck.metadata)
    config = presets.resolve(a.config)
    estimate = estimate_memory(config, batch=a.batch_size, towers=TRAINED_TOWERS[a.command])
    check_memory(estimate, what=f"--config {a.config}: {a.command} at --batch-size "
                 f"{a.batch_size}")
    return SpikeCLIP(config), {}


def _splits(a: argparse.Namespace, teacher: Teacher, img_size: int) -> data.Splits:
    tid = f"{teacher.name}-preprocess{teacher.image_size}"
    return data.load_splits(a.dataset, root=a.data_root, transform=teacher.preprocess,
                            transform_id=tid, img_size=img_size, seed=a.split_seed)


def _class_matrix(a: argparse.Namespace, model: SpikeCLIP, teacher: Teacher,
                  splits: data.Splits) -> torch.Tensor:
    if getattr(a, "teacher_text", False):
        return teacher_class_matrix(teacher, splits.class_names, splits.templates)
    ids = stages.prompt_ids(teacher, splits.class_names, splits.templates, model.config.text_len)
    return stages.spiking_class_matrix(model, ids)


SYNC_BN_STAGES = ("align-image", "finetune")
"""Stages the paper ran with SyncBatchNorm (its stage-2 and stage-4 DDP scripts)."""


def _data_parallel(a: argparse.Namespace, model: SpikeCLIP,
                   teacher: Teacher) -> contextlib.AbstractContextManager:
    """DDP over the tower this stage trains (a no-op without torchrun)."""
    sync = a.command in SYNC_BN_STAGES and not a.no_sync_bn
    if a.command == "align-text":
        return distributed.data_parallel(model, "encode_text", model.text_encoder, sync_bn=sync)
    if a.command == "finetune-teacher":
        return distributed.data_parallel(teacher, "encode_image", teacher.image_module(),
                                         sync_bn=sync, find_unused_parameters=True)
    return distributed.data_parallel(model, "encode_image", model.image_encoder, sync_bn=sync)


def _checked_out(a: argparse.Namespace) -> Path:
    """``--out`` checked before any training: never an input, and an existing file only if it
    is what this stage writes (a model.pt, or a teacher tower); else UsageError."""
    fmt = TOWER_FORMAT if a.command == "finetune-teacher" else checkpoint.FORMAT_NAME
    inputs = [p for p in (getattr(a, "init", None), getattr(a, "teacher_weights", None)) if p]
    check_output_file(a.out, inputs=inputs, replaceable=lambda p: is_torch_file_of(p, fmt),
                      kind="model.pt" if fmt == checkpoint.FORMAT_NAME else "teacher tower")
    return Path(a.out)


def run(a: argparse.Namespace) -> int:
    """Run one stage; returns the exit status (0 done, EXIT_INCOMPLETE stopped early by
    --max-steps)."""
    ctx = distributed.current()
    if ctx.enabled and getattr(a, "angle_gate", None):
        raise distributed.DistributedError("--angle-gate skips optimizer steps per rank; it is "
                                           "not supported under torchrun")
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.deterministic:
        torch.use_deterministic_algorithms(True)
    torch.manual_seed(a.seed)
    out = _checked_out(a)
    workdir = Path(a.workdir) if a.workdir else out.with_name(out.name + ".work")
    common = {"cfg": _loop_config(a), "workdir": workdir, "resume": a.resume}
    model, meta = _model(a)
    teacher = load_teacher(a.teacher, image_size=model.config.img_size,
                           weights=a.teacher_weights)
    splits = _splits(a, teacher, model.config.img_size)
    if getattr(a, "hardware_aware", False):
        return _hardware_aware(a, model, teacher, splits, meta, out)
    t0 = time.perf_counter()
    with _data_parallel(a, model, teacher):
        res = STAGES[a.command](a, model, teacher, splits, meta, common)
    if not res.loop.completed:
        if ctx.is_main:
            print(f"{a.command}: stopped at step {res.loop.global_step} (--max-steps); "
                  f"continue with --resume", file=sys.stderr)
        return EXIT_INCOMPLETE
    if not ctx.is_main:
        return 0
    record = _record(a, a.command, t0, best_epoch=res.loop.best_epoch, val=res.metrics,
                     world_size=ctx.world)
    if a.command == "finetune-teacher":
        save_image_tower(teacher, out, metadata=record)
    else:
        meta["tokenizer"] = a.teacher.split("+")[0] if a.teacher.startswith("minilm") else a.teacher
        _save_model(out, model, splits, meta, record)
    print(f"{a.command}: wrote {out} (val {res.metrics})")
    return 0


def _align_text(a: argparse.Namespace, model: SpikeCLIP, teacher: Teacher, splits: data.Splits,
                meta: dict, common: dict) -> stages.StageResult:
    sentences = prompts.prompts_for(splits.class_names, splits.templates)
    if a.corpus:
        sentences += [s for s in Path(a.corpus).read_text().splitlines() if s.strip()]
    if a.init_embeddings and not a.resume:
        meta["embedding_init"] = stages.init_text_embeddings(model, teacher)
    return stages.align_text(model, teacher, sentences, corpus_name=splits.name,
                             cache_dir=a.cache_dir or None, **common)


def _align_image(a: argparse.Namespace, model: SpikeCLIP, teacher: Teacher, splits: data.Splits,
                 meta: dict, common: dict) -> stages.StageResult:
    ids = stages.prompt_ids(teacher, splits.class_names, splits.templates, model.config.text_len)
    return stages.align_image(model, teacher, splits, class_ids=ids, select=a.select,
                              cache_dir=a.cache_dir or None, **common)


def _finetune_teacher(a: argparse.Namespace, model: SpikeCLIP, teacher: Teacher,
                      splits: data.Splits, meta: dict, common: dict) -> stages.StageResult:
    w = _class_matrix(a, model, teacher, splits)
    return stages.finetune_teacher(teacher, splits, w, logit_scale=a.logit_scale, **common)


def _finetune(a: argparse.Namespace, model: SpikeCLIP, teacher: Teacher, splits: data.Splits,
              meta: dict, common: dict) -> stages.StageResult:
    w = _class_matrix(a, model, teacher, splits)
    return stages.finetune(model, teacher, splits, w, kl_weight=a.kl_weight,
                           temperature=a.temperature, logit_scale=a.logit_scale,
                           angle_gate=a.angle_gate, cache_dir=a.cache_dir or None, **common)


STAGES = {"align-text": _align_text, "align-image": _align_image,
          "finetune-teacher": _finetune_teacher, "finetune": _finetune}
"""Sub-command → the function that trains its stage (`spikeclip.training.stages`)."""


def _record(a: argparse.Namespace, command: str, t0: float, **extra: object) -> dict:
    """The stage's entry in the model's metadata["stages"] (or the teacher tower's)."""
    return {"command": command, "teacher": a.teacher, "dataset": a.dataset,
            "seconds": round(time.perf_counter() - t0, 2), **extra, "epochs": a.epochs,
            "lr": a.lr, "batch_size": a.batch_size}


def _save_model(out: Path, model: SpikeCLIP, splits: data.Splits, meta: dict,
                record: dict) -> None:
    meta.setdefault("stages", []).append(record)
    checkpoint.save(out, model, class_names=list(splits.class_names),
                    templates=list(splits.templates), metadata=meta)


def _hardware_aware(a: argparse.Namespace, model: SpikeCLIP, teacher: Teacher,
                    splits: data.Splits, meta: dict, out: Path) -> int:
    """`finetune --hardware-aware`: train through the fake-quant twin, save like finetune."""
    # Lazy: the training package sits before the hardware stage; only this CLI path composes.
    from hardware.quantize.hardware_aware import HardwareAwareOptions, finetune_hardware_aware

    if not a.init:
        raise stages.StageInputError("--hardware-aware fine-tunes a trained model: pass --init")
    if distributed.current().enabled:
        raise distributed.DistributedError("--hardware-aware runs in one process (no torchrun)")
    t0 = time.perf_counter()
    w = _class_matrix(a, model, teacher, splits)
    options = HardwareAwareOptions(epochs=a.epochs, lr=a.lr, batch_size=a.batch_size,
                                   logit_scale=a.logit_scale, seed=a.seed,
                                   max_steps=a.max_steps, snap=not a.no_grid_snap,
                                   margin_weight=a.margin_weight, margin=a.margin,
                                   agree_weight=a.agree_weight)
    result = finetune_hardware_aware(model, splits.train, w, options=options)
    record = _record(a, "finetune --hardware-aware", t0, grid_snap=not a.no_grid_snap,
                     margin_weight=a.margin_weight, margin=a.margin,
                     agree_weight=a.agree_weight, scales=dict(result.plan.scales),
                     history=list(result.history))
    _save_model(out, result.model, splits, meta, record)
    last = result.history[-1] if result.history else "none: grid snap only"
    print(f"finetune --hardware-aware: wrote {out} (last epoch {last})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = _parser().parse_args(argv)
    try:
        with distributed.process_group():
            return run(args)
    except SpikeCLIPError as err:  # every typed error of the stages, data, teachers, torchrun
        print(f"spikeclip-train {args.command}: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    sys.exit(main())
