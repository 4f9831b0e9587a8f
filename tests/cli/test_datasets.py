"""nllk-score on datasets as they come (issue 17): several parts per input (lists, globs, @lists), .npz members,
integer Poisson counts, --per-class, warnings. Every result is compared bit for bit with the library's one-shot
call (the nllk package on the same libnllk) on the concatenated arrays, and with PyTorch within rounding."""
import os
import zipfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import run, same_bits

RNG = np.random.default_rng(2024)
EX_IO, EX_FORMAT, EX_SHAPE, EX_TARGET, EX_USAGE = 3, 4, 5, 6, 2


def logp(shape, dtype=np.float32):
    x = torch.log_softmax(torch.tensor(RNG.standard_normal(shape) * 2), dim=1 if len(shape) > 1 else 0)
    return np.ascontiguousarray(x.numpy().astype(dtype))


def split(a, sizes):
    out, k = [], 0
    for s in sizes:
        out.append(a[k:k + s])
        k += s
    assert k == a.shape[0]
    return out


def save_parts(d, stem, parts):
    names = []
    for k, p in enumerate(parts):
        n = str(d / f"{stem}_{k:03d}.npy")
        np.save(n, p)
        names.append(n)
    return names


def result(r):
    assert r.rc == 0, r.err
    return r.json()


def check_nll(lib, j, x, t, w=None, ignore=-100, reduction="mean"):
    dt = x.dtype.type
    loss, tw = lib.nll(x, t, weight=w, ignore_index=ignore, reduction=reduction)
    assert same_bits(np.array(j["loss"], dtype=dt), np.asarray(loss, dtype=dt)), (j["loss"], loss)
    assert same_bits(np.array(j["total_weight"], dtype=dt), np.asarray(tw, dtype=dt))
    ref = F.nll_loss(torch.from_numpy(x).double(), torch.from_numpy(t.astype(np.int64)),
                     weight=None if w is None else torch.from_numpy(w).double(), ignore_index=ignore,
                     reduction=reduction).item()
    assert np.isclose(j["loss"], ref, rtol=1e-5, atol=1e-6)


# ---- several parts ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("chunk", [None, "3", "1"])
def test_nll_parts_list(tmp_path, lib, dtype, chunk):
    """(N, C, d) in parts of uneven sizes (one empty), the targets in other parts: the one-shot bits on the
    concatenation, and the --out file is the concatenation's per-element losses."""
    x = logp((23, 5, 37), dtype)
    t = RNG.integers(0, 5, (23, 37))
    t[RNG.random(t.shape) < 0.1] = -100
    xs = save_parts(tmp_path, "x", split(x, [7, 0, 9, 1, 6]))
    ts = save_parts(tmp_path, "t", split(t, [12, 11]))
    extra = ["--chunk-rows", chunk] if chunk else []
    out = tmp_path / "o.npy"
    j = result(run("nll", "--input", *xs, "--target", *ts, "--json", "--reduction", "sum", "--out", out, *extra))
    check_nll(lib, j, x, t, reduction="sum")
    assert j["inputs"] == xs and j["targets"] == ts
    ref, _ = lib.nll(x, t, reduction="none")
    assert same_bits(np.load(out), np.asarray(ref, dtype=dtype))


def test_nll_parts_positions(tmp_path, lib):
    """Chunks inside a sample (--chunk-bytes smaller than one sample) across parts, with weights."""
    x = logp((6, 3, 5000))
    t = RNG.integers(0, 3, (6, 5000))
    w = RNG.random(3).astype(np.float32)
    np.save(tmp_path / "w.npy", w)
    xs = save_parts(tmp_path, "x", split(x, [2, 3, 1]))
    j = result(run("nll", "--input", *xs, "--target", save_parts(tmp_path, "t", [t])[0], "--weight",
                   tmp_path / "w.npy", "--chunk-bytes", "9000", "--json"))
    assert j["chunks"] > 6
    check_nll(lib, j, x, t, w=w)


