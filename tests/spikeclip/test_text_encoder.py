"""Text encoder: shapes, teacher-table init, input validation, official-code outputs."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from _paths import TESTS

from spikeclip.config import SpikeCLIPConfig
from spikeclip.errors import ModelInputError
from spikeclip.text_encoder import TextEncoder

OFFICIAL = TESTS / "fixtures" / "official"


@pytest.mark.parametrize("T", [1, 4, 6])
def test_tiny_shapes_for_any_T(T):
    cfg = dataclasses.replace(SpikeCLIPConfig.tiny(), T=T)
    enc = TextEncoder(cfg)
    ids = torch.randint(0, cfg.vocab_size, (5, cfg.text_len))
    assert enc.embed(ids).shape == (5, cfg.text_len * cfg.text_width)
    assert enc(ids).shape == (5, cfg.out_dim)
    assert enc.readout.weights.shape == (T,)


def test_paper_layer_shapes():
    # digest §3: fc1 10240→2048, fc2 2048→512; 20 of CLIP's 77 position rows are used, so the
    # official 47,358,980 parameters minus 57 × 512 unused position entries = 47,329,796
    enc = TextEncoder(SpikeCLIPConfig.paper())
    assert tuple(enc.fc1.weight.shape) == (2048, 10240)
    assert tuple(enc.fc2.weight.shape) == (512, 2048)
    assert tuple(enc.token_embedding.weight.shape) == (49408, 512)
    assert tuple(enc.position_embedding.weight.shape) == (20, 512)
    assert sum(p.numel() for p in enc.parameters()) == 47_358_980 - 57 * 512
    with torch.no_grad():
        assert enc(torch.zeros(1, 20, dtype=torch.int64)).shape == (1, 512)


def test_init_embeddings_from_a_teacher_table():
    cfg = SpikeCLIPConfig.tiny()
    enc = TextEncoder(cfg)
    tok = torch.arange(cfg.vocab_size * cfg.text_width, dtype=torch.float32).view(
        cfg.vocab_size, cfg.text_width
    )
    pos = -torch.arange(77 * cfg.text_width, dtype=torch.float32).view(77, cfg.text_width)
    enc.init_embeddings(tok, pos)
    assert torch.equal(enc.token_embedding.weight, tok)
    assert torch.equal(enc.position_embedding.weight, pos[: cfg.text_len])
    # embed(ids)[b] = flatten(tok[ids[b]] + pos[:L]); ids = 0, 1, …: row i = tok[i] + pos[i]
    ids = torch.arange(cfg.text_len).unsqueeze(0)
    assert torch.equal(enc.embed(ids)[0], (tok[: cfg.text_len] + pos[: cfg.text_len]).flatten())
    with pytest.raises(ModelInputError, match="token table must be"):
        enc.init_embeddings(tok[:-1])
    with pytest.raises(ModelInputError, match="position table must be"):
        enc.init_embeddings(tok, pos[:2])


@pytest.mark.parametrize(
    ("ids", "words"),
    [
        (torch.zeros(2, 3, dtype=torch.int64), "token ids"),
        (torch.zeros(2, 6), "int64 token ids"),
        (torch.full((2, 6), 50), r"\[0, 50\)"),
        (torch.full((2, 6), -1), r"\[0, 50\)"),
    ],
)
def test_bad_token_ids_are_typed_errors(ids, words):
    with pytest.raises(ModelInputError, match=words):
        TextEncoder(SpikeCLIPConfig.tiny())(ids)


def test_describe():
    cfg = SpikeCLIPConfig.tiny()
    enc = TextEncoder(cfg)
    recs = enc.describe()
    assert [r.kind for r in recs] == ["embedding", "lif", "linear", "lif", "linear", "time_readout"]
    assert recs[2].in_shape == (cfg.text_len * cfg.text_width,)
    assert recs[2].out_shape == (cfg.text_hidden,)
    assert recs[-1].out_shape == (cfg.out_dim,)
    for r in recs:
        if r.is_module:
            enc.get_submodule(r.name)


def test_matches_the_official_code_on_its_fixture():
    # tests/fixtures/official: the paper's language_encoder (vocab 64, width 8, text length 20,
    # hidden 32, output 8, T = 4); its attention mask is ignored by the official code too.
    state = torch.load(OFFICIAL / "text_state_dict.pth", weights_only=True)
    outputs = torch.load(OFFICIAL / "text_outputs.pt", weights_only=True)
    cfg = SpikeCLIPConfig(vocab_size=64, text_width=8, text_len=20, text_hidden=32, out_dim=8)
    enc = TextEncoder(cfg)
    enc.init_embeddings(
        state["clip_embedding.token_embedding.weight"],
        state["clip_embedding.position_embedding.weight"],
    )
    with torch.no_grad():
        for name in ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"):
            enc.get_parameter(name).copy_(state[name])
        enc.readout.weights.copy_(state["weights_tensor"].flatten())
        feats = enc(outputs["input_ids"])
    torch.testing.assert_close(feats, outputs["features"], rtol=0, atol=1e-5)
