"""pytest setup for nllk-score's end-to-end tests.

ctest sets NLLK_SCORE (the program) and NLLK_LIBRARY (the libnllk.so it links). Run by hand:
    NLLK_SCORE=build/nllk-score NLLK_LIBRARY=build/libnllk.so /usr/bin/python3 -m pytest -q tests/cli
"""
import ctypes
import json
import os
import subprocess

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def _find(env, candidates):
    p = os.environ.get(env)
    if p:
        return p
    for c in candidates:
        c = os.path.join(REPO, c)
        if os.path.exists(c):
            return c
    raise RuntimeError(f"set {env}")


SCORE = _find("NLLK_SCORE", ["build/nllk-score"])
LIBRARY = _find("NLLK_LIBRARY", ["build/libnllk.so"])


class Lib:
    """The one-shot C calls, through ctypes: the reference the program must match bit for bit."""

    def __init__(self, path):
        self.lib = ctypes.CDLL(path)
        self.lib.nllk_last_error.restype = ctypes.c_char_p
        self.lib.nllk_active_isa.restype = ctypes.c_char_p
        P = ctypes.c_void_p
        for name, ct in (("f32", ctypes.c_float), ("f64", ctypes.c_double)):
            f = getattr(self.lib, f"nllk_poisson_nll_fwd_{name}")
            f.argtypes = [P, P, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_double, ctypes.c_int, P]
            f = getattr(self.lib, f"nllk_nll_fwd_{name}")
            f.argtypes = [P, P, ctypes.c_int, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_size_t, P, ctypes.c_int64,
                          ctypes.c_int, P, P]

    @staticmethod
    def _p(a):
        return a.ctypes.data_as(ctypes.c_void_p) if a is not None and a.size else None

    def poisson(self, x, t, log_input=True, full=False, eps=1e-8, reduction="mean"):
        x = np.require(x, requirements="C")  # (not ascontiguousarray: it turns 0-d into 1-d)
        t = np.require(t, requirements="C")
        red = {"none": 0, "mean": 1, "sum": 2}[reduction]
        out = np.zeros(x.shape if red == 0 else (), dtype=x.dtype)
        name = "f32" if x.dtype == np.float32 else "f64"
        st = getattr(self.lib, f"nllk_poisson_nll_fwd_{name}")(
            self._p(x), self._p(t), x.size, int(log_input), int(full), eps, red,
            out.ctypes.data_as(ctypes.c_void_p))
        assert st == 0, self.lib.nllk_last_error()
        return out

    def nll(self, x, t, weight=None, ignore_index=-100, reduction="mean"):
        x = np.require(x, requirements="C")  # (not ascontiguousarray: it turns 0-d into 1-d)
        t = np.require(t, requirements="C")
        if x.ndim == 1:
            n, c, d = 1, x.shape[0], 1
        else:
            n, c, d = x.shape[0], x.shape[1], int(np.prod(x.shape[2:], dtype=np.int64))
        tt = {np.dtype(np.int64): 0, np.dtype(np.int32): 1, np.dtype(np.uint8): 2}[t.dtype]
        red = {"none": 0, "mean": 1, "sum": 2}[reduction]
        out = np.zeros(t.shape if red == 0 else (), dtype=x.dtype)
        tw = np.zeros((), dtype=x.dtype)
        if weight is not None:
            weight = np.ascontiguousarray(weight, dtype=x.dtype)
        name = "f32" if x.dtype == np.float32 else "f64"
        st = getattr(self.lib, f"nllk_nll_fwd_{name}")(
            self._p(x), self._p(t), tt, n, c, d, self._p(weight), ignore_index, red,
            out.ctypes.data_as(ctypes.c_void_p), tw.ctypes.data_as(ctypes.c_void_p))
        assert st == 0, self.lib.nllk_last_error()
        return out, tw

    def isa(self):
        return self.lib.nllk_active_isa().decode()


@pytest.fixture(scope="session")
def lib():
    return Lib(LIBRARY)


class Run:
    def __init__(self, p):
        self.rc = p.returncode
        self.out = p.stdout
        self.err = p.stderr

    def json(self):
        return json.loads(self.out)


def run(*args, env=None, timeout=300):
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.run([SCORE, *map(str, args)], capture_output=True, text=True, env=e, timeout=timeout)
    return Run(p)


@pytest.fixture
def score():
    return run


def same_bits(a, b):
    a = np.asarray(a)
    b = np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
