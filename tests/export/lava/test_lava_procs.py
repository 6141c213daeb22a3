"""The project's Lava processes, each run in Lava against an independent reference.

References: float64 torch on the same integer inputs (``0.125·(QKᵀ)V``, ``max_pool2d`` whose
padding is −∞, the readout formula, a conv2d host encoding) and Lava's own stock ``DelayDense``
with ``kron(W, I_N)``. Never the simulator's code. Three small Lava graphs, one run each
(module fixtures): spikes → {TokenLinear, DelayDense, SpikeAttention}; currents →
{CurrentMaxPool ×2, HostReadout}; BiasInjection → LIFReset (+ Monitor on v).
Timing: a RingBuffer source sends column i at Lava step i + 1 and a sink stores step i + 1 in
column i, so a process with ``latency + delay = L`` puts f(column i) into sink column i + L.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _lava_session import lava_run

from export.lava.graph import host_bias_mantissas
from hardware.ir.layers import HostInputLayer

pytestmark = [pytest.mark.lava, pytest.mark.timeout(180)]

STEPS = 8


# ---------------------------------------------------------------------------------------------
# Spikes in: TokenLinear (vs stock DelayDense and torch), SpikeAttention (vs torch).
# ---------------------------------------------------------------------------------------------

C_ATT, HEADS, N_TOK = 4, 2, 5  # attention: q|k|v = 12 channels, d = 2 per head
C_IN, C_OUT = 3 * C_ATT, 3
TL_DELAY, TL_EXP = 2, -1
ATT_LATENCY, ATT_DELAY, P_SHIFT = 1, 1, 1


@pytest.fixture(scope="module")
def spike_run():
    from lava.proc.dense.process import DelayDense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.utils.weightutils import SignMode

    from export.lava.procs.attention.process import SpikeAttention
    from export.lava.procs.token_linear.process import TokenLinear

    rng = np.random.default_rng(7)
    spikes = (rng.random((C_IN, N_TOK, STEPS)) < 0.6).astype(np.int32)
    spikes[..., 0] = 1  # a full step: every sum at its largest
    # Mixed 8-bit weights, odd ones included: Lava floors them to even (both sides must).
    w = rng.integers(-256, 256, size=(C_OUT, C_IN))
    src = Source(data=spikes)
    tl = TokenLinear(weights=w, tokens=N_TOK, weight_exp=TL_EXP, sign_mode="mixed", delay=TL_DELAY)
    dd = DelayDense(
        weights=np.kron(w, np.eye(N_TOK, dtype=np.int64)).astype(np.int32),
        delays=TL_DELAY,
        weight_exp=TL_EXP,
        num_weight_bits=8,
        sign_mode=SignMode.MIXED,
    )
    att = SpikeAttention(
        channels=C_ATT,
        tokens=N_TOK,
        heads=HEADS,
        p_shift=P_SHIFT,
        latency=ATT_LATENCY,
        delay=ATT_DELAY,
    )
    sinks = {
        k: Sink(shape=shape, buffer=STEPS)
        for k, shape in (("tl", (C_OUT, N_TOK)), ("dd", (C_OUT * N_TOK,)), ("att", (C_ATT, N_TOK)))
    }
    src.s_out.connect(tl.s_in)
    src.s_out.flatten().connect(dd.s_in)
    src.s_out.connect(att.s_in)
    tl.a_out.connect(sinks["tl"].a_in)
    dd.a_out.connect(sinks["dd"].a_in)
    att.a_out.connect(sinks["att"].a_in)
    with lava_run(src, STEPS) as session:
        out = {k: session.get(s.data).astype(np.int64) for k, s in sinks.items()}
    return spikes, w, out


def test_token_linear_equals_stock_delay_dense_on_kron_weights(spike_run):
    _, _, out = spike_run
    # DelayDense flattens (C_out, N) in C order: row c·N + n.
    dd = out["dd"].reshape(C_OUT, N_TOK, STEPS)
    assert np.array_equal(out["tl"], dd)
    assert np.count_nonzero(out["tl"]) > 0


def test_token_linear_against_torch_floor(spike_run):
    spikes, w, out = spike_run
    # Lava's mixed 8-bit rule floors each weight to even: 2·⌊w/2⌋. The sum over one token's
    # inputs is then scaled by 2^TL_EXP = 1/2 with a floor (arithmetic shift on the sum).
    w_even = 2 * torch.floor(torch.tensor(w, dtype=torch.float64) / 2)
    s = torch.tensor(spikes, dtype=torch.float64)  # [C_in, N, steps]
    ref = torch.floor(torch.einsum("oc,cnt->ont", w_even, s) * 2.0**TL_EXP)
    lag = 1 + TL_DELAY  # one synapse step + the delay
    assert np.array_equal(out["tl"][..., lag:], ref[..., : STEPS - lag].numpy())
    assert not out["tl"][..., :lag].any()  # pipeline fill: zeros


def test_attention_against_torch_qkt_v(spike_run):
    spikes, _, out = spike_run
    d = C_ATT // HEADS
    s = torch.tensor(spikes, dtype=torch.float64)  # [3C, N, steps]
    lag = ATT_LATENCY + ATT_DELAY
    for i in range(STEPS - lag):
        x = s[..., i]
        for h in range(HEADS):
            rows = slice(h * d, (h + 1) * d)
            q, k, v = (x[j * C_ATT : (j + 1) * C_ATT][rows].T for j in range(3))  # [N, d]
            ref = 0.125 * (q @ k.T) @ v  # the float model's order, [N, d]
            got = out["att"][rows, :, i + lag].T / 2.0**P_SHIFT  # P = (QKᵀ)V, shifted
            assert torch.equal(0.125 * torch.tensor(got, dtype=torch.float64), ref)
    assert out["att"][..., lag:].max() > 0
    assert not out["att"][..., :lag].any()


# ---------------------------------------------------------------------------------------------
# Currents in: CurrentMaxPool (latency 0 and delayed), HostReadout.
# ---------------------------------------------------------------------------------------------

POOL_IN = (2, 5, 6)
POOL_DELAY = 2
RO_T, RO_SAMPLES, RO_DEPTH = 3, 2, 1  # readout: sample k step t read at column k·T + t + 1
RO_SCALE = 0.25


@pytest.fixture(scope="module")
def current_run():
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    from export.lava.procs.maxpool.process import CurrentMaxPool
    from export.lava.procs.readout.process import HostReadout

    rng = np.random.default_rng(11)
    cur = rng.integers(-5000, 5000, size=(*POOL_IN, STEPS)).astype(np.int32)
    cur[0, :3, :3, 1] = rng.integers(-900, -100, size=(3, 3))  # negative corner: −∞ padding
    src = Source(data=cur)
    pool0 = CurrentMaxPool(in_shape=POOL_IN, kernel=(3, 3), stride=(2, 2), padding=(1, 1))
    pool2 = CurrentMaxPool(
        in_shape=POOL_IN, kernel=(3, 2), stride=(1, 2), padding=(1, 0), latency=0, delay=POOL_DELAY
    )
    d, n_tok = POOL_IN[0], POOL_IN[1] * POOL_IN[2]
    params = {
        "time_weights": rng.normal(size=RO_T),
        "head_weight": rng.normal(size=(4, d)),
        "head_bias": rng.normal(size=4),
        "input_bias": rng.normal(size=d),
    }
    ro = HostReadout(
        in_shape=(d, n_tok),
        T=RO_T,
        depth=RO_DEPTH,
        n_samples=RO_SAMPLES,
        input_scale=RO_SCALE,
        token_axis=1,
        **params,
    )
    sink0 = Sink(shape=tuple(pool0.a_out.shape), buffer=STEPS)
    sink2 = Sink(shape=tuple(pool2.a_out.shape), buffer=STEPS)
    src.s_out.connect(pool0.a_in)
    src.s_out.connect(pool2.a_in)
    src.s_out.reshape((d, n_tok)).connect(ro.a_in)
    pool0.a_out.connect(sink0.a_in)
    pool2.a_out.connect(sink2.a_in)
    with lava_run(src, STEPS) as session:
        out = {
            "pool0": session.get(sink0.data).astype(np.int64),
            "pool2": session.get(sink2.data).astype(np.int64),
            "stream": session.get(ro.stream).astype(np.int64),
            "features": session.get(ro.features).astype(np.float64),
        }
    return cur, params, out


def test_maxpool_against_torch_with_neg_inf_padding(current_run):
    cur, _, out = current_run
    x = torch.tensor(np.moveaxis(cur, -1, 0), dtype=torch.float64)  # [steps, C, H, W]
    ref0 = F.max_pool2d(x, (3, 3), (2, 2), (1, 1)).numpy()  # torch pads with −∞
    ref2 = F.max_pool2d(x, (3, 2), (1, 2), (1, 0)).numpy()
    assert np.array_equal(np.moveaxis(out["pool0"], -1, 0), ref0)  # latency 0: same step
    lag = POOL_DELAY
    assert np.array_equal(np.moveaxis(out["pool2"], -1, 0)[lag:], ref2[: STEPS - lag])
    assert not out["pool2"][..., :lag].any()
    # The negative corner window at step 1 is all negative: its max is negative (a zero
    # padding would give 0 here).
    assert ref0[1, 0, 0, 0] < 0 and out["pool0"][0, 0, 0, 1] == ref0[1, 0, 0, 0]


def test_readout_stream_and_features_against_torch(current_run):
    cur, p, out = current_run
    d, n_tok = POOL_IN[0], POOL_IN[1] * POOL_IN[2]
    a = torch.tensor(cur.reshape(d, n_tok, STEPS), dtype=torch.float64)
    feats = []
    for k in range(RO_SAMPLES):
        cols = [k * RO_T + t + RO_DEPTH for t in range(RO_T)]  # step k·T + t + depth + 1
        assert np.array_equal(
            out["stream"][k], np.moveaxis(cur.reshape(d, n_tok, STEPS)[..., cols], -1, 0)
        )
        x = a[..., cols] * RO_SCALE + torch.tensor(p["input_bias"])[:, None, None]
        pooled = x.mean(dim=1)  # [D, T]
        feat = pooled @ torch.tensor(p["time_weights"])
        feats.append(torch.tensor(p["head_weight"]) @ feat + torch.tensor(p["head_bias"]))
    ref = torch.stack(feats).numpy()
    np.testing.assert_allclose(out["features"], ref, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# BiasInjection → stock LIFReset: the bias switches exactly at each sample boundary.
# ---------------------------------------------------------------------------------------------

INJ_T = 3


@pytest.mark.parametrize("depth", [0, 2])
def test_bias_injection_switches_per_sample(depth: int):
    from lava.proc.lif.process import LIFReset
    from lava.proc.monitor.process import Monitor

    from export.lava.procs.injection.process import BiasInjection

    mant = np.array([[5, -7, 0], [100, 3, -2], [-40, 9, 4095]])  # 3 samples × 3 neurons
    exp = np.array([[2, 3, 0], [2, 7, 1], [0, 2, 2]])  # each value at its own exponent
    n_steps = 3 * INJ_T + depth
    lif = LIFReset(
        shape=(3,),
        du=4095,
        dv=0,
        vth=100_000,
        bias_mant=mant[0],
        bias_exp=exp[0],
        reset_interval=INJ_T,
        reset_offset=depth + 1,
    )
    inj = BiasInjection(mant=mant, exp=exp, T=INJ_T, depth=depth)
    inj.connect_vars(lif.bias_mant, lif.bias_exp)
    mon = Monitor()
    mon.probe(lif.v, n_steps)
    with lava_run(lif, n_steps):
        v = mon.get_data()[lif.name]["v"].astype(np.int64)  # [steps, 3], row = time_step − 1
    # dv = 0 (no leak), no input: v grows by β_k = mant[k] << exp[k] per step. LIFReset zeroes v
    # at steps ≡ depth + 1 (mod 3), i.e. at each sample's logical step 0 (step 3k + depth + 1),
    # so after its t-th logical step v = (t + 1)·β_k. Rows before `depth` are the pipeline
    # fill (v = (i + 1)·β_0 there).
    t = np.arange(INJ_T)[:, None]
    expected = np.concatenate([(t + 1) * (mant[k] << exp[k]) for k in range(3)])
    assert v[depth:].tolist() == expected.tolist()
    assert v[:depth].tolist() == [((i + 1) * (mant[0] << exp[0])).tolist() for i in range(depth)]


def test_host_bias_mantissas_conv2d_against_torch():
    rng = np.random.default_rng(3)
    weight, bias = rng.normal(size=(2, 3, 3, 3)), rng.normal(size=2)
    layer = HostInputLayer(
        name="conv0",
        op="conv2d",
        weight=weight,
        bias=bias,
        in_shape=(3, 5, 5),
        padding=(1, 1),
        bias_scale=300.0,
        bias_exp=3,
    )
    images = rng.normal(size=(2, 3, 5, 5))
    x = F.conv2d(torch.tensor(images), torch.tensor(weight), padding=1)
    x = x + torch.tensor(bias)[None, :, None, None]
    # β = 300·x v-units; mantissa = round half up of β / 2³, saturated to 13 bits.
    ref = torch.clamp(torch.floor(x * 300.0 / 8 + 0.5), -4096, 4095)
    assert np.array_equal(host_bias_mantissas(layer, images), ref.numpy().astype(np.int64))
