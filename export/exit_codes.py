"""Exit codes of `spikeclip-export` and the mapping from typed errors to them.

Each stage raises its own typed errors; :func:`classify` turns one into an :class:`ExportFailure`
carrying the exit code and a one-line message naming the stage. An error that is not one of the
known user-facing types is a bug: it keeps its traceback and exits with ``EXIT_INTERNAL``.
"""

from __future__ import annotations

import importlib
import traceback

EXIT_OK = 0
EXIT_USAGE = 2  # argparse's own code for a bad command line
EXIT_BAD_CHECKPOINT = 3
EXIT_UNSUPPORTED_LAYER = 4
EXIT_DOES_NOT_FIT = 5
EXIT_LAVA_FAILED = 6
EXIT_INTERNAL = 7

# (module, class name) -> exit code. Resolved lazily so that this table does not import every
# stage at start-up.
_ERROR_CODES: tuple[tuple[str, str, int], ...] = (
    ("export.stages", "ExportUsageError", EXIT_USAGE),
    ("spikeclip.training.data", "DatasetNotFoundError", EXIT_USAGE),
    ("spikeclip.training.data", "UnknownDatasetError", EXIT_USAGE),
    ("spikeclip.errors", "CheckpointError", EXIT_BAD_CHECKPOINT),
    ("export.nir.errors", "UnsupportedModuleError", EXIT_UNSUPPORTED_LAYER),
    ("export.lava.errors", "LavaLoweringError", EXIT_UNSUPPORTED_LAYER),
    ("hardware.quantize", "QuantizationRangeError", EXIT_DOES_NOT_FIT),
    ("hardware.design_rules", "MappingError", EXIT_DOES_NOT_FIT),
    ("export.lava.runner", "LavaRunError", EXIT_LAVA_FAILED),
)


class ExportFailure(Exception):
    """A stage failed: ``exit_code`` says how, the message says where and why (one line)."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _known_types() -> list[tuple[type[BaseException], int]]:
    known = []
    for module_name, class_name, code in _ERROR_CODES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue  # that stage is not part of this installation
        error_type = getattr(module, class_name, None)
        if isinstance(error_type, type):
            known.append((error_type, code))
    return known


def classify(stage: str, err: BaseException) -> ExportFailure:
    """Map ``err`` raised in ``stage`` to an :class:`ExportFailure`."""
    if isinstance(err, ExportFailure):
        return err
    for error_type, code in _known_types():
        if isinstance(err, error_type):
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            return ExportFailure(code, f"{stage}: {first}")
    detail = "".join(traceback.format_exception(err))
    return ExportFailure(
        EXIT_INTERNAL,
        f"{stage}: unexpected {type(err).__name__}: {err}\n{detail}",
    )
