"""`LoihiNetwork` → `SimResult`: the bit-accurate, batched, logical-time simulator.

``engine.simulate`` is the entry. Two paths compute the same integers, each a table of one rule
per layer kind (``STEP``, keyed by the layer record's ``KIND``) that ``walk.walk`` runs in
topological order: ``fast`` (torch floats with per-tensor exactness bounds) and ``reference``
(int64, every rule a call into ``hardware.ir.fixed``). ``host_input`` holds the host input
rule, ``result`` the returned record, the errors and the float exactness bounds.
"""
