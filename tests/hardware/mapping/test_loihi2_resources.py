"""The Loihi 2 resource model against Intel's compiler output, and one hand case per rule.

References (independent of the code): the per-layer tables Intel's compiler printed in the
lava-dl tutorial notebooks (PilotNet SNN in ``shared/fixtures/lava-dl/README.md``; PilotNet
SDNN, YOLO-KP and MNIST typed below from ``pilotnet_sdnn/benchmark.ipynb``,
``yolo_kp/run.ipynb`` and ``mnist/run.ipynb``) and integers derived by hand in the comments.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
from _paths import TESTS

from hardware.mapping.design_rules import DesignRuleError
from hardware.mapping.loihi2_model import (
    RESOURCES,
    VARIANTS,
    ResourceModelError,
    load_core_model,
    parameters,
)
from hardware.mapping.loihi2_resources import (
    CoreSplit,
    LayerGeometry,
    evaluate_split,
    map_layer,
)
from hardware.mapping.profiles import available_targets

# ------------------------------------------------------------------------------------------
# Intel's PilotNet SNN table (fixture README; pilotnet_snn/benchmark.ipynb), one row per layer
# of network.net: layer key -> (AxonIn, NeuronGr, Neurons, Synapses, AxonMap, AxonMem, Cores).
INTEL_PILOTNET_SNN = {
    "10": (10, 1, 1, 10, 1, 0, 1),  # dense -> 1
    "9": (50, 1, 10, 150, 10, 0, 1),  # dense -> 10
    "8": (100, 1, 50, 1300, 50, 0, 1),  # dense -> 50
    "7": (2560, 1, 8, 7253, 8, 0, 12),  # dense -> 100
    "5": (1, 1, 2048, 2880, 1280, 0, 2),  # Conv(16, 2, 64)
    "4": (1, 1, 2048, 2160, 29, 9, 3),  # Conv(8, 4, 64)
    "3": (2, 1, 2688, 1620, 112, 46, 3),  # Conv(8, 7, 48)
    "2": (2, 1, 2160, 864, 113, 32, 13),  # Conv(4, 15, 36)
    "1": (2, 1, 3072, 81, 253, 93, 25),  # Conv(4, 32, 24)
    "0": (1, 1, 3168, 0, 1015, 731, 13),  # Conv(16, 66, 3): the input layer
}
INTEL_PILOTNET_SNN_TOTAL = 74

# Lava num_weight_bits of each layer, by hand from the weight ranges in network.net: all
# weights are even (common factor 2), so the mantissa is w / 2 and needs the signed width b
# with -2^(b-1) <= min and max <= 2^(b-1) - 1:
#   1: [-20, 18] -> [-10, 9] -> 5    2: [-12, 10] -> [-6, 5] -> 4    3: [-10, 8] -> [-5, 4] -> 4
#   4: [-8, 8] -> [-4, 4] -> 4       5: [-8, 8] -> 4                 7: [-6, 6] -> [-3, 3] -> 3
#   8: [-14, 10] -> [-7, 5] -> 4     9: [-24, 20] -> [-12, 10] -> 5  10: [-24, 42] -> [-12, 21] -> 6
PILOTNET_SNN_WEIGHT_RANGE = {
    "1": (-20, 18, 5),
    "2": (-12, 10, 4),
    "3": (-10, 8, 4),
    "4": (-8, 8, 4),
    "5": (-8, 8, 4),
    "7": (-6, 6, 3),
    "8": (-14, 10, 4),
    "9": (-24, 20, 5),
    "10": (-24, 42, 6),
}


PILOTNET_NET = (
    TESTS / "fixtures" / "lava-dl" / "pilotnet_snn" / "network.net"
)


def _fixture() -> Path:
    """Intel's PilotNet SNN, committed under ``tests/fixtures/lava-dl/`` (BSD-3, provenance in
    its README: unchanged from lava-dl's tutorials)."""
    return PILOTNET_NET


