"""The Loihi-style target, one subpackage per pipeline stage (imports point down this list):

- :mod:`hardware.ir`: fixed-point rules, the `LoihiNetwork` schema, pipelined time, readout;
- :mod:`hardware.lower`: NIR graph / torch module → `FloatGraph`; netx file → `LoihiNetwork`;
- :mod:`hardware.simulate`: `LoihiNetwork` → `SimResult` (bit-accurate, batched);
- :mod:`hardware.quantize`: `FloatGraph` → `LoihiNetwork` + `QuantRecord`; the fake-quant twin;
- :mod:`hardware.fidelity`: float model vs twin vs simulator;
- :mod:`hardware.mapping`: `LoihiNetwork` + target → cores, chips, latency (profiles as data);
- :mod:`hardware.energy`: exact operation counts from activity, priced by presets.

Import-light on purpose: importing ``hardware`` loads nothing (no torch, no Lava).
"""
