"""SpikeCLIP: a spiking CLIP (image + text towers), its ANN twin and its checkpoint format.

Import-light: this package pulls in torch only (no teachers, no Lava, no export/hardware).
"""

from spikeclip.checkpoint import FORMAT_VERSION, Checkpoint, load, save
from spikeclip.config import SpikeCLIPConfig
from spikeclip.model import SpikeCLIP

__all__ = ["FORMAT_VERSION", "Checkpoint", "SpikeCLIP", "SpikeCLIPConfig", "load", "save"]
