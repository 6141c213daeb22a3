"""Map the paper SpikeCLIP image tower (structure only, placeholder weights) onto Loihi 1 and 2.

Writes `examples/mapping-paper/mapping-loihi2.{md,json}` (chips as a range, binding resource),
`mapping-loihi1.md` (or its typed failure) and `systems.md` (which Loihi systems it fits), and
prints one summary line per target and the wall time of building and mapping.

Usage: python benchmarks/report_paper_mapping.py [--out DIR] [--spike-rate R]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hardware.lower.topology import STRUCTURE_ONLY, image_tower_structure
from hardware.mapping.design_rules import DesignRuleError
from hardware.mapping.mapper import map_network
from hardware.mapping.profiles import load_target
from hardware.mapping.report import _write_atomic, write_report

SYSTEMS = (
    "loihi2-chip",
    "loihi2-kapoho-point",
    "loihi2-hala-point",
    "loihi1-chip",
    "loihi1-nahuku",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("examples/mapping-paper"))
    parser.add_argument("--spike-rate", type=float, default=0.1)
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    net = image_tower_structure()
    t1 = time.perf_counter()
    print(
        f"built paper structure: {len(net.layers)} layers, {len(net.edges)} edges, "
        f"T={net.T}, depth {net.max_depth} ({t1 - t0:.1f} s)"
    )
    title = "SpikeCLIP image tower (paper config) → {}"
    for gen in ("loihi2", "loihi1"):
        target = load_target(gen)
        t2 = time.perf_counter()
        try:
            mapping = map_network(net, target, spike_rate=args.spike_rate)
        except DesignRuleError as err:
            text = (
                f"# {title.format(gen)}\n\n> **{STRUCTURE_ONLY}**\n\n"
                f"Does not map: `{err.rule}` — layer `{err.layer}` needs {err.resource} = "
                f"{err.demand:,} > limit {err.limit:,}.\n"
            )
            _write_atomic(args.out / f"mapping-{gen}.md", text)
            print(f"{gen}: does not map: {err}")
            continue
        t3 = time.perf_counter()
        write_report(
            mapping,
            target,
            args.out,
            stem=f"mapping-{gen}",
            title=title.format(gen),
            note=STRUCTURE_ONLY,
        )
        lo, hi = mapping.chips_range()
        binding = {b: s.binding for b, s in mapping.scenarios.items()}
        print(
            f"{gen}: chips {lo} – {hi if hi is not None else 'does not fit'}, cores "
            f"{mapping.cores_range()}, binding {binding}, failures "
            f"{ {b: str(e) for b, e in mapping.failures.items()} } (map {t3 - t2:.2f} s)"
        )
    rows = [
        "# Which Loihi systems hold the paper image tower",
        "",
        f"> **{STRUCTURE_ONLY}**",
        "",
        "| system | chips | result |",
        "|---|---|---|",
    ]
    for name in SYSTEMS:
        target = load_target(name)
        try:
            m = map_network(net, target, spike_rate=args.spike_rate)
            lo, hi = m.chips_range()
            result = f"fits ({lo} chips optimistic" + (
                f", {hi} pessimistic)"
                if hi is not None
                else f"; pessimistic: {m.failures['pessimistic'].rule})"
            )
        except DesignRuleError as err:
            result = (
                f"does not fit: `{err.rule}` ({err.layer}: {err.resource} "
                f"{err.demand:,} > {err.limit:,})"
            )
        rows.append(f"| {name} | {target.chips} | {result} |")
    _write_atomic(args.out / "systems.md", "\n".join(rows) + "\n")
    print("\n".join(rows[4:]))
    print(f"total {time.perf_counter() - t0:.1f} s; wrote {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
