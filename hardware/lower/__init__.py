"""Entrances to the integer pipeline.

- Float models → `FloatGraph`: BN-folded float64 graphs of the image tower (from the NIR graph
  `export.nir` wrote, or from the torch module) and of the text tower, and their torch executor
  (`graph_run`), which the quantizer, the fake-quant twin and fidelity reports run.
- lava-dl netx HDF5 → `LoihiNetwork` (`from_netx`): already fixed point, imported exactly.
"""
