"""Importing checkpoints written by the paper's official code (spikeclip/official.py).

The fixtures under tests/fixtures/official/ were written by the official `model.py` with
spikingjelly 0.0.0.0.14 (see generate.py there): an image encoder (embed 16, depth 2, 2 heads,
MLP ratio 4, out 8, T 4) in timm's CheckpointSaver layout, a text encoder (64-token vocabulary,
width 8, length 20, hidden 32, out 8, T 4) as a raw state dict, and the official outputs —
features and every LIF's spikes — on fixed inputs. They are the independent reference here.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from _paths import TESTS

from spikeclip import official
from spikeclip.config import SpikeCLIPConfig
from spikeclip.errors import (
    CheckpointNotFound,
    ConfigError,
    ConversionOptionRequired,
    InvalidCheckpointContent,
    NonFiniteTensor,
    NotACheckpoint,
    UnsafeCheckpoint,
)
from spikeclip.model import SpikeCLIP

FIXTURES = TESTS / "fixtures" / "official"
IMAGE = FIXTURES / "image_checkpoint.pth.tar"
TEXT = FIXTURES / "text_state_dict.pth"
FIXTURE_HEADS = 2  # generate.py: vision_encoder(..., num_heads=2, ...)


def _outputs(tower: str) -> dict[str, torch.Tensor]:
    return torch.load(FIXTURES / f"{tower}_outputs.pt", weights_only=True)


def _official_spikes(out: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Unpack generate.py's `spikes/<name>` (np.packbits) to bool arrays of `shape/<name>`."""
    spikes = {}
    for key, packed in out.items():
        if key.startswith("spikes/"):
            name = key.removeprefix("spikes/")
            shape = out[f"shape/{name}"].tolist()
            bits = np.unpackbits(packed.numpy(), count=int(np.prod(shape)))
            spikes[name] = bits.reshape(shape).astype(bool)
    return spikes


def _run_with_spikes(conv: official.Conversion, tower: str, out: dict[str, torch.Tensor]):
    """Our features and, per official LIF name, our spikes (hooked on the mapped module)."""
    model = conv.model
    names = {
        off: ours
        for off, ours in official.lif_name_map(conv.config).items()
        if ours.startswith(f"{tower}_encoder.")
    }
    recorded: dict[str, np.ndarray] = {}
    hooks = [
        model.get_submodule(ours).register_forward_hook(
            lambda _m, _i, y, off=off: recorded.__setitem__(off, y.detach().numpy() != 0)
        )
        for off, ours in names.items()
    ]
    try:
        with torch.no_grad():
            if tower == "image":
                feats = model.encode_image(out["pixel_values"])
            else:
                feats = model.encode_text(out["input_ids"])
    finally:
        for h in hooks:
            h.remove()
    return feats, recorded


@pytest.fixture(scope="module")
def both() -> official.Conversion:
    return official.convert_files([IMAGE, TEXT], num_heads=FIXTURE_HEADS)


def test_fixture_is_informative():
    """Every official LIF fires on some but not all neuron-steps (else spikes prove little)."""
    for tower, count in (("image", 4 + 2 * 7), ("text", 2)):
        spikes = _official_spikes(_outputs(tower))
        assert len(spikes) == count
        for name, s in spikes.items():
            assert 0 < s.mean() < 1, name


def test_inferred_config_matches_the_official_constructor(both):
    cfg = both.config
    # generate.py: vision_encoder(in_channels=3, target_dim=8, embed_dims=16, num_heads=2,
    # mlp_ratios=4, depths=2, T=4): tokenizer widths embed/8, /4, /2, /1 = 2, 4, 8, 16.
    assert (cfg.in_channels, cfg.tokenizer_channels, cfg.embed_dim) == (3, (2, 4, 8, 16), 16)
    assert (cfg.depth, cfg.num_heads, cfg.mlp_ratio, cfg.out_dim, cfg.T) == (2, 2, 4, 8, 4)
    # language_encoder(clip_dim=8, mlp_ratios=4): fc1 = Linear(20·8, 4·8), fc2 = Linear(32, 8).
    assert (cfg.vocab_size, cfg.text_width, cfg.text_len, cfg.text_hidden) == (64, 8, 20, 32)
    assert cfg.img_size == 32
    assert set(both.sources) == {"image", "text"}


