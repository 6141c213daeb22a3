"""Atomic output folders: all or nothing, only over a folder this project wrote, one writer per
destination, stale staging of dead runs removed, write failures as OutputError (issue #20)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _paths import REPO

from export.cli import output_dir as atomic_dir
from export.cli.output_dir import atomic_directory
from spikeclip.atomic_io import write_text_atomic
from spikeclip.errors import EXIT_OUTPUT, EXIT_USAGE, OutputError, UsageError

ROOT = REPO


def _manifest(folder: Path, fmt: str = "spikeclip-export") -> None:
    write_text_atomic(folder / "manifest.json", json.dumps({"format": fmt}))


def _snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (relative path → sha256 of a file, 'dir' for a folder)."""
    return {
        str(p.relative_to(folder)): "dir"
        if p.is_dir()
        else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
    }


def test_success_renames_staging_into_place(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with atomic_directory(out) as staging:
        write_text_atomic(staging / "a.txt", "hello")
        assert not out.exists()
        assert staging.parent == tmp_path and staging.name.startswith(f".run.{os.getpid()}.")
        assert (tmp_path / ".run.lock").read_text().strip() == str(os.getpid())
    assert (out / "a.txt").read_text() == "hello"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no staging, no lock file left
    assert (out.stat().st_mode & 0o777, (out / "a.txt").stat().st_mode & 0o777) == (0o755, 0o644)


def test_failure_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="boom"), atomic_directory(out) as staging:
        write_text_atomic(staging / "a.txt", "half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2-exchange", "two-renames"])
def test_replaces_only_a_previous_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exchange: bool
) -> None:
    if not exchange:  # a file system without RENAME_EXCHANGE: the fallback commit
        monkeypatch.setattr(atomic_dir, "_renameat2", lambda *_args: False)
    out = tmp_path / "run"
    with atomic_directory(out) as staging:
        write_text_atomic(staging / "v.txt", "1")
        _manifest(staging)
    with pytest.raises(KeyError), atomic_directory(out) as staging:
        write_text_atomic(staging / "v.txt", "2")
        raise KeyError("x")
    assert (out / "v.txt").read_text() == "1"
    with atomic_directory(out) as staging:
        write_text_atomic(staging / "v.txt", "3")
        _manifest(staging, "spikeclip-energy")
    assert (out / "v.txt").read_text() == "3"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_refuses_a_folder_it_did_not_write_and_touches_nothing(tmp_path: Path) -> None:
    # Before issue #20 any existing folder was emptied and replaced.
    out = tmp_path / "photos"
    out.mkdir()
    (out / "cat.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (out / "manifest.json").write_text('{"format": "someone-else"}')
    (out / "sub").mkdir()
    (out / "sub" / "notes.txt").write_text("keep me")
    before = _snapshot(tmp_path)
    with pytest.raises(UsageError, match="photos: exists and was not written by this tool") as info:
        with atomic_directory(out):
            pytest.fail("the body must not run")
    assert info.value.exit_code == EXIT_USAGE
    assert _snapshot(tmp_path) == before  # byte for byte; no lock file, no staging folder


def _export(out: Path) -> None:
    """A folder as this project writes it: two files (one in a subfolder), an empty folder and
    its manifest."""
    with atomic_directory(out) as staging:
        write_text_atomic(staging / "v.txt", "1")
        (staging / "sub").mkdir()
        (staging / "none").mkdir()
        write_text_atomic(staging / "sub" / "w.txt", "22")
        _manifest(staging)


def test_the_manifest_lists_every_file_written(tmp_path: Path) -> None:
    _export(tmp_path / "run")
    _export(tmp_path / "run")  # unchanged: replaced (also the empty folder it wrote)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest == {
        "format": "spikeclip-export",
        "files": {
            "sub/w.txt": {"bytes": 2, "sha256": hashlib.sha256(b"22").hexdigest()},
            "v.txt": {"bytes": 1, "sha256": hashlib.sha256(b"1").hexdigest()},
        },
        "folders": ["none", "sub"],
    }


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda out: (out / "mine.txt").write_text("my notes"), "mine.txt was not written"),
        (lambda out: (out / "sub" / "deep.txt").write_text("x"), "sub/deep.txt was not written"),
        (lambda out: (out / "empty").mkdir(), "empty was not written"),
        (lambda out: (out / "link").symlink_to(out / "v.txt"), "link was not written"),
        (lambda out: (out / "none" / "x").write_text("x"), "none/x was not written"),
        (lambda out: (out / "v.txt").write_text("2"), "v.txt was changed since this tool"),
        (lambda out: (out / "sub" / "w.txt").write_text("33"), "sub/w.txt was changed"),
    ],
    ids=["added-file", "added-in-subfolder", "added-folder", "added-link", "added-in-empty",
         "edited", "edited-deep"],
)
def test_a_previous_export_holding_anything_else_is_refused_naming_it(
    tmp_path: Path, change, named: str
) -> None:
    # Before: a folder counted as ours by its manifest alone, so a file the user added (or
    # edited) inside a previous export was deleted with it.
    out = tmp_path / "run"
    _export(out)
    change(out)
    before = _snapshot(tmp_path)
    refusal = f"run: holds more than this tool wrote \\({named}"
    with pytest.raises(UsageError, match=refusal) as info, atomic_directory(out):
        pytest.fail("the body must not run")
    assert info.value.exit_code == EXIT_USAGE and "\n" not in str(info.value)
    assert _snapshot(tmp_path) == before


