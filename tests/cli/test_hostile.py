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

from conftest import SCORE, run, temp_outputs

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


# ---- item 4: an input truncated during the run (mapped reads): an error, no SIGBUS death, no temporary file ----

@pytest.mark.parametrize("io", ["prefetch", "mmap", "populate"])
def test_input_truncated_mid_run(tmp_path, io):
    big_pair(tmp_path)
    p = subprocess.Popen([SCORE, "poisson", "--input", "x.npy", "--target", "t.npy", "--out", "o.npy",
                          "--reduction", "none", "--chunk-rows", "2000", "--io", io, "--progress", "--threads", "1"],
                         cwd=tmp_path, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    first = p.stderr.readline()
    assert "%" in first, first
    os.truncate(tmp_path / "x.npy", 4096)
    rest = p.stderr.read()
    rc = p.wait(timeout=120)
    if rc == 0:
        pytest.skip("the run finished before the truncation")
    assert rc == IO, (rc, rest)
    assert "x.npy" in rest and "changed" in rest, rest
    assert sorted(os.listdir(tmp_path)) == ["t.npy", "x.npy"]


# ---- item 5: SIGPIPE, SIGXFSZ and every catchable terminating signal leave no temporary file; --clean ----------

def test_sigpipe_progress_into_head(tmp_path):
    big_pair(tmp_path, 4 * 1000 * 1000)
    (tmp_path / "o.npy").write_bytes(b"previous")
    p = subprocess.Popen(f"'{SCORE}' poisson --input x.npy --target t.npy --out o.npy --reduction none "
                         "--chunk-rows 1000 --io pread --progress 2>&1 | head -c 10 >/dev/null; "
                         "echo ${PIPESTATUS[0]}", shell=True, executable="/bin/bash", cwd=tmp_path,
                         stdout=subprocess.PIPE, text=True)
    rc = int(p.communicate(timeout=120)[0])
    assert rc == IO, rc  # the report could not be written: the run failed, the output is untouched
    assert (tmp_path / "o.npy").read_bytes() == b"previous"
    assert not temps(tmp_path)


def test_sigxfsz_file_size_limit(tmp_path):
    big_pair(tmp_path, 1000 * 1000)

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    p = subprocess.run([SCORE, "poisson", "--input", "x.npy", "--target", "t.npy", "--out", "o.npy", "--reduction",
                        "none"], cwd=tmp_path, capture_output=True, text=True, timeout=60, preexec_fn=limit)
    assert p.returncode == IO, (p.returncode, p.stderr)
    assert "too large" in p.stderr.lower(), p.stderr
    assert sorted(os.listdir(tmp_path)) == ["t.npy", "x.npy"]


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM,
                                 signal.SIGXCPU, signal.SIGVTALRM, signal.SIGPROF])