@pytest.mark.parametrize("tower", ["image", "text"])
def test_converted_model_reproduces_official_outputs(both, tower):
    out = _outputs(tower)
    feats, ours = _run_with_spikes(both, tower, out)
    torch.testing.assert_close(feats, out["features"], rtol=0, atol=1e-5)
    reference = _official_spikes(out)
    assert set(ours) == set(reference)
    for name, ref in reference.items():
        assert ours[name].shape == ref.shape, name
        assert np.array_equal(ours[name], ref), f"{name}: {(ours[name] != ref).sum()} differ"


def test_num_heads_matters():
    """With the paper's 8 heads instead of the fixture's 2, attention differs: the head count
    really is exercised by the fixture (so a silent default would give wrong features)."""
    conv = official.convert_files([IMAGE], num_heads=official.PAPER_NUM_HEADS)
    assert conv.config.num_heads == official.PAPER_NUM_HEADS
    assert any("placeholder" in note for note in conv.notes)
    out = _outputs("image")
    feats, ours = _run_with_spikes(conv, "image", out)
    ref = _official_spikes(out)
    assert np.array_equal(ours["block.0.attn.q_lif"], ref["block.0.attn.q_lif"])
    assert not np.array_equal(ours["block.0.attn.attn_lif"], ref["block.0.attn.attn_lif"])
    assert (feats - out["features"]).abs().max() > 1e-3


def test_both_layouts_and_a_ddp_prefix_convert_identically(both, tmp_path):
    saver = torch.load(IMAGE, weights_only=True)
    raw_image = tmp_path / "image_raw.pth"
    torch.save(saver["state_dict"], raw_image)
    text_state = torch.load(TEXT, weights_only=True)
    wrapped_text = tmp_path / "text_saver.pth.tar"
    torch.save(
        {
            "epoch": 0,
            "arch": "language_encoder",
            "state_dict": {f"module.{k}": v for k, v in text_state.items()},
            "version": 2,
        },
        wrapped_text,
    )
    towers = [official.read_official(raw_image), official.read_official(wrapped_text)]
    assert [(t.tower, t.layout) for t in towers] == [
        ("image", "state_dict"),
        ("text", "checkpoint_saver"),
    ]
    assert official.read_official(IMAGE).meta == {
        "epoch": 3,
        "arch": "distributeddataparallel",
        "version": 2,
        "metric": 12.5,
    }
    again = official.convert(towers, num_heads=FIXTURE_HEADS)
    expected = both.model.state_dict()
    got = again.model.state_dict()
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert torch.equal(got[key], value), key


def test_stored_args_namespace_supplies_num_heads(tmp_path):
    import argparse

    saver = torch.load(IMAGE, weights_only=True)
    saver["args"] = argparse.Namespace(num_heads=FIXTURE_HEADS, model="vision_encoder")
    path = tmp_path / "with_args.pth.tar"
    torch.save(saver, path)
    conv = official.convert_files([path])
    assert conv.config.num_heads == FIXTURE_HEADS
    assert any("stored args" in note for note in conv.notes)


def _one_line(err: BaseException, *fragments: str) -> None:
    text = str(err)
    assert "\n" not in text
    for frag in fragments:
        assert frag in text, (frag, text)


def test_truncated_empty_and_junk_files_get_one_line_reasons(tmp_path):
    data = IMAGE.read_bytes()
    cut = tmp_path / "cut.pth.tar"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(NotACheckpoint) as err:
        official.read_official(cut)
    _one_line(err.value, "cut.pth.tar", "truncated")
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(NotACheckpoint) as err:
        official.read_official(empty)
    _one_line(err.value, "empty file")
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    with pytest.raises(NotACheckpoint) as err:
        official.read_official(junk)
    _one_line(err.value, "not a torch checkpoint")
    with pytest.raises(CheckpointNotFound):
        official.read_official(tmp_path / "absent.pth")


