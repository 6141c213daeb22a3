"""The Loihi-style target: number formats, the integer network schema, kernels, simulation.

Import-light on purpose: importing ``hardware`` loads nothing (no torch, no Lava). Use the
submodules: ``hardware.fixed`` (fixed-point rules), ``hardware.network`` (``LoihiNetwork``
schema and its layer records from ``hardware.layers``), ``hardware.kernels`` (batched integer
step kernels).
"""
