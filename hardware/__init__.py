"""The Loihi-style target: number formats, the integer network schema, kernels, simulation.

Import-light on purpose: importing ``hardware`` loads nothing (no torch, no Lava). Use the
submodules: ``hardware.ir.fixed`` (fixed-point rules), ``hardware.ir.network`` (``LoihiNetwork``
schema and its layer records from ``hardware.ir.layers``), ``hardware.simulate.reference`` (batched
integer step kernels).
"""