def _pilotnet_snn_layers() -> list[LayerGeometry]:
    """PilotNet SNN's layers read from the netx HDF5 file (shapes stored as (C, H, W))."""
    out: list[LayerGeometry] = []
    with h5py.File(_fixture(), "r") as f:
        group = f["layer"]
        keys = sorted(group, key=int)
        kinds = [group[k]["type"][0].decode() for k in keys]
        prev: tuple[int, int, int] | None = None
        for i, (key, kind) in enumerate(zip(keys, kinds)):
            g = group[key]
            shape = tuple(int(x) for x in g["shape"][()])
            if kind == "flatten":
                assert prev is not None
                prev = (math.prod(prev), 1, 1)
                continue
            later = [k for k in kinds[i + 1 :] if k != "flatten"]
            consumer = "host" if not later else ("conv" if later[0] == "conv" else "dense")
            common = {"name": key, "consumer": consumer}
            if kind == "input":
                layer = LayerGeometry(kind="input", in_shape=shape, out_shape=shape, **common)
            else:
                w = g["weight"][()]
                lo, hi, bits = PILOTNET_SNN_WEIGHT_RANGE[key]
                assert (w.min(), w.max()) == (lo, hi), key  # the ranges derived above
                assert np.all(np.asarray(w) % 2 == 0), key
                if kind == "conv":
                    layer = LayerGeometry(
                        kind="conv",
                        in_shape=prev,
                        out_shape=shape,
                        kernel=tuple(int(x) for x in g["kernelSize"][()]),
                        stride=tuple(int(x) for x in g["stride"][()]),
                        padding=tuple(int(x) for x in g["padding"][()]),
                        groups=int(g["groups"][()]),
                        weight_bits=bits,
                        **common,
                    )
                else:
                    out_shape = (int(g["outFeatures"][()]), 1, 1)
                    assert int(g["inFeatures"][()]) == math.prod(prev)
                    layer = LayerGeometry(
                        kind="dense",
                        in_shape=prev,
                        out_shape=out_shape,
                        weight_bits=bits,
                        **common,
                    )
                    shape = out_shape
            out.append(layer)
            prev = shape
    return out


def _within(ours: int, intel: int, tolerance: float) -> bool:
    return abs(ours - intel) <= tolerance * intel


def test_pilotnet_snn_cores_match_intels_compiler_per_layer_and_in_total() -> None:
    model = load_core_model("calibrated")
    layers = _pilotnet_snn_layers()
    assert sorted(layer.name for layer in layers) == sorted(INTEL_PILOTNET_SNN)
    ours = {layer.name: map_layer(layer, model, "intel").cores for layer in layers}
    for name, row in INTEL_PILOTNET_SNN.items():
        assert _within(ours[name], row[-1], 0.20), (name, ours[name], row[-1])
    total = sum(ours.values())
    assert _within(total, INTEL_PILOTNET_SNN_TOTAL, 0.10), total
    # The calibrated model is in fact exact, layer by layer.
    assert ours == {name: row[-1] for name, row in INTEL_PILOTNET_SNN.items()}


def test_pilotnet_snn_per_core_columns_match_intels_table() -> None:
    """AxonIn, NeuronGr, Neurons, Synapses and AxonMap (means over each layer's cores, as
    Intel prints them: 7253 = 2560 x (11 x 3 + 1 x 1) / 12) equal Intel's integers; AxonMem is
    an upper estimate (Intel's figures are 1.2-3.3x smaller)."""
    model = load_core_model("calibrated")
    for layer in _pilotnet_snn_layers():
        result = map_layer(layer, model, "intel")
        intel = INTEL_PILOTNET_SNN[layer.name]
        mean = result.mean
        ours = (mean.axon_in, mean.neuron_groups, mean.neurons, mean.syn_mem_words, mean.axon_map)
        assert tuple(int(v) for v in ours) == intel[:5], layer.name
        assert intel[5] <= mean.axon_mem <= 3.5 * intel[5] + 1, layer.name


