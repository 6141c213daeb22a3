"""Fashion-MNIST in the data layer: idx parsing, folder search, padding/resizing, splits.

Tiny idx files written here (bytes laid out by hand with `struct`, the format's 4-line spec)
always run; the tests on the real files skip, naming the install command, when Debian's
`dataset-fashion-mnist` package is absent.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from spikeclip.errors import EXIT_USAGE, UsageError
from spikeclip.training import data, prompts

SIDE = 28


def _idx_bytes(values: np.ndarray) -> bytes:
    """uint8 idx: 0, 0, type 0x08, ndim, big-endian uint32 sizes, values row-major."""
    head = struct.pack(">BBBB", 0, 0, 0x08, values.ndim)
    head += b"".join(struct.pack(">I", d) for d in values.shape)
    return head + values.astype(np.uint8).tobytes()


def _write_set(folder: Path, n_train: int, n_test: int, *, gz: bool) -> tuple[np.ndarray, ...]:
    """Four idx files with image i's pixel (i % 28, 3) = 255 − i (the rest 0) and label i % 10."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = []
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = np.zeros((n, SIDE, SIDE), np.uint8)
        for i in range(n):
            images[i, i % SIDE, 3] = 255 - i
        labels = (np.arange(n) % 10).astype(np.uint8)
        for kind, arr in (("images-idx3", images), ("labels-idx1", labels)):
            name = f"{prefix}-{kind}-ubyte"
            raw = _idx_bytes(arr)
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
            else:
                (folder / name).write_bytes(raw)
        arrays += [images, labels]
    return tuple(arrays)


def test_read_idx_plain_and_gzip_match_hand_laid_bytes(tmp_path):
    values = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(_idx_bytes(values))
    (tmp_path / "a.gz").write_bytes(gzip.compress(_idx_bytes(values)))
    for name in ("a", "a.gz"):
        got = data.read_idx(tmp_path / name)
        assert got.dtype == np.uint8 and got.shape == (2, 3, 4)
        assert got[1, 2, 3] == 23 and got[0, 1, 0] == 4
    # a big-endian int32 idx (type 0x0C): 258 is stored as 00 00 01 02
    (tmp_path / "b").write_bytes(bytes([0, 0, 0x0C, 1, 0, 0, 0, 2, 0, 0, 1, 2, 0, 0, 0, 7]))
    assert data.read_idx(tmp_path / "b").tolist() == [258, 7]