@pytest.mark.parametrize("io", ["mmap", "pread", "populate", "prefetch", "window"])
def test_poisson_glob_and_list(tmp_path, lib, io):
    """A glob (sorted in byte order, not the order the directory lists) and an @list give the same bits as one
    call on the concatenation."""
    x = RNG.normal(size=(1000, 13)).astype(np.float32)
    t = RNG.poisson(2.0, size=(1000, 13)).astype(np.float32)
    sizes = [100, 250, 1, 300, 349]
    xs = save_parts(tmp_path, "x", split(x, sizes))
    ts = save_parts(tmp_path, "t", split(t, [500, 500]))
    os.utime(xs[0], (0, 0))  # (order by name, not by time)
    ref = lib.poisson(x, t, reduction="sum")
    j = result(run("poisson", "--input", str(tmp_path / "x_*.npy"), "--target", str(tmp_path / "t_*.npy"),
                   "--reduction", "sum", "--json", "--io", io, "--chunk-rows", "64"))
    assert same_bits(np.array(j["loss"], np.float32), np.asarray(ref, np.float32))
    assert j["inputs"] == xs and j["targets"] == ts
    (tmp_path / "list.txt").write_text("# the inputs\n" + "".join(os.path.basename(p) + "\n" for p in xs) + "\n")
    j2 = result(run("poisson", "--input", "@" + str(tmp_path / "list.txt"), "--target", *ts, "--reduction", "sum",
                    "--json", "--io", io))
    assert j2["loss"] == j["loss"] and j2["inputs"] == xs
    tref = F.poisson_nll_loss(torch.from_numpy(x).double(), torch.from_numpy(t).double(), reduction="sum").item()
    assert np.isclose(j["loss"], tref, rtol=1e-5)


def test_repeated_option(tmp_path, lib):
    x = logp((10, 4))
    t = RNG.integers(0, 4, 10)
    xs = save_parts(tmp_path, "x", split(x, [4, 6]))
    ts = save_parts(tmp_path, "t", split(t, [5, 5]))
    j = result(run("nll", "--input", xs[0], "--target", ts[0], "--input", xs[1], "--target", ts[1], "--json"))
    check_nll(lib, j, x, t)


@pytest.mark.parametrize("name,make,code,needle", [
    ("shape", lambda d: [np.zeros((3, 4, 2), np.float32), np.zeros((2, 5, 2), np.float32)], EX_SHAPE,
     "x_001.npy has shape (2, 5, 2) but"),
    ("ndim", lambda d: [np.zeros((3, 4, 2), np.float32), np.zeros((2, 4), np.float32)], EX_SHAPE, "x_001.npy"),
    ("dtype", lambda d: [np.zeros((3, 4), np.float32), np.zeros((2, 4), np.float64)], EX_FORMAT,
     "x_001.npy is float64 but"),
    ("zero-d", lambda d: [np.zeros((3, 4), np.float32), np.zeros((), np.float32)], EX_SHAPE, "0-d"),
])
def test_parts_mismatch(tmp_path, name, make, code, needle):
    xs = save_parts(tmp_path, "x", make(tmp_path))
    np.save(tmp_path / "t.npy", np.zeros(5, np.int64))
    r = run("nll", "--input", *xs, "--target", tmp_path / "t.npy")
    assert r.rc == code, r.err
    assert r.err.startswith("nllk-score: error: ") and needle in r.err, r.err


