"""Peak memory and time of one Lava run of an image tower (`export.lava.run_lava`, 1 sample).

The model is one of `bench_export.CONFIGS` (random weights, BN drawn so LIFs fire), quantized on
8 random images; the peak proportional set size (PSS) of this process and Lava's children is
sampled every 0.25 s (`bench_export._tree_memory`); a run above 7 GiB is stopped (exit 3).
Prints one JSON line: base and peak PSS, the plain RSS sum, Lava seconds, Lava vs the
simulator (mismatching neuron-steps and readout-stream entries, `export.lava.compare_to_sim`) and
every layer with delayed replicas (the process of each). Run:
``.venv/bin/python benchmarks/bench_lava_memory.py official`` (results of the DelaySparse →
DelayConv change: results/lava_delay_conv.json).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import psutil
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_export import CONFIGS, _tree_memory, random_model  # noqa: E402

from export.lava.runner import compare_to_sim, run_lava, to_lava  # noqa: E402
from export.nir import to_nir  # noqa: E402
from hardware.quantize.image import quantize  # noqa: E402
from hardware.simulate.engine import simulate  # noqa: E402

LIMIT = 7 << 30


def main(name: str) -> dict:
    cfg = CONFIGS[name]()
    images = torch.randn(9, 3, cfg.img_size, cfg.img_size,
                         generator=torch.Generator().manual_seed(1))
    network, _ = quantize(to_nir(random_model(cfg).image_encoder), images[:8])
    me, peak, done = psutil.Process(), [0, 0], threading.Event()

    def watch() -> None:
        while not done.is_set():
            pss, rss = _tree_memory(me)
            peak[0], peak[1] = max(peak[0], pss), max(peak[1], rss)
            if pss > LIMIT:
                print(f"stopped: PSS {pss / 2**30:.2f} GiB > 7 GiB", flush=True)
                os._exit(3)
            time.sleep(0.25)

    base = _tree_memory(me)[0]
    threading.Thread(target=watch, daemon=True).start()
    start = time.time()
    graph = to_lava(network)
    lava = run_lava(graph, images[8:9].numpy())
    done.set()
    lava_s = time.time() - start
    cmp = compare_to_sim(lava, simulate(network, images[8:9], keep_states=True), network)
    spikes = sum(cmp.spike_mismatches.values())
    streams = sum(cmp.stream_mismatches.values())
    return {"config": name, "base_pss_gib": round(base / 2**30, 3),
            "peak_pss_gib": round(peak[0] / 2**30, 3),
            "peak_rss_sum_gib": round(peak[1] / 2**30, 3), "lava_s": round(lava_s, 1),
            "lava_vs_simulator": {
                "spike_mismatches": int(spikes), "stream_mismatches": int(streams),
                "missing": list(cmp.missing), "lif_layers": len(lava.spikes),
                "spikes": int(sum(int(v.sum()) for v in lava.spikes.values()))},
            "procs": {k: dict(v.processes) for k, v in graph.nodes.items()
                      if len(v.processes) > 1}}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1] if len(sys.argv) > 1 else "official")))