@pytest.mark.parametrize(
    ("state", "fragment"),
    [
        ({"text_model.embeddings.token_embedding.weight": torch.zeros(2, 2)}, "CLIP model"),
        ({"embeddings.block0_conv.weight": torch.zeros(1, 3, 3, 3)}, "ANN baseline"),
        ({"image_encoder.head.weight": torch.zeros(1, 1)}, "this project's SpikeCLIP"),
        ({"foo.weight": torch.zeros(1), "bar": torch.zeros(1)}, "first keys: foo.weight, bar"),
        ({"state_dict": {"w": 1}}, "not a state dict"),
    ],
)
def test_foreign_checkpoints_are_refused(tmp_path, state, fragment):
    path = tmp_path / "foreign.pth"
    torch.save(state, path)
    with pytest.raises(official.NotOfficialCheckpoint) as err:
        official.read_official(path)
    _one_line(err.value, "foreign.pth", fragment)
    assert official.looks_official(state) is False


class _Boom:
    """Unpickling this would create a directory: proof that nothing runs on refusal."""

    def __init__(self, target: Path) -> None:
        self.target = str(target)

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def test_pickled_code_is_refused_without_running_it(tmp_path):
    witness = tmp_path / "ran"
    path = tmp_path / "teacher.pt"
    torch.save({"model": _Boom(witness)}, path)
    with pytest.raises(UnsafeCheckpoint) as err:
        official.read_official(path)
    _one_line(err.value, "posix.mkdir", "nothing was run", "do not unpickle")
    assert "weights_only=False" not in str(err.value)  # never suggested for a function
    assert not witness.exists()

    module = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(2, 2), module)
    with pytest.raises(UnsafeCheckpoint) as err:
        official.read_official(module)
    _one_line(err.value, "torch.nn.modules.linear.Linear", "re-save", "weights_only=False")


def _saved_variant(tmp_path: Path, edit) -> Path:
    saver = torch.load(IMAGE, weights_only=True)
    edit(saver["state_dict"])
    path = tmp_path / "edited.pth.tar"
    torch.save(saver, path)
    return path


@pytest.mark.parametrize(
    ("edit", "fragments"),
    [
        (
            lambda sd: sd.pop("block.1.attn.k_bn.running_var"),
            ["missing block.1.attn.k_bn.running_var"],
        ),
        (
            lambda sd: sd.__setitem__("block.0.attn.extra_conv.weight", torch.zeros(1)),
            ["unexpected block.0.attn.extra_conv.weight"],
        ),
        (
            lambda sd: sd.__setitem__("block.0.attn.q_conv.weight", torch.zeros(16, 16)),
            ["wrong shape block.0.attn.q_conv.weight [16, 16] (needs [16, 16, 1])"],
        ),
        (
            lambda sd: sd.__setitem__("weights_tensor", torch.zeros(4)),
            ["weights_tensor has shape [4]"],
        ),
        (lambda sd: sd.pop("proj.weight"), ["missing proj.weight"]),
    ],
)
def test_layout_mismatches_name_the_first_offending_keys(tmp_path, edit, fragments):
    path = _saved_variant(tmp_path, edit)
    with pytest.raises(official.OfficialLayoutMismatch) as err:
        official.convert_files([path], num_heads=FIXTURE_HEADS)
    _one_line(err.value, "edited.pth.tar", *fragments)


def test_towers_must_agree_on_time_steps(tmp_path):
    text_state = torch.load(TEXT, weights_only=True)
    text_state["weights_tensor"] = torch.zeros(1, 3, 1)
    path = tmp_path / "text_T3.pth"
    torch.save(text_state, path)
    with pytest.raises(official.OfficialLayoutMismatch) as err:
        official.convert_files([IMAGE, path], num_heads=FIXTURE_HEADS)
    _one_line(err.value, "T=3", "T=4")


