"""model.pt: bit-identical round trip and one typed error per bad input."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
from _paths import TESTS

from spikeclip import checkpoint
from spikeclip.ann_twin import build_ann_twin
from spikeclip.config import SpikeCLIPConfig
from spikeclip.errors import (
    CheckpointError,
    CheckpointIsDirectory,
    CheckpointNotFound,
    ConfigError,
    ConversionOptionRequired,
    InvalidCheckpointContent,
    NotACheckpoint,
    StateDictMismatch,
    UnknownFormatVersion,
    UnsafeCheckpoint,
)
from spikeclip.model import SpikeCLIP


def _trained_tiny() -> SpikeCLIP:
    """A tiny model whose BN running statistics differ from their init (one train pass)."""
    torch.manual_seed(0)
    cfg = SpikeCLIPConfig.tiny()
    model = SpikeCLIP(cfg)
    model.train()
    with torch.no_grad():
        model.encode_image(torch.randn(4, 3, cfg.img_size, cfg.img_size))
    return model.eval()


def _payload(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def _one_line(err: CheckpointError, path: Path) -> None:
    assert "\n" not in str(err) and str(path) in str(err)


def test_round_trip_is_bit_identical(tmp_path):
    model = _trained_tiny()
    cfg = model.config
    path = checkpoint.save(
        tmp_path / "model.pt",
        model,
        class_names=["cat", "dog", "car"],
        templates=["a photo of a {}."],
        metadata={"stage": 4, "lr": 1e-3, "note": None, "tags": ["x"], "nested": {"a": True}},
    )
    assert sorted(os.listdir(tmp_path)) == ["model.pt"]  # no temp file left behind
    ck = checkpoint.load(path)
    assert ck.format_version == checkpoint.FORMAT_VERSION == 1
    assert ck.config == cfg and ck.class_names == ("cat", "dog", "car")
    assert ck.templates == ("a photo of a {}.",)
    assert ck.metadata == {
        "stage": 4,
        "lr": 1e-3,
        "note": None,
        "tags": ["x"],
        "nested": {"a": True},
    }
    assert not ck.model.training
    images = torch.randn(3, 3, cfg.img_size, cfg.img_size)
    ids = torch.randint(0, cfg.vocab_size, (3, 2, cfg.text_len))
    with torch.no_grad():
        assert torch.equal(ck.model.encode_image(images), model.encode_image(images))
        assert torch.equal(ck.model.class_matrix(ids), model.class_matrix(ids))
    for (k, a), (k2, b) in zip(ck.model.state_dict().items(), model.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k


def test_ann_twin_and_strict_configs_round_trip(tmp_path):
    twin = build_ann_twin(SpikeCLIPConfig.tiny())
    ck = checkpoint.load(checkpoint.save(tmp_path / "ann.pt", twin))
    assert ck.config.neuron == "ann" and ck.config.T == 1
    assert ck.class_names is None and ck.templates is None and ck.metadata == {}
    strict = SpikeCLIP(SpikeCLIPConfig(**{**SpikeCLIPConfig.tiny().to_dict(), "T": 6}))
    assert checkpoint.load(checkpoint.save(tmp_path / "s.pt", strict)).config.T == 6


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointNotFound, match="no such file") as err:
        checkpoint.load(tmp_path / "nope.pt")
    _one_line(err.value, tmp_path / "nope.pt")


def test_directory_is_a_directory(tmp_path):
    with pytest.raises(CheckpointIsDirectory, match="is a directory") as err:
        checkpoint.load(tmp_path)
    _one_line(err.value, tmp_path)
    assert err.value.exit_code == 3 and not isinstance(err.value, CheckpointNotFound)


@pytest.mark.parametrize(
    "write",
    [
        lambda p: p.write_bytes(b""),
        lambda p: p.write_bytes(b"hello, this is not a checkpoint\n"),
        lambda p: p.write_bytes(bytes(range(256)) * 4),
        lambda p: torch.save(torch.zeros(3), p),
        lambda p: torch.save({"state_dict": {"w": torch.zeros(1)}}, p),
    ],
    ids=["empty", "text", "bytes", "tensor", "bare-state-dict"],
)
def test_not_a_checkpoint(tmp_path, write):
    path = tmp_path / "model.pt"
    write(path)
    with pytest.raises(NotACheckpoint) as err:
        checkpoint.load(path)
    _one_line(err.value, path)


def test_unknown_format_version(tmp_path):
    path = checkpoint.save(tmp_path / "model.pt", SpikeCLIP(SpikeCLIPConfig.tiny()))
    for bad in (99, "1", True, None):
        payload = _payload(path)
        payload["format_version"] = bad
        torch.save(payload, path)
        with pytest.raises(UnknownFormatVersion, match=f"format version {bad!r} is not") as err:
            checkpoint.load(path)
        _one_line(err.value, path)


def test_state_dict_that_does_not_fit_the_config(tmp_path):
    path = checkpoint.save(tmp_path / "model.pt", SpikeCLIP(SpikeCLIPConfig.tiny()))
    payload = _payload(path)
    payload["config"]["out_dim"] = 13  # tiny has out_dim 12, embed 16, text hidden 32
    torch.save(payload, path)
    with pytest.raises(StateDictMismatch) as err:
        checkpoint.load(path)
    _one_line(err.value, path)
    assert "shape: image_encoder.head.weight [12, 16] vs model [13, 16]" in str(err.value)

    payload = _payload(checkpoint.save(path, SpikeCLIP(SpikeCLIPConfig.tiny())))
    del payload["state_dict"]["text_encoder.fc2.bias"]
    payload["state_dict"]["extra.w"] = torch.zeros(1)
    torch.save(payload, path)
    with pytest.raises(
        StateDictMismatch, match=r"1 missing: text_encoder\.fc2\.bias; 1 unexpected"
    ):
        checkpoint.load(path)


def test_invalid_fields(tmp_path):
    model = SpikeCLIP(SpikeCLIPConfig.tiny())
    with pytest.raises(InvalidCheckpointContent, match="metadata.w holds a Tensor"):
        checkpoint.save(tmp_path / "m.pt", model, metadata={"w": torch.zeros(1)})
    with pytest.raises(InvalidCheckpointContent, match="class_names must be a list of str"):
        checkpoint.save(tmp_path / "m.pt", model, class_names="cat")
    assert not (tmp_path / "m.pt").exists()  # nothing written
    path = checkpoint.save(tmp_path / "m.pt", model)
    payload = _payload(path)
    payload["config"]["num_heads"] = 3  # 16 channels do not split into 3 heads
    torch.save(payload, path)
    with pytest.raises(InvalidCheckpointContent, match="bad config: .*divisible by num_heads"):
        checkpoint.load(path)


class _Evil:
    """Unpickling this object opens (creates) `marker` for writing."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