def test_other_signals_leave_nothing(tmp_path, sig):
    big_pair(tmp_path)
    p = subprocess.Popen([SCORE, "poisson", "--input", "x.npy", "--target", "t.npy", "--out", "o.npy",
                          "--reduction", "none", "--chunk-rows", "1000", "--io", "pread", "--progress"],
                         cwd=tmp_path, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert "%" in p.stderr.readline()
    assert temp_outputs(p.pid, tmp_path), "the temporary output file was not where expected"
    p.send_signal(sig)
    rest = p.stderr.read()
    rc = p.wait(timeout=60)
    if rc == 0:
        pytest.skip("the run finished before the signal arrived")
    assert rc == (INTERRUPTED if sig == signal.SIGHUP else 128 + sig), (rc, rest)
    assert "nllk-score: interrupted" in rest
    assert sorted(os.listdir(tmp_path)) == ["t.npy", "x.npy"]


def test_sigkill_leaves_nothing(tmp_path):
    """The temporary output is unnamed (O_TMPFILE) on this file system: even SIGKILL leaves nothing behind."""
    big_pair(tmp_path)
    p = subprocess.Popen([SCORE, "poisson", "--input", "x.npy", "--target", "t.npy", "--out", "o.npy",
                          "--reduction", "none", "--chunk-rows", "1000", "--io", "pread", "--progress"],
                         cwd=tmp_path, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert "%" in p.stderr.readline()
    held = temp_outputs(p.pid, tmp_path)
    p.kill()
    p.wait(timeout=60)
    assert len(held) == 1 and "/#" in held[0], held  # unnamed: nothing in the directory while it runs
    assert sorted(os.listdir(tmp_path)) == ["t.npy", "x.npy"]


def test_clean_removes_stale_temps_only(tmp_path):
    """--clean removes the named temporary files (file systems without O_TMPFILE, ranks on several hosts) whose
    process on this host is gone; a live process's file and unrelated dot files stay."""
    host = os.uname().nodename
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = f".o.npy{TMP_TAG}{host}.{gone.pid}.xyz789"
    live = f".other.npy{TMP_TAG}{host}.{os.getpid()}.abc123"
    elsewhere = f".third.npy{TMP_TAG}not-{host}.{gone.pid}.def456"
    for name in (stale, live, elsewhere, ".hidden"):
        (tmp_path / name).write_bytes(b"x")
    r = run("--clean", tmp_path)
    assert r.rc == 0, r.err
    assert stale in r.out and live not in r.out and elsewhere not in r.out
    assert "made on host" in r.err
    assert sorted(os.listdir(tmp_path)) == sorted([".hidden", live, elsewhere])


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
                       timeout=60, env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))  # LSan fails under ptrace
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


# ---- item 9: --json is valid JSON whatever bytes the path has --------------------------------------------------

@pytest.mark.parametrize("raw", [b"caf\xe9.npy", b"\xff\xfe.npy", b"ok-\xc3\xa9-\xed\xa0\x80-\xf4\x90\x80\x80.npy",
                                 b"tab\there\x7f.npy"])
def test_json_escapes_any_path_bytes(small, raw):
    out = os.fsencode(str(small)) + b"/" + raw
    p = subprocess.run([os.fsencode(SCORE), *map(os.fsencode, poisson(small, "--json")), b"--out", out],
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout.decode("utf-8"))  # strict UTF-8, then JSON
    assert os.fsencode(j["output"]) == out  # invalid bytes come back through Python's surrogateescape


# ---- item 10 (single process part): --out "" is a usage error before any work ----------------------------------

def test_empty_out_rejected_at_option_time(small):
    r = run(*poisson(small, "--out", ""))
    assert r.rc == USAGE and "--out" in r.err, r.err
    assert not temps(small)


# ---- item 11: targets are validated once, in a private copy: a file changed under the run is never read ---------

def test_targets_changed_under_the_run(tmp_path):
    """NLL, --io mmap, chunks inside a sample, --out: a writer keeps flipping one target between a valid label and a
    huge one. A run may succeed or report the target out of range; it never reads out of bounds (the old part path
    re-read the targets after the library validated them)."""
    c, d = 4, 1 << 16
    np.save(tmp_path / "x.npy", np.zeros((4, c, d), np.float32))
    good = np.zeros((4, d), np.int64)
    np.save(tmp_path / "t.npy", good)
    off = os.path.getsize(tmp_path / "t.npy") - good.nbytes + 8 * (2 * d + 1000)  # target (2, 1000)
    bad, goodb = np.int64(1 << 40).tobytes(), np.int64(1).tobytes()
    stop = threading.Event()

    def flip():
        fd = os.open(tmp_path / "t.npy", os.O_WRONLY)
        while not stop.is_set():
            os.pwrite(fd, bad, off)
            os.pwrite(fd, goodb, off)
        os.close(fd)

    th = threading.Thread(target=flip, daemon=True)
    th.start()
    try:
        for _ in range(60):
            r = run("nll", "--input", tmp_path / "x.npy", "--target", tmp_path / "t.npy", "--io", "mmap",
                    "--chunk-bytes", "8192", "--out", tmp_path / "o.npy", "--threads", "1", timeout=60)
            assert r.rc in (0, TARGET), (r.rc, r.err)
    finally:
        stop.set()
        th.join()
