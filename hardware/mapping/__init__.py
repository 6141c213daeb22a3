"""`LoihiNetwork` + target profile → `Mapping`: layers → cores → chips, design rules, placement,
latency and I/O; target profiles (`targets/*.json`) and the partition-table report.
"""
