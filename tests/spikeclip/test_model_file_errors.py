"""Issue 20, reading the model: every bad model file exits 3 (9 when it does not fit this machine)
with a message naming the real cause, from `spikeclip-export --target nir` and the loaders.

The export cases run in one child process (`export.cli.export.main` per file, under an address-space
limit so a regression cannot eat the shared machine, and, when the tests run as root, without
the capabilities that let root read a mode-000 file). Each case below failed on the code before
this change: mode 000 exited 7, a directory was "no such file", flipped bytes and NaN weights
loaded (NaN went into model.nir), T = 2000 exited 7 ("math domain error"), the huge configs
allocated until the limit (exit 7), a legacy pickle was "not a torch checkpoint", a nested
payload was blamed on torch._utils._rebuild_tensor_v2.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from spikeclip import checkpoint
from spikeclip.config import SpikeCLIPConfig
from spikeclip.errors import ModelFileError, UnsafeCheckpoint
from spikeclip.model import SpikeCLIP

CHILD_ADDRESS_SPACE = 6 << 30
"""Address-space limit of the child (bytes): the tiny export needs < 2 GiB of it."""

CHILD = r"""
import contextlib, io, json, resource, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from export.cli import export as cli
results = {}
for name, model, out in json.loads(sys.argv[2]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli.main([model, "--target", "nir", "--out", out, "--quiet"])
        except MemoryError as exc:  # the old code's fate on the huge configs
            code, err = 7, io.StringIO(f"MemoryError {exc}")
    results[name] = [code, err.getvalue().strip().splitlines()[0] if err.getvalue() else ""]
print(json.dumps(results))
"""

SETPRIV = shutil.which("setpriv")
DROP_DAC = ["--bounding-set=-dac_override,-dac_read_search"]


def _tiny_model() -> SpikeCLIP:
    torch.manual_seed(0)
    return SpikeCLIP(SpikeCLIPConfig.tiny())


def _with_config(src: Path, dst: Path, **fields) -> Path:
    payload = torch.load(src, weights_only=True)
    payload["config"].update(fields)
    torch.save(payload, dst)
    return dst


def _record_data_span(path: Path, name: str) -> tuple[int, int]:
    """(offset, size) of zip record `name`'s stored bytes (after its local header)."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
    with path.open("rb") as fh:
        fh.seek(info.header_offset)
        header = fh.read(30)
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_len + extra_len, info.compress_size


def _largest_tensor_record(path: Path) -> str:
    with zipfile.ZipFile(path) as zf:
        records = [i for i in zf.infolist() if "/data/" in i.filename]
    return max(records, key=lambda i: i.file_size).filename


def flip_bytes_in_largest_tensor(path: Path, count: int = 100) -> str:
    """XOR `count` bytes in the middle of the largest tensor record; returns its name."""
    name = _largest_tensor_record(path)
    offset, size = _record_data_span(path, name)
    assert size > count
    data = bytearray(path.read_bytes())
    start = offset + (size - count) // 2
    for i in range(start, start + count):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    return name


class _System:
    """Unpickling this runs `touch marker` through os.system (posix.system on Linux)."""

    def __init__(self, marker: Path) -> None:
        self.command = f"touch {marker}"

    def __reduce__(self):
        return (os.system, (self.command,))


def _unreadable_prefix(probe: Path) -> list[str] | None:
    """How to run a child that cannot read a mode-000 file: nothing as a normal user; as root,
    setpriv without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH; None if neither works here."""
    probe.write_bytes(b"x")
    probe.chmod(0)
    if not os.access(probe, os.R_OK):
        return []
    if SETPRIV is None:
        return None
    done = subprocess.run([SETPRIV, *DROP_DAC, "cat", str(probe)], capture_output=True)
    return [SETPRIV, *DROP_DAC] if done.returncode != 0 else None


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("model_files")
    good = checkpoint.save(root / "good.pt", _tiny_model())
    files: dict[str, Path] = {"good": good}
    unreadable = root / "unreadable.pt"
    shutil.copy(good, unreadable)
    unreadable.chmod(0)
    files["unreadable"] = unreadable
    (root / "folder.pt").mkdir()
    files["directory"] = root / "folder.pt"
    files["crc"] = root / "crc.pt"
    shutil.copy(good, files["crc"])
    flip_bytes_in_largest_tensor(files["crc"])
    for kind, value in (("nan", float("nan")), ("inf", float("inf"))):
        model = _tiny_model()
        with torch.no_grad():
            model.image_encoder.head.weight[3, 5] = value
        files[kind] = checkpoint.save(root / f"{kind}.pt", model)
    legacy = dict(torch.load(good, weights_only=True))
    legacy["metadata"] = {"note": _System(root / "legacy_marker")}
    files["legacy_evil"] = root / "legacy_evil.pt"
    torch.save(legacy, files["legacy_evil"], _use_new_zipfile_serialization=False)
    files["nested_evil"] = root / "nested_evil.pt"
    torch.save(legacy, files["nested_evil"])  # a real checkpoint with a payload in metadata
    files["T2000"] = _with_config(good, root / "T2000.pt", T=2000)
    files["embed1e6"] = _with_config(good, root / "embed1e6.pt", embed_dim=1_000_000)
    files["depth1e6"] = _with_config(good, root / "depth1e6.pt", depth=1_000_000)
    files["img1e5"] = _with_config(good, root / "img1e5.pt", img_size=100_000)
    # Within every bound, but 1024 blocks of width 65,536 are ~1.4·10¹⁴ bytes of parameters.
    files["huge"] = _with_config(good, root / "huge.pt", embed_dim=1 << 16, depth=1024)
    return files


@pytest.fixture(scope="module")
def exports(files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """{case: (exit status, first stderr line, out folder)} of spikeclip-export --target nir."""
    outs = tmp_path_factory.mktemp("outs")
    prefix = _unreadable_prefix(outs / "probe")
    cases = [name for name in files if name != "good"]
    if prefix is None:
        cases.remove("unreadable")
    jobs = [[n, str(files[n]), str(outs / n)] for n in cases]
    done = subprocess.run(
        [*(prefix or []), sys.executable, "-c", CHILD, str(CHILD_ADDRESS_SPACE), json.dumps(jobs)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    return {name: (code, line, outs / name) for name, (code, line) in results.items()}


def _expect(exports: dict, case: str, code: int, *fragments: str) -> None:
    if case not in exports:
        pytest.skip("cannot make a file unreadable here (root without setpriv)")
    status, line, out = exports[case]
    assert status == code, (case, line)
    for fragment in fragments:
        assert fragment in line, (case, fragment, line)
    assert not out.exists(), f"{case}: an output folder was written"


def test_unreadable_file_exits_3(exports):
    _expect(exports, "unreadable", 3, "unreadable.pt: cannot be read (permission denied)")


def test_directory_exits_3_is_a_directory(exports):
    _expect(exports, "directory", 3, "folder.pt: is a directory")


def test_flipped_bytes_in_a_tensor_record_exit_3_naming_the_record(exports, files):
    good = files["good"]
    record = _largest_tensor_record(good)
    _expect(exports, "crc", 3, f"zip record {record!r} fails its CRC-32 check")


@pytest.mark.parametrize("case", ["nan", "inf"])
def test_non_finite_weights_exit_3_naming_the_tensor(exports, case):
    count = "1 NaN, 0 ±Inf" if case == "nan" else "0 NaN, 1 ±Inf"
    _expect(exports, case, 3, f"tensor image_encoder.head.weight holds non-finite values ({count}")


def test_legacy_format_malicious_pickle_is_unsafe_and_never_run(exports, files):
    _expect(
        exports, "legacy_evil", 3, "refused: loading needs code execution (imports posix.system)"
    )
    assert not (files["legacy_evil"].parent / "legacy_marker").exists()


def test_nested_payload_names_the_real_callable(exports):
    _expect(exports, "nested_evil", 3, "(imports posix.system)")
    assert "_rebuild_tensor" not in exports["nested_evil"][1]


@pytest.mark.parametrize(
    ("case", "field"),
    [
        ("T2000", "config.T must be <= 1,024"),
        ("embed1e6", "config.embed_dim must be <= 65,536"),
        ("depth1e6", "config.depth must be <= 1,024"),
        ("img1e5", "config.img_size must be <= 4,096"),
    ],
)
def test_out_of_bounds_config_in_a_file_exits_3_naming_file_and_field(exports, case, field):
    _expect(exports, case, 3, f"{case}.pt: bad config: {field}")


def test_config_beyond_this_machine_exits_9_before_allocating(exports):
    _expect(exports, "huge", 9, "huge.pt: building its model: needs about", "is available")


def test_the_control_file_exports(files, tmp_path):
    """The same child recipe on the untouched file succeeds (the cases above fail for their
    reason, not the recipe's)."""
    from export.cli import export as cli

    out = tmp_path / "o"
    assert cli.main([str(files["good"]), "--target", "nir", "--out", str(out), "--quiet"]) == 0
    assert (out / "model.nir").is_file()


# ----------------------------------------------------------------------------- in-process


def test_loader_names_the_flipped_record_and_reads_nothing_silently(files):
    with pytest.raises(ModelFileError, match=r"zip record '[^']+/data/\d+' fails its CRC-32"):
        checkpoint.load(files["crc"])


def test_loader_names_the_non_finite_tensor(files):
    with pytest.raises(ModelFileError, match=r"tensor image_encoder\.head\.weight holds non-fin"):
        checkpoint.load(files["nan"])


def test_payload_really_runs_under_a_plain_unpickler(tmp_path):
    """Control for the unsafe cases: the payload does create its marker when unpickled."""
    marker = tmp_path / "control"
    pickle.loads(pickle.dumps(_System(marker)))
    assert marker.exists()


@pytest.mark.parametrize("case", ["legacy_evil", "nested_evil"])
def test_loader_refuses_the_payload_naming_posix_system(files, case):
    with pytest.raises(UnsafeCheckpoint, match=r"imports posix\.system\); nothing was run") as err:
        checkpoint.load(files[case])
    assert "weights_only=False" not in str(err.value)
    assert not (files[case].parent / "legacy_marker").exists()


def test_convert_never_suggests_an_unrestricted_load_for_a_function(files, capsys):
    from export.cli.convert import main

    out = files["good"].parent / "converted.pt"
    assert main([str(files["nested_evil"]), "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert "posix.system" in err and "weights_only=False" not in err
    assert not out.exists()