def test_position_ids_must_be_the_identity(tmp_path):
    text_state = torch.load(TEXT, weights_only=True)
    text_state["clip_embedding.position_ids"] = torch.arange(77).flip(0)[None]
    path = tmp_path / "text_pos.pth"
    torch.save(text_state, path)
    with pytest.raises(official.OfficialLayoutMismatch) as err:
        official.convert_files([path])
    _one_line(err.value, "position_ids")


def test_mismatch_message_lists_each_kind_in_official_names():
    state = dict(torch.load(IMAGE, weights_only=True)["state_dict"])
    del state["block.1.attn.k_bn.running_var"]
    del state["patch_embed.block3_bn.weight"]
    del state["block.1.mlp.mlp1_bn.bias"]
    del state["block.0.mlp.mlp2_conv.bias"]
    state["x.y"] = torch.zeros(1)
    state["block.0.attn.q_conv.weight"] = torch.zeros(16, 16)
    tower = official.tower_from_payload(state, "x.pth")
    with pytest.raises(official.OfficialLayoutMismatch) as err:
        official.convert([tower], num_heads=FIXTURE_HEADS)
    # Our state-dict order: tokenizer, then block 0 (attn, mlp), then block 1; at most 3 named.
    assert str(err.value) == (
        "x.pth: does not fit the official Vision_Encoder its shapes imply: "
        "missing patch_embed.block3_bn.weight, block.0.mlp.mlp2_conv.bias, "
        "block.1.attn.k_bn.running_var (+1 more); unexpected x.y; "
        "wrong shape block.0.attn.q_conv.weight [16, 16] (needs [16, 16, 1])"
    )