def test_parts_errors(tmp_path):
    np.save(tmp_path / "x.npy", logp((4, 3)))
    np.save(tmp_path / "t.npy", np.zeros(4, np.int64))
    r = run("nll", "--input", str(tmp_path / "nothing_*.npy"), "--target", tmp_path / "t.npy")
    assert r.rc == EX_IO and "no file matches" in r.err and "nothing_*.npy" in r.err, r.err
    r = run("nll", "--input", "@" + str(tmp_path / "missing.txt"), "--target", tmp_path / "t.npy")
    assert r.rc == EX_IO and "missing.txt" in r.err, r.err
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    r = run("nll", "--input", "@" + str(tmp_path / "empty.txt"), "--target", tmp_path / "t.npy")
    assert r.rc == EX_IO and "names no file" in r.err, r.err
    (tmp_path / "l.txt").write_text("x.npy\ngone.npy\n")
    r = run("nll", "--input", "@" + str(tmp_path / "l.txt"), "--target", tmp_path / "t.npy")
    assert r.rc == EX_IO and "gone.npy" in r.err, r.err
    # rows that do not add up: 4 input samples, targets for 4 + 4
    r = run("nll", "--input", tmp_path / "x.npy", "--target", tmp_path / "t.npy", tmp_path / "t.npy")
    assert r.rc == EX_SHAPE and "t.npy (2 parts) must have shape" in r.err and "not (8,)" in r.err, r.err
    # several 1-D (C) inputs would change C: refused
    np.save(tmp_path / "c.npy", logp((3,)))
    r = run("nll", "--input", tmp_path / "c.npy", tmp_path / "c.npy", "--target", tmp_path / "t.npy")
    assert r.rc == EX_SHAPE and "1-D" in r.err, r.err


def test_target_error_names_part(tmp_path):
    x = logp((10, 3))
    t = RNG.integers(0, 3, 10)
    t[7] = 3
    ts = save_parts(tmp_path, "t", split(t, [5, 5]))
    r = run("nll", "--input", save_parts(tmp_path, "x", [x])[0], "--target", *ts)
    assert r.rc == EX_TARGET
    assert "t_001.npy: value 3 at flat index 2, coordinates (2,) (flat index 7 of the 2 parts'" in r.err, r.err


# ---- .npz ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_npz_members(tmp_path, lib, dtype):
    """np.savez members (stored; their data at any offset in the archive, so unaligned ones are read through
    the aligned copy): the bits of the one-shot call, for every --io mode."""
    x = logp((301, 7), dtype)
    t = RNG.integers(0, 7, 301)
    for k, pad in enumerate(["", "a", "abc", "abcdef"]):  # name lengths shift the data: unaligned, aligned ("abcdef")
        z = tmp_path / f"p{k}.npz"
        np.savez(z, **{"logp" + pad: x, "labels": t})
        for io in ["mmap", "pread", "prefetch"]:
            j = result(run("nll", "--input", f"{z}:logp{pad}", "--target", f"{z}:labels.npy", "--json", "--io", io,
                           "--chunk-rows", "50"))
            check_nll(lib, j, x, t)


def test_npz_parts_and_poisson_counts(tmp_path, lib):
    x = RNG.normal(size=(90, 3)).astype(np.float64)
    t = RNG.poisson(3, size=(90, 3)).astype(np.uint16)
    for k in range(3):
        np.savez(tmp_path / f"b{k}.npz", x=x[30 * k:30 * k + 30], y=t[30 * k:30 * k + 30])
    j = result(run("poisson", "--input", str(tmp_path / "b*.npz") + ":x", "--target", str(tmp_path / "b*.npz") + ":y",
                   "--json", "--reduction", "sum"))
    ref = lib.poisson(x, t.astype(np.float64), reduction="sum")
    assert same_bits(np.array(j["loss"]), np.asarray(ref, np.float64))
    assert j["inputs"] == [f"{tmp_path}/b{k}.npz:x" for k in range(3)]


