"""Token-shared linear layer with a delay line (``TokenLinear`` + its fixed-point model)."""

from export.lava.procs.token_linear.process import TokenLinear

__all__ = ["TokenLinear"]
