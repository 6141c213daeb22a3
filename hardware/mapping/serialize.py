"""A `Mapping` as JSON-ready data (what ``mapping.json`` holds)."""

from __future__ import annotations

from typing import Any

from hardware.mapping.design_rules import DesignRuleError
from hardware.mapping.profiles import CoreLimits
from hardware.mapping.records import GroupMapping, Mapping, ScenarioMapping, Traffic


def group_dict(g: GroupMapping) -> dict[str, Any]:
    """One core group: totals, split, worst core, utilization, binding, chips."""
    return {
        "name": g.name,
        "kind": g.kind,
        "placement": g.placement,
        "shape": list(g.shape),
        "inputs": list(g.inputs),
        "neurons": g.neurons,
        "allocated": g.allocated,
        "input_axons": g.input_axons,
        "synapses": g.synapses,
        "max_delay_bits": g.max_delay_bits,
        "split": {
            "channel_groups": g.split.channel_groups,
            "tiles_y": g.split.tiles_y,
            "tiles_x": g.split.tiles_x,
        },
        "cores": g.cores,
        "worst_core": dict(g.demand),
        "utilization": dict(g.utilization),
        "binding": g.binding,
        "chips": list(g.chips),
    }


def limits_dict(limits: CoreLimits) -> dict[str, Any]:
    """The limits of a scenario; a calibrated core model by its variant name."""
    out = vars(limits).copy()
    out["core_model"] = None if limits.core_model is None else limits.core_model.variant
    return out


def scenario_dict(s: ScenarioMapping) -> dict[str, Any]:
    """One scenario: its limits, timing, totals, latency and groups."""
    return {
        "bound": s.bound,
        "limits": limits_dict(s.limits),
        "timing": vars(s.timing).copy(),
        "cores": s.cores,
        "chips": s.chips,
        "binding": s.binding,
        "cores_by_binding": dict(s.cores_by_binding),
        "interchip_edges": s.interchip_edges,
        "latency": vars(s.latency).copy(),
        "residual": s.residual,
        "other_residual_cores": s.other_residual_cores,
        "depth": s.depth,
        "groups": [group_dict(g) for g in s.groups],
    }


def failure_dict(e: DesignRuleError) -> dict[str, Any]:
    """The evidence of a failed design rule."""
    return {
        "rule": e.rule,
        "layer": e.layer,
        "resource": e.resource,
        "demand": e.demand,
        "limit": e.limit,
    }


def traffic_dict(t: Traffic) -> dict[str, Any]:
    return {
        "host_bits": dict(t.host_bits),
        "embedded_bits": dict(t.embedded_bits),
        "host_round_trips_per_step": t.host_round_trips_per_step,
        "embedded_round_trips_per_step": t.embedded_round_trips_per_step,
    }


def summary_dict(mapping: Mapping) -> dict[str, Any]:
    """A JSON-ready dict of `mapping` (used by the report writer)."""
    return {
        "target": mapping.target,
        "generation": mapping.generation,
        "T": mapping.T,
        "depth": mapping.depth,
        "spike_rate": mapping.spike_rate,
        "chips_range": list(mapping.chips_range()),
        "cores_range": list(mapping.cores_range()),
        "scenarios": {k: scenario_dict(v) for k, v in mapping.scenarios.items()},
        "failures": {k: failure_dict(e) for k, e in mapping.failures.items()},
        "placement": [vars(p).copy() for p in mapping.placement],
        "traffic": traffic_dict(mapping.traffic),
        "assumptions": list(mapping.assumptions),
    }
