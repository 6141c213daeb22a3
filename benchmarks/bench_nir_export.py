"""Time the NIR export of the paper SpikeCLIP (random weights): target < 10 s on 2 cores.

Measures, in one run: `to_nir` of the image tower and of both towers, `write_nir` of the image
tower (uncompressed, the default; gzip level 1 for reference), `read_nir`, `from_nir` + one
T-step run (B = 1), and prints each time, the node counts and the file sizes. "Export" =
to_nir + write_nir (default, uncompressed) of the image tower, the tower that runs on chip.

Usage: OMP_NUM_THREADS=2 python benchmarks/bench_nir_export.py [--threads 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch

from export.nir import from_nir, read_nir, to_nir, write_nir
from spikeclip.config import SpikeCLIPConfig
from spikeclip.model import SpikeCLIP

TARGET_S = 10.0


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="folder for the .nir file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, t_build = _timed(lambda: SpikeCLIP(SpikeCLIPConfig.paper()).eval())
    image, t_image = _timed(lambda: to_nir(model, "image"))
    both, t_both = _timed(lambda: to_nir(model, "both"))
    with tempfile.TemporaryDirectory() as tmp:
        path = (args.out or Path(tmp)) / "spikeclip-paper-image.nir"
        _, t_gzip = _timed(lambda: write_nir(image, path, compression="gzip", level=1))
        gzip_mb = path.stat().st_size / 1e6
        _, t_write = _timed(lambda: write_nir(image, path))
        size_mb = path.stat().st_size / 1e6
        graph, t_read = _timed(lambda: read_nir(path))
    executor, t_exec = _timed(lambda: from_nir(graph))
    x = torch.randn(1, 3, 32, 32)
    _, t_run = _timed(lambda: executor(x))
    counts = Counter(type(n).__name__ for n in image.nodes.values())
    export_s = t_image + t_write
    print(f"threads={args.threads}  build paper model {t_build:.2f} s")
    print(f"to_nir image {t_image:.2f} s | to_nir both {t_both:.2f} s")
    print(f"write_nir image: default {t_write:.2f} s, {size_mb:.0f} MB", end=" | ")
    print(f"gzip 1 {t_gzip:.2f} s, {gzip_mb:.0f} MB | read_nir {t_read:.2f} s")
    print(f"from_nir {t_exec:.2f} s | run T=4, B=1, float64 {t_run:.2f} s")
    print(f"image graph nodes: {dict(sorted(counts.items()))}, edges {len(image.edges)}")
    verdict = "meets" if export_s < TARGET_S else "MISSES"
    print(f"export (to_nir + write_nir, image) {export_s:.2f} s: {verdict} the {TARGET_S:.0f} s")
    return 0 if export_s < TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
