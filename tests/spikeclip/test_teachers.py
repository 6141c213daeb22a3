"""Teachers: open_clip and HF CLIP built offline with random weights, MiniLM from the bundled
package; tokenization, feature shapes, fingerprints, image-tower files (read by
`spikeclip.safe_load`), the feature cache (a damaged file is rebuilt)."""

from __future__ import annotations

import struct
import warnings
import zipfile

import pytest
import torch
from _train_helpers import TEACHER_DIM, TEACHER_IMG, hf_teacher, open_clip_teacher

from spikeclip.errors import EXIT_BAD_MODEL, CorruptCheckpoint, NonFiniteTensor
from spikeclip.safe_load import read_torch_file
from spikeclip.training import teachers
from spikeclip.training.data import TensorImages
from spikeclip.training.feature_cache import FeatureCacheWarning, corpus_features, image_features

SOT, EOT = 49406, 49407  # CLIP BPE start/end of text ids


@pytest.fixture(scope="module")
def minilm() -> teachers.MiniLMTeacher:
    return teachers.load_minilm()


@pytest.mark.parametrize("kind", ["open_clip", "hf"])
def test_clip_teachers_tokenize_and_encode(tmp_path, kind):
    t = open_clip_teacher(tmp_path) if kind == "open_clip" else hf_teacher()
    ids = t.tokenize(["a photo of a cat.", "a photo of the digit seven, written by hand."], 6)
    assert ids.shape == (2, 6) and ids.dtype == torch.int64
    assert ids[0, 0] == SOT and (ids == EOT).sum(1).ge(1).all()
    # truncation keeps the end-of-text token last
    assert ids[1, -1] == EOT
    pad = 0 if kind == "open_clip" else EOT  # HF CLIP pads with EOS
    full = t.tokenize(["a cat"])
    assert full.shape == (1, 20) and int(full[0, -1]) == pad
    with torch.no_grad():
        text = t.encode_text(t.tokenize(["a cat", "a dog"]))
        image = t.encode_image(torch.randn(3, 3, TEACHER_IMG, TEACHER_IMG))
    assert text.shape == (2, TEACHER_DIM) and image.shape == (3, TEACHER_DIM)
    assert not torch.allclose(text[0], text[1])
    assert t.token_embedding().shape == (49408, 32)
    assert t.vocab_size == 49408


def test_fingerprint_tracks_weights_and_tower_file_round_trips(tmp_path):
    t = hf_teacher(seed=0)
    before = t.fingerprint()
    assert before == hf_teacher(seed=0).fingerprint()
    assert before != hf_teacher(seed=1).fingerprint()
    path = tmp_path / "tower.pt"
    teachers.save_image_tower(t, path, metadata={"top1": 0.5})
    other = hf_teacher(seed=1)
    assert teachers.load_image_tower(other, path) == {"top1": 0.5}
    x = torch.randn(2, 3, TEACHER_IMG, TEACHER_IMG)
    with torch.no_grad():
        assert torch.equal(other.encode_image(x), t.encode_image(x))
    wrong = open_clip_teacher(tmp_path)
    with pytest.raises(teachers.TeacherError, match="not an image tower of teacher"):
        teachers.load_image_tower(wrong, path)


def test_feature_cache_computes_once_and_keys_on_weights(tmp_path):
    t = hf_teacher(seed=0)
    ds = TensorImages(torch.randn(5, 3, TEACHER_IMG, TEACHER_IMG), torch.arange(5))
    kw = {"name": "toy", "split": "train", "transform": "none", "cache_dir": tmp_path}
    first = image_features(t, ds, **kw)
    assert first.shape == (5, TEACHER_DIM) and len(list(tmp_path.iterdir())) == 1
    with torch.no_grad():
        assert torch.allclose(first, t.encode_image(ds.images), atol=1e-6)
        for p in t.image_module().parameters():  # change the weights -> new key, new file
            p.add_(0.1)
    second = image_features(t, ds, **kw)
    assert len(list(tmp_path.iterdir())) == 2 and not torch.allclose(first, second)
    # a cached table is read back, not recomputed: make encoding fail and read again

    def fail(images):
        raise AssertionError("recomputed instead of read from the cache")

    t.encode_image = fail
    again = image_features(t, ds, **kw)
    assert torch.equal(again, second)
    texts = corpus_features(t, ["a", "b"], name="toy", cache_dir=tmp_path)
    assert texts.shape == (2, TEACHER_DIM)


