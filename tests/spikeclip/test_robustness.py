"""Label-set protocols: the paper's seeded draws, the digits tables, the distractor pool."""

from __future__ import annotations

import pytest

from spikeclip import robustness as rb
from spikeclip.training.prompts import DIGITS_CLASSES, STL10_CLASSES


def test_replaced_draw_matches_the_paper_select_script() -> None:
    # ELS_ULS/select.py: random.seed(s); random.sample(range(1, 11), 2) gives (digest §8.2)
    # 42 -> [2, 1], 43 -> [1, 5], 44 -> [7, 9] (1-based), i.e. labels {1, 0}, {0, 4}, {6, 8}.
    expected = {42: [1, 0], 43: [0, 4], 44: [6, 8]}
    for seed, labels in expected.items():
        s = rb.replaced_set(STL10_CLASSES, rb.STL10_REPLACEMENTS, seed=seed, k=2)
        assert [r.label for r in s.replaced] == labels
    # seed 44 is the pair active in the committed STL10.py: horse -> zebra, ship -> boat.
    s44 = rb.replaced_set(STL10_CLASSES, rb.STL10_REPLACEMENTS, seed=44, k=2)
    assert [(r.old, r.new) for r in s44.replaced] == [("horse", "zebra"), ("ship", "boat")]
    assert s44.class_names == ("airplane", "bird", "car", "cat", "deer", "dog", "zebra",
                               "monkey", "boat", "truck")
    assert s44.num_classes == 10 and s44.distractors == ()


def test_digit_synonyms_are_unseen_and_replace_only_the_drawn_labels() -> None:
    assert set(rb.DIGIT_SYNONYMS) == set(DIGITS_CLASSES)
    digit_words = {c.casefold() for c in DIGITS_CLASSES}
    all_syn = [s for v in rb.DIGIT_SYNONYMS.values() for s in v]
    assert len(all_syn) == len({s.casefold() for s in all_syn})  # no synonym serves two digits
    assert not digit_words & {s.casefold() for s in all_syn}
    assert "nought" in rb.DIGIT_SYNONYMS["zero"] and "cipher" in rb.DIGIT_SYNONYMS["zero"]
    s = rb.replaced_set(DIGITS_CLASSES, rb.DIGIT_SYNONYMS, seed=43, k=2)
    assert [r.label for r in s.replaced] == [0, 4]
    for i, name in enumerate(s.class_names):
        if i in (0, 4):
            assert name in rb.DIGIT_SYNONYMS[DIGITS_CLASSES[i]]
        else:
            assert name == DIGITS_CLASSES[i]
    # k = 10 renames every digit
    full = rb.replaced_set(DIGITS_CLASSES, rb.DIGIT_SYNONYMS, seed=0, k=10)
    assert not digit_words & {n.casefold() for n in full.class_names}


def test_expanded_appends_seeded_distractors_outside_the_class_set() -> None:
    pool = ("Cat", "fox", "owl", "fox", "yak", "emu")  # "Cat" collides, second "fox" repeats
    s = rb.expanded_set(("cat", "dog"), pool, seed=1, n=4)
    assert s.class_names[:2] == ("cat", "dog") and s.num_classes == 2
    assert sorted(s.distractors) == ["emu", "fox", "owl", "yak"]  # all 4 clean names
    with pytest.raises(rb.LabelSetError, match="pool has 4"):
        rb.expanded_set(("cat", "dog"), pool, seed=1, n=5)
    a = rb.expanded_set(DIGITS_CLASSES, rb.DIGIT_DISTRACTORS, seed=42, n=10)
    b = rb.expanded_set(DIGITS_CLASSES, rb.DIGIT_DISTRACTORS, seed=42, n=10)
    c = rb.expanded_set(DIGITS_CLASSES, rb.DIGIT_DISTRACTORS, seed=43, n=10)
    assert a == b and a.distractors != c.distractors
    assert len(set(a.class_names)) == 20 and not set(a.distractors) & set(DIGITS_CLASSES)
    assert not set(rb.CIFAR100_NAMES) & set(STL10_CLASSES) and len(rb.CIFAR100_NAMES) == 100


def test_label_sets_and_refusals() -> None:
    sets = rb.label_sets(DIGITS_CLASSES, rb.PROTOCOLS, seeds=(42, 43, 44),
                         synonyms=rb.DIGIT_SYNONYMS, pool=rb.DIGIT_DISTRACTORS)
    assert [(s.protocol, s.seed) for s in sets] == [
        ("base", None), ("replaced", 42), ("replaced", 43), ("replaced", 44),
        ("expanded", 42), ("expanded", 43), ("expanded", 44)]
    assert sets[0].to_dict()["class_names"] == list(DIGITS_CLASSES)
    with pytest.raises(rb.LabelSetError, match="unknown protocol"):
        rb.label_sets(DIGITS_CLASSES, ["shuffled"], seeds=(1,))
    with pytest.raises(rb.LabelSetError, match="no synonym table"):
        rb.label_sets(DIGITS_CLASSES, ["replaced"], seeds=(1,))
    with pytest.raises(rb.LabelSetError, match="k=3 but 2 of 3"):
        rb.replaced_set(("a", "b", "c"), {"a": ("x",), "b": ("y",)}, seed=0, k=3)
    with pytest.raises(rb.LabelSetError, match="collides"):
        rb.replaced_set(("a", "b"), {"a": ("B",), "b": ("A",)}, seed=0, k=1)
    with pytest.raises(rb.LabelSetError, match="not unique"):
        rb.base_set(("a", "A"))


def test_fashion_mnist_tables_name_unseen_words_and_drive_the_protocols() -> None:
    from spikeclip.training.prompts import FASHION_MNIST_CLASSES

    syn, pool = rb.SYNONYMS["fashion-mnist"], rb.DISTRACTORS["fashion-mnist"]
    assert set(syn) == set(FASHION_MNIST_CLASSES) and len(pool) == 30
    all_syn = [s.casefold() for v in syn.values() for s in v]
    assert len(all_syn) == len(set(all_syn)) == 30  # three each, none serves two classes
    # no synonym holds a word of another class's name ("dress shirt" would hint at Dress)
    for name, words in syn.items():
        others = {w.casefold() for c in FASHION_MNIST_CLASSES if c != name
                  for w in c.replace("/", " ").replace("-", " ").split()}
        for s in words:
            assert not others & set(s.casefold().replace("-", " ").split()), (name, s)
    # distractors: neither a class name nor a synonym, no repeats
    folded = {p.casefold() for p in pool}
    assert len(folded) == 30 and not folded & (set(all_syn) | {c.casefold() for c in syn})
    sets = rb.label_sets(FASHION_MNIST_CLASSES, rb.PROTOCOLS, seeds=rb.PAPER_SEEDS,
                         synonyms=syn, pool=pool)
    # the paper's draw: seed 42 renames labels 1 and 0 (Trouser, T-shirt/top)
    assert [r.label for r in sets[1].replaced] == [1, 0]
    assert sets[1].class_names[2:] == FASHION_MNIST_CLASSES[2:]
    assert sets[1].class_names[1] in syn["Trouser"]
    assert [len(s.class_names) for s in sets[4:]] == [20, 20, 20]
