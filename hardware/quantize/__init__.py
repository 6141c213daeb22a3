"""`FloatGraph` → `LoihiNetwork` + `QuantRecord`: the quantizer (image and text towers), its
rounding rules and plan, the fake-quant twin (float64 reference of the integers), grid snapping
and hardware-aware fine-tuning through the twin.
"""
