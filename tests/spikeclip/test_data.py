"""Datasets: sklearn digits splits, class names and templates, missing-data messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikeclip.training import data, prompts


def test_digits_splits_are_stratified_disjoint_and_deterministic():
    s = data.digits_splits(16, seed=0)
    n_train, n_val, n_test = len(s.train), len(s.val), len(s.test)
    assert n_train + n_val + n_test == 1797
    labels_test = s.test.labels.numpy()
    # each class (≈180 images) puts round(0.25·n) in test: 44 or 45 per class, 450 in total
    assert n_test == 450 and set(np.bincount(labels_test)) <= {44, 45, 46}
    again = data.digits_splits(16, seed=0)
    assert torch.equal(again.test.images, s.test.images)
    other = data.digits_splits(16, seed=1)
    assert not torch.equal(other.test.labels, s.test.labels)
    # disjoint: no test image appears in train (digits has a few duplicate images, so compare
    # the split indices through the known total)
    tr, va, te = data.stratified_split(np.repeat(np.arange(3), 10), (0.2, 0.3), seed=0)
    assert len(set(tr) | set(va) | set(te)) == 30 and (len(tr), len(va), len(te)) == (15, 6, 9)


def test_digits_images_values():
    images, labels = data.digits_images(16)
    assert images.shape == (1797, 3, 16, 16) and labels.shape == (1797,)
    # pixel 0..16 -> [0, 1] -> (x - 0.5) / 0.5: black (0) is -1, full ink (16) is +1
    assert images.min() == -1.0 and images.max() <= 1.0
    from sklearn.datasets import load_digits

    raw = load_digits().images[0]
    at8 = data.digits_images(8)[0][0, 0]  # same size: bilinear is the identity
    assert torch.allclose(at8, torch.as_tensor(raw / 16.0 * 2 - 1, dtype=torch.float32))


def test_cifar10_names_are_cifar10s_not_stl10s():
    assert prompts.CIFAR10_CLASSES.index("frog") == 6
    assert prompts.CIFAR10_CLASSES[1] == "automobile"
    assert "monkey" not in prompts.CIFAR10_CLASSES
    assert prompts.CIFAR10_CLASSES != prompts.STL10_CLASSES
    assert len(set(prompts.CIFAR10_CLASSES)) == 10


def test_templates_and_prompts():
    for name in data.DATASETS:
        assert prompts.TEMPLATES[name] and all(t.count("{}") == 1 for t in prompts.TEMPLATES[name])
    p = prompts.prompts_for(("cat", "dog"), ("a {}.", "the {}!"))
    assert p == ["a cat.", "the cat!", "a dog.", "the dog!"]
    assert prompts.readable_name("Faces_easy") == "faces easy"


@pytest.mark.parametrize("name,hint", [("cifar10", "cifar-10-batches-py"),
                                       ("flowers102", "flowers-102"),
                                       ("imagenet", "train/<wnid>")])
def test_missing_dataset_says_where_to_put_it(tmp_path, name, hint):
    with pytest.raises(data.DatasetNotFoundError) as err:
        data.load_splits(name, root=tmp_path, transform=lambda x: x, transform_id="id")
    assert str(tmp_path) in str(err.value) and hint in str(err.value)


def test_unknown_dataset():
    with pytest.raises(data.UnknownDatasetError, match="unknown dataset"):
        data.load_splits("mnist-from-the-web")
