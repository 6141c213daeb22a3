"""Lava 0.10 on Python 3.11 via ``export.lava.compat``: imports, a hand-checked run, stale .pyc."""

from __future__ import annotations

import os
import py_compile
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from _paths import REPO

from export.lava import compat as lava_compat


def test_patch_rewrites_every_instance_default() -> None:
    source = textwrap.dedent(
        """\
        from __future__ import annotations
        from dataclasses import dataclass

        @dataclass
        class ByteEncoder:
            base: int = 0

        @dataclass
        class CoreEncoder:
            x: ByteEncoder = ByteEncoder()
            y: ByteEncoder = ByteEncoder()
        """
    )
    patched = lava_compat.patch_var_model_source(source)
    assert patched.count("_dc_field(default_factory=ByteEncoder)") == 2
    assert "= ByteEncoder()" not in patched
    namespace: dict = {}
    exec(compile(patched, "<patched>", "exec"), namespace)
    a, b = namespace["CoreEncoder"](), namespace["CoreEncoder"]()
    assert a.x is not b.x  # one fresh ByteEncoder per instance


def test_patch_refuses_unknown_source() -> None:
    with pytest.raises(RuntimeError, match="lava-nc 0.10.0"):
        lava_compat.patch_var_model_source("x = 1\n")


def test_lava_dl_imports() -> None:
    lava_compat.install()
    import lava.lib.dl.netx as netx
    import lava.lib.dl.slayer as slayer

    assert hasattr(netx, "hdf5")
    assert hasattr(slayer, "neuron")


def test_stale_unpatched_pyc_does_not_win(tmp_path: Path) -> None:
    """Write the *unpatched* var_model.py's bytecode where Python would look for it, then import.

    The copy of Lava lives in tmp_path so site-packages is not touched. Without the shim the
    import fails with the dataclass ValueError; with it, the import succeeds although a valid
    (unpatched) ``.pyc`` sits next to the source with a matching timestamp.
    """
    import lava

    lava_root = Path(lava.__path__[0]).parent
    var_model = lava_root / "lava" / "magma" / "compiler" / "var_model.py"
    copy_root = tmp_path / "site"
    pkg = copy_root / "lava"
    import shutil

    shutil.copytree(lava_root / "lava", pkg, ignore=shutil.ignore_patterns("lib", "tests"))
    copied = pkg / "magma" / "compiler" / "var_model.py"
    assert copied.read_text() == var_model.read_text()
    pyc = Path(py_compile.compile(str(copied), doraise=True))
    assert pyc.exists()
    script = textwrap.dedent(
        f"""\
        import sys
        sys.path.insert(0, {str(copy_root)!r})
        if sys.argv[1] == "shim":
            from export.lava import compat as lava_compat
            lava_compat.install()
        import lava.magma.compiler.var_model as vm
        assert vm.__file__.startswith({str(copy_root)!r}), vm.__file__
        print("imported", vm.CoreEncoder().x is not vm.CoreEncoder().x)
        """
    )
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    without = subprocess.run(
        [sys.executable, "-c", script, "plain"], capture_output=True, text=True, env=env
    )
    assert without.returncode != 0 and "mutable default" in without.stderr
    with_shim = subprocess.run(
        [sys.executable, "-c", script, "shim"], capture_output=True, text=True, env=env
    )
    assert with_shim.returncode == 0, with_shim.stderr
    assert with_shim.stdout.strip() == "imported True"
    assert pyc.exists()  # the stale bytecode was there all along


