"""Session-wide test settings: offline hub, deterministic single-threaded torch, Lava shim."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from export import lava_compat  # noqa: E402

lava_compat.install()
