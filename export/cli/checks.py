"""Machine-readable verdicts of an export (``manifest.json`` → ``"checks"``) and its gates.

:func:`collect_checks` gathers what the stages measured into one JSON-ready dict:

- ``lava``: whether the Lava run happened, on how many samples, whether every spike and readout
  stream was identical to the simulator's, the max |Δ feature| and the mismatch counts
  (:func:`lava_verdict`; ``null`` for targets without a Lava stage);
- ``twin_equals_simulator``: the fake-quant twin equals the bit-accurate simulator bit for bit
  on the test images (spikes and features);
- ``float_vs_simulator``: prediction agreement of the float model and the simulator (fraction),
  both top-1s and the drop ``100·(top-1 float − top-1 simulator)`` in percentage points; for a
  foreign NIR network (:func:`foreign_float_sim`) the agreement is that of spikes, over every
  neuron-step of every spiking layer, float NIR executor vs simulator, and there is no top-1
  (``measure`` says which);
- ``exactness``: T and whether the quantizer's exactness bound holds (the quantization record's
  "exact twin": T ≤ 7 and every bias on the 2^(T−1) grid, DESIGN §4);
- ``counters``: the simulator's whole-network tie/overflow/saturation/wrap/clip counts on the
  test images (from the fidelity report).

Sections a target does not compute are ``null``. :class:`Requirements` are the ``--require-*``
options of ``spikeclip-export``; :func:`evaluate` turns them into :class:`CheckResult` s that
the CLI reports and that make it exit with :data:`~spikeclip.errors.EXIT_CHECK_FAILED`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

EXACTNESS_BOUND = (
    "T <= 7 and every bias on the 2^(T-1) grid (DESIGN §4): only then is the fake-quant twin "
    "exact by construction"
)
TOP1_DROP_TOLERANCE_PP = 1e-9
"""Rounding slack when comparing a top-1 drop (a difference of two fractions ×100) with a gate."""


@dataclass(frozen=True, kw_only=True)
class Requirements:
    """The ``--require-*`` gates (``None``/``False``: not required).

    agreement: minimum float↔simulator prediction agreement, a fraction in [0, 1];
    top1_drop_pp: maximum top-1 drop from float to simulator, percentage points;
    lava_exact: Lava must have run and matched the simulator spike for spike;
    twin_exact: the twin must equal the simulator bit for bit and the exactness bound hold.
    """

    agreement: float | None = None
    top1_drop_pp: float | None = None
    lava_exact: bool = False
    twin_exact: bool = False

    def needs_simulation(self) -> bool:
        """Whether a gate reads the simulate stage's figures."""
        return self.agreement is not None or self.top1_drop_pp is not None or self.twin_exact

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    """One evaluated gate: its option, the required and actual values, and a one-line detail."""

    name: str
    option: str
    required: Any
    actual: Any
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def lava_verdict(samples: int, comparison: Any) -> dict[str, Any]:
    """The Lava-vs-simulator verdict from an `export.lava.runner.SimComparison` on ``samples``
    images: ``identical`` means no missing node, no shape mismatch, no differing neuron-step and
    no differing readout-stream entry."""
    spikes_off = int(sum(comparison.spike_mismatches.values()))
    streams_off = int(sum(comparison.stream_mismatches.values()))
    identical = (
        not comparison.missing
        and not comparison.shape_mismatches
        and spikes_off == 0
        and streams_off == 0
    )
    return {
        "ran": True,
        "samples": int(samples),
        "identical": identical,
        "max_abs_feature_diff": float(max(comparison.feature_max_abs_diff.values(), default=0.0)),
        "spike_mismatches": spikes_off,
        "stream_mismatches": streams_off,
        "shape_mismatches": list(comparison.shape_mismatches),
        "missing": list(comparison.missing),
    }


def lava_skipped(reason: str) -> dict[str, Any]:
    """The verdict when the Lava stage ran but simulated no sample (``--run-lava 0``)."""
    return {"ran": False, "samples": 0, "identical": None, "max_abs_feature_diff": None,
            "reason": reason}


PREDICTION_MEASURE = "prediction agreement"
NEURON_STEP_MEASURE = "spike agreement over all neuron-steps (float NIR executor vs simulator)"