def test_minilm_offline_digit_prompts(minilm):
    feats = teachers.text_features(minilm, ["a photo of the digit three.",
                                            "a photo of the digit seven."])
    assert feats.shape == (2, 384)
    assert torch.allclose(feats.norm(dim=-1), torch.ones(2), atol=1e-5)  # MiniLM normalizes
    cos = float(feats[0] @ feats[1])
    assert cos < 0.99  # different prompts, different features
    ids = minilm.tokenize(["a photo of the digit three."], 12)
    assert ids[0, 0] == 101 and 102 in ids[0].tolist() and ids[0, -1] == 0  # [CLS] .. [SEP] pad
    tok = teachers.load_tokenizer("minilm")
    assert torch.equal(tok(["a photo of the digit three."], 12), ids)
    with pytest.raises(teachers.TeacherError, match="text-only"):
        minilm.encode_image(torch.zeros(1, 3, 16, 16))


def test_unknown_teacher_spec_is_a_typed_error():
    with pytest.raises(teachers.TeacherError, match="unknown teacher spec"):
        teachers.load_teacher("clip-from-nowhere")


def _flip_first_tensor_byte(path) -> str:
    """XOR the first byte of the largest tensor record of a torch zip; returns its name."""
    with zipfile.ZipFile(path) as archive:
        record = max((i for i in archive.infolist() if "/data/" in i.filename),
                     key=lambda i: i.file_size)
    raw = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack_from("<HH", raw, record.header_offset + 26)
    raw[record.header_offset + 30 + name_len + extra_len] ^= 0xFF
    path.write_bytes(bytes(raw))
    return record.filename


def _truncate(path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _nan_features(path) -> None:
    blob = torch.load(path, weights_only=True)
    blob["features"][0, 0] = float("nan")
    torch.save(blob, path)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [(_truncate, "truncated or corrupt torch zip archive"), (_flip_first_tensor_byte, "CRC-32"),
     (_nan_features, "tensor features holds non-finite values")],
    ids=["truncated", "flipped-bytes", "nan"],
)
def test_a_damaged_feature_cache_is_rebuilt_with_a_warning(tmp_path, damage, reason):
    # Before: a truncated file crashed torch.load, flipped bytes and NaN were returned as features.
    t = hf_teacher(seed=0)
    ds = TensorImages(torch.randn(5, 3, TEACHER_IMG, TEACHER_IMG), torch.arange(5))
    kw = {"name": "toy", "split": "train", "transform": "none", "cache_dir": tmp_path}
    first = image_features(t, ds, **kw)
    (path,) = tmp_path.iterdir()
    damage(path)
    with pytest.warns(FeatureCacheWarning, match=rf"{path.name}: .*{reason}.*; recomputing it"):
        again = image_features(t, ds, **kw)
    assert torch.equal(again, first)
    assert torch.equal(read_torch_file(path)["features"], first)  # the file was replaced
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rebuilt file reads back without a warning
        assert torch.equal(image_features(t, ds, **kw), first)


def test_a_damaged_tower_file_is_a_model_file_error(tmp_path):
    # Before: torch.load read flipped bytes silently and NaN weights went into the teacher.
    t = hf_teacher(seed=0)
    path = tmp_path / "tower.pt"
    teachers.save_image_tower(t, path)
    record = _flip_first_tensor_byte(path)
    with pytest.raises(CorruptCheckpoint, match=rf"'{record}' fails its CRC-32") as refused:
        teachers.load_image_tower(hf_teacher(seed=1), path)
    assert refused.value.exit_code == EXIT_BAD_MODEL
    blob = {"format": teachers.TOWER_FORMAT, "version": 1, "teacher": t.name, "metadata": {},
            "state_dict": {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                           for k, v in t.image_module().state_dict().items()}}
    torch.save(blob, path)
    with pytest.raises(NonFiniteTensor, match="holds non-finite values"):
        teachers.load_image_tower(hf_teacher(seed=1), path)