def test_npz_errors(tmp_path):
    x = logp((5, 3))
    np.savez(tmp_path / "a.npz", logp=x, labels=np.zeros(5, np.int64))
    np.savez_compressed(tmp_path / "c.npz", logp=x, labels=np.zeros(5, np.int64))
    r = run("nll", "--input", f"{tmp_path}/a.npz:nope", "--target", f"{tmp_path}/a.npz:labels")
    assert r.rc == EX_FORMAT and "no member 'nope'" in r.err and "logp, labels" in r.err, r.err
    r = run("nll", "--input", f"{tmp_path}/c.npz:logp", "--target", f"{tmp_path}/a.npz:labels")
    assert r.rc == EX_FORMAT and "deflated" in r.err and "np.savez" in r.err, r.err
    (tmp_path / "bad.npz").write_bytes(b"not a zip at all" * 10)
    r = run("nll", "--input", f"{tmp_path}/bad.npz:logp", "--target", f"{tmp_path}/a.npz:labels")
    assert r.rc == EX_FORMAT and "not a zip" in r.err, r.err
    r = run("nll", "--input", f"{tmp_path}/a.npz", "--target", f"{tmp_path}/a.npz:labels")
    assert r.rc == EX_FORMAT and "a.npz:NAME" in r.err, r.err
    r = run("nll", "--input", f"{tmp_path}/none.npz:logp", "--target", f"{tmp_path}/a.npz:labels")
    assert r.rc == EX_IO, r.err
    # a member that is not an .npy
    with zipfile.ZipFile(tmp_path / "txt.npz", "w") as z:
        z.writestr("logp.npy", b"hello")
    r = run("nll", "--input", f"{tmp_path}/txt.npz:logp", "--target", f"{tmp_path}/a.npz:labels")
    assert r.rc == EX_FORMAT, r.err


# ---- integer Poisson counts ------------------------------------------------------------------------------------

INTS = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


@pytest.mark.parametrize("itype", INTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_poisson_integer_targets(tmp_path, lib, itype, dtype):
    x = RNG.normal(size=(517, 3)).astype(dtype)
    t = RNG.integers(0, 100, size=(517, 3)).astype(itype)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "t.npy", t)
    out = tmp_path / "o.npy"
    j = result(run("poisson", "--input", tmp_path / "x.npy", "--target", tmp_path / "t.npy", "--json", "--full",
                   "--out", out, "--chunk-rows", "100"))
    ref = lib.poisson(x, t.astype(dtype), full=True)
    assert same_bits(np.array(j["loss"], dtype), np.asarray(ref, dtype))
    assert same_bits(np.load(out), np.asarray(lib.poisson(x, t.astype(dtype), full=True, reduction="none"), dtype))
    tref = F.poisson_nll_loss(torch.from_numpy(x).double(), torch.from_numpy(t.astype(np.float64)), full=True).item()
    assert np.isclose(j["loss"], tref, rtol=1e-5)


@pytest.mark.parametrize("itype,dtype,big", [
    (np.int32, np.float32, 2**24 + 1), (np.int64, np.float32, -(2**25 + 1)), (np.uint32, np.float32, 2**32 - 1),
    (np.int64, np.float64, 2**53 + 1), (np.uint64, np.float64, 2**64 - 1), (np.int64, np.float64, -(2**63 - 1))])
def test_poisson_integer_too_large(tmp_path, itype, dtype, big):
    x = np.zeros((4, 5), dtype)
    t = np.ones((4, 5), itype)
    t[2, 3] = big
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "t.npy", t)
    r = run("poisson", "--input", tmp_path / "x.npy", "--target", tmp_path / "t.npy", "--no-warn")
    assert r.rc == EX_TARGET, r.err
    assert f"the count {big} at flat index 13, coordinates (2, 3) is not exactly representable" in r.err, r.err
    # a large count that is representable is fine
    t[2, 3] = 2**30
    np.save(tmp_path / "t.npy", t)
    assert run("poisson", "--input", tmp_path / "x.npy", "--target", tmp_path / "t.npy").rc == 0


