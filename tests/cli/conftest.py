"""pytest setup for nllk-score's end-to-end tests.

ctest sets NLLK_SCORE (the program) and NLLK_LIBRARY (the libnllk.so it links). Run by hand:
    NLLK_SCORE=build/nllk-score NLLK_LIBRARY=build/libnllk.so /usr/bin/python3 -m pytest -q tests/cli
"""
import json
import os
import subprocess
import sys

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
    """The one-shot calls, through the nllk package on the same libnllk: the reference the program must match bit
    for bit."""

    def __init__(self, path):
        os.environ["NLLK_LIBRARY"] = path  # (read by nllk at its first call)
        sys.path.insert(0, os.path.join(REPO, "python"))
        import nllk
        self.nllk = nllk

    def poisson(self, x, t, log_input=True, full=False, eps=1e-8, reduction="mean"):
        return self.nllk.poisson_nll_loss(x, t, log_input=log_input, full=full, eps=eps, reduction=reduction)

    def nll(self, x, t, weight=None, ignore_index=-100, reduction="mean"):
        """(loss, total_weight)."""
        return self.nllk.nll_loss_forward(x, t, weight=weight, ignore_index=ignore_index, reduction=reduction)

    def isa(self):
        return self.nllk.library_info()["isa"]


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


def temp_outputs(pid, d):
    """The temporary output files of process pid in directory d: named ones (`.NAME.nllk-tmp.*`) and unnamed
    ones (O_TMPFILE, open in the process: /proc shows them as `d/#INODE (deleted)`)."""
    d = os.path.realpath(d)
    named = [f for f in os.listdir(d) if ".nllk-tmp." in f]
    unnamed = []
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith(d + "/#") and link.endswith(" (deleted)"):
                unnamed.append(link)
    except OSError:
        pass
    return named + unnamed
