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


# ---- item 1: --out never replaces a non-regular file: FIFOs and character devices are written through ----------

def read_fifo(path, sink):
    with open(path, "rb") as f:
        sink.append(f.read())


@pytest.mark.parametrize("via_symlink", [False, True])
def test_out_fifo_written_through(small, via_symlink):
    want = expected_losses(small)
    fifo = small / "o.fifo"
    os.mkfifo(fifo)
    out = fifo
    if via_symlink:
        out = small / "link.npy"
        os.symlink(fifo, out)
    got = []
    th = threading.Thread(target=read_fifo, args=(fifo, got), daemon=True)
    th.start()
    r = run(*poisson(small, "--reduction", "none", "--out", out), timeout=30)
    th.join(30)
    is_fifo = stat.S_ISFIFO(os.stat(fifo).st_mode)
    if th.is_alive():  # the program never opened it: unblock the reader
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)) if is_fifo else None
    assert r.rc == 0, r.err
    assert is_fifo, "the FIFO was replaced"
    if via_symlink:
        assert os.path.islink(out), "the symlink was replaced"
    assert got and got[0] == want
    assert not temps(small)


def test_out_dev_null(small):
    before = os.stat("/dev/null")
    r = run(*poisson(small, "--reduction", "none", "--out", "/dev/null"))
    after = os.stat("/dev/null")
    assert r.rc == 0, r.err
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino and after.st_rdev == before.st_rdev


def test_out_symlink_to_regular_file_keeps_link(small):
    (small / "real.npy").write_bytes(b"old")
    os.symlink("real.npy", small / "link.npy")
    r = run(*poisson(small, "--reduction", "none", "--out", small / "link.npy"))
    assert r.rc == 0, r.err
    assert os.path.islink(small / "link.npy")
    assert (small / "real.npy").read_bytes() == expected_losses(small)


# ---- item 2: --out naming an input is refused ----------------------------------------------------------------

@pytest.mark.parametrize("spelling", ["same", "dot-slash", "hardlink", "symlink"])
def test_out_is_an_input(small, spelling):
    before = (small / "x.npy").read_bytes()
    out = {"same": "x.npy", "dot-slash": "./x.npy", "hardlink": "hard.npy", "symlink": "soft.npy"}[spelling]
    if spelling == "hardlink":
        os.link(small / "x.npy", small / "hard.npy")
    if spelling == "symlink":
        os.symlink("x.npy", small / "soft.npy")
    p = subprocess.run([SCORE, "poisson", "--input", "x.npy", "--target", "t.npy", "--out", out], cwd=small,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == USAGE, p.stderr
    assert "same file" in p.stderr and "--input" in p.stderr
    assert (small / "x.npy").read_bytes() == before
    assert not temps(small)


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


# ---- item 6: replacing an existing output keeps its mode ------------------------------------------------------

@pytest.mark.parametrize("mode", [0o600, 0o640, 0o664])
def test_existing_output_mode_kept(small, mode):
    (small / "o.npy").write_bytes(b"old")
    os.chmod(small / "o.npy", mode)
    r = run(*poisson(small, "--reduction", "none", "--out", small / "o.npy"))
    assert r.rc == 0, r.err
    assert stat.S_IMODE(os.stat(small / "o.npy").st_mode) == mode


# ---- item 7: the report is written before the rename; file and directory are fsync'ed -------------------------

def test_stdout_failure_keeps_existing_output(small):
    (small / "keep.npy").write_bytes(b"previous")
    with open("/dev/full", "w") as full:
        p = subprocess.run([SCORE, *poisson(small, "--out", small / "keep.npy")], stdout=full,
                           stderr=subprocess.PIPE, text=True, timeout=60)
    assert p.returncode == IO, p.stderr
    assert "stdout" in p.stderr
    assert (small / "keep.npy").read_bytes() == b"previous"
    assert not temps(small)


def test_fsync_before_rename(small):
    if not shutil.which("strace"):
        pytest.skip("no strace")
    p = subprocess.run(["strace", "-f", "-e", "trace=fsync,fdatasync,rename,renameat,renameat2,write",
                        SCORE, *poisson(small, "--out", small / "o.npy")], capture_output=True, text=True,
                       timeout=60)
    if "PTRACE" in p.stderr or "Operation not permitted" in p.stderr:
        pytest.skip("strace not permitted here")
    assert p.returncode == 0, p.stderr
    calls = [ln for ln in p.stderr.splitlines() if ln.split("(")[0].split()[-1:] and
             ln.split("(")[0].split()[-1] in ("fsync", "fdatasync", "rename", "renameat", "renameat2", "write")]
    names = [ln.split("(")[0].split()[-1] for ln in calls]
    ren = [k for k, n in enumerate(names) if n.startswith("rename")]
    assert len(ren) == 1, calls
    syncs = [k for k, n in enumerate(names) if n in ("fsync", "fdatasync")]
    assert any(k < ren[0] for k in syncs), calls  # the file's data, before it gets the output's name
    assert any(k > ren[0] for k in syncs), calls  # the directory, after the rename
    report = [k for k, ln in enumerate(calls) if names[k] == "write" and "write(1," in ln]
    assert report and report[-1] < ren[0], calls  # the report is out before the output is replaced


# ---- item 8: a long (legal) output name ----------------------------------------------------------------------

@pytest.mark.parametrize("length", [200, 248, 255])
def test_long_output_name(small, length):
    name = "o" * (length - 4) + ".npy"
    r = run(*poisson(small, "--reduction", "none", "--out", small / name))
    assert r.rc == 0, r.err
    assert (small / name).read_bytes() == expected_losses(small)
    assert not temps(small)


# ---- item 10 (single process part): --out "" is a usage error before any work ----------------------------------

def test_empty_out_rejected_at_option_time(small):
    r = run(*poisson(small, "--out", ""))
    assert r.rc == USAGE and "--out" in r.err, r.err
    assert not temps(small)