# ---- --per-class -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(400, 6), (9, 4, 300)])
@pytest.mark.parametrize("weighted", [False, True])
def test_per_class(tmp_path, lib, dtype, shape, weighted):
    """Class k's sum and total weight are the one-shot sum call's on the elements whose target is k (in order);
    the count is their number; ignored elements belong to no class. Also equal to PyTorch's within rounding."""
    c = shape[1]
    x = logp(shape, dtype)
    tshape = (shape[0],) + shape[2:]
    t = RNG.integers(0, c - 1, tshape)  # class c-1 never occurs
    t[RNG.random(tshape) < 0.1] = 2     # ignored below
    w = RNG.random(c).astype(dtype) if weighted else None
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "t.npy", t)
    args = ["nll", "--input", tmp_path / "x.npy", "--target", tmp_path / "t.npy", "--per-class", "--ignore-index",
            "2", "--chunk-rows", "3"]
    if weighted:
        np.save(tmp_path / "w.npy", w)
        args += ["--weight", tmp_path / "w.npy"]
    j = result(run(*args, "--json"))
    pc = j["per_class"]
    rows = np.moveaxis(x, 1, -1).reshape(-1, c)  # (elements, C) in flat order
    flat = t.reshape(-1)
    expect = [k for k in range(c) if k != 2 and (flat == k).any()]
    assert pc["class"] == expect
    for i, k in enumerate(expect):
        sel = flat == k
        s, tw = lib.nll(np.ascontiguousarray(rows[sel]), flat[sel], weight=w, reduction="sum")
        assert pc["count"][i] == sel.sum()
        assert same_bits(np.array(pc["sum"][i], dtype), np.asarray(s, dtype)), (k, pc["sum"][i], s)
        assert same_bits(np.array(pc["total_weight"][i], dtype), np.asarray(tw, dtype))
        ref = F.nll_loss(torch.from_numpy(rows[sel]).double(), torch.from_numpy(flat[sel]),
                         weight=None if w is None else torch.from_numpy(w).double(), reduction="sum").item()
        assert np.isclose(pc["sum"][i], ref, rtol=1e-5)
    # the overall result is unchanged by --per-class
    j0 = result(run(*[a for a in args if a != "--per-class"], "--json"))
    assert j0["loss"] == j["loss"] and "per_class" not in j0
    # the human table
    r = run(*args)
    assert r.rc == 0 and "total_weight" in r.out and "class" in r.out
    assert len([ln for ln in r.out.splitlines() if ln.split() and ln.split()[0].isdigit()]) == len(expect)


def test_per_class_parts(tmp_path, lib):
    x = logp((50, 3))
    t = RNG.integers(0, 3, 50)
    xs = save_parts(tmp_path, "x", split(x, [20, 30]))
    ts = save_parts(tmp_path, "t", split(t, [25, 25]))
    pc = result(run("nll", "--input", *xs, "--target", *ts, "--per-class", "--json"))["per_class"]
    for i, k in enumerate(pc["class"]):
        s, _ = lib.nll(np.ascontiguousarray(x[t == k]), t[t == k], reduction="sum")
        assert same_bits(np.array(pc["sum"][i], np.float32), np.asarray(s, np.float32))


def test_per_class_usage(tmp_path):
    r = run("poisson", "--input", "x.npy", "--target", "t.npy", "--per-class")
    assert r.rc == EX_USAGE and "--per-class" in r.err


# ---- warnings --------------------------------------------------------------------------------------------------

def warnings(r):
    return [ln for ln in r.err.splitlines() if ln.startswith("nllk-score: warning: ")]


@pytest.mark.parametrize("kind", ["probs", "logits"])
def test_warn_not_log_probabilities(tmp_path, kind):
    lp = logp((64, 10))
    x = np.exp(lp) if kind == "probs" else (lp * 3 + 5).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "t.npy", RNG.integers(0, 10, 64))
    args = ["nll", "--input", tmp_path / "x.npy", "--target", tmp_path / "t.npy"]
    r = run(*args)
    assert r.rc == 0
    (w,) = warnings(r)
    assert "not log-probabilities" in w and "nllk-score ce" in w, w
    r = run(*args, "--quiet")
    assert r.rc == 0 and len(warnings(r)) == 1
    r = run(*args, "--no-warn")
    assert r.rc == 0 and r.err == ""
    np.save(tmp_path / "x.npy", lp)  # the real thing: no warning
    assert run(*args).err == ""


