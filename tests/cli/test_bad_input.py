"""nllk-score's bad-input table: one clear line on stderr, the documented exit code per kind, no output file, no
temporary file left behind, never a crash. Also Ctrl-C (SIGINT/SIGTERM) during a run: exit 130, nothing left."""
import os
import signal
import struct
import subprocess
import time

import numpy as np
import pytest

from conftest import SCORE, run, temp_outputs

USAGE, IO, FORMAT, SHAPE, TARGET, UNSUPPORTED, INTERRUPTED = 2, 3, 4, 5, 6, 7, 130


def npy_bytes(a, version=(1, 0)):
    import io
    b = io.BytesIO()
    np.lib.format.write_array(b, a, version=version)
    return b.getvalue()


def raw_npy(header_dict, data=b"", version=1):
    d = header_dict.encode()
    pre = 10 if version == 1 else 12
    total = (pre + len(d) + 1 + 63) // 64 * 64
    hl = total - pre
    h = b"\x93NUMPY" + bytes([version, 0]) + (struct.pack("<H", hl) if version == 1 else struct.pack("<I", hl))
    return h + d + b" " * (hl - len(d) - 1) + b"\n" + data


GOOD_X = np.linspace(0.1, 2, 24, dtype=np.float32).reshape(4, 6)
GOOD_T = np.ones((4, 6), np.float32)
LOGP = np.log(np.full((4, 3, 5), 1 / 3, np.float32))
LABELS = np.zeros((4, 5), np.int64)


def write_files(d, files):
    paths = {}
    for name, content in files.items():
        p = d / name
        if isinstance(content, np.ndarray):
            np.save(p, content)
        elif content is not None:
            p.write_bytes(content)
        paths[name] = str(p)
    return paths


