"""Every declared console script is installed, answers --help with exit 0, what it writes, its
option defaults and the exit-code table, and rejects a bad count with exit 2; the README's table
is the same table."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _paths import REPO

from spikeclip.errors import EXIT_CODE_LINES, EXIT_USAGE

SCRIPTS = [
    "spikeclip-export",
    "spikeclip-train",
    "spikeclip-eval",
    "spikeclip-energy",
    "spikeclip-convert",
]
README = REPO / "README.md"
DEFAULTS_SHOWN = {  # one option default per command, as --help must print it
    "spikeclip-export": ["(default: loihi)", "(default: 256)", "(default: 2)"],
    "spikeclip-train": [],  # the sub-commands carry the options (checked below)
    "spikeclip-eval": ["(default: test)", "(default: 256)", "(default: data)"],
    "spikeclip-energy": ["(default: energy_report)", "(default: 64)", "(default: q_ktv)"],
    "spikeclip-convert": [],  # every option is required or has a documented model default
}
TRAIN_STAGES = ("align-text", "align-image", "finetune-teacher", "finetune")
WRITES_SHOWN = {  # what each command's "writes:" paragraph must name
    "spikeclip-export": ["--out", "model.nir", "report.md", "manifest.json", "atomically",
                         "holds nothing else"],
    "spikeclip-train": ["OUT", "log.json", "state.pt", "atomically", "never an input"],
    "spikeclip-eval": ["stdout", "--json FILE", "atomically", "never an input"],
    "spikeclip-energy": ["--out", "energy.md", "manifest.json", "atomically", "holds nothing else"],
    "spikeclip-convert": ["--out model.pt", "atomically", "never an input"],
}  # fmt: skip


def _exe(name: str) -> str:
    exe = shutil.which(name, path=str(Path(sys.executable).parent))
    assert exe is not None, f"{name} is not installed in {Path(sys.executable).parent}"
    return exe


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=120)


def _assert_exit_code_table(text: str) -> None:
    assert "exit codes:" in text
    for code, what in EXIT_CODE_LINES:
        assert re.search(rf"^\s*{code}\s+{re.escape(what)}$", text, re.MULTILINE), (code, what)


def _assert_writes(name: str, text: str) -> None:
    """The ``writes:`` paragraph (before the exit codes) names what ``name`` writes."""
    found = re.search(r"^writes:\n(.+?)\n\nexit codes:", text, re.MULTILINE | re.DOTALL)
    assert found, text
    paragraph = " ".join(found.group(1).split())
    for shown in WRITES_SHOWN[name]:
        assert shown in paragraph, (shown, paragraph)


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_exits_0_with_defaults_and_exit_codes(name: str) -> None:
    done = _run(_exe(name), "--help")
    assert done.returncode == 0, done.stderr
    _assert_exit_code_table(done.stdout)
    _assert_writes(name, done.stdout)
    flat = " ".join(done.stdout.split())
    for shown in DEFAULTS_SHOWN[name]:
        assert shown in flat, (shown, done.stdout)


def _help(argv: list[str], capsys) -> str:
    """In-process --help of spikeclip-train (its text; argparse exits 0)."""
    from export.cli import train as cli_train

    with pytest.raises(SystemExit) as exc:
        cli_train._parser().parse_args(argv)
    assert exc.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("stage", TRAIN_STAGES)
def test_train_stage_help_describes_the_stage(stage: str, capsys) -> None:
    text = _help([stage, "--help"], capsys)
    _assert_exit_code_table(text)
    _assert_writes("spikeclip-train", text)
    flat = " ".join(text.split())
    assert "(default: 42)" in flat and "(default: data)" in flat  # --seed, --data-root
    before_options = flat.split(" options: ")[0]
    assert re.search(r"\] Stage \d: [^.]+\.$", before_options), before_options  # description
    top = " ".join(_help(["--help"], capsys).split())
    # each stage listed with its one-sentence description
    assert re.search(rf"{re.escape(stage)} Stage \d: [^.]+\.", top), top


@pytest.mark.parametrize(
    ("name", "argv"),
    [
        ("spikeclip-export", ["m.pt", "--samples", "-5"]),
        ("spikeclip-train", ["finetune", "--teacher", "minilm", "--dataset", "digits", "--out",
                             "o.pt", "--epochs", "0"]),
        ("spikeclip-eval", ["m.pt", "--dataset", "digits", "--batch-size", "0"]),
        ("spikeclip-energy", ["m.pt", "--samples", "0"]),
        ("spikeclip-convert", ["i.pth", "--out", "m.pt", "--num-heads", "-8"]),
    ],
)
def test_bad_count_exits_2(name: str, argv: list[str], tmp_path: Path) -> None:
    done = subprocess.run([_exe(name), *argv], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == EXIT_USAGE, done.stderr
    assert "must be a positive integer" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_readme_exit_code_table_is_the_one_in_spikeclip_errors() -> None:
    # The table under its "| exit code | meaning |" header, up to the first line that is not
    # a row (the README has other tables with numbers in their first column).
    table = README.read_text().split("| exit code | meaning |\n|---:|---|\n", 1)[1]
    rows = []
    for line in table.splitlines():
        row = re.fullmatch(r"\| (\d+) \| (.+) \|", line)
        if row is None:
            break
        rows.append((int(row[1]), row[2]))
    assert rows == list(EXIT_CODE_LINES)