@pytest.mark.parametrize("how", ["torch-zip", "pickle-protocol-2", "pickle-protocol-4"])
def test_malicious_pickle_is_refused_and_never_run(tmp_path, how):
    # control: the payload really runs code under a plain unpickler
    control = tmp_path / "control_marker"
    pickle.loads(pickle.dumps(_Evil(control))).close()
    assert control.exists()

    marker = tmp_path / "marker"
    path = tmp_path / "model.pt"
    evil = {"format": checkpoint.FORMAT_NAME, "format_version": 1, "config": _Evil(marker)}
    if how == "torch-zip":
        torch.save(evil, path)
    else:
        path.write_bytes(pickle.dumps(evil, protocol=int(how[-1])))
    with pytest.raises(
        UnsafeCheckpoint, match=r"needs code execution \(imports [\w.]*open\)"
    ) as err:
        checkpoint.load(path)
    _one_line(err.value, path)
    assert not marker.exists()


def test_official_code_checkpoint_is_converted_while_loading():
    from spikeclip import official

    fixture = TESTS / "fixtures" / "official"
    with pytest.warns(official.OfficialConversionNotice, match="converted an official SpikeCLIP"):
        ck = checkpoint.load(fixture / "image_checkpoint.pth.tar", num_heads=2)
    assert ck.format_version == checkpoint.CONVERTED_FORMAT_VERSION == 0
    assert ck.config.embed_dim == 16 and ck.config.depth == 2 and ck.config.out_dim == 8
    assert ck.config.num_heads == 2
    assert ck.metadata["official_sources"] == {"image": str(fixture / "image_checkpoint.pth.tar")}


def test_official_file_without_its_head_count_is_refused():
    """The fixture (2 heads, embed 16) is not the paper's configuration: no default is safe."""
    fixture = TESTS / "fixtures" / "official"
    with pytest.raises(ConversionOptionRequired, match=r"num_heads=N.*1, 2, 4, 8, 16") as err:
        checkpoint.load(fixture / "image_checkpoint.pth.tar")
    assert err.value.exit_code == 2


def test_head_count_keyword_must_agree_with_a_model_pt(tmp_path):
    path = checkpoint.save(tmp_path / "m.pt", SpikeCLIP(SpikeCLIPConfig.tiny()))  # 2 heads
    assert checkpoint.load(path, num_heads=2).config.num_heads == 2
    with pytest.raises(ConfigError, match="num_heads=4 was given, but this model.pt stores"):
        checkpoint.load(path, num_heads=4)


def test_our_bare_state_dict_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "sd.pt"
    torch.save(SpikeCLIP(SpikeCLIPConfig.tiny()).state_dict(), path)
    with pytest.raises(NotACheckpoint, match="not a SpikeCLIP checkpoint"):
        checkpoint.load(path)