def test_cli_writes_a_model_pt_that_loads_and_matches(tmp_path, capsys):
    from export.cli.convert import main
    from spikeclip import checkpoint

    out = tmp_path / "model.pt"
    args = [str(IMAGE), str(TEXT), "--out", str(out), "--num-heads", str(FIXTURE_HEADS)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "converted an official SpikeCLIP checkpoint" in printed
    loaded = checkpoint.load(out)
    assert loaded.metadata["official_sources"] == {"image": str(IMAGE), "text": str(TEXT)}
    assert loaded.metadata["placeholder_towers"] == []
    image, text = _outputs("image"), _outputs("text")
    with torch.no_grad():
        feats_i = loaded.model.encode_image(image["pixel_values"])
        feats_t = loaded.model.encode_text(text["input_ids"])
    torch.testing.assert_close(feats_i, image["features"], rtol=0, atol=1e-5)
    torch.testing.assert_close(feats_t, text["features"], rtol=0, atol=1e-5)

    # Converting our own model.pt again is refused, in one line on stderr, exit status 3.
    assert main([str(out), "--out", str(tmp_path / "again.pt")]) == 3
    err = capsys.readouterr().err.strip()
    assert (
        err == f"spikeclip-convert: error: {out}: already a SpikeCLIP model.pt: nothing to convert"
    )
    assert not (tmp_path / "again.pt").exists()


def test_cli_image_only_records_the_placeholder_text_tower(tmp_path, capsys):
    from export.cli.convert import main
    from spikeclip import checkpoint

    out = tmp_path / "image_only.pt"
    assert main([str(IMAGE), "--out", str(out), "--num-heads", str(FIXTURE_HEADS)]) == 0
    loaded = checkpoint.load(out)
    assert loaded.metadata["placeholder_towers"] == ["text"]
    assert loaded.config.vocab_size == 1
    capsys.readouterr()
    assert main([str(IMAGE), str(IMAGE), "--out", str(out), "--num-heads", "2"]) == 2
    assert "a second official image encoder" in capsys.readouterr().err


def test_convert_loaded_is_the_auto_detection_hook_and_warns():
    """What `spikeclip.checkpoint.load` calls on a payload that is not a model.pt."""
    payload = torch.load(IMAGE, weights_only=True)
    assert official.looks_official(payload)
    assert official.looks_official(torch.load(TEXT, weights_only=True))
    with pytest.warns(official.OfficialConversionNotice) as record:
        conv = official.convert_loaded(payload, IMAGE, num_heads=FIXTURE_HEADS)
    (notice,) = record
    assert str(notice.message).startswith(
        f"{IMAGE}: converted an official SpikeCLIP checkpoint: image encoder (embed 16, depth 2, "
        "2 heads, T=4, out 8); image size is not stored: assumed 32×32 (pass --img-size); "
        "no text encoder given"
    )
    feats, _ = _run_with_spikes(conv, "image", _outputs("image"))
    torch.testing.assert_close(feats, _outputs("image")["features"], rtol=0, atol=1e-5)


def test_missing_batchnorm_counters_are_tolerated(both):
    """`num_batches_tracked` (absent from pre-0.4.1 files) does not affect eval outputs."""
    state = {
        k: v
        for k, v in torch.load(IMAGE, weights_only=True)["state_dict"].items()
        if not k.endswith("num_batches_tracked")
    }
    conv = official.convert([official.tower_from_payload(state, "old.pth")], num_heads=2)
    feats, _ = _run_with_spikes(conv, "image", _outputs("image"))
    torch.testing.assert_close(feats, _outputs("image")["features"], rtol=0, atol=1e-5)


def test_checkpoint_load_converts_official_files_on_the_fly():
    """`spikeclip.checkpoint.load` (what spikeclip-export reads with) detects and converts."""
    from spikeclip import checkpoint

    with pytest.warns(official.OfficialConversionNotice, match="converted an official SpikeCLIP"):
        loaded = checkpoint.load(TEXT)
    assert loaded.metadata["placeholder_towers"] == ["image"]
    text = _outputs("text")
    with torch.no_grad():
        feats = loaded.model.encode_text(text["input_ids"])
    torch.testing.assert_close(feats, text["features"], rtol=0, atol=1e-5)


# ----------------------------------------------------------------------------- head count

# Our image-encoder keys → the official Vision_Encoder's (written out by hand from the official
# model.py's module names, independently of spikeclip.official's rules).
_TO_OFFICIAL = (
    (r"tokenizer\.conv(\d)\.weight", r"patch_embed.block\1_conv.weight"),
    (r"tokenizer\.bn(\d)\.(\w+)", r"patch_embed.block\1_bn.\2"),
    (r"blocks\.(\d+)\.attn\.(q|k|v|proj)_(conv|bn)\.(\w+)", r"block.\1.attn.\2_\3.\4"),
    (r"blocks\.(\d+)\.mlp\.fc([12])_(conv|bn)\.(\w+)", r"block.\1.mlp.mlp\2_\3.\4"),
    (r"head\.(\w+)", r"proj.\1"),
)


def _official_image_file(model, path: Path) -> Path:
    """Save `model.image_encoder` as an official raw state dict (weights_tensor [1, T, 1])."""
    state = {}
    for key, value in model.image_encoder.state_dict().items():
        if key == "readout.weights":
            state["weights_tensor"] = value.reshape(1, -1, 1).clone()
            continue
        (new,) = [re.sub(p, r, key) for p, r in _TO_OFFICIAL if re.fullmatch(p, key)]
        state[new] = value.clone()
    torch.save(state, path)
    return path


def _informative(model) -> None:
    """generate.py's recipe: random conv/linear weights (std 1.5/√fan_in), BN statistics of one
    random batch (momentum 1), then random BN affine parameters, so that LIFs fire on some but
    not all neuron-steps."""
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.Conv1d | torch.nn.Conv2d | torch.nn.Linear):
                fan_in = mod.weight[0].numel()
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=gen) * 1.5 / fan_in**0.5)
                if mod.bias is not None:
                    mod.bias.copy_(torch.randn(mod.bias.shape, generator=gen) * 0.2)
        bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        for bn in bns:
            bn.momentum = 1.0
        model.train()
        model.encode_image(torch.randn(8, 3, 32, 32, generator=gen))
        for bn in bns:
            bn.momentum = 0.1
            bn.weight.copy_(1.0 + torch.rand(bn.weight.shape, generator=gen))
            bn.bias.copy_(0.4 + 0.4 * torch.randn(bn.bias.shape, generator=gen))
    model.eval()


