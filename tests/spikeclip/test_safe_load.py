"""spikeclip.safe_load: the path, zip-record, pickle and finiteness checks one by one."""

from __future__ import annotations

import collections
import os
import pickle
import struct
import zipfile

import pytest
import torch

from spikeclip import safe_load
from spikeclip.errors import (
    CheckpointIsDirectory,
    CheckpointNotFound,
    CheckpointUnreadable,
    CorruptCheckpoint,
    NonFiniteTensor,
    NotACheckpoint,
    UnsafeCheckpoint,
)


class _Call:
    """Unpickling this calls `fn(*args)`."""

    def __init__(self, fn, *args) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def test_a_plain_state_dict_loads(tmp_path):
    path = tmp_path / "sd.pt"
    torch.save({"w": torch.arange(3.0), "n": torch.tensor(2)}, path)
    loaded = safe_load.read_torch_file(path)
    assert torch.equal(loaded["w"], torch.arange(3.0)) and int(loaded["n"]) == 2


def test_missing_and_directory(tmp_path):
    with pytest.raises(CheckpointNotFound, match="no such file"):
        safe_load.read_torch_file(tmp_path / "absent.pt")
    with pytest.raises(CheckpointNotFound, match="no such file"):
        safe_load.read_torch_file(tmp_path / "absent" / "below.pt")
    with pytest.raises(CheckpointIsDirectory, match="is a directory"):
        safe_load.read_torch_file(tmp_path)


@pytest.mark.timeout(30)
def test_a_fifo_is_refused_without_opening_it(tmp_path):
    """Opening a FIFO for reading blocks until a writer comes: the check must come first."""
    fifo = tmp_path / "model.pt"
    os.mkfifo(fifo)
    with pytest.raises(CheckpointUnreadable, match=r"is not a regular file \(a FIFO\)") as err:
        safe_load.read_torch_file(fifo)
    assert err.value.exit_code == 3


def test_empty_junk_and_truncated_files(tmp_path):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(NotACheckpoint, match="empty file"):
        safe_load.read_torch_file(empty)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"hello")
    with pytest.raises(NotACheckpoint, match="starts with bytes b'hell'"):
        safe_load.read_torch_file(junk)
    whole = tmp_path / "whole.pt"
    torch.save({"w": torch.zeros(1000)}, whole)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(whole.read_bytes()[:2000])
    with pytest.raises(CorruptCheckpoint, match="truncated or corrupt torch zip archive"):
        safe_load.read_torch_file(cut)


def test_a_damaged_pickle_record_is_named(tmp_path):
    path = tmp_path / "m.pt"
    torch.save({"w": torch.zeros(4)}, path)
    with zipfile.ZipFile(path) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith("data.pkl"))
    data = bytearray(path.read_bytes())
    # the record's bytes follow its local header (30 bytes + name + extra field, whose length
    # torch pads for alignment and so differs from the central directory's)
    at = info.header_offset
    name_len, extra_len = struct.unpack("<HH", data[at + 26 : at + 30])
    start = at + 30 + name_len + extra_len
    data[start + 5] ^= 0x01  # one bit inside the pickle
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpoint, match=rf"zip record '{info.filename}' fails its CRC-32"):
        safe_load.read_torch_file(path)


def test_static_scan_follows_the_memo_of_protocol_4(tmp_path):
    """Protocol 4 memoizes 'posix' once and fetches it again for getcwd: a scan that took the
    last two literal strings would name the wrong module."""
    path = tmp_path / "p4.pkl"
    path.write_bytes(pickle.dumps([_Call(os.system, "true"), _Call(os.getcwd)], protocol=4))
    assert safe_load.pickle_imports(path) == ("posix.system", "posix.getcwd")


def test_static_scan_reads_every_pickle_of_a_legacy_file(tmp_path):
    """A legacy torch file is five pickles in a row; the model object is the fourth."""
    path = tmp_path / "legacy.pt"
    torch.save(torch.nn.Linear(2, 2), path, _use_new_zipfile_serialization=False)
    imports = safe_load.pickle_imports(path)
    assert "torch.nn.modules.linear.Linear" in imports
    assert "collections.OrderedDict" in imports


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_plain_pickles_name_the_blocked_callable(tmp_path, protocol):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"w": _Call(os.mkdir, str(marker))}, protocol=protocol))
    with pytest.raises(UnsafeCheckpoint, match=r"\(imports posix\.mkdir\); nothing was run"):
        safe_load.read_torch_file(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("blocked", "imports", "advice"),
    [
        ("torch.nn.modules.linear.Linear", ("torch._utils._rebuild_parameter",), True),
        ("transformers.models.clip.modeling_clip.CLIPModel", ("torch.float32",), True),
        ("posix.system", (), False),
        ("builtins.eval", (), False),
        ("torch.nn.modules.linear.Linear", ("builtins.getattr",), False),  # a gadget alongside
        ("torch.nn.functional.relu", (), False),  # a function, not a class
        ("torch.serialization.load", (), False),
    ],
)
def test_re_save_advice_only_for_classes_of_model_libraries(blocked, imports, advice):
    text = safe_load.unsafe_reason(blocked, (blocked, *imports))
    assert f"(imports {blocked})" in text
    assert ("weights_only=False" in text) is advice


def test_check_finite_names_the_tensor_and_skips_integers():
    safe_load.check_finite({"n": torch.tensor([7]), "w": torch.ones(2), "e": torch.empty(0)}, "f")
    bad = torch.tensor([1.0, float("nan"), float("-inf"), float("inf")])
    with pytest.raises(NonFiniteTensor) as err:
        safe_load.check_finite(collections.OrderedDict(ok=torch.ones(1), bad=bad), "f.pt")
    assert str(err.value).startswith(
        "f.pt: tensor bad holds non-finite values (1 NaN, 2 ±Inf of 4)"
    )
    assert err.value.exit_code == 3