def test_pilotnet_snn_dense_100_reproduces_intels_synmem_log() -> None:
    """pilotnet_snn/benchmark.ipynb logs SynMem allocation=61440 for the whole dense -> 100 layer
    and 12800 after the first split (ratio 6, ceil(100 / 6) = 17 neurons), limit 12000.
    By hand: a synapse costs 3 + 12 = 15 bits, a row header 20 bits, words of 64 bits:
    100 neurons: ceil((1500 + 20) / 64) = 24 words x 2560 axons = 61440;
    17 neurons: ceil((255 + 20) / 64) = 5 words x 2560 = 12800."""
    model = load_core_model("calibrated")
    dense = next(x for x in _pilotnet_snn_layers() if x.name == "7")
    assert evaluate_split(dense, CoreSplit(tile_c=100), model).worst.syn_mem_words == 61440
    assert evaluate_split(dense, CoreSplit(tile_c=17), model).worst.syn_mem_words == 12800
    final = map_layer(dense, model, "intel")
    assert final.split.tile_c == 9  # ratio 6 x ceil(12800 / 12000) = 12: ceil(100 / 12) = 9


def test_variants_bracket_the_calibrated_pilotnet_count() -> None:
    layers = _pilotnet_snn_layers()
    totals = {
        (variant, strategy): sum(
            map_layer(x, load_core_model(variant), strategy).cores for x in layers
        )
        for variant in VARIANTS
        for strategy in ("intel", "tight")
    }
    assert totals[("calibrated", "intel")] == 74
    assert totals[("pessimistic", "intel")] >= 74
    assert totals[("optimistic", "tight")] <= totals[("calibrated", "tight")] < 74


# ------------------------------------------------------------------------------------------
# PilotNet SDNN (pilotnet_sdnn/benchmark.ipynb): same geometry as the SNN, input layer skipped,
# other weights. num_weight_bits from its network.net ranges (w / 2, signed width):
#   1: [-30, 34] -> 6   2: [-22, 20] -> 5   3: [-16, 14] -> 4   4: [-14, 16] -> [-7, 8] -> 5
#   5: [-14, 10] -> 4   7: [-10, 12] -> 4   8: [-36, 14] -> [-18, 7] -> 6   9: [-12, 16] -> 5
#   10: [-12, 10] -> 4
SDNN_BITS = {"1": 6, "2": 5, "3": 4, "4": 5, "5": 4, "7": 4, "8": 6, "9": 5, "10": 4}
# Intel's SDNN table: layer -> (Synapses, Cores); total 61.
INTEL_PILOTNET_SDNN = {
    "10": (10, 1),
    "9": (150, 1),
    "8": (1500, 1),
    "7": (7253, 12),
    "5": (2880, 2),
    "4": (2592, 3),
    "3": (1620, 3),
    "2": (864, 13),
    "1": (81, 25),
}


def test_pilotnet_sdnn_synapses_and_cores_match_intels_table() -> None:
    model = load_core_model("calibrated")
    total = 0
    for layer in _pilotnet_snn_layers():
        if layer.name == "0":  # the SDNN benchmark skips the input layer
            continue
        layer = replace(layer, weight_bits=SDNN_BITS[layer.name])
        result = map_layer(layer, model, "intel")
        assert (round(result.mean.syn_mem_words), result.cores) == INTEL_PILOTNET_SDNN[layer.name]
        total += result.cores
    assert total == 61


# ------------------------------------------------------------------------------------------
# YOLO-KP on Kapoho Point (yolo_kp/run.ipynb, a 2023 compiler): the layer table netx printed
# (W, H, C, kernel, stride, padding; the first layer reads the 448 x 448 RGB frame) and the
# cores Intel's compiler gave each layer (574 in all). The weights are not public (Git LFS),
# so the test runs the extremes of num_weight_bits: the counts are neuron-bound either way.
YOLO_KP = [  # (C_in, H_in, C_out, H_out, k, s, p, Intel's cores); square maps
    (3, 448, 16, 224, 3, 2, 1, 224),
    (16, 224, 32, 112, 3, 2, 1, 112),
    (32, 112, 64, 56, 3, 2, 1, 56),
    (64, 56, 128, 28, 3, 2, 1, 28),
    (128, 28, 256, 28, 3, 1, 1, 56),
    (256, 28, 256, 14, 3, 2, 1, 16),
    (256, 14, 512, 14, 3, 1, 1, 32),
    (512, 14, 256, 14, 1, 1, 0, 14),
    (256, 14, 512, 14, 3, 1, 1, 32),
    (512, 14, 48, 14, 1, 1, 0, 4),
]


