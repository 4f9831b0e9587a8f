"""nllk-score against hostile paths, bytes and signals (issue 16): the output file never replaces what it must not,
every way out removes the temporary file, and the README's promise holds: an existing output is untouched unless
the run succeeds. Each test names the issue item it covers."""
import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import threading
import time

import numpy as np
import pytest

from conftest import SCORE, run

USAGE, IO, TARGET, INTERRUPTED = 2, 3, 6, 130
TMP_TAG = ".nllk-tmp."


@pytest.fixture
def small(tmp_path):
    x = np.linspace(0.1, 2, 24, dtype=np.float32).reshape(4, 6)
    t = np.ones((4, 6), np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "t.npy", t)
    return tmp_path


def poisson(d, *extra):
    return ["poisson", "--input", str(d / "x.npy"), "--target", str(d / "t.npy"), *map(str, extra)]


def temps(d):
    return [f for f in os.listdir(d) if TMP_TAG in f or ".tmp-" in f]


def big_pair(d, n=24 * 1000 * 1000):
    x = np.zeros(n, np.float32)
    np.save(d / "x.npy", x)
    np.save(d / "t.npy", x)


def expected_losses(d):
    """The losses of the `small` files, from a run to a plain file (tests/cli checks those against the library)."""
    r = run(*poisson(d, "--reduction", "none", "--out", d / "ref.npy"))
    assert r.rc == 0, r.err
    b = (d / "ref.npy").read_bytes()
    os.remove(d / "ref.npy")
    return b


# ---- item 3: a FIFO (or device) as an input is an error, not a hang -------------------------------------------

@pytest.mark.parametrize("role", ["--input", "--target", "--weight"])
def test_fifo_input_does_not_hang(tmp_path, role):
    np.save(tmp_path / "x.npy", np.zeros((2, 3), np.float32))
    np.save(tmp_path / "t.npy", np.zeros(2, np.int64))
    np.save(tmp_path / "w.npy", np.ones(3, np.float32))
    os.mkfifo(tmp_path / "f.npy")
    files = {"--input": "x.npy", "--target": "t.npy", "--weight": "w.npy"}
    files[role] = "f.npy"
    args = ["nll"] + [a for k, v in files.items() for a in (k, v)]
    p = subprocess.run([SCORE, *args], cwd=tmp_path, capture_output=True, text=True, timeout=20)
    assert p.returncode == IO, p.stderr
    assert "not a regular file" in p.stderr


def test_char_device_input(small):
    r = run("poisson", "--input", "/dev/zero", "--target", small / "t.npy", timeout=20)
    assert r.rc == IO and "not a regular file" in r.err
