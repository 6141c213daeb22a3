"""spikeclip.atomic_io: atomic writes, file mode, and hardware's import direction."""

from __future__ import annotations

import stat
import subprocess
import sys

import pytest

from spikeclip.atomic_io import FILE_MODE, open_atomic, write_bytes_atomic, write_text_atomic


def test_write_replaces_content_with_readable_mode(tmp_path):
    path = tmp_path / "sub" / "out.txt"
    write_text_atomic(path, "first")
    write_text_atomic(path, "zweite ü")
    assert path.read_text(encoding="utf-8") == "zweite ü"
    assert stat.S_IMODE(path.stat().st_mode) == FILE_MODE == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["out.txt"]


def test_failure_keeps_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "out.bin"
    write_bytes_atomic(path, b"old")
    with pytest.raises(RuntimeError, match="boom"), open_atomic(path) as handle:
        handle.write(b"half")
        raise RuntimeError("boom")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_hardware_writers_import_neither_export_nor_pyplot():
    # hardware is an earlier stage than export; importing export also patches Lava. The plots
    # use matplotlib Figure objects, so importing them switches no backend (no pyplot state).
    code = (
        "import sys\n"
        "import hardware.ir.network, hardware.mapping.report, hardware.energy.report\n"
        "import hardware.energy.plots\n"
        "bad = sorted(m for m in sys.modules if m == 'export' or m.startswith('export.'))\n"
        "print(bad, 'matplotlib.pyplot' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[] False"
