"""`LoihiNetwork` schema v1: construction checks, graph helpers, save/load round trip."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

from hardware.ir import fixed
from hardware.ir.network import (
    FORMAT_VERSION,
    AttentionLayer,
    ConvLayer,
    DenseLayer,
    Edge,
    HostInputLayer,
    LIFLayer,
    LoihiNetwork,
    MaxPoolLayer,
    NetworkFormatError,
    NetworkValidationError,
    ReadoutLayer,
    SpikeInputLayer,
    TokenLinearLayer,
)
from hardware.ir.timing import Timing

T = 4


def _mini_spikeclip(readout_delay: int = 3) -> LoihiNetwork:
    """A miniature of the quantized image tower using every layer kind.

    host conv0 (3×8×8 → 4×8×8) → lif0 → conv1 (→ 8×8×8) → maxpool(3,2,1) (→ 8×4×4) → lif1
    → qkv token linear (8 → 24 channels, 16 tokens) → lif_qkv → attention (2 heads) → lif_attn
    → proj token linear → readout, plus the residual maxpool → readout edge (delayed).
    Depths (latency: synapses/attention 1, LIF/maxpool/host 0): lif0 0, conv1 0, maxpool 1,
    lif1 1, qkv 1, lif_qkv 2, attn 2, lif_attn 3, proj 3, readout 4 = 1 + 0 + readout_delay.
    """
    rng = np.random.default_rng(0)
    layers = (
        HostInputLayer(
            name="conv0",
            op="conv2d",
            weight=rng.normal(size=(4, 3, 3, 3)),
            bias=rng.normal(size=4).astype(np.float32),
            in_shape=(3, 8, 8),
            padding=(1, 1),
            bias_scale=512.0,
            bias_exp=3,
        ),
        LIFLayer(
            name="lif0",
            shape=(4, 8, 8),
            du=4095,
            dv=2048,
            vth=64,
            bias_exp=3,
            reset_interval=T,
            reset_offset=1,
            meta={"scale": 64.0},
        ),
        ConvLayer(
            name="conv1",
            weights=2 * rng.integers(-128, 128, size=(8, 4, 3, 3)),
            in_shape=(4, 8, 8),
            padding=(1, 1),
        ),
        MaxPoolLayer(name="pool1", in_shape=(8, 8, 8)),
        LIFLayer(
            name="lif1",
            shape=(8, 4, 4),
            du=4095,
            dv=2048,
            vth=100,
            bias_mant=rng.integers(-4096, 4096, size=(8, 4, 4)),
            bias_exp=rng.integers(0, 8, size=(8, 4, 4)),
        ),
        TokenLinearLayer(
            name="qkv",
            weights=4 * rng.integers(-64, 64, size=(24, 8)),
            tokens=16,
            num_weight_bits=7,
            weight_exp=-2,
        ),
        LIFLayer(name="lif_qkv", shape=(24, 16), du=4095, dv=2048, vth=50),
        AttentionLayer(name="attn", channels=8, tokens=16, heads=2),
        LIFLayer(name="lif_attn", shape=(8, 16), du=4095, dv=2048, vth=8, bias_mant=1),
        TokenLinearLayer(
            name="proj",
            weights=rng.integers(0, 256, size=(8, 8)),
            tokens=16,
            sign_mode="excitatory",
            placement="neurocore-L2",
        ),
        ReadoutLayer(
            name="readout",
            in_shape=(8, 16),
            time_weights=[0.1, 0.2, 0.4, 0.8],
            head_weight=rng.normal(size=(5, 8)),
            head_bias=np.zeros(5),
            input_scale=1 / 64,
            input_bias=rng.normal(size=8),
        ),
        DenseLayer(
            name="unused_dense",
            weights=-rng.integers(0, 256, size=(2, 3)),
            in_shape=(3,),
            out_shape=(2, 1),
        ),
        SpikeInputLayer(name="spikes", shape=(3,)),
    )
    edges = (
        Edge(src="conv0", dst="lif0"),
        Edge(src="lif0", dst="conv1"),
        Edge(src="conv1", dst="pool1"),
        Edge(src="pool1", dst="lif1"),
        Edge(src="lif1", dst="qkv"),
        Edge(src="qkv", dst="lif_qkv"),
        Edge(src="lif_qkv", dst="attn"),
        Edge(src="attn", dst="lif_attn"),
        Edge(src="lif_attn", dst="proj"),
        Edge(src="proj", dst="readout"),
        Edge(src="pool1", dst="readout", delay=readout_delay),
        Edge(src="spikes", dst="unused_dense"),
    )
    return LoihiNetwork(
        layers=layers, edges=edges, T=T, provenance={"toolchain": "test", "scales": {"lif0": 64.0}}
    )


def test_depths_and_order_follow_the_graph() -> None:
    net = _mini_spikeclip()
    expected = {
        "conv0": 0,
        "lif0": 0,
        "conv1": 0,
        "pool1": 1,
        "lif1": 1,
        "qkv": 1,
        "lif_qkv": 2,
        "attn": 2,
        "lif_attn": 3,
        "proj": 3,
        "readout": 4,
        "spikes": 0,
        "unused_dense": 0,
    }
    assert {name: net.depth(name) for name in expected} == expected
    assert net.max_depth == 4
    assert Timing.of(net).reset_offset("lif_attn") == 4  # depth + 1
    order = net.topological_order()
    assert sorted(order) == sorted(layer.name for layer in net.layers)
    for e in net.edges:
        assert order.index(e.src) < order.index(e.dst)
    assert net.misaligned() == ()
    short = _mini_spikeclip(readout_delay=1)  # residual arrives at 1 + 0 + 1 = 2 < 4
    assert short.misaligned() == (Edge(src="pool1", dst="readout", delay=1),)
    assert short.depth("readout") == 4  # the max over in-edges


def test_derived_shapes_and_defaults() -> None:
    net = _mini_spikeclip()
    assert net.layer("conv0").out_shape == (4, 8, 8)
    assert net.layer("conv1").out_shape == (8, 8, 8)
    assert net.layer("pool1").out_shape == (8, 4, 4)  # ⌊(8 + 2 − 3)/2⌋ + 1 = 4
    assert net.layer("attn").in_shape == (24, 16)
    qkv = net.layer("qkv")
    assert (qkv.sign_mode, qkv.in_shape, qkv.out_shape) == ("mixed", (8, 16), (24, 16))
    assert net.layer("unused_dense").sign_mode == "inhibitory"
    lif = net.layer("lif_qkv")
    assert lif.bias_mant.shape == (24, 16) and lif.bias_mant.dtype == np.int16
    assert lif.bias_exp.dtype == np.int8 and not lif.bias_mant.flags.writeable
    assert net.layer("attn").placement == "embedded" and net.layer("readout").placement == "host"


def test_save_load_round_trip_is_exact(tmp_path: Path) -> None:
    net = _mini_spikeclip()
    path = net.save(tmp_path / "sub" / "net.npz")
    assert sorted(p.name for p in path.parent.iterdir()) == ["net.npz"]  # no temp file left
    back = LoihiNetwork.load(path)
    assert back == net
    assert back.layer("lif1").bias_mant.dtype == np.int16
    assert back.layer("conv0").bias.dtype == np.float32  # float dtype kept
    assert back.provenance["scales"] == {"lif0": 64.0}
    assert back.layer("lif0").meta == {"scale": 64.0}
    # A changed value makes them differ (equality is not vacuous).
    changed = dataclasses.replace(net.layer("lif1"), vth=101)
    other = dataclasses.replace(
        net, layers=tuple(changed if la.name == "lif1" else la for la in net.layers)
    )
    assert other != net
    other.save(path)  # overwrite in place
    assert LoihiNetwork.load(path).layer("lif1").vth == 101


def test_reset_sub_round_trips_and_is_validated(tmp_path: Path) -> None:
    net = _mini_spikeclip()
    sub = dataclasses.replace(net.layer("lif1"), reset_sub=6400)
    net = dataclasses.replace(
        net, layers=tuple(sub if la.name == "lif1" else la for la in net.layers))
    back = LoihiNetwork.load(net.save(tmp_path / "net.npz"))
    assert back.layer("lif1").reset_sub == 6400 and back.layer("lif0").reset_sub is None
    with pytest.raises(NetworkValidationError, match=r"'lif1'.*reset_sub.*8388608 outside"):
        dataclasses.replace(sub, reset_sub=1 << 23)


def test_recurrent_weights_are_square_on_grid_and_round_trip(tmp_path: Path) -> None:
    lif = LIFLayer(name="r", shape=(2, 1), du=4095, dv=0, vth=4,
                   rec_weights=[[0, -4], [6, 0]], rec_weight_exp=2)
    assert lif.rec_sign_mode == "mixed" and lif.rec_weights.dtype == np.int16
    net = LoihiNetwork(layers=(SpikeInputLayer(name="in", shape=(2,)),
                               DenseLayer(name="d", weights=np.eye(2, dtype=int) * 2), lif),
                       edges=(Edge(src="in", dst="d"), Edge(src="d", dst="r")), T=3)
    back = LoihiNetwork.load(net.save(tmp_path / "net.npz")).layer("r")
    assert np.array_equal(back.rec_weights, lif.rec_weights) and back.rec_weight_exp == 2
    with pytest.raises(NetworkValidationError, match=r"'r'.*rec_weights.*needs \(2, 2\)"):
        dataclasses.replace(lif, rec_weights=np.zeros((3, 3), int))
    with pytest.raises(NetworkValidationError, match=r"'r'.*weights.*not on the mixed grid"):
        dataclasses.replace(lif, rec_weights=[[0, 3], [6, 0]])


def _rewrite_header(src: Path, dst: Path, **changes: object) -> None:
    with np.load(src) as data:
        arrays = {k: data[k] for k in data.files}
    header = json.loads(str(arrays["__header__"]))
    header.update(changes)
    arrays["__header__"] = np.array(json.dumps(header))
    np.savez(dst, **arrays)


def test_load_rejects_other_versions_and_foreign_files(tmp_path: Path) -> None:
    good = _mini_spikeclip().save(tmp_path / "net.npz")
    _rewrite_header(good, tmp_path / "v2.npz", format_version=FORMAT_VERSION + 1)
    with pytest.raises(NetworkFormatError, match="format_version 2"):
        LoihiNetwork.load(tmp_path / "v2.npz")
    np.savez(tmp_path / "foreign.npz", x=np.zeros(3))
    with pytest.raises(NetworkFormatError, match="not a spikeclip-loihi-network file"):
        LoihiNetwork.load(tmp_path / "foreign.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(NetworkFormatError, match="unreadable"):
        LoihiNetwork.load(tmp_path / "junk.npz")


@pytest.mark.parametrize(
    ("kwargs", "field", "text"),
    [
        ({"vth": fixed.VTH_MAX + 1}, "vth", "131072 outside u17 range [0, 131071]"),
        ({"vth": -1}, "vth", "outside u17"),
        ({"du": 4096}, "du", "outside u12"),
        ({"dv": -1}, "dv", "outside u12"),
        ({"bias_mant": 4096}, "bias_mant", "outside s13 range [-4096, 4095]"),
        ({"bias_exp": 8}, "bias_exp", "outside u3 range [0, 7]"),
        ({"bias_mant": np.zeros((3,))}, "bias_mant", "shape (3,) != expected (2,)"),
        ({"reset_interval": 0}, "reset_interval", "steps ≥ 1"),
    ],
)
def test_lif_field_validation_names_layer_and_field(kwargs: dict, field: str, text: str) -> None:
    base = {"name": "lifX", "shape": (2,), "du": 0, "dv": 0, "vth": fixed.VTH_MAX}
    LIFLayer(**base)  # the limit itself is valid
    with pytest.raises(NetworkValidationError, match=re.escape(text)) as info:
        LIFLayer(**{**base, **kwargs})
    assert (info.value.layer, info.value.field) == ("lifX", field)


@pytest.mark.parametrize(
    "bias_mant",
    [
        np.array([2**64 - 1, 3], np.uint64),  # as int64 this would be −1, inside s13
        np.array([2.0**64 - 1.0, 3.0]),  # integral float; as int64 it would wrap
    ],
)
def test_out_of_range_values_are_refused_before_any_cast(bias_mant: np.ndarray) -> None:
    with pytest.raises(NetworkValidationError, match="outside s13 range") as info:
        LIFLayer(name="lifX", shape=(2,), du=0, dv=0, vth=1, bias_mant=bias_mant)
    assert info.value.field == "bias_mant"


@pytest.mark.parametrize(
    ("kwargs", "field", "text"),
    [
        ({"num_weight_bits": 0}, "num_weight_bits", "outside"),
        ({"num_weight_bits": 9}, "num_weight_bits", "outside"),
        ({"weight_exp": -9}, "weight_exp", "outside s4 range"),
        ({"weight_exp": 8}, "weight_exp", "outside s4 range"),
        ({"weights": [[256, -2]]}, "weights", "outside 8-bit mixed range [-256, 255]"),
        ({"weights": [[3, -2]]}, "weights", "not on the mixed grid"),  # mixed 8 bits: even
        ({"weights": [[4, 2]], "num_weight_bits": 6}, "weights", "multiples of 4"),
        ({"weights": [[-1, 2]], "sign_mode": "excitatory"}, "weights", "8-bit excitatory"),
        ({"weights": [[2, 2]], "sign_mode": "bipolar"}, "sign_mode", "not in"),
        ({"weights": [[2.5, 2]]}, "weights", "expected integers"),
        ({"in_shape": (3,)}, "in_shape", "has 3 elements, weights need 2"),
    ],
)
def test_dense_field_validation(kwargs: dict, field: str, text: str) -> None:
    base = {"name": "fc", "weights": [[-256, 254]]}
    DenseLayer(**base)
    with pytest.raises(NetworkValidationError, match=re.escape(text)) as info:
        DenseLayer(**{**base, **kwargs})
    assert (info.value.layer, info.value.field) == ("fc", field)


def test_inhibitory_and_excitatory_grids() -> None:
    # 3 weight bits: 8 − 3 = 5 dropped bits, grid of 32, range [-255, 0] / [0, 255].
    DenseLayer(name="inh", weights=[[-224, -32, 0]], num_weight_bits=3, sign_mode="inhibitory")
    DenseLayer(name="exc", weights=[[224, 32, 0]], num_weight_bits=3)
    with pytest.raises(NetworkValidationError, match="multiples of 32"):
        DenseLayer(name="inh", weights=[[-225]], num_weight_bits=3, sign_mode="inhibitory")


def test_conv_and_extension_validation() -> None:
    with pytest.raises(NetworkValidationError, match="groups") as info:
        ConvLayer(name="c", weights=np.zeros((4, 3, 3, 3), int), in_shape=(4, 8, 8))
    assert info.value.layer == "c"
    ConvLayer(name="c", weights=np.zeros((4, 2, 3, 3), int), in_shape=(4, 8, 8), groups=2)
    with pytest.raises(NetworkValidationError, match="not divisible"):
        AttentionLayer(name="a", channels=6, tokens=4, heads=4)
    with pytest.raises(NetworkValidationError, match="M entries fit 8 bits"):
        AttentionLayer(name="a", channels=8, tokens=256, heads=2)
    with pytest.raises(NetworkValidationError, match="placement"):
        MaxPoolLayer(name="p", in_shape=(1, 4, 4), placement="gpu")
    with pytest.raises(NetworkValidationError, match="JSON"):
        MaxPoolLayer(name="p", in_shape=(1, 4, 4), meta={"x": object()})


def _tiny(**edge_kwargs: object) -> dict:
    return {
        "layers": (
            SpikeInputLayer(name="in", shape=(2,)),
            DenseLayer(name="fc", weights=[[2, 4]]),
            LIFLayer(name="lif", shape=(1,), du=0, dv=0, vth=1),
        ),
        "edges": (Edge(src="in", dst="fc"), Edge(src="fc", dst="lif", **edge_kwargs)),
        "T": 2,
    }


def test_network_level_validation() -> None:
    LoihiNetwork(**_tiny())
    with pytest.raises(NetworkValidationError, match=r"delay.*outside \[0, 62\]"):
        LoihiNetwork(**_tiny(delay=63))
    spec = _tiny()
    with pytest.raises(NetworkValidationError, match="does not accept 'spikes'") as info:
        LoihiNetwork(**{**spec, "edges": (Edge(src="in", dst="lif"),)})
    assert info.value.layer == "lif"
    with pytest.raises(NetworkValidationError, match="unknown layer"):
        LoihiNetwork(**{**spec, "edges": (Edge(src="in", dst="nowhere"),)})
    with pytest.raises(NetworkValidationError, match="duplicate"):
        LoihiNetwork(
            **{**spec, "layers": spec["layers"] + (SpikeInputLayer(name="in", shape=(1,)),)}
        )
    wide = LIFLayer(name="lif", shape=(3,), du=0, dv=0, vth=1)
    with pytest.raises(NetworkValidationError, match="does not match"):
        LoihiNetwork(**{**spec, "layers": spec["layers"][:2] + (wide,)})
    with pytest.raises(NetworkValidationError, match="T"):
        LoihiNetwork(**{**spec, "T": 0})
    loop = spec["layers"][1:] + (
        DenseLayer(name="back", weights=[[2], [2]]),
        LIFLayer(name="lif2", shape=(2,), du=0, dv=0, vth=1),
    )
    ring = (("fc", "lif"), ("lif", "back"), ("back", "lif2"), ("lif2", "fc"))
    with pytest.raises(NetworkValidationError, match="cycle"):
        LoihiNetwork(layers=loop, T=2, edges=tuple(Edge(src=a, dst=b) for a, b in ring))


def test_host_input_needs_a_zero_static_bias_with_its_exponent() -> None:
    host = HostInputLayer(
        name="h",
        op="embedding",
        weight=np.ones((10, 2)),
        bias=np.zeros((3, 2)),
        in_shape=(3,),
        bias_exp=2,
    )
    assert host.out_shape == (3, 2)
    ok = LIFLayer(name="lif", shape=(3, 2), du=0, dv=0, vth=1, bias_exp=2)
    LoihiNetwork(layers=(host, ok), edges=(Edge(src="h", dst="lif"),), T=1)
    for bad in (dataclasses.replace(ok, bias_exp=1), dataclasses.replace(ok, bias_mant=1)):
        with pytest.raises(NetworkValidationError, match="static bias_mant must be 0"):
            LoihiNetwork(layers=(host, bad), edges=(Edge(src="h", dst="lif"),), T=1)
