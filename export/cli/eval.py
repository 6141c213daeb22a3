"""`spikeclip-eval MODEL.pt --dataset NAME`: zero-shot top-1/top-5 and label-set robustness.

    spikeclip-eval examples/spikeclip-digits.pt --dataset digits
    spikeclip-eval model.pt --dataset stl10 --data-root data --protocols base replaced expanded \
        --seeds 42 43 44 --json eval.json

Every number is computed here from the model (class matrix from its own text tower, images
through its image tower); nothing is read back from a training log. Protocols
(`spikeclip.robustness`): `base` (the dataset's names), `replaced` (k labels renamed to unseen
synonyms, per seed), `expanded` (n distractor names appended, per seed). The tokenizer is the
checkpoint's metadata "tokenizer" (written by spikeclip-train) unless `--tokenizer` is given.
A failure is one line on stderr with the error's own exit code (the table in --help).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset

from export.cli.args import HelpFormatter, help_epilog, nonnegative_int, positive_int
from spikeclip import checkpoint, evaluate, robustness
from spikeclip.errors import EXIT_USAGE, SpikeCLIPError
from spikeclip.outputs import check_output_file, is_json_with_keys
from spikeclip.training import data, model_data
from spikeclip.training.io import atomic_write_json
from spikeclip.training.teachers import load_tokenizer

EVAL_JSON_KEYS = ("model", "dataset", "split", "results", "summary")
"""Keys of the `--json` record; an existing file without them is not replaced."""

WRITES = (
    "the results to stdout; with --json FILE, every result (with confusion matrices) as JSON, "
    "written atomically, replacing only an earlier spikeclip-eval record and never an input."
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spikeclip-eval", description=__doc__.split("\n")[0],
                                epilog=help_epilog(writes=WRITES), formatter_class=HelpFormatter)
    p.add_argument("model", help="model.pt (spikeclip checkpoint)")
    p.add_argument("--dataset", required=True, choices=data.DATASETS)
    p.add_argument("--split", choices=("test", "val"), default="test", help="split to evaluate")
    p.add_argument("--data-root", default="data", help="folder holding the dataset files")
    p.add_argument("--split-seed", type=nonnegative_int, default=0,
                   help="dataset split seed (spikeclip-train's --split-seed)")
    p.add_argument("--tokenizer", help="tokenizer spec (default: the checkpoint's metadata)")
    p.add_argument("--templates", choices=("model", "dataset"), default="model",
                   help="prompt templates stored in the checkpoint (if any) or the dataset's")
    p.add_argument("--protocols", nargs="+", choices=robustness.PROTOCOLS,
                   default=list(robustness.PROTOCOLS), help="label-set protocols to run")
    p.add_argument("--seeds", nargs="+", type=nonnegative_int,
                   default=list(robustness.PAPER_SEEDS),
                   help="seeds of the replaced/expanded draws (paper: 42 43 44)")
    p.add_argument("--replace-k", type=positive_int, default=robustness.PAPER_REPLACE_K,
                   help="labels renamed per seed")
    p.add_argument("--distractors", type=positive_int, default=robustness.PAPER_EXPAND_BLOCK,
                   help="distractor names added per seed")
    p.add_argument("--synonyms", help="JSON file {class name: [synonym, ...]}")
    p.add_argument("--distractor-pool", help="text file, one distractor name per line")
    p.add_argument("--renormalize", action="store_true",
                   help="unit-length class vectors (ANN-CLIP rule; paper SNN: off)")
    p.add_argument("--limit", type=positive_int,
                   help="evaluate only the first N images of the split (default: all)")
    p.add_argument("--batch-size", type=positive_int, default=256, help="images per batch")
    p.add_argument("--threads", type=positive_int,
                   help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--confusion", action="store_true",
                   help="print the base protocol's confusion matrix and per-class top-1")
    p.add_argument("--json", help="write every result (with confusion matrices) here")
    return p


def _dataset(a: argparse.Namespace, ck: checkpoint.Checkpoint) -> tuple[Dataset, data.Splits]:
    """The split to evaluate; torchvision images get the training teacher's preprocessing
    (`spikeclip.training.model_data`), then `evaluate` resizes them to the model's img_size."""
    splits = model_data.model_splits(a.dataset, metadata=dict(ck.metadata),
                                     img_size=ck.config.img_size, root=a.data_root,
                                     seed=a.split_seed)
    ds = splits.test if a.split == "test" else splits.val
    if a.limit is not None:
        ds = Subset(ds, range(min(a.limit, len(ds))))  # type: ignore[arg-type]
    return ds, splits


def _tables(a: argparse.Namespace) -> tuple[dict | None, list[str] | None]:
    synonyms = robustness.SYNONYMS.get(a.dataset)
    pool = robustness.DISTRACTORS.get(a.dataset)
    if a.synonyms:
        raw = json.loads(Path(a.synonyms).read_text())
        if not isinstance(raw, dict) or not all(
                isinstance(v, list) and all(isinstance(s, str) for s in v) for v in raw.values()):
            raise robustness.LabelSetError(f"{a.synonyms}: expected {{name: [synonym, ...]}}")
        synonyms = {str(k): tuple(v) for k, v in raw.items()}
    if a.distractor_pool:
        pool = [s.strip() for s in Path(a.distractor_pool).read_text().splitlines() if s.strip()]
    return (dict(synonyms) if synonyms else None), (list(pool) if pool else None)