def foreign_float_sim(*, samples: int, agreement: float) -> dict[str, Any]:
    """``float_vs_simulator`` of a foreign NIR network: the fraction of neuron-steps (every
    spiking layer, every sample) where the float executor and the simulator agree; no labels,
    so no top-1."""
    return {"samples": int(samples), "agreement": float(agreement),
            "measure": NEURON_STEP_MEASURE, "top1_float": None, "top1_simulator": None,
            "top1_drop_pp": None}


def collect_checks(
    *, fidelity: Any = None, quant_record: Any = None, lava: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The ``checks`` section (see the module doc) from a `hardware.fidelity.report.FidelityReport`,
    a `hardware.quantize.record.QuantRecord` and a :func:`lava_verdict` (any may be ``None``)."""
    float_sim = None
    counters = None
    twin = None
    if fidelity is not None:
        float_sim = {
            "samples": int(fidelity.samples),
            "agreement": float(fidelity.agreement_float_sim),
            "measure": PREDICTION_MEASURE,
            "top1_float": float(fidelity.top1_float),
            "top1_simulator": float(fidelity.top1_sim),
            "top1_drop_pp": 100.0 * (float(fidelity.top1_float) - float(fidelity.top1_sim)),
        }
        counters = {k: int(v) for k, v in fidelity.totals.items() if k != "spikes"}
        twin = bool(fidelity.twin_sim_bit_exact)
    exactness = None
    if quant_record is not None:
        exactness = {"T": int(quant_record.T), "met": bool(quant_record.exact),
                     "bound": EXACTNESS_BOUND}
    return {
        "lava": dict(lava) if lava is not None else None,
        "twin_equals_simulator": twin,
        "float_vs_simulator": float_sim,
        "exactness": exactness,
        "counters": counters,
    }


def _measure(float_sim: Mapping[str, Any] | None) -> str:
    return (float_sim or {}).get("measure", PREDICTION_MEASURE)


def evaluate(requirements: Requirements, checks: Mapping[str, Any]) -> tuple[CheckResult, ...]:
    """Evaluate every requested gate against ``checks`` (a missing figure fails its gate)."""
    results: list[CheckResult] = []
    fs = checks.get("float_vs_simulator")
    if requirements.agreement is not None:
        need = requirements.agreement
        got = None if fs is None else fs["agreement"]
        ok = got is not None and got >= need
        results.append(CheckResult(
            name="agreement", option=f"--require-agreement {need:g}", required=need, actual=got,
            passed=ok, detail=("float↔simulator " + _measure(fs) + " "
                               + ("not measured" if got is None else f"{got:.6f}")
                               + (" ≥ " if ok else " < ") + f"{need:g} required"),
        ))
    if requirements.top1_drop_pp is not None:
        need = requirements.top1_drop_pp
        got = None if fs is None else fs["top1_drop_pp"]
        ok = got is not None and got <= need + TOP1_DROP_TOLERANCE_PP
        results.append(CheckResult(
            name="top1_drop", option=f"--require-top1-delta {need:g}", required=need,
            actual=got, passed=ok,
            detail=("top-1 drop float→simulator "
                    + ("not measured" if got is None else f"{got:.2f} pp")
                    + (" ≤ " if ok else " > ") + f"{need:g} pp allowed"),
        ))
    if requirements.lava_exact:
        lava = checks.get("lava") or {}
        ok = bool(lava.get("ran")) and lava.get("identical") is True
        if not lava.get("ran"):
            detail = "Lava did not run"
        elif ok:
            detail = f"Lava identical to the simulator on {lava['samples']} samples"
        else:
            detail = (f"Lava differs from the simulator on {lava['samples']} samples "
                      f"({lava['spike_mismatches']} neuron-steps, {lava['stream_mismatches']} "
                      "stream entries)")
        results.append(CheckResult(
            name="lava_exact", option="--require-lava-exact", required=True,
            actual=lava.get("identical"), passed=ok, detail=detail,
        ))
    if requirements.twin_exact:
        twin = checks.get("twin_equals_simulator")
        exact = checks.get("exactness") or {}
        bound = exact.get("met")
        ok = twin is True and bound is True
        detail = f"twin == simulator bit for bit: {twin}; exactness bound met: {bound}"
        if bound is False:
            detail += f" (T = {exact.get('T')}; needs {EXACTNESS_BOUND.split(':')[0]})"
        results.append(CheckResult(
            name="twin_exact", option="--require-twin-exact", required=True,
            actual={"twin_equals_simulator": twin, "exactness_bound_met": bound}, passed=ok,
            detail=detail,
        ))
    return tuple(results)