def test_a_manifest_without_a_file_list_is_not_enough(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "v.txt").write_text("1")
    _manifest(out)  # says "ours", but not what is ours (an older version's folder)
    with pytest.raises(UsageError, match="manifest.json lists no files"), atomic_directory(out):
        pytest.fail("the body must not run")
    assert (out / "v.txt").read_text() == "1"


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("", "--out is empty"),
        (".", "it is the current folder"),
        ("/", "root folder"),
        ("~", "it is your home folder"),
        ("model.pt", "it is the input model.pt"),
        ("..", "it holds the current folder"),
    ],
)
def test_refuses_destinations_that_hold_user_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, match: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "model.pt").write_bytes(b"weights")
    monkeypatch.chdir(work)
    before = _snapshot(tmp_path)
    target = os.path.expanduser(name) if name == "~" else name
    with pytest.raises(UsageError, match=match), atomic_directory(target, inputs=["model.pt"]):
        pytest.fail("the body must not run")
    assert _snapshot(tmp_path) == before


def test_refuses_a_folder_holding_the_input_a_file_and_a_link(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    model = data / "model.pt"
    model.write_bytes(b"weights")
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    before = _snapshot(tmp_path)
    cases = [(data, "it holds the input"), (tmp_path / "file.txt", "is a file"),
             (tmp_path / "link", "symbolic link")]  # fmt: skip
    for target, match in cases:
        with pytest.raises(UsageError, match=match), atomic_directory(target, inputs=[model]):
            pytest.fail("the body must not run")
    assert _snapshot(tmp_path) == before


HOLD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from export.cli.output_dir import atomic_directory
    with atomic_directory(Path(sys.argv[1])) as staging:
        (staging / "partial.txt").write_text("half")
        print("ready", flush=True)
        time.sleep(float(sys.argv[2]))
    """
)


def _holder(out: Path, seconds: float) -> subprocess.Popen:
    """Another process inside atomic_directory(out) for ``seconds``; returns once it is in."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out), str(seconds)],
                            stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_a_second_writer_is_refused_at_once_naming_the_holder(tmp_path: Path) -> None:
    # Before issue #20 both runs went ahead and the last rename silently won.
    out = tmp_path / "run"
    holder = _holder(out, 60)
    try:
        start = time.monotonic()
        with pytest.raises(UsageError, match=rf"another run \(pid {holder.pid}\) is writing"):
            with atomic_directory(out):
                pytest.fail("the body must not run")
        assert time.monotonic() - start < 1.0  # no waiting for the holder
    finally:
        holder.kill()
        holder.wait()


def test_staging_of_a_killed_run_is_removed_by_the_next_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    holder = _holder(out, 60)
    holder.send_signal(signal.SIGKILL)  # no cleanup runs
    holder.wait()
    left = {p.name for p in tmp_path.iterdir()}
    staged = [n for n in left if n.startswith(f".run.{holder.pid}.") and n.endswith(".staging")]
    assert len(staged) == 1 and left == {".run.lock", *staged}
    # A staging-like folder of a live process, and hidden folders not in our pattern, stay.
    alive = tmp_path / f".run.{os.getppid()}.abcdefgh.staging"
    other = tmp_path / ".run.12.abcdefgh.staging.mine"
    alive.mkdir()
    other.mkdir()
    with atomic_directory(out) as staging:
        write_text_atomic(staging / "ok.txt", "done")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, other.name, "run"])
    assert [p.name for p in out.iterdir()] == ["ok.txt"]


def test_a_previous_export_moved_aside_by_a_killed_run_is_put_back(tmp_path: Path) -> None:
    # Where the file system cannot exchange two folders, the commit is two renames; a run
    # killed between them leaves the previous export as .run.<pid>.<random>.old.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    aside = tmp_path / f".run.{int(dead.stdout)}.abcdefgh.old"
    aside.mkdir()
    (aside / "v.txt").write_text("previous")
    _manifest(aside)
    with pytest.raises(RuntimeError), atomic_directory(tmp_path / "run"):
        raise RuntimeError("this run fails too")
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    assert (tmp_path / "run" / "v.txt").read_text() == "previous"


@pytest.fixture()
def small_fs(tmp_path: Path):
    """A 256 KiB tmpfs (root only): a file system that can be filled."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_is_an_output_error_and_leaves_nothing(small_fs: Path) -> None:
    out = small_fs / "run"
    message = r"cannot write .*/small/run: No space left on device \(writing big.bin\)$"
    with pytest.raises(OutputError, match=message) as info:
        with atomic_directory(out) as staging:
            write_text_atomic(staging / "big.bin", "x" * (1 << 20))
    assert info.value.exit_code == EXIT_OUTPUT and info.value.errno == errno.ENOSPC
    assert list(small_fs.iterdir()) == []


def test_full_disk_reported_without_a_file_name_is_an_output_error(small_fs: Path) -> None:
    # h5py (model.nir, the netx file) reports ENOSPC as a bare OSError without a file name.
    with pytest.raises(OutputError, match="No space left on device"):
        with atomic_directory(small_fs / "run"):
            raise OSError(errno.ENOSPC, "Can't synchronously write data")
    assert list(small_fs.iterdir()) == []


def test_unwritable_parent_is_an_output_error(tmp_path: Path) -> None:
    parent = tmp_path / "ro"
    parent.mkdir()
    if os.geteuid() == 0:  # root ignores mode bits: use a read-only mount instead
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(parent)],
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode:
            pytest.skip(f"cannot mount a read-only tmpfs: {done.stderr.strip()}")
        reason = "Read-only file system"
    else:
        parent.chmod(0o555)
        reason = "Permission denied"
    try:
        with pytest.raises(OutputError, match=rf"cannot write .*ro/run: {reason}") as info:
            with atomic_directory(parent / "run"):
                pytest.fail("the body must not run")
        assert info.value.exit_code == EXIT_OUTPUT
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", "-l", str(parent)], check=False)
        parent.chmod(0o755)
