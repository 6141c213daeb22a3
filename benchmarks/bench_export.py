"""`spikeclip-export --target loihi` end to end on four model sizes: seconds per stage, peak memory.

Configurations: ``tiny`` (`SpikeCLIPConfig.tiny()`), ``default`` (the committed default model,
examples/spikeclip-digits.pt), ``official`` (the official code's smaller runs: 32×32, embed 96,
4 heads, depth 2) and ``paper`` (`SpikeCLIPConfig.paper()`, 9,513,396 image-encoder
parameters). Every model but the default one is built here with random weights and BatchNorm
statistics drawn so that its LIFs fire (the same draw as the tests' ``make_lifs_fire``), saved to
a temporary folder and deleted afterwards (never committed). Each export runs as a child process
(``python -m export.cli.export MODEL --target loihi --calib digits --samples N --run-lava R``,
the default calibration count) while this script samples the resident memory of the child and
all its descendants every 0.25 s: the peak of the sum of their proportional set sizes (PSS:
shared pages divided among their users) is "peak memory (parent + children)"; the peak of the
plain RSS sum, which counts the pages Lava's forked processes share once per process, is
recorded too. A run whose PSS sum passes ``--max-rss-gib`` is killed (recorded as such) so the
machine never runs out.

Per run the JSON (``benchmarks/results/bench_export.json``) holds: exit status, wall seconds,
CPU seconds of the export and every descendant it waited for (``cpu_s``: user + system; less
sensitive than wall time to what else runs),
``manifest.json``'s stage seconds, peak RSS, the firing rate of each simulated LIF layer
(fidelity.json: simulated spikes / neuron-steps over every neuron, step and sample; and their
min, mean and max over the layers), the Lava verdict, and the machine
(cores, memory, load average before and after: other jobs share this machine, so timings are
upper bounds).

Run: ``.venv/bin/python benchmarks/bench_export.py [--configs tiny default official paper]
[--samples 256] [--run-lava 2] [--max-rss-gib 12]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from spikeclip import checkpoint  # noqa: E402
from spikeclip.config import SpikeCLIPConfig  # noqa: E402
from spikeclip.model import SpikeCLIP  # noqa: E402

DEFAULT_MODEL = REPO / "examples" / "spikeclip-digits.pt"
RESULTS = REPO / "benchmarks" / "results" / "bench_export.json"
CONFIGS = {
    "tiny": SpikeCLIPConfig.tiny,
    "official": lambda: dataclasses.replace(
        SpikeCLIPConfig.paper(), embed_dim=96, num_heads=4, depth=2,
        tokenizer_channels=(12, 24, 48, 96)),
    "paper": SpikeCLIPConfig.paper,
}


def random_model(config: SpikeCLIPConfig, seed: int = 0) -> SpikeCLIP:
    """``config`` with random weights; BN statistics/affines drawn so that every LIF fires."""
    torch.manual_seed(seed)
    model = SpikeCLIP(config)
    with torch.no_grad():
        for m in model.image_encoder.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(1.5, 3.0)
                m.bias.normal_(0.3, 0.5)
    return model.eval()


def _tree_memory(proc: psutil.Process) -> tuple[int, int]:
    """``(Σ PSS, Σ RSS)`` bytes of ``proc`` and its descendants. Lava forks one process per
    process model: their copy-on-write pages are shared, so Σ RSS counts them many times;
    PSS (proportional set size) shares each page among its users and sums to the real use."""
    pss = rss = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            info = p.memory_full_info()
        except psutil.Error:
            continue
        pss, rss = pss + info.pss, rss + info.rss
    return pss, rss


def run_export(model: Path, out: Path, *, samples: int, run_lava: int, max_rss: int,
               timeout_s: float) -> dict:
    """One export in a child process, its tree's resident memory sampled (module doc)."""
    cmd = [sys.executable, "-m", "export.cli.export", str(model), "--target", "loihi",
           "--calib", "digits", "--samples", str(samples), "--run-lava", str(run_lava),
           "--out", str(out), "--quiet"]
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false")
    start = time.perf_counter()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    child = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    proc, peak, peak_rss, killed = psutil.Process(child.pid), 0, 0, None
    while child.poll() is None:
        pss, rss = _tree_memory(proc)
        peak, peak_rss = max(peak, pss), max(peak_rss, rss)
        elapsed = time.perf_counter() - start
        if peak > max_rss or elapsed > timeout_s:
            killed = (f"peak PSS {peak / 2**30:.2f} GiB > {max_rss / 2**30:.2f} GiB"
                      if peak > max_rss else f"over {timeout_s:g} s")
            for p in [*proc.children(recursive=True), proc]:
                try:
                    p.kill()
                except psutil.Error:
                    pass
            break
        time.sleep(0.25)
    stdout, stderr = child.communicate()
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = {"command": " ".join(cmd[1:]), "exit": child.returncode, "killed": killed,
              "wall_s": round(time.perf_counter() - start, 2),
              "cpu_s": round(cpu.ru_utime + cpu.ru_stime
                             - cpu_before.ru_utime - cpu_before.ru_stime, 1),
              "peak_pss_gib": round(peak / 2**30, 3),
              "peak_rss_sum_gib": round(peak_rss / 2**30, 3), "stderr_tail": stderr[-600:]}
    result.update(_outputs(out))
    return result