@pytest.mark.parametrize("weight_bits", [4, 8])
def test_yolo_kp_cores_match_intels_table(weight_bits: int) -> None:
    model = load_core_model("calibrated")
    total = 0
    for i, (c_in, h_in, c_out, h_out, k, s, p, intel) in enumerate(YOLO_KP):
        layer = LayerGeometry(
            name=f"conv{i}",
            kind="conv",
            in_shape=(c_in, h_in, h_in),
            out_shape=(c_out, h_out, h_out),
            kernel=(k, k),
            stride=(s, s),
            padding=(p, p),
            weight_bits=weight_bits,
            consumer="conv" if i + 1 < len(YOLO_KP) else "host",
        )
        cores = map_layer(layer, model, "intel").cores
        assert _within(cores, intel, 0.20), (i, cores, intel)
        total += cores
    assert _within(total, 574, 0.10), total


def test_mnist_synmem_percentages_fit_the_newer_compilers_16000_words() -> None:
    """mnist/run.ipynb (2024 compiler) prints SynMem 1.60 %, 16.80 %, 78.40 % and AxonIn 0.40 %,
    0.80 %, 4.90 % for 784-128-64-10 with 8-bit weights, 50 neurons on the first layer's cores.
    By hand (8 + 12 bits per synapse, 20-bit header): 64 x ceil(220 / 64) = 256 words;
    128 x ceil(1300 / 64) = 2688; 784 x ceil(1020 / 64) = 12544; of 16000: 1.6 / 16.8 / 78.4 %."""
    model = load_core_model("optimistic")
    assert model.syn_mem_words == 16000
    cases = [(64, 10, 256, 0.016, 0.004), (128, 64, 2688, 0.168, 0.008)]
    cases.append((784, 50, 12544, 0.784, 0.049))
    for n_in, n_core, words, syn_pct, axon_pct in cases:
        layer = LayerGeometry(
            name=f"fc{n_in}",
            kind="dense",
            in_shape=(n_in, 1, 1),
            out_shape=(n_core, 1, 1),
            weight_bits=8,
        )
        worst = evaluate_split(layer, CoreSplit(tile_c=n_core), model).worst
        assert worst.syn_mem_words == words
        assert worst.syn_mem_words / model.syn_mem_words == pytest.approx(syn_pct)
        assert worst.axon_in / model.axon_in == pytest.approx(axon_pct)


# ------------------------------------------------------------------------------------------
# One minimal hand-derived case per rule (calibrated: 4095 neurons, 12000 words, 16000 axons).


def _conv(**kw: object) -> LayerGeometry:
    base: dict[str, object] = {"name": "c", "kind": "conv", "consumer": "conv"}
    base.update(kw)
    return LayerGeometry(**base)  # type: ignore[arg-type]


def test_neurons_rule_power_of_two_columns_and_full_tile_allocation() -> None:
    model = load_core_model("calibrated")
    # 64 x 2 x 20 (2560 neurons) would fit one core, but the core allocates next_pow2(20) = 32
    # columns: 32 x 2 x 64 = 4096 > 4095, so the tile halves to 16 columns: 2 cores, each
    # allocating 16 x 2 x 64 = 2048 (also the one holding the last 4 columns).
    layer = _conv(in_shape=(64, 4, 22), out_shape=(64, 2, 20), kernel=(3, 3))
    result = map_layer(layer, model, "intel")
    assert (result.cores, result.split.tile_w) == (2, 16)
    assert result.worst.neurons == result.mean.neurons == 2048
    assert map_layer(layer, model, "tight").cores == 1  # any width: 2560 <= 4095
    # A dense layer of 5000 neurons from 1 input: 5000 > 4095 -> ratio 2 -> 2500 each.
    dense = LayerGeometry(name="d", kind="dense", in_shape=(1, 1, 1), out_shape=(5000, 1, 1))
    result = map_layer(dense, model, "intel")
    assert (result.cores, result.worst.neurons) == (2, 2500)


