"""Lowering and the application, by pipeline stage:

- :mod:`export.nir` (stage 1): torch → NIR graph, its metadata schema and an executor;
- :mod:`export.lava` (a backend): `LoihiNetwork` → Lava process graph, run on CPU; netx HDF5;
- :mod:`export.onnx` (the ANN side): ANN twin → ONNX and its MAC count;
- :mod:`export.cli`: the console scripts that compose every stage.

Import-light: importing ``export`` or ``export.nir`` loads nothing of Lava and installs no import
hook; only :mod:`export.lava` does (it installs :mod:`export.lava.compat` first).
"""
