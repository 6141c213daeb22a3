"""Class names and prompt templates for the datasets the paper evaluates, and the digits set.

Class names that torchvision reads from the dataset files (CIFAR-100, Flowers102, Pets, STL-10,
Caltech101) come from the dataset object (`data.py` cleans them with `readable_name`); the lists
here are the ones needed without the files. CIFAR-10 has its own list: the paper code used STL-10's
(monkey instead of frog, car instead of automobile, different order), which is wrong.
"""

from __future__ import annotations

# torchvision CIFAR10 label order (batches.meta): index i is label i.
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip

# STL-10 label order (class_names.txt): differs from CIFAR-10 (no frog; monkey; car).
STL10_CLASSES: tuple[str, ...] = (
    "airplane", "bird", "car", "cat", "deer",
    "dog", "horse", "monkey", "ship", "truck",
)  # fmt: skip

DIGITS_CLASSES: tuple[str, ...] = (
    "zero", "one", "two", "three", "four",
    "five", "six", "seven", "eight", "nine",
)  # fmt: skip

# Fashion-MNIST label order (the dataset's own table; torchvision's FashionMNIST.classes).
FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

GENERIC_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a blurry photo of a {}.",
    "a low resolution photo of a {}.",
    "a photo of the small {}.",
    "a photo of the big {}.",
    "a cropped photo of a {}.",
    "a bright photo of a {}.",
    "a dark photo of the {}.",
    "a close-up photo of a {}.",
    "a drawing of a {}.",
)

TEMPLATES: dict[str, tuple[str, ...]] = {
    "cifar10": GENERIC_TEMPLATES,
    "cifar100": GENERIC_TEMPLATES,
    "stl10": ("a photo of a {}.", "a photo of the {}."),
    "flowers102": ("a photo of a {}, a type of flower.",),
    "oxford_pets": ("a photo of a {}, a type of pet.",),
    "caltech101": GENERIC_TEMPLATES,
    "imagenet": GENERIC_TEMPLATES,
    "digits": (
        "a photo of the digit {}.",
        "a handwritten digit {}.",
        "a blurry image of the number {}.",
        "a low resolution scan of a handwritten {}.",
        "a small picture of the number {}.",
        "the digit {} written by hand.",
        "a pixelated {}.",
        "a drawing of the number {}.",
    ),
    # grey 28×28 product photos on a black background; each fits in 16 MiniLM tokens
    "fashion-mnist": (
        "a photo of a {}.",
        "a black and white photo of a {}.",
        "a low resolution photo of a {}.",
        "a grayscale product photo of a {}.",
        "a small picture of a {}.",
        "a pixelated photo of a {}.",
        "a photo of a {}, a fashion item.",
        "a catalog photo of the {}.",
    ),
}


def readable_name(raw: str) -> str:
    """Turn a dataset folder or label name into prompt text: `Faces_easy` -> `faces easy`."""
    return " ".join(raw.replace("_", " ").replace("-", " ").split()).lower()


def prompts_for(class_names: tuple[str, ...], templates: tuple[str, ...]) -> list[str]:
    """All `template.format(name)` sentences, class-major: index = c * len(templates) + k."""
    return [t.format(c) for c in class_names for t in templates]
