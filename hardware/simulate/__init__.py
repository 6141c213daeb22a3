"""`LoihiNetwork` → `SimResult`: the bit-accurate, batched, logical-time simulator (fast path in
torch floats, int64 reference step), the host input rule.
"""