@pytest.mark.parametrize("raw,why", [
    (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "not an idx file"),
    (b"\x00\x00\x08\x02\x00\x00\x00\x02", "cut short"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x03\x01\x02", "expected 11"),
])
def test_read_idx_rejects_malformed_files(tmp_path, raw, why):
    path = tmp_path / "bad"
    path.write_bytes(raw)
    with pytest.raises(data.DatasetFormatError, match=why) as info:
        data.read_idx(path)
    assert info.value.exit_code == EXIT_USAGE


def test_read_idx_rejects_a_broken_gzip(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(data.DatasetFormatError, match="gzip"):
        data.read_idx(path)


def test_tiny_set_in_torchvision_layout_padded_to_32(tmp_path):
    tr_img, tr_lab, te_img, te_lab = _write_set(tmp_path / "FashionMNIST" / "raw", 120, 20,
                                                gz=False)
    s = data.load_splits("fashion-mnist", root=tmp_path, img_size=32, seed=0)
    assert s.name == "fashion-mnist" and s.class_names == prompts.FASHION_MNIST_CLASSES
    assert s.class_names[0] == "T-shirt/top" and s.class_names[9] == "Ankle boot"
    assert s.templates == prompts.TEMPLATES["fashion-mnist"]
    assert s.transform_id == "fashion-mnist-pad32-norm0.5"
    assert (len(s.train), len(s.val), len(s.test)) == (110, 10, 20)  # 12 per class · 1/12 = 1
    # test image i: pixel (i, 3) = 255 − i; padding 2 moves it to (i + 2, 5); black is −1
    x, y = s.test[7]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y == 7
    expected = (255 - 7) / 255 * 2 - 1
    assert torch.allclose(x[:, 9, 5], torch.full((3,), expected))
    assert x.sum().item() == pytest.approx(expected * 3 + (-1.0) * 3 * (32 * 32 - 1), abs=1e-3)
    # val: one image of each class, stratified; train + val = the 120 training images
    assert sorted(int(v) for v in s.val.labels) == list(range(10))
    assert len({int(v) for v in s.train.labels}) == 10


def test_split_is_seeded_and_disjoint(tmp_path):
    _write_set(tmp_path, 240, 10, gz=True)
    a = data.fashion_mnist_splits(32, root=tmp_path, seed=0)
    b = data.fashion_mnist_splits(32, root=tmp_path, seed=0)
    c = data.fashion_mnist_splits(32, root=tmp_path, seed=1)

    def ids(ds):  # each training image i has its marked pixel value 255 − i (i < 240)
        raw = (ds.images[:, 0] + 1) / 2 * 255
        return sorted(255 - int(round(float(v))) for v in raw.amax(dim=(1, 2)))

    assert ids(a.val) == ids(b.val) and ids(a.val) != ids(c.val)
    assert not set(ids(a.val)) & set(ids(a.train))
    assert sorted(ids(a.val) + ids(a.train)) == list(range(240))
    assert np.bincount(a.val.labels.numpy()).tolist() == [2] * 10


def test_resized_below_28_keeps_a_constant_image_constant(tmp_path):
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    grey = np.full((3, SIDE, SIDE), 51, np.uint8)  # 51/255 = 0.2 -> (0.2 − 0.5)/0.5 = −0.6
    labels = np.array([0, 1, 2], np.uint8)
    for prefix in ("train", "t10k"):
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(_idx_bytes(grey))
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx_bytes(labels))
    s = data.fashion_mnist_splits(16, root=tmp_path, seed=0, val_fraction=0.0)
    assert s.transform_id == "fashion-mnist-resize16-norm0.5"
    assert s.test.images.shape == (3, 3, 16, 16)
    assert torch.allclose(s.test.images, torch.full((3, 3, 16, 16), -0.6), atol=1e-6)


def test_odd_padding_puts_the_extra_row_bottom_right():
    img = np.zeros((1, 2, 2), np.uint8)
    img[0, 0, 0] = 255
    out = data.fit_grey(img, 5)  # pads 1 top/left, 2 bottom/right
    assert out.shape == (1, 1, 5, 5) and out[0, 0, 1, 1] == 1.0 and float(out.sum()) == 1.0


def test_missing_files_name_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "nowhere")
    _write_set(tmp_path / "partial", 10, 10, gz=False)
    (tmp_path / "partial" / "t10k-labels-idx1-ubyte").unlink()  # 3 of 4 files: not a set
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.load_splits("fashion-mnist", root=tmp_path / "partial", img_size=32)
    err = info.value
    assert isinstance(err, UsageError) and err.exit_code == EXIT_USAGE
    assert "apt-get install -y dataset-fashion-mnist" in str(err)
    assert "FashionMNIST/raw" in str(err) and "t10k-labels-idx1-ubyte[.gz]" in str(err)


def test_label_count_mismatch_is_a_format_error(tmp_path):
    _write_set(tmp_path, 20, 10, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros(9, np.uint8)))
    with pytest.raises(data.DatasetFormatError, match="expected 10 labels"):
        data.fashion_mnist_splits(32, root=tmp_path)


def test_train_cli_accepts_the_dataset_name():
    assert "fashion-mnist" in data.DATASETS


# --- the real files (Debian's dataset-fashion-mnist) ---------------------------------------

def _real_or_skip() -> dict[str, Path]:
    try:
        return data.find_fashion_mnist(None)
    except data.DatasetNotFoundError as err:
        pytest.skip(str(err))


def test_real_files_counts_labels_and_pixels():
    files = _real_or_skip()
    s = data.load_splits("fashion-mnist", root=None, img_size=32, seed=0)
    assert (len(s.train), len(s.val), len(s.test)) == (55000, 5000, 10000)
    assert np.bincount(s.test.labels.numpy()).tolist() == [1000] * 10
    assert np.bincount(s.val.labels.numpy()).tolist() == [500] * 10
    # the published first labels: test 9 2 1 1 6 1 4 6 5 7 (ankle boot, pullover, trouser, ...)
    assert s.test.labels[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    raw = data.read_idx(files["test_images"])
    assert raw.shape == (10000, 28, 28) and raw.dtype == np.uint8
    x = s.test.images[0]
    assert torch.equal(x[:, 2:30, 2:30], (torch.from_numpy(raw[0].astype(np.float32)) / 255
                                          * 2 - 1).expand(3, -1, -1))
    assert float(x[:, :2].max()) == -1.0 and float(x[:, :, 30:].max()) == -1.0
