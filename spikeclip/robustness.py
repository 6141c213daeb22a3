"""Label-set robustness protocols of the paper (research/spikeclip_digest.md §8.2).

A `LabelSet` is the list of candidate names the zero-shot classifier chooses from; its first
`num_classes` entries name the dataset's labels 0..C−1 (in label order), any further entries are
distractors that no image carries.

- `base`: the dataset's own names.
- `replaced` (the paper's "Replace Label", ULS): `k` labels are renamed to an unseen synonym.
  The labels are drawn exactly as the paper's `ELS_ULS/select.py`: `random.seed(seed);
  random.sample(range(1, C + 1), k)` (1-based; seeds 42/43/44 with C = 10, k = 2 give [2, 1],
  [1, 5], [7, 9]); the synonym of each drawn label is then `rng.choice(synonyms[name])` from the
  same generator (with one synonym per name, as the paper's table, that is the paper's choice).
- `expanded` (the paper's "Expand Label", ELS): `n` distractor names are appended, drawn by
  `random.Random(seed).sample(pool, n)` from a pool with the dataset's own names removed (the
  paper appended CIFAR-100 names in fixed blocks of 10; a seeded draw makes repeats comparable).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from spikeclip.errors import UsageError

PROTOCOLS = ("base", "replaced", "expanded")
PAPER_SEEDS = (42, 43, 44)
"""Seeds of the paper's `ELS_ULS/select.py`."""
PAPER_REPLACE_K = 2
"""Labels replaced per seed in the paper (2 of 10)."""
PAPER_EXPAND_BLOCK = 10
"""Distractors added per step in the paper's expanded list (blocks of 10 CIFAR-100 names)."""


class LabelSetError(UsageError):
    """A protocol that cannot be built from the given names, synonyms or pool (message says why)."""


# Unseen names for the digits (the project's offline dataset; its prompts use the words
# "zero".."nine"). Each tuple: words a reader would accept for the digit, none of them a digit word.
DIGIT_SYNONYMS: Mapping[str, tuple[str, ...]] = {
    "zero": ("nought", "naught", "cipher", "nil"),
    "one": ("single", "unity", "ace"),
    "two": ("pair", "couple", "deuce"),
    "three": ("trio", "triple", "trey"),
    "four": ("quartet", "tetrad", "quad"),
    "five": ("quintet", "pentad", "fiver"),
    "six": ("half dozen", "sextet", "hexad"),
    "seven": ("septet", "heptad"),
    "eight": ("octet", "octad", "ogdoad"),
    "nine": ("nonet", "ennead"),
}

# Distractors for digits: other glyphs a handwritten 8×8 scan could plausibly be.
DIGIT_DISTRACTORS: tuple[str, ...] = (
    "ten", "eleven", "twelve", "thirteen", "twenty", "hundred",
    "letter a", "letter b", "letter c", "letter e", "letter l", "letter o",
    "letter s", "letter x", "letter z", "plus sign", "minus sign", "equals sign",
    "question mark", "exclamation mark", "star", "heart", "arrow", "circle",
    "square", "triangle", "cross", "smiley face", "dollar sign", "percent sign",
)  # fmt: skip

# Unseen names for Fashion-MNIST's classes (its own names, prompts.FASHION_MNIST_CLASSES): words
# a shop would use for the same garment, none of them a word of another class's name.
FASHION_MNIST_SYNONYMS: Mapping[str, tuple[str, ...]] = {
    "T-shirt/top": ("tee", "singlet", "camisole"),
    "Trouser": ("pants", "slacks", "jeans"),
    "Pullover": ("sweater", "jumper", "knitwear"),
    "Dress": ("gown", "frock", "sundress"),
    "Coat": ("jacket", "overcoat", "parka"),
    "Sandal": ("flip-flop", "espadrille", "slide"),
    "Shirt": ("blouse", "button-down", "polo"),
    "Sneaker": ("trainer", "running shoe", "plimsoll"),
    "Bag": ("handbag", "purse", "tote"),
    "Ankle boot": ("bootie", "chelsea boot", "short boot"),
}  # fmt: skip

# Distractors for Fashion-MNIST: other garments and accessories a catalog photo could show
# (none is a class name or a synonym above), the dataset's analogue of the digits' glyphs.
FASHION_MNIST_DISTRACTORS: tuple[str, ...] = (
    "hat", "cap", "scarf", "glove", "sock", "belt", "necktie", "skirt", "shorts", "hoodie",
    "vest", "swimsuit", "high heel", "loafer", "backpack", "wallet", "umbrella", "sunglasses",
    "wristwatch", "necklace", "mitten", "pajamas", "kimono", "overalls", "leggings", "cardigan",
    "blazer", "raincoat", "slipper", "suitcase",
)  # fmt: skip

# The paper's replacement per STL-10 name (commented alternatives in label_sentence/STL10.py).
STL10_REPLACEMENTS: Mapping[str, tuple[str, ...]] = {
    "airplane": ("aircraft",), "bird": ("crane",), "car": ("automobile",),
    "cat": ("tabby cat",), "deer": ("kangaroo",), "dog": ("wolf",), "horse": ("zebra",),
    "monkey": ("chimpanzee",), "ship": ("boat",), "truck": ("pickup truck",),
}  # fmt: skip

# CIFAR-10's names (our list, torchvision order): the paper's table where the name is shared;
# "automobile" -> "car" and "frog" -> "toad" are ours (the paper code used STL-10's names).
CIFAR10_REPLACEMENTS: Mapping[str, tuple[str, ...]] = {
    **{k: v for k, v in STL10_REPLACEMENTS.items() if k not in ("car", "monkey")},
    "automobile": ("car",), "frog": ("toad",),
}  # fmt: skip

