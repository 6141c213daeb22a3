"""Typed errors of `hardware.energy`; each message is one line naming the layer or field."""

from __future__ import annotations

from spikeclip.errors import SpikeCLIPError, UsageError


class EnergyError(SpikeCLIPError, ValueError):
    """Base class of every error `hardware.energy` raises on purpose."""


class EnergyCountError(EnergyError):
    """Activity or layer geometry handed to a counter is inconsistent (shape, sign, order)."""


class UnknownPresetError(EnergyError, UsageError, KeyError):
    """A price preset name is not one of `hardware.energy.presets.PRESETS`."""


class EnergyUsageError(EnergyError, UsageError):
    """A request the energy model cannot price as asked (a preset of another rule, no input)."""
