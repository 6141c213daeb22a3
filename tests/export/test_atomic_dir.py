"""Atomic output folders: all or nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from export.atomic_dir import atomic_directory, write_text_atomic


def test_success_renames_staging_into_place(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with atomic_directory(out) as staging:
        write_text_atomic(staging / "a.txt", "hello")
        assert not out.exists()
    assert (out / "a.txt").read_text() == "hello"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    assert (out.stat().st_mode & 0o777, (out / "a.txt").stat().st_mode & 0o777) == (0o755, 0o644)


def test_failure_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="boom"), atomic_directory(out) as staging:
        write_text_atomic(staging / "a.txt", "half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_previous_export(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with atomic_directory(out) as staging:
        write_text_atomic(staging / "v.txt", "1")
    with pytest.raises(KeyError), atomic_directory(out) as staging:
        write_text_atomic(staging / "v.txt", "2")
        raise KeyError("x")
    assert (out / "v.txt").read_text() == "1"
    with atomic_directory(out) as staging:
        write_text_atomic(staging / "v.txt", "3")
    assert (out / "v.txt").read_text() == "3"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
