"""PilotNet SNN (lava-dl netx) in Lava vs the bit-accurate simulator: wall time per frame.

Intel's PilotNet SNN (``tests/fixtures/lava-dl/pilotnet_snn/network.net``) is imported with
:func:`hardware.lower.from_netx.load_netx` and run on ``--frames`` deterministic random images
(encoded as lava-dl's PilotNet dataset does, held for the file's T = 16 steps):

- **simulator**: :func:`hardware.simulate.engine.simulate` (fast path, and the int64 reference
path),
  median of ``--repeats`` runs over the whole batch, with ``--threads`` torch threads;
- **Lava**: lava-dl's own ``netx.hdf5.Network`` on CPU ``fixed_pt``
  (:func:`export.lava.netx_reference.run_netx_reference`), frames streamed one every T steps.
  Lava's per-frame rate is the *marginal* one: runs of 1 and ``--frames`` frames, difference of
  the time inside Lava's ``run`` over the difference of frames (so process start-up and
  compile are reported apart). The spikes of the long run are compared with the simulator.

Writes JSON (``--out``, default ``benchmarks/results/bench_netx_pilotnet.json``). Timings on a
shared 2-core machine are noisy: the load average is recorded.
Run: ``.venv/bin/python benchmarks/bench_netx_pilotnet.py [--frames 4] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from export.lava.netx_reference import run_netx_reference  # noqa: E402
from hardware.lower.from_netx import (  # noqa: E402
    encode_frames,
    load_netx,
    netx_metadata,
    static_currents,
)
from hardware.simulate.engine import simulate  # noqa: E402

PILOTNET = ROOT / "tests" / "fixtures" / "lava-dl" / "pilotnet_snn" / "network.net"
DEFAULT_OUT = Path(__file__).parent / "results" / "bench_netx_pilotnet.json"


def _median_s(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch threads for the simulator")
    p.add_argument("--skip-lava", action="store_true")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    net = load_netx(PILOTNET)
    meta = netx_metadata(net)
    images = np.random.default_rng(2024).random((args.frames, *meta.input_shape))
    x = static_currents(encode_frames(images, meta.transform), net.T)
    n = args.frames
    fast = _median_s(lambda: simulate(net, x), args.repeats)
    ref = _median_s(lambda: simulate(net, x, reference=True), args.repeats)
    out: dict = {
        "network": "PilotNet SNN (lava-dl netx)",
        "T": net.T,
        "frames": n,
        "torch_threads": args.threads,
        "sim_fast_s_per_frame": fast / n,
        "sim_reference_s_per_frame": ref / n,
    }
    if not args.skip_lava:
        short = run_netx_reference(PILOTNET, net, x[:, :1])
        long = run_netx_reference(PILOTNET, net, x)
        sim = simulate(net, x, keep_states=True)
        mismatches = {k: int(np.count_nonzero(s != sim.spikes[k])) for k, s in long.spikes.items()}
        marginal = (long.run_s - short.run_s) / max(n - 1, 1)
        out.update(
            lava_steps=long.n_steps,
            lava_run_s=long.run_s,
            lava_wall_s=long.wall_s,
            lava_marginal_s_per_frame=marginal,
            lava_fixed_s=long.wall_s - n * marginal,
            lava_over_sim_fast=marginal / (fast / n),
            spike_mismatches=mismatches,
            v_out_equal=bool(np.array_equal(long.v_out, sim.v[meta.output])),
        )
    out.update(
        load_average=list(os.getloadavg()),
        cpus=os.cpu_count(),
        python=platform.python_version(),
        torch=torch.__version__,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=2) + "\n")
    os.replace(tmp, args.out)
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