def cases():
    """(id, command args builder, files, expected exit code, a substring of the message)"""
    fx = npy_bytes(GOOD_X)
    c = []

    def P(x="x.npy", t="t.npy"):
        return ["poisson", "--input", x, "--target", t]

    def N(x="x.npy", t="t.npy", *extra):
        return ["nll", "--input", x, "--target", t, *extra]

    # I/O
    c.append(("missing-input", P("nope.npy"), {"t.npy": GOOD_T}, IO, "No such file"))
    c.append(("missing-target", P(), {"x.npy": GOOD_X}, IO, "No such file"))
    c.append(("input-is-directory", P("."), {"t.npy": GOOD_T}, IO, "directory"))
    c.append(("out-dir-missing", P() + ["--out", "nodir/o.npy"], {"x.npy": GOOD_X, "t.npy": GOOD_T}, IO, "nodir"))
    c.append(("out-is-directory", P() + ["--out", "."], {"x.npy": GOOD_X, "t.npy": GOOD_T}, IO, "directory"))
    c.append(("missing-weight", N("x.npy", "t.npy", "--weight", "w.npy"), {"x.npy": LOGP, "t.npy": LABELS}, IO,
              "No such file"))
    # format
    c.append(("not-npy-text", P(), {"x.npy": b"hello, world\n" * 10, "t.npy": GOOD_T}, FORMAT, "not an .npy"))
    c.append(("empty-file", P(), {"x.npy": b"", "t.npy": GOOD_T}, FORMAT, "not an .npy"))
    c.append(("magic-only", P(), {"x.npy": fx[:7], "t.npy": GOOD_T}, FORMAT, "truncated"))
    c.append(("truncated-header", P(), {"x.npy": fx[:40], "t.npy": GOOD_T}, FORMAT, "truncated"))
    c.append(("truncated-data", P(), {"x.npy": fx[:-1], "t.npy": GOOD_T}, FORMAT, "truncated data"))
    c.append(("no-data", P(), {"x.npy": fx[:128], "t.npy": GOOD_T}, FORMAT, "truncated data"))
    c.append(("version-4", P(), {"x.npy": fx[:6] + b"\x04\x00" + fx[8:], "t.npy": GOOD_T}, FORMAT, "version"))
    c.append(("fortran-order", P(), {"x.npy": np.asfortranarray(GOOD_X.reshape(6, 4)).T.copy(order="F"),
                                     "t.npy": GOOD_T}, FORMAT, "Fortran"))
    c.append(("big-endian", P(), {"x.npy": GOOD_X.astype(">f4"), "t.npy": GOOD_T}, FORMAT, "big-endian"))
    c.append(("complex64", P(), {"x.npy": GOOD_X.astype(np.complex64), "t.npy": GOOD_T}, FORMAT, "unsupported dtype"))
    c.append(("int-poisson-input", P(), {"x.npy": GOOD_X.astype(np.int64), "t.npy": GOOD_T}, FORMAT, "int64"))
    c.append(("mixed-poisson-dtypes", P(), {"x.npy": GOOD_X, "t.npy": GOOD_T.astype(np.float64)}, FORMAT,
              "same dtype"))
    c.append(("structured", P(), {"x.npy": np.zeros(4, dtype=[("a", "<f4"), ("b", "<i4")]), "t.npy": GOOD_T},
              FORMAT, "structured"))
    c.append(("object-dtype", P(), {"x.npy": raw_npy("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }",
                                                      b"\0" * 16), "t.npy": GOOD_T}, FORMAT, "unsupported dtype"))
    c.append(("bad-dict", P(), {"x.npy": raw_npy("{'descr': '<f4', 'fortran_order': False}"), "t.npy": GOOD_T},
              FORMAT, "missing 'shape'"))
    c.append(("shape-overflow", P(), {"x.npy": raw_npy(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }"), "t.npy": GOOD_T},
        FORMAT, "overflows"))
    c.append(("huge-shape-short-file", P(), {"x.npy": raw_npy(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }"), "t.npy": GOOD_T},
        FORMAT, "truncated data"))
    c.append(("float-nll-target", N(), {"x.npy": LOGP, "t.npy": LABELS.astype(np.float32)}, FORMAT, "float32"))
    c.append(("int16-nll-target", N(), {"x.npy": LOGP, "t.npy": LABELS.astype(np.int16)}, FORMAT,
              "unsupported dtype"))
    c.append(("int-weight", N("x.npy", "t.npy", "--weight", "w.npy"),
              {"x.npy": LOGP, "t.npy": LABELS, "w.npy": np.ones(3, np.int64)}, FORMAT, "weight"))
    # shapes
    c.append(("poisson-shape", P(), {"x.npy": GOOD_X, "t.npy": GOOD_T.reshape(6, 4)}, SHAPE, "shapes do not match"))
    c.append(("poisson-broadcast", P(), {"x.npy": GOOD_X, "t.npy": GOOD_T[:1]}, SHAPE, "shapes do not match"))
    c.append(("nll-batch", N(), {"x.npy": LOGP, "t.npy": LABELS[:3]}, SHAPE, "shapes do not match"))
    c.append(("nll-spatial", N(), {"x.npy": LOGP, "t.npy": np.zeros((4, 4), np.int64)}, SHAPE, "shapes do not match"))
    c.append(("nll-rank", N(), {"x.npy": LOGP, "t.npy": np.zeros((4,), np.int64)}, SHAPE, "shapes do not match"))
    c.append(("nll-1d-needs-scalar", N(), {"x.npy": LOGP[0, :, 0].copy(), "t.npy": np.zeros(1, np.int64)}, SHAPE,
              "shapes do not match"))
    c.append(("nll-0d-input", N(), {"x.npy": np.array(1.0, np.float32), "t.npy": np.array(0)}, SHAPE, "0-d"))
    c.append(("weight-length", N("x.npy", "t.npy", "--weight", "w.npy"),
              {"x.npy": LOGP, "t.npy": LABELS, "w.npy": np.ones(4, np.float32)}, SHAPE, "3 classes"))
    c.append(("weight-2d", N("x.npy", "t.npy", "--weight", "w.npy"),
              {"x.npy": LOGP, "t.npy": LABELS, "w.npy": np.ones((1, 3), np.float32)}, SHAPE, "3 classes"))
    # targets
    bad = LABELS.copy()
    bad[2, 3] = 3
    c.append(("target-too-big", N(), {"x.npy": LOGP, "t.npy": bad}, TARGET,
              "value 3 at flat index 13, coordinates (2, 3), is out of range [0, 3)"))
    neg = LABELS.astype(np.int32)
    neg[3, 4] = -1
    c.append(("target-negative-i32", N(), {"x.npy": LOGP, "t.npy": neg}, TARGET, "flat index 19, coordinates (3, 4)"))
    u8 = LABELS.astype(np.uint8)
    u8[0, 1] = 255
    c.append(("target-u8-no-ignore", N(), {"x.npy": LOGP, "t.npy": u8}, TARGET, "value 255 at flat index 1"))
    c.append(("target-out-with-out", N("x.npy", "t.npy", "--out", "o.npy", "--chunk-rows", "1"),
              {"x.npy": LOGP, "t.npy": bad}, TARGET, "flat index 13"))
    c.append(("target-1d-input", N(), {"x.npy": LOGP[0, :, 0].copy(), "t.npy": np.array(7)}, TARGET,
              "value 7 at flat index 0, coordinates ()"))
    # usage
    ok = {"x.npy": GOOD_X, "t.npy": GOOD_T}
    c.append(("unknown-flag", P() + ["--frobnicate"], ok, USAGE, "unknown option '--frobnicate'"))
    c.append(("unknown-short-flag", P() + ["-z"], ok, USAGE, "unknown option '-z'"))
    c.append(("unknown-command", ["score"], ok, USAGE, "unknown command"))
    c.append(("no-command", [], ok, USAGE, "missing command"))
    c.append(("flag-before-command", ["--input", "x.npy"], ok, USAGE, "missing command"))
    c.append(("missing-target-flag", ["poisson", "--input", "x.npy"], ok, USAGE, "--target is required"))
    c.append(("missing-value", P() + ["--eps"], ok, USAGE, "needs a value"))
    c.append(("bad-reduction", P() + ["--reduction", "avg"], ok, USAGE, "'avg' is not valid"))
    c.append(("bad-eps", P() + ["--eps", "tiny"], ok, USAGE, "not a number"))
    c.append(("bad-threads", P() + ["--threads", "two"], ok, USAGE, "--threads"))
    c.append(("negative-threads", P() + ["--threads", "-1"], ok, USAGE, "--threads"))
    c.append(("zero-chunk-rows", P() + ["--chunk-rows", "0"], ok, USAGE, "--chunk-rows"))
    c.append(("bad-ignore-index", N("x.npy", "t.npy", "--ignore-index", "1.5"), ok, USAGE, "--ignore-index"))
    c.append(("huge-ignore-index", N("x.npy", "t.npy", "--ignore-index", "99999999999999999999"), ok, USAGE,
              "--ignore-index"))
    c.append(("full-on-nll", N("x.npy", "t.npy", "--full"), ok, USAGE, "option of poisson"))
    c.append(("weight-on-poisson", P() + ["--weight", "w.npy"], ok, USAGE, "option of nll"))
    c.append(("none-needs-out", P() + ["--reduction", "none"], ok, USAGE, "--out"))
    c.append(("extra-argument", P() + ["--json", "extra"], ok, USAGE, "unexpected argument"))
    c.append(("extra-before-input", ["poisson", "extra", "--input", "x.npy", "--target", "t.npy"], ok, USAGE,
              "unexpected argument"))
    c.append(("bad-isa", P() + ["--isa", "sse9"], ok, USAGE, "unknown instruction set"))
    c.append(("bad-io", P() + ["--io", "carrier-pigeon"], ok, USAGE, "--io"))
    c.append(("demo-with-input", ["demo", "--input", "x.npy"], ok, USAGE, "demo takes only"))
    c.append(("isa-other-arch", P() + ["--isa", "neon" if os.uname().machine == "x86_64" else "avx2"], ok,
              UNSUPPORTED, "neon" if os.uname().machine == "x86_64" else "avx2"))
    return c


CASES = cases()


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(tmp_path, case):
    name, args, files, code, needle = case
    write_files(tmp_path, files)
    before = set(os.listdir(tmp_path))
    out = tmp_path / "result.npy"
    with_out = "--out" not in args and args and args[0] in ("poisson", "nll") and code != USAGE
    full_args = list(args) + (["--out", str(out)] if with_out else [])
    p = subprocess.run([SCORE, *full_args], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert p.returncode == code, (p.returncode, p.stderr)
    lines = [ln for ln in p.stderr.splitlines() if not ln.startswith("nllk-score: warning: ")]
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("nllk-score: error: ")
    assert needle in lines[0], lines[0]
    assert p.stdout == ""
    assert set(os.listdir(tmp_path)) == before, "an output or temporary file was left behind"


def test_no_partial_output_on_late_error(tmp_path):
    """The error is found in the last chunk, after most of the output was written: nothing is left."""
    x = np.log(np.full((200, 3, 7), 1 / 3, np.float32))
    t = np.zeros((200, 7), np.int64)
    t[199, 6] = 5
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "t.npy", t)
    r = run("nll", "--input", tmp_path / "x.npy", "--target", tmp_path / "t.npy", "--out", tmp_path / "o.npy",
            "--chunk-rows", 3)
    assert r.rc == TARGET and "flat index 1399, coordinates (199, 6)" in r.err
    assert sorted(os.listdir(tmp_path)) == ["t.npy", "x.npy"]


def test_existing_output_kept_on_error(tmp_path):
    """A failed run does not touch an existing output file."""
    np.save(tmp_path / "x.npy", GOOD_X)
    np.save(tmp_path / "t.npy", GOOD_T.reshape(6, 4))
    (tmp_path / "o.npy").write_bytes(b"previous")
    r = run("poisson", "--input", tmp_path / "x.npy", "--target", tmp_path / "t.npy", "--out", tmp_path / "o.npy")
    assert r.rc == SHAPE
    assert (tmp_path / "o.npy").read_bytes() == b"previous"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_leaves_nothing(tmp_path, sig):
    n = 24 * 1000 * 1000
    x = np.zeros(n, np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "t.npy", x)
    del x
    # small chunks through pread: slow enough to be interrupted while the output is being written
    p = subprocess.Popen([SCORE, "poisson", "--input", "x.npy", "--target", "t.npy", "--out", "o.npy",
                          "--reduction", "none", "--chunk-rows", "1000", "--io", "pread", "--progress"],
                         cwd=tmp_path, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    first = p.stderr.readline()  # the first progress line: the run (and its temporary file) has started
    assert "%" in first, first
    tmp_seen = temp_outputs(p.pid, tmp_path)
    p.send_signal(sig)
    rest = p.stderr.read()
    rc = p.wait(timeout=60)
    if rc == 0:
        pytest.skip("the run finished before the signal arrived")
    assert rc == INTERRUPTED, rest
    assert "interrupted" in rest
    assert tmp_seen, "the temporary output file was not where expected"
    assert sorted(os.listdir(tmp_path)) == ["t.npy", "x.npy"]
