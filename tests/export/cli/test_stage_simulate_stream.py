"""The export's simulate stage streams the test images in batches planned from a per-sample
memory estimate: its peak memory does not grow with ``--samples``, and one image that cannot
fit is exit 9 before any file is written.

References: peak resident memory of a child process (``ru_maxrss``), and the memory the old
stage needed for its unplanned batches of 128 (and its one-shot float encoding of every image).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from _paths import REPO
from _quant_helpers import active_tiny_model

import hardware.fidelity.stream as fidelity_stream
from export.cli.stages import (
    EvalData,
    ExportContext,
    ExportOptions,
    stage_nir,
    stage_quantize,
    stage_simulate,
)
from spikeclip import checkpoint
from spikeclip.errors import InsufficientMemoryError
from spikeclip.memory import AvailableMemory

_CHILD = textwrap.dedent("""
    import json, resource, sys, tempfile
    from pathlib import Path
    import torch
    sys.path.insert(0, "tests/export/cli")
    sys.path.insert(0, "tests")
    import spikeclip.batching as batching
    from test_stage_simulate_stream import context
    from export.cli.stages import stage_nir, stage_quantize, stage_simulate
    from hardware.fidelity.stream import plan_fidelity
    from hardware.lower.from_torch import graph_from_image_encoder
    from spikeclip.parallel import workers_for

    batching.DEFAULT_BUDGET = 110 << 20  # 110 MiB per batch: 32 images
    n = int(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        ctx = context(Path(tmp), n)
        stage_nir(ctx)
        stage_quantize(ctx)
        plan = plan_fidelity(graph_from_image_encoder(ctx.checkpoint.model.image_encoder), n,
                             workers=workers_for(n))
        stage_simulate(ctx)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(json.dumps({"peak": peak, "worker_peak": worker, "batch": plan.batch_size,
                      "per_sample": plan.sample_bytes, "samples": ctx.fidelity.samples}))
""")


def context(tmp_path, samples: int) -> ExportContext:
    """An export context after stage_data: 16 calibration and ``samples`` test images."""
    path = checkpoint.save(tmp_path / "model.pt", active_tiny_model())
    folder = tmp_path / "out"
    folder.mkdir()
    opts = ExportOptions(model_path=path, target="sim", out=folder, samples=samples)
    ctx = ExportContext(options=opts, folder=folder, checkpoint=checkpoint.load(path))
    g = torch.Generator().manual_seed(1)
    images = torch.randn(samples + 16, 3, 16, 16, generator=g)
    ctx.data = EvalData(name="random", calib=images[:16], images=images[16:],
                        labels=torch.arange(samples) % 3, class_names=("a", "b", "c"),
                        templates=("{}",))
    return ctx


def _peak(n: int) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(n)], cwd=REPO, check=True,
                         capture_output=True, text=True, timeout=900)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # 576 images through float graph, twin, simulator: 12 s at load ~5 (was ~5 min)
def test_peak_memory_of_the_simulate_stage_does_not_grow_with_samples():
    small, large = _peak(64), _peak(512)
    assert (small["samples"], large["samples"]) == (64, 512)
    assert small["batch"] == large["batch"] == 32  # both stream, in batches of the same size
    # Unbatched (the old stage: batches of 128), the larger run would hold 64 more images per
    # batch than the smaller, ≈ 64 × per-sample bytes: more than the 10 % allowed.
    assert 64 * large["per_sample"] > 0.10 * small["peak"]
    assert abs(large["peak"] - small["peak"]) <= 0.10 * small["peak"], (small, large)
    # The batches run in forked workers (one per core): the largest worker is flat too.
    assert abs(large["worker_peak"] - small["worker_peak"]) <= 0.10 * small["worker_peak"], (
        small, large)


def test_one_image_that_does_not_fit_is_exit_9_before_any_file(tmp_path, monkeypatch):
    ctx = context(tmp_path, 4)
    stage_nir(ctx)
    stage_quantize(ctx)
    monkeypatch.setattr(fidelity_stream, "available_memory",
                        lambda: AvailableMemory(system=1000))
    with pytest.raises(InsufficientMemoryError, match="simulate: fidelity") as err:
        stage_simulate(ctx)
    assert err.value.exit_code == 9
    assert not (ctx.folder / "fidelity.json").exists()