def test_synaptic_memory_rule_dense_rows() -> None:
    model = load_core_model("calibrated")
    # 1000 inputs -> 50 neurons, 8-bit: (8 + 12) bits per synapse; one core: ceil((50 x 20 + 20)
    # / 64) = 16 words x 1000 = 16000 > 12000 -> ratio 2 -> 25 neurons: ceil(520 / 64) = 9 words
    # x 1000 = 9000: 2 cores.
    layer = LayerGeometry(name="d", kind="dense", in_shape=(1000, 1, 1), out_shape=(50, 1, 1))
    assert evaluate_split(layer, CoreSplit(tile_c=50), model).over == ("syn_mem_words",)
    result = map_layer(layer, model, "intel")
    assert (result.cores, result.worst.syn_mem_words) == (2, 9000)
    # Sparse storage, 75 % zeros: 10 of 40 synapses per input: ceil((10 x 20 + 20) / 64) = 4
    # words per input (dense storage: ceil((800 + 20) / 64) = 13).
    sparse = LayerGeometry(
        name="s",
        kind="dense",
        in_shape=(100, 1, 1),
        out_shape=(40, 1, 1),
        sparse_synapses=True,
        sparsity=0.75,
    )
    assert evaluate_split(sparse, CoreSplit(tile_c=40), model).worst.syn_mem_words == 400
    plain = replace(sparse, sparse_synapses=False)
    assert evaluate_split(plain, CoreSplit(tile_c=40), model).worst.syn_mem_words == 1300


def test_synaptic_memory_rule_shared_conv_rows_and_channel_split() -> None:
    model = load_core_model("calibrated")
    # PilotNet's first conv: 3 -> 24 channels, 3 x 3, x-stride 2, 5-bit weights: 27 rows of
    # 24 weights x (5 + 1 stride-phase bit) + 20 = 164 bits -> 3 words: 81 (Intel: 81).
    layer = _conv(
        in_shape=(3, 66, 200), out_shape=(24, 32, 99), kernel=(3, 3), stride=(2, 2), weight_bits=5
    )
    assert (
        evaluate_split(layer, CoreSplit(tile_c=24, tile_h=32, tile_w=4), model).worst.syn_mem_words
        == 81
    )
    # 1 x 1, 512 -> 512, 8-bit on a 1 x 1 map: 512 rows x ceil((512 x 8 + 20) / 64) = 65 words
    # = 33280 > 12000 -> ratio 3 -> power of two 4 -> 128 channels: 512 x ceil(1044 / 64) = 17
    # -> 8704 words, 4 cores. Fewest cores with any channel count: 512 x ceil((8 t + 20) / 64)
    # <= 12000 -> t <= 181 -> 3 cores.
    wide = _conv(in_shape=(512, 1, 1), out_shape=(512, 1, 1), consumer="dense")
    result = map_layer(wide, model, "intel")
    assert (result.cores, result.split.tile_c, result.worst.syn_mem_words) == (4, 128, 8704)
    assert map_layer(wide, model, "tight").cores == 3
    # A pool is a depthwise shared kernel: 2 x 2, stride 2 over 16 channels: 16 x 4 rows of one
    # (1 + 1)-bit weight: ceil((2 + 20) / 64) = 1 word each -> 64 words; AxonIn = stride_x = 2.
    pool = LayerGeometry(
        name="p",
        kind="pool",
        in_shape=(16, 8, 8),
        out_shape=(16, 4, 4),
        kernel=(2, 2),
        stride=(2, 2),
        groups=16,
        weight_bits=1,
    )
    worst = evaluate_split(pool, CoreSplit(tile_c=16, tile_h=4, tile_w=4), model).worst
    assert (worst.syn_mem_words, worst.axon_in) == (64, 2)