# CIFAR-100 fine label names (label order), readable form: the paper's distractor source.
CIFAR100_NAMES: tuple[str, ...] = (
    "apple", "aquarium fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak tree", "orange", "orchid", "otter", "palm tree", "pear", "pickup truck", "pine tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
    "wardrobe", "whale", "willow tree", "wolf", "woman", "worm",
)

SYNONYMS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "digits": DIGIT_SYNONYMS, "fashion-mnist": FASHION_MNIST_SYNONYMS,
    "stl10": STL10_REPLACEMENTS, "cifar10": CIFAR10_REPLACEMENTS,
}  # fmt: skip
DISTRACTORS: Mapping[str, tuple[str, ...]] = {
    "digits": DIGIT_DISTRACTORS, "fashion-mnist": FASHION_MNIST_DISTRACTORS,
    "stl10": CIFAR100_NAMES, "cifar10": CIFAR100_NAMES,
}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Replacement:
    """Label `label` (0-based) was renamed from `old` to `new`."""

    label: int
    old: str
    new: str


@dataclass(frozen=True, kw_only=True)
class LabelSet:
    """Candidate names of one zero-shot run: `class_names[:num_classes]` name labels
    0..num_classes−1, the rest are `distractors`. `seed` is None for `base`."""

    protocol: str
    seed: int | None
    class_names: tuple[str, ...]
    num_classes: int
    replaced: tuple[Replacement, ...] = ()
    distractors: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """JSON-ready record (names, seed, what was replaced or added)."""
        return {"protocol": self.protocol, "seed": self.seed,
                "class_names": list(self.class_names), "num_classes": self.num_classes,
                "replaced": [{"label": r.label, "old": r.old, "new": r.new}
                             for r in self.replaced],
                "distractors": list(self.distractors)}


def _check_names(names: Sequence[str]) -> tuple[str, ...]:
    names = tuple(names)
    if not names or any(not isinstance(n, str) or not n.strip() for n in names):
        raise LabelSetError("class names must be a non-empty list of non-empty strings")
    folded = [n.casefold() for n in names]
    if len(set(folded)) != len(folded):
        raise LabelSetError(f"class names are not unique: {list(names)}")
    return names


def base_set(class_names: Sequence[str]) -> LabelSet:
    """The dataset's own names."""
    names = _check_names(class_names)
    return LabelSet(protocol="base", seed=None, class_names=names, num_classes=len(names))


def replaced_set(class_names: Sequence[str], synonyms: Mapping[str, Sequence[str]], *,
                 seed: int, k: int = PAPER_REPLACE_K) -> LabelSet:
    """Rename `k` labels to unseen synonyms (module docstring: the paper's draw). Only labels
    with synonyms are eligible (all of them for the built-in tables). Raises `LabelSetError`
    when fewer than k labels are eligible or a synonym collides with a name in the set."""
    names = _check_names(class_names)
    eligible = [i + 1 for i, n in enumerate(names) if synonyms.get(n)]
    if not 1 <= k <= len(eligible):
        raise LabelSetError(f"replaced: k={k} but {len(eligible)} of {len(names)} class names "
                            f"have synonyms")
    rng = random.Random(seed)
    picks = rng.sample(eligible, k)
    new_names = list(names)
    replaced = []
    for one_based in picks:
        label = one_based - 1
        new = rng.choice(tuple(synonyms[names[label]]))
        new_names[label] = new
        replaced.append(Replacement(label=label, old=names[label], new=new))
    folded = [n.casefold() for n in new_names]
    if len(set(folded)) != len(folded):
        raise LabelSetError(f"replaced (seed {seed}): a synonym collides with another class name: "
                            f"{new_names}")
    return LabelSet(protocol="replaced", seed=seed, class_names=tuple(new_names),
                    num_classes=len(names), replaced=tuple(replaced))


def expanded_set(class_names: Sequence[str], pool: Sequence[str], *, seed: int,
                 n: int = PAPER_EXPAND_BLOCK) -> LabelSet:
    """Append `n` distractors drawn by `random.Random(seed).sample(pool', n)`, pool' = `pool`
    without the class names (case-insensitive) and without repeats, in pool order."""
    names = _check_names(class_names)
    taken = {c.casefold() for c in names}
    clean: list[str] = []
    for p in pool:
        if p.casefold() not in taken:
            taken.add(p.casefold())
            clean.append(p)
    if not 1 <= n <= len(clean):
        raise LabelSetError(f"expanded: asked for {n} distractors, the pool has {len(clean)} "
                            "names outside the class set")
    extra = tuple(random.Random(seed).sample(clean, n))
    return LabelSet(protocol="expanded", seed=seed, class_names=names + extra,
                    num_classes=len(names), distractors=extra)


def label_sets(class_names: Sequence[str], protocols: Sequence[str], *, seeds: Sequence[int],
               synonyms: Mapping[str, Sequence[str]] | None = None,
               pool: Sequence[str] | None = None, k: int = PAPER_REPLACE_K,
               n: int = PAPER_EXPAND_BLOCK) -> list[LabelSet]:
    """Every requested protocol: `base` once, `replaced`/`expanded` once per seed."""
    out: list[LabelSet] = []
    for protocol in protocols:
        if protocol == "base":
            out.append(base_set(class_names))
        elif protocol == "replaced":
            if synonyms is None:
                raise LabelSetError("replaced: no synonym table for this dataset (give one)")
            out += [replaced_set(class_names, synonyms, seed=s, k=k) for s in seeds]
        elif protocol == "expanded":
            if pool is None:
                raise LabelSetError("expanded: no distractor pool for this dataset (give one)")
            out += [expanded_set(class_names, pool, seed=s, n=n) for s in seeds]
        else:
            raise LabelSetError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    return out
