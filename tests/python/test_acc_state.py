"""Accumulator arguments and state from outside (issue 16, items 12 and 13): integers are range-checked, never
truncated on their way to C; corrupted state bytes give a Python exception (NllkValueError, from the library's
validation of the state), never a crash. The corrupted states are fed to a child process, so that a crash fails
this test instead of killing the test run."""
import os
import subprocess
import sys

import numpy as np
import pytest

import nllk

PYDIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "python")


@pytest.mark.parametrize("kwargs,exc", [
    (dict(begin=-1), ValueError),               # was 2**64 - 1
    (dict(begin=2 ** 64), OverflowError),
    (dict(begin=1.0), TypeError),
    (dict(begin=True), TypeError),
    (dict(eps="a"), TypeError),
    (dict(eps=None), TypeError),
    (dict(log_input=None), TypeError),
    (dict(full=1), TypeError),
    (dict(dtype=np.int32), TypeError),          # (float16 and bfloat16 are taken: test_half.py)
])
def test_poisson_accumulator_arguments(kwargs, exc):
    with pytest.raises(exc) as e:
        nllk.PoissonAccumulator(**kwargs)
    assert isinstance(e.value, nllk.NllkError)


def test_poisson_accumulator_largest_begin():
    acc = nllk.PoissonAccumulator(begin=2 ** 64 - 1)
    assert acc.range == (2 ** 64 - 1, 2 ** 64 - 1)
    acc = nllk.PoissonAccumulator(np.float64, begin=np.uint64(2 ** 63), eps=np.float32(1e-3), log_input=False)
    assert acc.range == (2 ** 63, 2 ** 63)


@pytest.mark.parametrize("kwargs,exc", [
    (dict(num_classes=-1), ValueError),         # was accepted
    (dict(num_classes=2 ** 64), OverflowError),
    (dict(num_classes=3.0), TypeError),
    (dict(num_classes=3, spatial=(4, -1)), ValueError),
    (dict(num_classes=3, spatial=(2 ** 40, 2 ** 40)), OverflowError),
    (dict(num_classes=3, spatial=(2, 2.0)), TypeError),
    (dict(num_classes=3, spatial=(0,)), ValueError),     # no positions per sample (the library: d == 0)
    (dict(num_classes=3, begin=-1), ValueError),
    (dict(num_classes=3, begin=2 ** 64), OverflowError),
    (dict(num_classes=3, ignore_index=2 ** 63), RuntimeError),  # PyTorch's "Overflow when unpacking long"
    (dict(num_classes=3, ignore_index=1.5), TypeError),
    (dict(num_classes=3, ignore_index=True), TypeError),
    (dict(num_classes=3, weight=np.ones(4, np.float32)), RuntimeError),
    (dict(num_classes=3, target_dtype=np.int16), TypeError),
])
def test_nll_accumulator_arguments(kwargs, exc):
    with pytest.raises(exc) as e:
        nllk.NLLAccumulator(**kwargs)
    assert isinstance(e.value, nllk.NllkError)


def test_update_out_gives_the_one_shot_none_values():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(1000).astype(np.float32)
    t = rng.poisson(2.0, 1000).astype(np.float32)
    ref = nllk.poisson_nll_loss(x, t, reduction="none")
    out = np.empty(1000, np.float32)
    acc = nllk.PoissonAccumulator()
    acc.update(x[:300], t[:300], out=out[:300]).update(x[300:], t[300:], out=out[300:])
    assert out.tobytes() == ref.tobytes()
    xn = np.log(rng.dirichlet(np.ones(4), size=(6, 5))).transpose(0, 2, 1).astype(np.float64).copy()
    tn = rng.integers(0, 4, (6, 5))
    ref = nllk.nll_loss(xn, tn, reduction="none")
    out = np.empty((6, 5))
    nllk.NLLAccumulator(4, (5,), np.float64).update(xn, tn, out=out)
    assert out.tobytes() == ref.tobytes()
    with pytest.raises(ValueError, match="out"):
        nllk.PoissonAccumulator().update(x, t, out=np.empty(999, np.float32))
    with pytest.raises(ValueError, match="out"):
        nllk.PoissonAccumulator().update(x, t, out=np.empty(1000, np.float64))


def test_load_bytes_of_the_wrong_length():
    acc = nllk.PoissonAccumulator()
    with pytest.raises(ValueError, match="bytes"):
        acc.load_bytes(acc.to_bytes()[:-1])


_CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import nllk

BEGIN, N = 0x0123456789AB, 10000
x = np.linspace(-1, 1, N).astype(np.float32)
acc = nllk.PoissonAccumulator(begin=BEGIN).update(x, np.abs(x))
good = acc.to_bytes()
le = lambda v: int(v).to_bytes(8, "little")
at_begin, at_end = good.index(le(BEGIN)), good.index(le(BEGIN + N))

def corrupt(offset, new):
    b = bytearray(good)
    b[offset:offset + len(new)] = new
    return bytes(b)

cases = {
    "end < begin": corrupt(at_end, le(BEGIN - 1)),
    "node count": corrupt(at_end + 8, b"\xff\xff\xff\xff"),
    "all ones after the magic": good[:4] + b"\xff" * (len(good) - 4),
}
for k in range(4, at_end + 8):  # every byte of the options and the range, one at a time
    cases[f"byte {k}"] = corrupt(k, bytes([good[k] ^ 0x5A]))
def refused(name, call):
    try:
        call()
    except nllk.NllkValueError:
        return True
    except Exception as e:
        print(f"WRONG EXCEPTION {name}: {e!r}", flush=True)
        return True
    return False

for name, data in cases.items():
    fresh = nllk.PoissonAccumulator()
    if refused(name, lambda: fresh.load_bytes(data)):
        assert fresh.range == (0, 0), name  # a refused state leaves the accumulator as it was
        continue
    # loaded: then every use of it must be refused
    for use, call in (("result", fresh.result), ("range", lambda: fresh.range),
                      ("merge", lambda: nllk.PoissonAccumulator(begin=BEGIN).merge(fresh)),
                      ("update", lambda: fresh.update(x[:5], x[:5]))):
        if not refused(name, call):
            print(f"ACCEPTED {name} ({use})", flush=True)
print("done", flush=True)
"""


def test_corrupted_state_bytes_raise_instead_of_crashing():
    r = subprocess.run([sys.executable, "-c", _CHILD, PYDIR], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.endswith("done\n"), \
        f"exit {r.returncode} (a negative exit is a crash: the signal's number)\n{r.stdout[-2000:]}{r.stderr[-2000:]}"
    assert "ACCEPTED" not in r.stdout and "WRONG" not in r.stdout, r.stdout