def _outputs(out: Path) -> dict:
    """Stage seconds, firing rates and the Lava verdict from the written folder (if any)."""
    got: dict = {}
    if (out / "manifest.json").is_file():
        manifest = json.loads((out / "manifest.json").read_text())
        got["stage_seconds"] = manifest["stage_seconds"]
        got["lava"] = manifest["checks"].get("lava")
    if (out / "fidelity.json").is_file():
        fid = json.loads((out / "fidelity.json").read_text())
        rates = {x["name"]: x["spikes_sim"] / max(x["neuron_steps"], 1) for x in fid["layers"]}
        got["firing_rate_min"] = round(min(rates.values()), 4)
        got["firing_rate_mean"] = round(sum(rates.values()) / len(rates), 4)
        got["firing_rate_max"] = round(max(rates.values()), 4)
        got["firing_rates"] = {k: round(v, 4) for k, v in rates.items()}
        got["noise_floor_samples"] = fid.get("noise_floor_samples")
        got["silent_layers"] = [k for k, v in rates.items() if v == 0]
        got["samples"] = fid["samples"]
    return got


def machine() -> dict:
    vm = psutil.virtual_memory()
    return {"cpus": os.cpu_count(), "memory_gib": round(vm.total / 2**30, 1),
            "available_gib": round(vm.available / 2**30, 1),
            "load_avg": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "torch": torch.__version__}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=["tiny", "default", "official", "paper"],
                        choices=["tiny", "default", *CONFIGS])
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--run-lava", type=int, default=2)
    parser.add_argument("--max-rss-gib", type=float, default=12.0)
    parser.add_argument("--timeout-s", type=float, default=1800.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    with tempfile.TemporaryDirectory(prefix="bench_export.") as tmp:
        for name in args.configs:
            model = DEFAULT_MODEL if name == "default" else Path(tmp) / f"{name}.pt"
            if name != "default":
                checkpoint.save(model, random_model(CONFIGS[name]()))
            before = machine()
            run = run_export(model, Path(tmp) / f"out-{name}", samples=args.samples,
                             run_lava=args.run_lava, max_rss=int(args.max_rss_gib * 2**30),
                             timeout_s=args.timeout_s)
            run.update(machine_before=before, machine_after=machine())
            key = f"{name} samples={args.samples} run_lava={args.run_lava}"
            results[key] = run
            print(key, json.dumps({k: run.get(k) for k in (
                "exit", "killed", "wall_s", "peak_pss_gib", "peak_rss_sum_gib", "stage_seconds",
                "firing_rate_min")}), flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