@pytest.fixture(scope="module")
def four_heads(tmp_path_factory):
    """A 4-head image encoder (embed 16: 8 heads would also divide it) with firing LIFs; its
    own features are the reference."""
    cfg = SpikeCLIPConfig(
        **{
            **SpikeCLIPConfig.tiny().to_dict(),
            "img_size": official.PAPER_IMG_SIZE,
            "tokenizer_channels": (2, 4, 8, 16),
            "num_heads": 4,
            "mlp_ratio": 4,
            "out_dim": 8,
        }
    )
    torch.manual_seed(3)
    model = SpikeCLIP(cfg)
    _informative(model)
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        features = model.encode_image(images)
    path = _official_image_file(model, tmp_path_factory.mktemp("heads") / "four_heads.pth")
    return path, images, features


def test_four_head_file_without_num_heads_is_refused_by_convert(four_heads, tmp_path, capsys):
    from export.cli.convert import main

    path, _, _ = four_heads
    out = tmp_path / "model.pt"
    assert main([str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"spikeclip-convert: error: {path}: the attention head count is not")
    assert "--num-heads N" in err and "1, 2, 4, 8, 16" in err and "\n" not in err
    assert not out.exists()
    with pytest.raises(ConversionOptionRequired):
        official.convert_files([path])


def test_four_head_file_with_num_heads_gives_the_exact_features(four_heads, tmp_path):
    from export.cli.convert import main
    from spikeclip import checkpoint

    path, images, features = four_heads
    out = tmp_path / "model.pt"
    assert main([str(path), "--out", str(out), "--num-heads", "4"]) == 0
    with torch.no_grad():
        assert torch.equal(checkpoint.load(out).model.encode_image(images), features)
        with pytest.warns(official.OfficialConversionNotice):
            direct = checkpoint.load(path, num_heads=4)
        assert torch.equal(direct.model.encode_image(images), features)
        wrong = official.convert_files([path], num_heads=8).model.encode_image(images)
    assert not torch.equal(features[0], features[1])  # the inputs matter (LIFs fire)
    assert (wrong - features).abs().max() > 1e-3  # and so does the head count


def test_paper_configuration_assumes_its_eight_heads(tmp_path):
    torch.manual_seed(0)
    path = _official_image_file(SpikeCLIP(SpikeCLIPConfig.paper()), tmp_path / "paper.pth")
    conv = official.convert_files([path])
    assert conv.config.num_heads == official.PAPER_NUM_HEADS == 8
    assert any("assumed 8, the paper's value" in note for note in conv.notes)


def test_a_head_count_that_does_not_divide_is_a_usage_error():
    with pytest.raises(ConfigError, match="the given num_heads/img_size do not fit") as err:
        official.convert_files([IMAGE], num_heads=3)
    assert err.value.exit_code == 2


def test_non_finite_official_weights_are_named(tmp_path):
    def poison(sd):
        sd["block.0.attn.q_conv.weight"][0, 0, 0] = float("nan")

    with pytest.raises(NonFiniteTensor, match=r"tensor block\.0\.attn\.q_conv\.weight holds"):
        official.read_official(_saved_variant(tmp_path, poison))


def test_an_impossible_configuration_in_the_file_exits_3(tmp_path):
    def two_thousand_steps(sd):
        sd["weights_tensor"] = torch.zeros(1, 2000, 1)

    path = _saved_variant(tmp_path, two_thousand_steps)
    with pytest.raises(InvalidCheckpointContent, match="configuration: config.T must be") as err:
        official.convert_files([path], num_heads=FIXTURE_HEADS)
    assert err.value.exit_code == 3 and "edited.pth.tar" in str(err.value)


def test_stored_args_with_an_impossible_head_count_blame_the_file(tmp_path):
    import argparse

    saver = torch.load(IMAGE, weights_only=True)
    saver["args"] = argparse.Namespace(num_heads=3)  # embed 16 does not split into 3 heads
    path = tmp_path / "bad_args.pth.tar"
    torch.save(saver, path)
    with pytest.raises(InvalidCheckpointContent, match="divisible by num_heads=3") as err:
        official.convert_files([path])
    assert err.value.exit_code == 3
