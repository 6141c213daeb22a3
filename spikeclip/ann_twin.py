"""The ANN twin: SpikeCLIP's structure with every LIF replaced by ReLU and T = 1.

Same module classes, names and parameter shapes as the spiking model (state dicts interchange
except the `T`-long readout weights); used as the same-size ANN baseline and for counting MACs
from an ONNX export. The twin's neurons are `spikeclip.neurons.ANNActivation`.
"""

from __future__ import annotations

import dataclasses

from spikeclip.config import SpikeCLIPConfig
from spikeclip.model import SpikeCLIP


def ann_twin_config(config: SpikeCLIPConfig) -> SpikeCLIPConfig:
    """The twin's config: `config` with neuron="ann", T=1 and the non-strict compare."""
    return dataclasses.replace(config, neuron="ann", T=1, strict_threshold=False)


def build_ann_twin(config: SpikeCLIPConfig) -> SpikeCLIP:
    """A freshly initialized ANN twin of the SpikeCLIP described by `config`."""
    return SpikeCLIP(ann_twin_config(config))


def is_ann_twin(model: SpikeCLIP) -> bool:
    """True when `model` was built as an ANN twin."""
    return model.config.neuron == "ann"
