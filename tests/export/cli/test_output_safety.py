"""Issue #20: exports never destroy user data or leak processes.

- ``--out`` may replace only a folder this project wrote; ``.``, ``""``, the input, a folder
  holding it, or anyone else's folder exit 2 with every file intact (byte for byte).
- One writer per destination: a second export exits 2 at once, naming the holder's pid.
- An unwritable or full output exits 8 with one line naming the path and the OS reason.
- Real SIGTERM / SIGINT / SIGHUP sent to a real ``spikeclip-export --target loihi`` during its
  Lava stage end it within 5 s with 143 / 130 / 129, one line on stderr, no traceback, no
  staging folder, none of its processes and none of its shared memory segments left; after a
  SIGKILL its Lava processes die on their own within 5 s and the next run at that destination
  removes the staging folder.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import hashlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest
import torch
from _paths import REPO

from export.cli import energy as cli_energy
from export.cli import export as cli
from export.cli.convert import main as convert_main
from export.cli.output_dir import atomic_directory
from spikeclip import SpikeCLIP, SpikeCLIPConfig, save
from spikeclip.errors import EXIT_OUTPUT, EXIT_USAGE, UsageError

ROOT = REPO
EXPORT = shutil.which("spikeclip-export", path=str(Path(sys.executable).parent))
#: The issue's bound for a signalled run to end and for its processes to be gone.
WITHIN_S = 5.0


@pytest.fixture(scope="module")
def micro(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint small enough that a loihi export reaches Lava in seconds (T = 2, 8×8)."""
    torch.manual_seed(0)
    cfg = dataclasses.replace(
        SpikeCLIPConfig.tiny(), img_size=8, embed_dim=8, depth=1, num_heads=1, T=2, out_dim=4,
        tokenizer_channels=(2, 4, 4, 8),
    )  # fmt: skip
    path = tmp_path_factory.mktemp("micro") / "micro.pt"
    save(path, SpikeCLIP(cfg), metadata={"dataset": "digits"})
    return path


def _snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder``: relative path → sha256 (files) or 'dir'."""

    def digest(p: Path) -> str:
        return "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()

    return {str(p.relative_to(folder)): digest(p) for p in sorted(folder.rglob("*"))}


@pytest.fixture()
def workdir(tmp_path: Path, micro: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's folder: the model, a note, a data folder; it is the current folder."""
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    shutil.copy(micro, work / "model.pt")
    (work / "notes.txt").write_text("my notes\n")
    (work / "data" / "images.bin").write_bytes(os.urandom(4096))
    monkeypatch.chdir(work)
    return work


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_out_dot_in_a_folder_with_files_exits_2_and_keeps_every_byte(workdir: Path) -> None:
    # The acceptance line of the issue, as a user types it. Before: exit 0, and the folder was
    # emptied down to manifest.json, model.nir and report.md (model.pt and the notes gone).
    before = _snapshot(workdir)
    assert EXPORT is not None
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([EXPORT, "model.pt", "--target", "nir", "--out", "."], cwd=workdir,
                          capture_output=True, text=True, timeout=300, env=env)  # fmt: skip
    assert done.returncode == EXIT_USAGE, done.stderr
    assert "it is the current folder" in _one_line(done.stderr)
    assert _snapshot(workdir) == before


@pytest.mark.parametrize(
    ("out", "message"),
    [
        (".", "it is the current folder"),
        ("model.pt", "it is the input model.pt"),
        ("..", "it holds the current folder"),
        ("data", "data: exists and was not written by this tool"),
    ],
    ids=["dot", "the-input", "holds-the-input", "not-ours"],
)
def test_refused_destinations_exit_2_and_touch_nothing(
    workdir: Path, capsys: pytest.CaptureFixture, out: str, message: str
) -> None:
    before = _snapshot(workdir.parent)
    assert cli.main(["model.pt", "--target", "nir", "--out", out]) == EXIT_USAGE
    assert message in _one_line(capsys.readouterr().err)
    assert _snapshot(workdir.parent) == before


