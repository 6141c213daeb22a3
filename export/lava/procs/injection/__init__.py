"""Per-sample static input injected as one LIF's bias (``BiasInjection`` + its model)."""

from export.lava.procs.injection.process import BiasInjection

__all__ = ["BiasInjection"]
