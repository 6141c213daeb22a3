"""Lowering: torch → NIR, quantized network → Lava process graph, ANN twin → ONNX; the CLI.

Importing this package installs the Lava-on-Python-3.11 import shim (``export.lava_compat``);
it imports nothing of Lava itself.
"""

from export import lava_compat as _lava_compat

_lava_compat.install()
