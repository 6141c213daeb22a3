"""Records the spikes of many populations in one process (``SpikeRecorder`` + its model)."""

from export.lava.procs.recorder.process import SpikeRecorder

__all__ = ["SpikeRecorder"]