@pytest.mark.lava
# Stepped with Lava's own run/stop (not LavaSession): a hung Lava would also hang stop(), which
# the signal method cannot end, so this test times out by the thread method (stacks + exit).
@pytest.mark.timeout(120, method="thread")
def test_dense_lif_two_layers_match_hand_derived_integers() -> None:
    """RingBuffer → Dense → LIF → Dense → LIF in Lava fixed_pt, u and v read every step.

    Lava timing: Dense sends at step t what it summed at t-1, so an input spike at step t
    reaches LIF1 at t+1, and a LIF1 spike at t reaches LIF2 at t+1. Rules (Lava 0.10
    PyLifModelBitAcc / PyDenseModelBitAcc):
      u <- trunc0(u * (4096 - (du + 1)) / 4096) + (a << 6)
      v <- trunc0(v * (4096 - dv) / 4096) + u + (bias_mant << bias_exp);  spike if v > vth << 6
      mixed-sign 8-bit weights are floored to even: -31 -> -32, 101 -> 100.

    Layer 1: W1 = [[60, -31], [20, 40]] -> [[60, -32], [20, 40]]; du = 4095 (u = a << 6),
    dv = 2048 (v halves, trunc0), vth = 40 (2560), bias = [3 << 2, -5 << 1] = [12, -10].
    Input spikes s(1) = [1, 0], s(2) = [1, 1], s(3) = [1, 0], none after.
      t1: a = [0, 0];   u = [0, 0];       v = [12, -10]
      t2: a = [60, 20]; u = [3840, 1280]; v = [6+3840+12, -5+1280-10] = [3858, 1265]
          3858 > 2560: neuron 0 spikes, v0 = 0                            -> v = [0, 1265]
      t3: a = [60-32, 20+40] = [28, 60]; u = [1792, 3840];
          v = [0+1792+12, 632+3840-10] = [1804, 4462]; neuron 1 spikes    -> v = [1804, 0]
      t4: a = [60, 20]; u = [3840, 1280]; v = [902+3840+12, 0+1280-10] = [4754, 1270];
          neuron 0 spikes                                                 -> v = [0, 1270]
      t5: a = 0; u = 0; v = [0+12, 635-10] = [12, 625]
      t6: a = 0; u = 0; v = [6+12, 312-10] = [18, 302]
    Layer 2: W2 = [[-50, 101]] -> [[-50, 100]]; du = 2048 (u * 2047/4096), dv = 0 (no decay),
    vth = 20 (1280), bias 0. Its input is W2 @ (LIF1 spikes one step earlier):
      t1, t2: a = 0; u = 0; v = 0
      t3: a = -50 (n0 spiked at t2);  u = -3200;                         v = -3200
      t4: a = 100 (n1 spiked at t3);  u = trunc0(-3200*2047/4096) + 6400 = -1599 + 6400 = 4801;
          v = -3200 + 4801 = 1601 > 1280: spike, v = 0 (u is not reset)
      t5: a = -50 (n0 spiked at t4);  u = trunc0(4801*2047/4096) - 3200 = 2399 - 3200 = -801;
          v = 0 - 801 = -801
      t6: a = 0;  u = trunc0(-801*2047/4096) = -400;  v = -801 - 400 = -1201
    """
    lava_compat.install()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF

    steps = 6
    spikes_in = np.zeros((2, steps), dtype=np.int32)
    spikes_in[0, [0, 1, 2]] = 1
    spikes_in[1, 1] = 1
    source = RingBuffer(data=spikes_in)
    dense1 = Dense(weights=np.array([[60, -31], [20, 40]]))
    lif1 = LIF(shape=(2,), du=4095, dv=2048, vth=40, bias_mant=np.array([3, -5]),
               bias_exp=np.array([2, 1]))
    dense2 = Dense(weights=np.array([[-50, 101]]))
    lif2 = LIF(shape=(1,), du=2048, dv=0, vth=20, bias_mant=0, bias_exp=0)
    source.s_out.connect(dense1.s_in)
    dense1.a_out.connect(lif1.a_in)
    lif1.s_out.connect(dense2.s_in)
    dense2.a_out.connect(lif2.a_in)

    trace = {"u1": [], "v1": [], "u2": [], "v2": []}
    try:
        for _ in range(steps):
            lif2.run(condition=RunSteps(num_steps=1), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
            trace["u1"].append(lif1.u.get().astype(int).tolist())
            trace["v1"].append(lif1.v.get().astype(int).tolist())
            trace["u2"].append(int(lif2.u.get()[0]))
            trace["v2"].append(int(lif2.v.get()[0]))
    finally:
        lif2.stop()

    assert trace["u1"] == [[0, 0], [3840, 1280], [1792, 3840], [3840, 1280], [0, 0], [0, 0]]
    assert trace["v1"] == [[12, -10], [0, 1265], [1804, 0], [0, 1270], [12, 625], [18, 302]]
    assert trace["u2"] == [0, 0, -3200, 4801, -801, -400]
    assert trace["v2"] == [0, 0, -3200, 0, -801, -1201]


def test_lava_imports_after_multiprocessing_was_used() -> None:
    """Lava's message infrastructure calls ``mp.set_start_method('fork')`` at import, which
    raised "context has already been set" once anything had used multiprocessing (a DataLoader
    with workers before the export's Lava stage). A fresh interpreter uses it first, then builds
    and runs a one-neuron LIF in Lava."""
    script = textwrap.dedent(
        """\
        import multiprocessing as mp
        q = mp.Queue(); q.put(1); assert q.get() == 1   # fixes the default context (fork)
        from export.lava import compat as lava_compat
        lava_compat.install()
        import numpy as np
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi1SimCfg
        from lava.proc.lif.process import LIF
        lif = LIF(shape=(1,), du=4095, dv=0, vth=1, bias_mant=1, bias_exp=6)
        lif.run(condition=RunSteps(num_steps=3), run_cfg=Loihi1SimCfg(select_tag="fixed_pt"))
        v = lif.v.get()
        lif.stop()
        print("V", int(v[0]))
        """
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr[-1500:]
    # bias 1 << 6 = 64 per step, vth << 6 = 64: v = 64, 128 > 64 → spike → 0, then 64.
    assert "V 64" in done.stdout


def test_start_method_patch_refuses_unknown_source() -> None:
    with pytest.raises(RuntimeError, match="lava-nc 0.10.0"):
        lava_compat.patch_start_method_source("x = 1\n")
