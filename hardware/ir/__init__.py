"""The integer network: Loihi fixed-point rules, the `LoihiNetwork` schema and its layer
records, pipelined time (depths, aligning delays) and the host readout rule.

Takes nothing of the other stages; every backend (simulate, mapping, energy, export.lava) reads
what is defined here.
"""