@pytest.mark.parametrize("bad", [255, -1])
def test_warn_ignore_index_hint(tmp_path, bad):
    np.save(tmp_path / "x.npy", logp((8, 3)))
    t = RNG.integers(0, 3, 8).astype(np.int64 if bad < 0 else np.uint8)
    t[5] = bad
    np.save(tmp_path / "t.npy", t)
    r = run("nll", "--input", tmp_path / "x.npy", "--target", tmp_path / "t.npy")
    assert r.rc == EX_TARGET
    (w,) = warnings(r)
    assert f"--ignore-index {bad}" in w
    r = run("nll", "--input", tmp_path / "x.npy", "--target", tmp_path / "t.npy", "--no-warn")
    assert r.rc == EX_TARGET and warnings(r) == []
    assert run("nll", "--input", tmp_path / "x.npy", "--target", tmp_path / "t.npy", "--ignore-index", bad).rc == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_warn_poisson_counts(tmp_path, dtype):
    x = np.zeros((100, 3), np.float32 if dtype == np.int32 else dtype)
    t = np.ones((100, 3), dtype)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "t.npy", t)
    args = ["poisson", "--input", tmp_path / "x.npy", "--target", tmp_path / "t.npy", "--chunk-rows", "10"]
    assert run(*args).err == ""
    t[40, 1] = -2
    if dtype != np.int32:
        t[70, 2] = 0.5
    np.save(tmp_path / "t.npy", t)
    r = run(*args)
    assert r.rc == 0
    w = warnings(r)
    assert any("-2 at flat index 121" in ln and "negative" in ln for ln in w), w
    if dtype != np.int32:
        assert any("0.5 at flat index 212" in ln and "not an integer" in ln for ln in w), w
    assert len(w) == (1 if dtype == np.int32 else 2)
    assert run(*args, "--no-warn").err == ""


def test_npz_hostile(tmp_path):
    """Corrupted archives (bytes flipped in the central directory, local headers and sizes; truncations): an
    error with an exit code of the scheme or a result, never a crash or a hang."""
    x = logp((20, 3))
    np.savez(tmp_path / "a.npz", logp=x, labels=RNG.integers(0, 3, 20))
    good = (tmp_path / "a.npz").read_bytes()
    rng = np.random.default_rng(5)
    for k in range(120):
        b = bytearray(good)
        if k % 4 == 0:
            b = b[:rng.integers(0, len(b))]
        else:
            for _ in range(rng.integers(1, 6)):
                # mostly in the zip structures: the tail (central directory, end record) and the headers
                pos = int(rng.integers(len(b) - 200, len(b))) if k % 2 else int(rng.integers(0, len(b)))
                b[pos] = int(rng.integers(0, 256))
        (tmp_path / "h.npz").write_bytes(bytes(b))
        r = run("nll", "--input", f"{tmp_path}/h.npz:logp", "--target", f"{tmp_path}/h.npz:labels", "--no-warn",
                timeout=60)
        assert r.rc in (0, 3, 4, 5, 6), (k, r.rc, r.err)
        assert r.rc == 0 or r.err.startswith("nllk-score: error: "), (k, r.err)


@pytest.mark.parametrize("io", ["mmap", "pread", "populate", "prefetch", "window"])
@pytest.mark.parametrize("chunk", [["--chunk-rows", "2"], ["--chunk-bytes", "7000"]])
def test_parts_every_io(tmp_path, lib, io, chunk):
    """Parts of unequal sizes in every read method, whole samples and runs inside a sample: the one-shot bits."""
    x = logp((7, 3, 1500))
    t = RNG.integers(0, 3, (7, 1500))
    xs = save_parts(tmp_path, "x", split(x, [3, 1, 3]))
    ts = save_parts(tmp_path, "t", split(t, [2, 5]))
    j = result(run("nll", "--input", *xs, "--target", *ts, "--io", io, "--json", "--reduction", "sum", *chunk))
    check_nll(lib, j, x, t, reduction="sum")