def test_input_axon_rule() -> None:
    # With 16000 words (optimistic), one neuron can take 16000 inputs (1 word each), not 16001.
    model = load_core_model("optimistic")
    fits = LayerGeometry(name="a", kind="dense", in_shape=(16000, 1, 1), out_shape=(1, 1, 1))
    assert map_layer(fits, model).cores == 1
    with pytest.raises(DesignRuleError) as err:
        map_layer(replace(fits, in_shape=(16001, 1, 1)), model)
    assert (err.value.resource, err.value.demand, err.value.limit) == ("axon_in", 16001, 16000)
    # Calibrated (12000 words): synaptic memory binds first, at 12001 inputs of one neuron.
    with pytest.raises(DesignRuleError) as err:
        map_layer(replace(fits, in_shape=(12001, 1, 1)), load_core_model("calibrated"))
    assert (err.value.rule, err.value.demand) == ("fits_synaptic_memory", 12001)
    # A shared-weight conv input costs stride_x axons, whatever its fan-in.
    conv = _conv(in_shape=(256, 14, 14), out_shape=(64, 14, 7), kernel=(1, 1), stride=(1, 2))
    assert map_layer(conv, load_core_model("calibrated")).worst.axon_in == 2


def test_axon_map_and_axon_memory_counting() -> None:
    model = load_core_model("calibrated")
    # 16 x 4 x 8 outputs of an x-stride-2 conv on one core: feeding a conv, 4 x 8 positions x 2
    # phases = 64 map entries and 32 x 3 destination cores = 96 memory entries; feeding a dense
    # layer, one entry per neuron (512) and no axon memory.
    layer = _conv(
        in_shape=(8, 8, 16),
        out_shape=(16, 4, 8),
        kernel=(1, 1),
        stride=(2, 2),
        consumer_cores_per_position=3,
    )
    split = CoreSplit(tile_c=16, tile_h=4, tile_w=8)
    worst = evaluate_split(layer, split, model).worst
    assert (worst.axon_map, worst.axon_mem, worst.neuron_groups) == (64, 96, 1)
    worst = evaluate_split(replace(layer, consumer="dense"), split, model).worst
    assert (worst.axon_map, worst.axon_mem) == (512, 0)
    # The 2023 compiler (optimistic) stores one entry per position.
    assert evaluate_split(layer, split, load_core_model("optimistic")).worst.axon_map == 32
    # A map limit of 100 entries splits 300 dense neurons into 3 cores of 100.
    small = replace(model, axon_map=100)
    dense = LayerGeometry(name="d", kind="dense", in_shape=(1, 1, 1), out_shape=(300, 1, 1))
    assert map_layer(dense, small).cores == 3


def test_every_parameter_has_a_source_and_the_variants_are_ordered() -> None:
    params = parameters()
    assert all(p.source.strip() and set(p.values) == set(VARIANTS) for p in params)
    cal, opt, pes = (load_core_model(v) for v in VARIANTS)
    for r in RESOURCES:
        assert opt.limit(r) >= cal.limit(r) >= pes.limit(r), r
    assert pes.row_header_bits >= cal.row_header_bits >= opt.row_header_bits
    assert (cal.neurons, cal.axon_in, cal.neuron_groups, cal.syn_mem_words) == (
        4095,
        16000,
        8,
        12000,
    )
    assert "loihi2-resources" not in available_targets()


def test_invalid_inputs_raise_usage_errors() -> None:
    with pytest.raises(ResourceModelError, match="does not follow"):
        _conv(in_shape=(3, 8, 8), out_shape=(4, 8, 8), kernel=(3, 3))
    with pytest.raises(ResourceModelError, match="weight_bits"):
        LayerGeometry(
            name="d", kind="dense", in_shape=(1, 1, 1), out_shape=(1, 1, 1), weight_bits=9
        )
    with pytest.raises(ResourceModelError, match="variant"):
        load_core_model("typical")  # type: ignore[arg-type]
    with pytest.raises(ResourceModelError, match="tile_c"):
        CoreSplit(tile_c=0)
