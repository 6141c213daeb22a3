"""Zero-shot evaluation: hand-checked top-1/top-5/confusion on a probe model whose image
features are written into the images, prompt layout, and `spikeclip-eval` end to end."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Subset

from export.cli import eval as cli_eval
from spikeclip import SpikeCLIP, SpikeCLIPConfig, checkpoint
from spikeclip import evaluate as ev
from spikeclip.neurons import MultiStepLIF
from spikeclip.training import data
from spikeclip.training.data import TensorImages
from spikeclip.training.teachers import load_tokenizer

CFG = SpikeCLIPConfig.tiny()  # img_size 16, out_dim 12


class Probe(SpikeCLIP):
    """The image feature is the image's first pixel row (channel 0, row 0, first out_dim
    columns), so a test writes the features it wants straight into the images."""

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return images[:, 0, 0, : self.config.out_dim]


# First 6 feature coordinates per image (the rest 0); the class matrix is e_0..e_5, so
# logits[b, c] = f_b[c] / |f_b|: argmax = largest coordinate, top-5 = all but the smallest.
FEATURES = [
    [3, 1, 0, 0, 0, 0],  # label 0: pred 0 (hit); top-5 hit
    [1, 3, 0, 0, 0, 0],  # label 0: pred 1; label's 1 is 2nd -> top-5 hit
    [0, 2, 0, 0, 0, 0],  # label 1: pred 1 (hit)
    [0, 1, 2, 3, 4, 5],  # label 1: pred 5; label's 1 is 5th -> top-5 hit
    [6, 0, 1, 2, 3, 4],  # label 2: pred 0; label's 1 is 5th -> top-5 hit
    [5, 4, 3, 0, 2, 1],  # label 3: pred 0; label's 0 is 6th -> top-5 MISS
    [0, 0, 0, 0, 1, 0],  # label 4: pred 4 (hit)
    [0, 0, 0, 0, 2, 1],  # label 5: pred 4; label's 1 is 2nd -> top-5 hit
]
LABELS = [0, 0, 1, 1, 2, 3, 4, 5]
# rows = labels, columns = predictions (from the comments above)
CONFUSION = [
    [1, 1, 0, 0, 0, 0],
    [0, 1, 0, 0, 0, 1],
    [1, 0, 0, 0, 0, 0],
    [1, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 1, 0],
    [0, 0, 0, 0, 1, 0],
]


def _probe_set() -> TensorImages:
    images = torch.zeros(len(LABELS), 3, CFG.img_size, CFG.img_size)
    images[:, 0, 0, :6] = torch.tensor(FEATURES, dtype=torch.float32)
    return TensorImages(images, torch.tensor(LABELS))


def test_zero_shot_top1_top5_and_confusion_by_hand() -> None:
    model = Probe(CFG)
    matrix = torch.eye(CFG.out_dim)[:6]
    res = ev.zero_shot(model, _probe_set(), matrix, class_names=list("abcdef"), batch_size=3)
    assert (res.n, res.k, res.correct_top1, res.correct_topk) == (8, 5, 3, 7)
    assert res.top1 == 3 / 8 and res.topk == 7 / 8
    assert res.confusion.dtype == torch.int64 and res.confusion.tolist() == CONFUSION
    assert res.per_class_accuracy().tolist() == [0.5, 0.5, 0.0, 0.0, 1.0, 0.0]
    assert res.to_dict()["top5"] == 7 / 8 and model.training  # mode restored


def test_distractor_columns_and_label_range() -> None:
    # 4 classes + 2 distractors (columns 4, 5): images 0..5 (labels 0..3) as above.
    model = Probe(CFG)
    matrix = torch.eye(CFG.out_dim)[:6]
    subset = Subset(_probe_set(), range(6))
    res = ev.zero_shot(model, subset, matrix, class_names=list("abcdef"), num_classes=4)
    assert res.confusion.tolist() == CONFUSION[:4] and res.correct_top1 == 2
    with pytest.raises(ev.EvaluationError, match="label 5 outside 0..3"):
        ev.zero_shot(model, _probe_set(), matrix, class_names=list("abcdef"), num_classes=4)
    with pytest.raises(ev.EvaluationError, match="one row per"):
        ev.zero_shot(model, subset, matrix[:5], class_names=list("abcdef"))
    # fewer than 5 candidates: top-k is top-3 (every label inside)
    res3 = ev.zero_shot(model, Subset(_probe_set(), [0, 1, 2]), matrix[:3],
                        class_names=list("abc"))
    assert res3.k == 3 and res3.correct_topk == 3 and res3.correct_top1 == 2


class NearTieProbe(SpikeCLIP):
    """Feature (s, 1 − s, 0, …): s = one LIF step (τ = 1 so H = current, θ = 1, fires on H ≥ θ)
    on the current w · (pixels 0 and 1 of channel 0, row 0), w = (1, −2⁻²⁵) stored in float32."""

    def __init__(self, config: SpikeCLIPConfig) -> None:
        super().__init__(config)
        self.w = nn.Parameter(torch.tensor([1.0, -(2.0**-25)]))
        self.lif = MultiStepLIF(tau=1.0, v_threshold=1.0)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        current = (images[:, 0, 0, :2] * self.w).sum(-1)
        s = self.lif(current[None])[0]
        f = torch.zeros(images.shape[0], self.config.out_dim, dtype=images.dtype)
        f[:, 0], f[:, 1] = s, 1.0 - s
        return f


def test_zero_shot_resolves_a_near_tie_exactly_and_leaves_the_model_float32() -> None:
    # image 0, pixels (1, 1): current 1 − 2⁻²⁵ < θ exactly -> no spike -> class 1 (its label).
    #   float32 cannot hold 1 − 2⁻²⁵ (halfway between 1 − 2⁻²⁴ and 1; ties to even: 1.0), so a
    #   float32 evaluation fires and predicts class 0: the near-ties of the default model.
    # image 1, pixels (1, 0): current exactly θ, a true tie -> spike (>=) -> class 0 (its label).
    images = torch.zeros(2, 3, CFG.img_size, CFG.img_size)
    images[0, 0, 0, :2] = 1.0
    images[1, 0, 0, 0] = 1.0
    probes = TensorImages(images, torch.tensor([1, 0]))
    model = NearTieProbe(CFG)
    matrix = torch.eye(CFG.out_dim)[:2]
    res = ev.zero_shot(model, probes, matrix, class_names=["a", "b"])
    assert res.correct_top1 == 2 and res.predictions.tolist() == [1, 0]
    assert model.w.dtype == torch.float32 and model.training  # the caller's model untouched
    f32 = ev.zero_shot(model, probes, matrix, class_names=["a", "b"], dtype=None)
    assert f32.predictions.tolist() == [0, 0]  # float32 arithmetic: the near-tie fires
    assert ev.in_dtype(model, None) is model and ev.in_dtype(model, torch.float32) is model
    m64 = ev.in_dtype(model, torch.float64)
    assert m64 is not model and m64.w.dtype == torch.float64
    assert ev.in_dtype(m64, torch.float64) is m64


def _toy_tokenize(texts, length):
    """id of a text = its length (< 50), then zeros: distinct prompts get distinct ids."""
    ids = torch.zeros(len(texts), length, dtype=torch.int64)
    ids[:, 0] = torch.tensor([len(t) for t in texts])
    return ids


def test_prompt_layout_and_class_matrix_rows() -> None:
    ids = ev.prompt_ids(_toy_tokenize, ["ab", "abcd"], ["{}", "x {} y"], 6)
    # [C, K, L]: class-major; "ab" -> 2, "x ab y" -> 6, "abcd" -> 4, "x abcd y" -> 8
    assert ids[:, :, 0].tolist() == [[2, 6], [4, 8]]
    torch.manual_seed(0)
    model = SpikeCLIP(CFG)
    m = ev.class_matrix(model, _toy_tokenize, ["ab", "abcd"], ["{}", "x {} y"])
    # row c = mean over templates of normalized text features, float64 by hand
    with torch.no_grad():
        model.eval()
        feats = F.normalize(model.encode_text(ids.view(4, 6)).double(), dim=-1)
    want = torch.stack([feats[0:2].mean(0), feats[2:4].mean(0)])
    torch.testing.assert_close(m.double(), want, atol=1e-6, rtol=0)
    with pytest.raises(ev.EvaluationError, match="vocab_size 50"):
        ev.class_matrix(model, lambda t, n: torch.full((len(t), n), 50), ["a"], ["{}"])
    with pytest.raises(ev.EvaluationError, match="one '{}'"):
        ev.prompt_ids(_toy_tokenize, ["a"], ["no slot"], 6)


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(3)
    cfg = dataclasses.replace(CFG, vocab_size=30522, text_len=12)
    model = SpikeCLIP(cfg)
    with torch.no_grad():  # default init barely spikes (all features equal): scale weights up
        for p in model.parameters():
            if p.ndim >= 2:
                p.mul_(4.0)
    path = tmp_path_factory.mktemp("eval") / "tiny.pt"
    checkpoint.save(path, model, metadata={"tokenizer": "minilm",
                                                     "stages": [{"val": {"top1": 0.99}}]})
    return path


def test_cli_numbers_come_from_the_model(tiny_ckpt: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "eval.json"
    rc = cli_eval.main([str(tiny_ckpt), "--dataset", "digits", "--limit", "30",
                        "--seeds", "42", "43", "--json", str(out), "--confusion"])
    assert rc == 0, capsys.readouterr().err
    rep = json.loads(out.read_text())
    assert [(r["protocol"], r["seed"]) for r in rep["results"]] == [
        ("base", None), ("replaced", 42), ("replaced", 43), ("expanded", 42), ("expanded", 43)]
    # independent recomputation of every run: a float64 copy of the model (torch's own .double()),
    # explicit prompts, argmax
    ck = checkpoint.load(tiny_ckpt)
    m64 = copy.deepcopy(ck.model).double().eval()
    tok = load_tokenizer("minilm")
    test = data.digits_splits(CFG.img_size, seed=0).test
    images = torch.stack([test[i][0] for i in range(30)])
    labels = torch.tensor([test[i][1] for i in range(30)])
    with torch.no_grad():
        img = F.normalize(m64.encode_image(images.double()), dim=-1)
        for r in rep["results"]:
            names, tpl = r["class_names"], rep["templates"]
            rows = []
            for name in names:
                ids = tok([t.format(name) for t in tpl], 12)
                rows.append(F.normalize(m64.encode_text(ids), dim=-1).mean(0))
            logits = img @ torch.stack(rows).T
            pred = logits.argmax(-1)
            assert r["correct_top1"] == int((pred == labels).sum()), r["protocol"]
            top5 = (logits.topk(5, -1).indices == labels[:, None]).any(-1)
            assert r["correct_top5"] == int(top5.sum())
            conf = torch.tensor(r["confusion"])
            assert conf.shape == (10, len(names)) and int(conf.sum()) == 30
            assert int(conf.trace()) == r["correct_top1"]
    assert rep["results"][1]["replaced"][0]["old"] == "one"  # seed 42 draws labels 1, 0
    assert len(rep["results"][3]["class_names"]) == 20
    assert len({r["correct_top1"] for r in rep["results"]}) > 1  # protocols do differ
    printed = capsys.readouterr().out
    assert "replaced" in printed and "per-class top-1" in printed


def test_cli_refuses_a_model_without_tokenizer(tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    path = checkpoint.save(tmp_path / "m.pt", SpikeCLIP(CFG))
    assert cli_eval.main([str(path), "--dataset", "digits"]) == 2  # a usage error
    assert "pass --tokenizer" in capsys.readouterr().err
