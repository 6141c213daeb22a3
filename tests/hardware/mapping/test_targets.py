"""Target profiles: every shipped file loads, numbers carry sources, ranges pick the right end."""

from __future__ import annotations

import pytest

from hardware.mapping.profiles import (
    TargetProfileError,
    available_targets,
    load_target,
    parse_quantity,
)


def test_every_shipped_profile_loads_and_every_number_has_a_source() -> None:
    names = available_targets()
    assert {"loihi1", "loihi2", "loihi2-chip", "loihi2-kapoho-point", "loihi2-hala-point"} <= set(
        names
    )
    for name in names:
        target = load_target(name)
        assert target.quantities, name
        for key, q in target.quantities.items():
            assert q.source.strip(), f"{name}: {key} has no source"
            assert q.low <= q.high, f"{name}: {key}"


def test_loihi1_limits_are_the_nengo_loihi_constants() -> None:
    target = load_target("loihi1")
    for bound in ("optimistic", "pessimistic"):
        lim = target.limits(bound)
        # nengo-loihi block.py: MAX_COMPARTMENTS 1024, MAX_IN/OUT_AXONS 4096,
        # MAX_SYNAPSE_BITS 16384·64 = 2^20; 128 cores per chip; no conv weight sharing.
        assert (lim.neurons, lim.input_axons, lim.output_axons) == (1024, 4096, 4096)
        assert lim.synaptic_memory_bits == 1 << 20
        assert lim.cores_per_chip == 128
        assert lim.conv_weight_sharing is False
        assert lim.graded_spike_bits == 0
        assert lim.chips is None
    assert target.quantities["core.neurons"].exact


def test_loihi2_unverified_limits_are_ranges_and_bounds_pick_the_right_end() -> None:
    target = load_target("loihi2")
    assert target.is_range
    opt, pess = target.limits("optimistic"), target.limits("pessimistic")
    # Per-core limits come from the calibrated core model: optimistic 8,192 neurons and the
    # newer compiler's 16,000 64-bit words; pessimistic Intel's 2022 compiler (4,095 neurons,
    # 12,000 words: the cost DB its PilotNet log prints), split the way that compiler splits.
    assert (opt.neurons, pess.neurons) == (8192, 4095)
    assert (opt.synaptic_memory_bits, pess.synaptic_memory_bits) == (16000 * 64, 12000 * 64)
    assert (opt.split_strategy, pess.split_strategy) == ("tight", "intel")
    assert (opt.core_model.variant, pess.core_model.variant) == ("optimistic", "pessimistic")
    assert target.quantities["core_model.neurons_per_core"].low == 4095
    assert (opt.cores_per_chip, pess.cores_per_chip) == (128, 120)
    assert opt.conv_weight_sharing and opt.graded_spike_bits == 24
    # Costs: optimistic takes the low time, pessimistic the high; bandwidth the reverse.
    t_opt, t_pess = target.timing("optimistic"), target.timing("pessimistic")
    assert t_opt.synaptic_op_s == pytest.approx(0.4e-9)
    assert t_pess.synaptic_op_s == pytest.approx(4.0e-9)
    assert t_opt.host_link_bits_per_s > t_pess.host_link_bits_per_s


def test_system_inherits_its_generation_and_adds_chips() -> None:
    kp = load_target("loihi2-kapoho-point")
    assert kp.generation == "loihi2" and kp.chips == 8
    assert kp.limits("optimistic").chips == 8
    assert kp.limits("pessimistic").neurons == load_target("loihi2").limits("pessimistic").neurons
    assert load_target("loihi2-hala-point").chips == 1152
    assert load_target("loihi2").chips is None


def test_unknown_target_names_the_file_and_lists_known_ones() -> None:
    with pytest.raises(TargetProfileError, match=r"hardware/mapping/targets/loihi9\.json.*loihi1"):
        load_target("loihi9")


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ({"value": 1}, "source"),
        ({"low": 2, "high": 1, "source": "s"}, "low 2 > high 1"),
        ({"value": 1, "low": 1, "high": 2, "source": "s"}, "not both"),
        ({"high": 2, "source": "s"}, "missing 'value'"),
        ({"value": -3, "source": "s"}, "non-negative"),
    ],
)
def test_malformed_quantity_is_rejected_naming_the_key(entry: dict, match: str) -> None:
    with pytest.raises(TargetProfileError, match=match):
        parse_quantity(entry, "x.json core.neurons")


def test_quantity_parses_value_and_range() -> None:
    q = parse_quantity({"value": 7, "unit": "u", "source": "s"}, "w")
    assert (q.low, q.high, q.exact) == (7, 7, True)
    r = parse_quantity({"low": 1, "high": 3, "source": "s"}, "w")
    assert r.pick("optimistic", more_is_better=True) == 3
    assert r.pick("pessimistic", more_is_better=True) == 1
    assert r.pick("optimistic", more_is_better=False) == 1
    with pytest.raises(TargetProfileError, match="bound"):
        r.pick("typical", more_is_better=True)  # type: ignore[arg-type]
