"""Make Lava 0.10 (lava-nc 0.10.0, archived upstream) import on Python 3.11, in any process.

Two source-level incompatibilities, each fixed by one rewrite (:data:`PATCHES`):

- ``lava/magma/compiler/var_model.py`` declares dataclass fields such as
  ``x: ByteEncoder = ByteEncoder()``. Python 3.11 refuses a dataclass *instance* as a field
  default (``ValueError: mutable default ... use default_factory``), so ``import lava.magma...``
  fails. Rewritten so each such default is ``field(default_factory=ByteEncoder)``.
- ``lava/magma/runtime/message_infrastructure/multiprocessing.py`` calls
  ``mp.set_start_method('fork')`` at import, which raises ``RuntimeError: context has already
  been set`` when anything in the process used ``multiprocessing`` first (a DataLoader with
  workers, a Queue). Rewritten to set 'fork' only when it is not already the start method
  (``force=True`` then, as Lava needs fork: its actors inherit this finder).

The fixes live here, in one place, and edit nothing in site-packages: :func:`install` puts a
meta-path finder in front of the normal ones that serves those modules from their source files,
rewritten. They are compiled from source on every import and never written back as ``.pyc``, so
a stale cached ``.pyc`` of an unpatched file (in ``__pycache__``) can never win. Every other
module is left to the normal import system.

Lava spawns its runtime actors with ``multiprocessing`` using fork on Linux, so children inherit
the installed finder. Call :func:`install` (or :func:`import_lava`) before importing Lava; the
``export.lava`` package does it on import, before it imports any of its Lava modules.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import re
import sys
from types import ModuleType

PATCHED_MODULE = "lava.magma.compiler.var_model"

# `x: ByteEncoder = ByteEncoder()` -> `x: ByteEncoder = _dc_field(default_factory=ByteEncoder)`
_INSTANCE_DEFAULT = re.compile(r"^(\s+\w+\s*:\s*ByteEncoder\s*=\s*)ByteEncoder\(\)\s*$", re.M)
_FIELD_IMPORT = "from dataclasses import field as _dc_field\n"


def patch_var_model_source(source: str) -> str:
    """Return ``var_model.py``'s source with dataclass-instance defaults made default factories.

    Raises ``RuntimeError`` if the source does not contain the pattern (a different Lava version:
    nothing is patched silently).
    """
    patched, count = _INSTANCE_DEFAULT.subn(r"\1_dc_field(default_factory=ByteEncoder)", source)
    if count == 0:
        raise RuntimeError(
            f"{PATCHED_MODULE}: no `ByteEncoder = ByteEncoder()` default found; this shim is "
            "written for lava-nc 0.10.0"
        )
    # Insert the import after the `from __future__` line (which must stay first).
    future = re.search(r"^from __future__ import [^\n]+\n", patched, re.M)
    at = future.end() if future else 0
    return patched[:at] + _FIELD_IMPORT + patched[at:]


MULTIPROCESSING_MODULE = "lava.magma.runtime.message_infrastructure.multiprocessing"
_SET_FORK = re.compile(r"^(\s*)mp\.set_start_method\('fork'\)\s*$", re.M)


def patch_start_method_source(source: str) -> str:
    """Return Lava's ``multiprocessing.py`` source with its unconditional
    ``mp.set_start_method('fork')`` made safe when the start method was already chosen.

    Raises ``RuntimeError`` if the call is not found (a different Lava version).
    """
    patched, count = _SET_FORK.subn(
        r"\1if mp.get_start_method(allow_none=True) != 'fork':"
        r" mp.set_start_method('fork', force=True)",
        source,
    )
    if count == 0:
        raise RuntimeError(
            f"{MULTIPROCESSING_MODULE}: no `mp.set_start_method('fork')` found; this shim is "
            "written for lava-nc 0.10.0"
        )
    return patched


#: module name -> source rewrite applied when it is imported.
PATCHES = {
    PATCHED_MODULE: patch_var_model_source,
    MULTIPROCESSING_MODULE: patch_start_method_source,
}


class _PatchedSourceLoader(importlib.machinery.SourceFileLoader):
    """Loads one module of :data:`PATCHES` from its source file with its rewrite applied."""

    def get_code(self, fullname: str):  # noqa: ANN201 - returns a code object
        path = self.get_filename(fullname)
        source = importlib.util.decode_source(self.get_data(path))
        # compile() from text every time: no bytecode cache is read or written.
        return compile(PATCHES[fullname](source), path, "exec", dont_inherit=True)


class _LavaVarModelFinder(importlib.abc.MetaPathFinder):
    """Meta-path finder that answers only for the modules of :data:`PATCHES`."""

    def find_spec(self, fullname, path=None, target=None):  # noqa: ANN001, ANN201
        if fullname not in PATCHES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.origin and spec.origin.endswith(".py"):
                loader = _PatchedSourceLoader(fullname, spec.origin)
                return importlib.util.spec_from_file_location(fullname, spec.origin, loader=loader)
        return None


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (idempotent)."""
    if not any(isinstance(f, _LavaVarModelFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _LavaVarModelFinder())


def import_lava() -> ModuleType:
    """Install the shim and import ``lava.magma.core`` (raises ImportError if Lava is absent)."""
    install()
    import lava.magma.core  # noqa: F401  (import for its side effect: Lava is usable)

    return sys.modules["lava"]