def _summary(results: list[evaluate.LabelSetResult]) -> dict:
    """Per protocol: mean (and population std over seeds) of top-1 and top-k."""
    out: dict = {}
    for protocol in dict.fromkeys(r.label_set.protocol for r in results):
        rs = [r.result for r in results if r.label_set.protocol == protocol]
        t1, tk = [r.top1 for r in rs], [r.topk for r in rs]
        out[protocol] = {"runs": len(rs), "top1_mean": statistics.fmean(t1),
                         "top1_std": statistics.pstdev(t1), "topk_mean": statistics.fmean(tk),
                         "topk_std": statistics.pstdev(tk), "k": [r.k for r in rs]}
    return out


def _line(r: evaluate.LabelSetResult) -> str:
    ls, res = r.label_set, r.result
    what = ""
    if ls.replaced:
        what = ", ".join(f"{x.old}->{x.new}" for x in ls.replaced)
    elif ls.distractors:
        what = f"+{len(ls.distractors)}: " + ", ".join(ls.distractors[:4]) + (
            ", ..." if len(ls.distractors) > 4 else "")
    seed = "-" if ls.seed is None else str(ls.seed)
    return (f"{ls.protocol:<9} {seed:>5} {len(ls.class_names):>5} {100 * res.top1:7.2f} "
            f"{100 * res.topk:7.2f} (top-{res.k})  {what}")


def _print_confusion(res: evaluate.ZeroShotResult) -> None:
    """Per-class top-1 and the confusion matrix (rows = labels, columns = predictions)."""
    acc = res.per_class_accuracy().tolist()
    width = max(len(n) for n in res.class_names)
    print("confusion (rows: label, columns: prediction) and per-class top-1 %")
    for i, row in enumerate(res.confusion.tolist()):
        cells = " ".join(f"{v:4d}" for v in row)
        print(f"{res.class_names[i]:>{width}} {cells}  {100 * acc[i]:6.2f}")


def run(a: argparse.Namespace) -> int:
    """Evaluate; returns the exit status."""
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.json:  # checked before the (long) evaluation: never an input, only our own record
        inputs = [p for p in (a.model, a.synonyms, a.distractor_pool) if p]
        check_output_file(a.json, inputs=inputs, option="--json", kind="spikeclip-eval JSON",
                          replaceable=lambda p: is_json_with_keys(p, EVAL_JSON_KEYS))
    ck = checkpoint.load(a.model)
    spec = a.tokenizer or ck.metadata.get("tokenizer")
    if not isinstance(spec, str):
        raise evaluate.EvaluationError(f"{a.model}: no 'tokenizer' in the checkpoint metadata; "
                                       "pass --tokenizer SPEC (e.g. minilm, open_clip:NAME)")
    tokenize = load_tokenizer(spec)
    ds, splits = _dataset(a, ck)
    templates = ck.templates if (a.templates == "model" and ck.templates) else splits.templates
    synonyms, pool = _tables(a)
    sets = robustness.label_sets(splits.class_names, a.protocols, seeds=a.seeds,
                                 synonyms=synonyms, pool=pool, k=a.replace_k, n=a.distractors)
    model = evaluate.in_dtype(ck.model, evaluate.EVAL_DTYPE)  # machine-independent results
    results = [evaluate.evaluate_label_set(model, ds, tokenize, s, templates,
                                           renormalize=a.renormalize, batch_size=a.batch_size)
               for s in sets]
    n = results[0].result.n
    dtype = str(evaluate.EVAL_DTYPE).removeprefix("torch.")
    print(f"{a.model}: {a.dataset} {a.split} ({n} images), {len(templates)} templates, "
          f"tokenizer {spec}, {dtype} arithmetic")
    print(f"{'protocol':<9} {'seed':>5} {'names':>5} {'top1%':>7} {'topk%':>7}")
    for r in results:
        print(_line(r))
    if a.confusion:
        for r in results:
            if r.label_set.protocol == "base":
                _print_confusion(r.result)
    summary = _summary(results)
    for protocol, s in summary.items():
        if s["runs"] > 1:
            print(f"{protocol}: top-1 {100 * s['top1_mean']:.2f} ± {100 * s['top1_std']:.2f} % "
                  f"over {s['runs']} seeds")
    if a.json:
        atomic_write_json({"model": str(a.model), "dataset": a.dataset, "split": a.split,
                           "split_seed": a.split_seed, "n": n, "limit": a.limit,
                           "tokenizer": spec, "templates": list(templates),
                           "renormalize": a.renormalize, "seeds": list(a.seeds),
                           "dtype": dtype,
                           "results": [r.to_dict() for r in results], "summary": summary},
                          a.json)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = _parser().parse_args(argv)
    try:
        return run(args)
    except SpikeCLIPError as err:  # every typed error of loading, data, teachers, evaluation
        print(f"spikeclip-eval: {err}", file=sys.stderr)
        return err.exit_code
    except json.JSONDecodeError as err:  # the --synonyms file the user gave
        print(f"spikeclip-eval: bad JSON input: {err}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