def test_an_empty_out_is_a_usage_error_not_the_current_folder(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    """``--out "$OUT"`` with OUT unset: refused by the option's type, before anything runs."""
    before = _snapshot(workdir.parent)
    with pytest.raises(SystemExit) as stop:
        cli.main(["model.pt", "--target", "nir", "--out", ""])
    assert stop.value.code == EXIT_USAGE
    assert "--out: must name a file or folder, got an empty string" in capsys.readouterr().err
    assert _snapshot(workdir.parent) == before


def test_a_folder_holding_the_input_is_refused_from_elsewhere(
    workdir: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir("/")
    before = _snapshot(workdir)
    code = cli.main([str(workdir / "model.pt"), "--target", "nir", "--out", str(workdir)])
    assert code == EXIT_USAGE
    assert "it holds the input" in _one_line(capsys.readouterr().err)
    assert _snapshot(workdir) == before


def test_a_previous_export_is_replaced(workdir: Path) -> None:
    assert cli.main(["model.pt", "--target", "nir", "--out", "exp", "--quiet"]) == 0
    assert cli.main(["model.pt", "--target", "onnx", "--out", "exp", "--quiet"]) == 0
    assert {p.name for p in (workdir / "exp").iterdir()} == {"model.onnx", "manifest.json",
                                                            "report.md"}  # fmt: skip
    assert not [p for p in workdir.iterdir() if p.name.startswith(".")]


def test_a_file_added_inside_a_previous_export_is_named_and_kept(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    # Before: the previous export's manifest alone made the folder replaceable, so a file the
    # user had put inside it was deleted with it (exit 0).
    assert cli.main(["model.pt", "--target", "nir", "--out", "exp", "--quiet"]) == 0
    manifest = json.loads((workdir / "exp" / "manifest.json").read_text())
    assert sorted(manifest["files"]) == [
        "image_stem.nir", "model.nir", "report.md", "text_encoder.nir"
    ]
    (workdir / "exp" / "my-analysis.txt").write_text("keep me\n")
    before = _snapshot(workdir)
    assert cli.main(["model.pt", "--target", "nir", "--out", "exp", "--quiet"]) == EXIT_USAGE
    assert _one_line(capsys.readouterr().err) == (
        "spikeclip-export: --out exp: holds more than this tool wrote (my-analysis.txt was not "
        "written by this tool); refusing to replace it: move that out, name a new folder or "
        "remove the folder yourself"
    )
    assert _snapshot(workdir) == before
    (workdir / "exp" / "my-analysis.txt").unlink()  # moved out: replaced again
    assert cli.main(["model.pt", "--target", "onnx", "--out", "exp", "--quiet"]) == 0
    assert sorted(json.loads((workdir / "exp" / "manifest.json").read_text())["files"]) == [
        "model.onnx", "report.md"]  # fmt: skip


def test_energy_and_convert_refuse_what_they_did_not_write(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    before = _snapshot(workdir)
    # Before: spikeclip-energy wrote its files into any existing folder, and an input given
    # as spikeclip-convert's --out was overwritten.
    assert cli_energy.main(["model.pt", "--out", "data", "--no-onnx"]) == EXIT_USAGE
    assert "data: exists and was not written by this tool" in _one_line(capsys.readouterr().err)
    assert convert_main(["notes.txt", "--out", "notes.txt"]) == EXIT_USAGE
    assert "it is the input notes.txt" in _one_line(capsys.readouterr().err)
    assert convert_main(["model.pt", "--out", "data/images.bin"]) == EXIT_USAGE
    assert "exists and is not a SpikeCLIP model.pt" in _one_line(capsys.readouterr().err)
    assert _snapshot(workdir) == before


def test_train_and_eval_refuse_to_overwrite_their_input_or_a_foreign_file(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    # Before: checked only when writing, after the training or evaluation: `--out` equal to
    # `--init` overwrote the starting model, `--json model.pt` the checkpoint, any file went.
    from export.cli.eval import main as eval_main
    from export.cli.train import main as train_main

    before = _snapshot(workdir)
    stage = ["align-image", "--teacher", "minilm", "--dataset", "digits", "--init", "model.pt"]
    cases = [
        (train_main, [*stage, "--out", "model.pt"], "it is the input model.pt"),
        (train_main, [*stage, "--out", "notes.txt"], "exists and is not a model.pt"),
        (eval_main, ["model.pt", "--dataset", "digits", "--json", "model.pt"], "is the input"),
        (eval_main, ["model.pt", "--dataset", "digits", "--json", "notes.txt"],
         "exists and is not a spikeclip-eval JSON"),
    ]  # fmt: skip
    for main, argv, message in cases:
        assert main(argv) == EXIT_USAGE, argv  # refused before loading anything: exit 2
        assert message in _one_line(capsys.readouterr().err)
    assert _snapshot(workdir) == before


HOLD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from export.cli.output_dir import atomic_directory
    with atomic_directory(Path(sys.argv[1])):
        print("ready", flush=True)
        time.sleep(60)
    """
)


def test_a_second_export_to_the_same_place_exits_2_at_once(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    # Before: both ran, both reported success, the last rename silently won.
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    holder = subprocess.Popen([sys.executable, "-c", HOLD, "exp"], stdout=subprocess.PIPE,
                              text=True, env=env)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        start = time.monotonic()
        assert cli.main(["model.pt", "--target", "nir", "--out", "exp"]) == EXIT_USAGE
        assert time.monotonic() - start < 2.0  # refused before loading anything
        line = _one_line(capsys.readouterr().err)
        assert f"another run (pid {holder.pid}) is writing this folder" in line
    finally:
        holder.kill()
        holder.wait()


@pytest.fixture()
def tmpfs(tmp_path: Path):
    """Mount a tmpfs with the given options (root only); yields a mounter, unmounts after."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounts: list[Path] = []

    def mount(name: str, options: str) -> Path:
        point = tmp_path / name
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounts.append(point)
        return point

    yield mount
    for point in mounts:
        subprocess.run(["umount", "-l", str(point)], check=False)


def test_full_disk_exits_8_with_one_line(micro: Path, tmpfs, capsys: pytest.CaptureFixture) -> None:
    # Before: exit 7 ("a bug") with a traceback from h5py.
    small = tmpfs("small", "size=64k")
    code = cli.main([str(micro), "--target", "nir", "--out", str(small / "exp"), "--quiet"])
    assert code == EXIT_OUTPUT
    line = _one_line(capsys.readouterr().err)
    assert f"cannot write {small / 'exp'}: No space left on device" in line
    assert list(small.iterdir()) == []  # staging and lock file removed
    code = cli_energy.main([str(micro), "--out", str(small / "energy"), "--no-onnx"])
    assert code == EXIT_OUTPUT
    assert "No space left on device" in _one_line(capsys.readouterr().err)
    assert list(small.iterdir()) == []


def test_unwritable_output_parent_exits_8_with_one_line(
    micro: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # Before: exit 1 with a PermissionError / OSError traceback. Root ignores mode 000, so as
    # root the parent is a read-only mount (the same failure class: EROFS instead of EACCES).
    parent = tmp_path / "locked"
    parent.mkdir()
    if os.geteuid() == 0:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(parent)],
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode:
            pytest.skip(f"cannot mount a read-only tmpfs here: {done.stderr.strip()}")
        reason = "Read-only file system"
    else:
        parent.chmod(0o000)
        reason = "Permission denied"
    try:
        code = cli.main([str(micro), "--target", "nir", "--out", str(parent / "exp")])
        assert code == EXIT_OUTPUT
        line = _one_line(capsys.readouterr().err)
        assert f"cannot write {parent / 'exp'}: {reason}" in line
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", "-l", str(parent)], check=False)
        parent.chmod(0o755)


# --- signals ------------------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    """What happened to one signalled export (times in seconds after the signal)."""

    pid: int
    folder: Path
    returncode: int | None = None
    stderr: str = ""
    exit_s: float = float("inf")
    descendants: tuple[int, ...] = ()
    alive: tuple[int, ...] = ()
    gone_s: float = float("inf")
    segments: tuple[str, ...] = ()
    segments_left: tuple[str, ...] = ()
    second_writer: str = ""
    left_in_parent: tuple[str, ...] = ()


def _tree(pid: int) -> list[psutil.Process]:
    with contextlib.suppress(psutil.NoSuchProcess):
        return [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    return []


def _segments(procs: list[psutil.Process]) -> set[str]:
    """POSIX shared memory segments mapped by ``procs`` (read from /proc/PID/maps)."""
    names = set()
    for proc in procs:
        try:
            with open(f"/proc/{proc.pid}/maps") as maps:
                names |= {
                    ln.split("/dev/shm/")[1].split()[0] for ln in maps if "/dev/shm/psm_" in ln
                }
        except OSError:
            continue
    return names


def _alive(pids) -> tuple[int, ...]:
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            continue
    return tuple(out)


def _signalled_export(checkpoint: Path, folder: Path, signum: int, group: bool) -> Outcome:
    """Start a loihi export, wait for its Lava stage and its Lava processes, send ``signum``
    to it, or to its whole process group (``group``: what Ctrl-C and a closed terminal do)."""
    assert EXPORT is not None
    out = folder / "export"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    args = [EXPORT, str(checkpoint), "--target", "loihi", "--samples", "32", "--run-lava", "32",
            "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)  # fmt: skip
    outcome = Outcome(pid=proc.pid, folder=folder)
    lines: queue.Queue[str] = queue.Queue()
    errors: list[str] = []  # read in threads: orphaned children may hold the pipes open
    threading.Thread(target=lambda: [lines.put(ln) for ln in proc.stdout], daemon=True).start()
    err_reader = threading.Thread(target=lambda: errors.extend(proc.stderr), daemon=True)
    err_reader.start()
    try:
        deadline = time.monotonic() + 400
        while not lines.get(timeout=deadline - time.monotonic()).startswith("[8/"):
            pass  # wait for "[8/10] run in Lava, compare ..."
        while len(_tree(proc.pid)) < 5 and time.monotonic() < deadline:  # Lava's processes
            time.sleep(0.05)
        procs = _tree(proc.pid)
        outcome.descendants = tuple(p.pid for p in procs[1:])
        outcome.segments = tuple(sorted(_segments(procs)))
        if signum == signal.SIGTERM:  # a second export to the same place meanwhile
            try:
                with atomic_directory(out):
                    outcome.second_writer = "entered"
            except UsageError as err:
                outcome.second_writer = str(err)
        sent = time.monotonic()
        (os.killpg if group else os.kill)(proc.pid, signum)
        with contextlib.suppress(subprocess.TimeoutExpired):  # (returncode stays None)
            proc.wait(timeout=30)
            outcome.exit_s = time.monotonic() - sent
            outcome.returncode = proc.returncode
        while _alive(outcome.descendants) and time.monotonic() - sent < 2 * WITHIN_S:
            time.sleep(0.05)
        outcome.gone_s = time.monotonic() - sent
        outcome.alive = _alive(outcome.descendants)
        time.sleep(max(0.0, sent + WITHIN_S - time.monotonic()))
        outcome.segments_left = tuple(n for n in outcome.segments if Path("/dev/shm", n).exists())
        err_reader.join(1.0)
        outcome.stderr = "".join(errors)
        outcome.left_in_parent = tuple(sorted(p.name for p in folder.iterdir()))
        return outcome
    finally:  # its own session: the group also holds orphans that outlived it
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


SIGNALS = {"SIGTERM": 143, "SIGINT": 130, "SIGHUP": 129, "SIGKILL": None}
#: Sent to the whole process group (Lava's processes and Python's resource tracker too), as
#: Ctrl-C and a closed terminal do; SIGTERM and SIGKILL to the export alone, as kill does.
TO_GROUP = {"SIGINT", "SIGHUP"}


@pytest.fixture(scope="module")
def signalled(micro: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """The four signalled exports, run side by side (each takes ~30 s to reach Lava here)."""
    folders = {name: tmp_path_factory.mktemp(name.lower()) for name in SIGNALS}
    with concurrent.futures.ThreadPoolExecutor(len(SIGNALS)) as pool:
        futures = {
            name: pool.submit(
                _signalled_export, micro, folders[name], getattr(signal, name), name in TO_GROUP
            )
            for name in SIGNALS
        }
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.slow
@pytest.mark.lava
@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT", "SIGHUP"])
def test_a_signal_in_the_lava_stage_ends_the_run_cleanly(signalled, name: str) -> None:
    # Before: SIGTERM left 19-29 Lava processes alive after 60 s, 91 /dev/shm segments and
    # the hidden staging folder; Ctrl-C printed a traceback.
    run = signalled[name]
    assert len(run.descendants) >= 4 and run.segments, "Lava was not running when signalled"
    assert run.returncode == SIGNALS[name], run.stderr
    assert run.exit_s < WITHIN_S
    line = _one_line(run.stderr)
    assert line == f"spikeclip-export: interrupted by {name}; no partial output left behind"
    assert run.alive == () and run.gone_s < WITHIN_S  # every process it started is gone
    assert run.segments_left == ()  # and every shared memory segment it mapped
    assert run.left_in_parent == ()  # no output, no staging folder, no lock file
    if name == "SIGTERM":
        assert f"another run (pid {run.pid}) is writing this folder" in run.second_writer


@pytest.mark.slow
@pytest.mark.lava
def test_sigkill_lava_processes_die_on_their_own_and_the_next_run_cleans_up(
    signalled, micro: Path
) -> None:
    run = signalled["SIGKILL"]
    assert len(run.descendants) >= 4 and run.segments, "Lava was not running when killed"
    assert run.returncode == -signal.SIGKILL
    assert run.alive == () and run.gone_s < WITHIN_S
    assert run.segments_left == ()
    folder = run.folder
    staged = [n for n in run.left_in_parent if n.endswith(".staging")]
    assert staged and f".export.{run.pid}." in staged[0]  # what a SIGKILL leaves behind
    assert (
        cli.main([str(micro), "--target", "nir", "--out", str(folder / "export"), "--quiet"]) == 0
    )
    assert sorted(p.name for p in folder.iterdir()) == ["export"]
