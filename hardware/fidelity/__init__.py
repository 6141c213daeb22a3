"""Fidelity: float model vs fake-quant twin vs bit-accurate simulation of a quantized tower.

Takes a float encoder, its `LoihiNetwork` and images; returns a `FidelityReport` (Markdown/JSON).
"""
