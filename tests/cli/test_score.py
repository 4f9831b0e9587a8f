"""nllk-score end to end: generated .npy files, every flag and dtype, results equal to the library's one-shot call
bit for bit (and to PyTorch within rounding), per-element output, chunkings that do not divide the data."""
import os

import numpy as np
import pytest
import torch

from conftest import run, same_bits

RNG = np.random.default_rng(1234)


def save(path, a, version=None):
    if version is None:
        np.save(path, a)
    else:
        with open(path, "wb") as f:
            np.lib.format.write_array(f, a, version=version)
    return str(path)


def loss_value(r, dtype):
    j = r.json()
    return np.array(j["loss"], dtype=dtype), j


def poisson_data(shape, dtype):
    x = RNG.normal(size=shape).astype(dtype)
    t = RNG.poisson(2.5, size=shape).astype(dtype)
    return x, t


def nll_data(shape, dtype, ttype, ignore=None, frac_ignore=0.1):
    x = np.log(RNG.dirichlet(np.ones(shape[0] if len(shape) == 1 else shape[1]),
                             size=1 if len(shape) == 1 else (shape[0],) + tuple(shape[2:])))
    # dirichlet gives (..., C): move C to axis 1
    if len(shape) == 1:
        x = x.reshape(shape)
    else:
        x = np.moveaxis(x, -1, 1)
    x = np.ascontiguousarray(x.astype(dtype))
    c = shape[0] if len(shape) == 1 else shape[1]
    tshape = () if len(shape) == 1 else (shape[0],) + tuple(shape[2:])
    t = RNG.integers(0, c, size=tshape)
    if ignore is not None and t.ndim:
        mask = RNG.random(tshape) < frac_ignore
        t[mask] = ignore
    return x, t.astype(ttype)


# ---- Poisson ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("log_input,full", [(True, False), (False, False), (True, True), (False, True)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_poisson_flags_dtypes(tmp_path, lib, dtype, log_input, full, reduction):
    x, t = poisson_data((301, 17), dtype)
    if not log_input:
        x = np.abs(x)
    xi, ti = save(tmp_path / "x.npy", x), save(tmp_path / "t.npy", t)
    args = ["poisson", "--input", xi, "--target", ti, "--reduction", reduction, "--json", "--chunk-rows", 13,
            "--eps", "1e-6"]
    if not log_input:
        args.append("--no-log-input")
    if full:
        args.append("--full")
    out = tmp_path / "o.npy"
    args += ["--out", out]
    r = run(*args)
    assert r.rc == 0, r.err
    j = r.json()
    kw = dict(log_input=log_input, full=full, eps=1e-6)
    # reduced values: the one-shot call's bits
    assert same_bits(np.array(j["mean"], dtype=dtype), lib.poisson(x, t, reduction="mean", **kw))
    assert same_bits(np.array(j["sum"], dtype=dtype), lib.poisson(x, t, reduction="sum", **kw))
    if reduction == "none":
        assert j["loss"] is None
    else:
        assert same_bits(np.array(j["loss"], dtype=dtype), lib.poisson(x, t, reduction=reduction, **kw))
    assert j["count"] == x.size and j["chunks"] == -(-301 // 13)
    # per-element output: the library's, and PyTorch's within rounding
    o = np.load(out)
    assert same_bits(o, lib.poisson(x, t, reduction="none", **kw))
    ref = torch.nn.functional.poisson_nll_loss(torch.from_numpy(x), torch.from_numpy(t), log_input=log_input,
                                               full=full, eps=1e-6, reduction="none").numpy()
    np.testing.assert_allclose(o, ref, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)
    if reduction != "none":
        tref = torch.nn.functional.poisson_nll_loss(torch.from_numpy(x), torch.from_numpy(t), log_input=log_input,
                                                    full=full, eps=1e-6, reduction=reduction).item()
        np.testing.assert_allclose(j["loss"], tref, rtol=1e-4 if dtype == np.float32 else 1e-10)


@pytest.mark.parametrize("shape", [(), (1,), (5,), (4099,), (3, 0), (0,), (2, 3, 4, 5), (8193, 3)])
@pytest.mark.parametrize("chunk", [None, 1, 3, 1000])
def test_poisson_shapes_chunks(tmp_path, lib, shape, chunk):
    x, t = poisson_data(shape, np.float32)
    xi, ti = save(tmp_path / "x.npy", x), save(tmp_path / "t.npy", t)
    args = ["poisson", "--input", xi, "--target", ti, "--json", "--out", tmp_path / "o.npy"]
    if chunk:
        args += ["--chunk-rows", chunk]
    r = run(*args)
    assert r.rc == 0, r.err
    j = r.json()
    if x.size:
        assert same_bits(np.array(j["mean"], dtype=np.float32), lib.poisson(x, t))
    else:
        assert np.isnan(j["mean"]) and j["sum"] == 0
    o = np.load(tmp_path / "o.npy")
    assert o.shape == shape and o.dtype == np.float32
    assert same_bits(o, lib.poisson(x, t, reduction="none"))


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
def test_npy_versions(tmp_path, lib, version):
    x, t = poisson_data((100,), np.float64)
    xi, ti = save(tmp_path / "x.npy", x, version), save(tmp_path / "t.npy", t, version)
    r = run("poisson", "--input", xi, "--target", ti, "--json")
    assert r.rc == 0, r.err
    assert same_bits(np.array(r.json()["loss"]), lib.poisson(x, t))


def test_large_header_v2(tmp_path, lib):
    """A header over 64 KiB needs format 2.0 (many dimensions of size 1 do not get there; a long padding does)."""
    x, t = poisson_data((10,), np.float32)
    import struct
    d = "{'descr': '<f4', 'fortran_order': False, 'shape': (10,), }"
    hl = 70000 - 12
    hdr = b"\x93NUMPY\x02\x00" + struct.pack("<I", hl) + (d + " " * (hl - len(d) - 1) + "\n").encode()
    assert len(hdr) % 4 == 0
    (tmp_path / "x.npy").write_bytes(hdr + x.tobytes())
    ti = save(tmp_path / "t.npy", t)
    r = run("poisson", "--input", tmp_path / "x.npy", "--target", ti, "--json")
    assert r.rc == 0, r.err
    assert same_bits(np.array(r.json()["loss"], dtype=np.float32), lib.poisson(x, t))


@pytest.mark.parametrize("io", ["populate", "prefetch", "mmap", "window", "pread"])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_io_modes_threads_big(tmp_path, lib, io, threads):
    """A file larger than the chunk size times the thread count; every read method and thread count, same bits."""
    n = 3 * 1000 * 1000 + 17
    x, t = poisson_data((n,), np.float32)
    xi, ti = save(tmp_path / "x.npy", x), save(tmp_path / "t.npy", t)
    r = run("poisson", "--input", xi, "--target", ti, "--json", "--io", io, "--threads", threads,
            "--chunk-bytes", 1 << 20, "--reduction", "sum")
    assert r.rc == 0, r.err
    j = r.json()
    assert j["chunks"] * j["chunk_elements"] >= n and j["chunk_elements"] * 8 * threads < 8 * n
    assert j["threads"] == threads
    assert same_bits(np.array(j["loss"], dtype=np.float32), lib.poisson(x, t, reduction="sum"))
    assert same_bits(np.array(j["mean"], dtype=np.float32), lib.poisson(x, t, reduction="mean"))


def test_default_chunking_big_file(tmp_path, lib):
    """Default chunks (8 MiB) over a 40 MB pair of files: several chunks per thread."""
    n = 5 * 1000 * 1000 + 3
    x, t = poisson_data((n,), np.float32)
    xi, ti = save(tmp_path / "x.npy", x), save(tmp_path / "t.npy", t)
    r = run("poisson", "--input", xi, "--target", ti, "--json", "--out", tmp_path / "o.npy")
    assert r.rc == 0, r.err
    j = r.json()
    assert j["chunks"] >= 4
    assert same_bits(np.array(j["loss"], dtype=np.float32), lib.poisson(x, t))
    assert same_bits(np.load(tmp_path / "o.npy"), lib.poisson(x, t, reduction="none"))


# ---- NLL ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ttype", [np.int64, np.int32, np.uint8])
@pytest.mark.parametrize("shape", [(7,), (50, 5), (20, 4, 9), (6, 3, 5, 7), (3, 21, 64, 33)])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_dtypes_shapes(tmp_path, lib, dtype, ttype, shape, weighted):
    ignore = 255 if ttype == np.uint8 else -100
    x, t = nll_data(shape, dtype, ttype, ignore=ignore)
    c = shape[0] if len(shape) == 1 else shape[1]
    w = (RNG.random(c) + 0.5).astype(np.float32 if dtype == np.float64 else np.float64) if weighted else None
    xi, ti = save(tmp_path / "x.npy", x), save(tmp_path / "t.npy", t)
    args = ["nll", "--input", xi, "--target", ti, "--ignore-index", ignore, "--json", "--out", tmp_path / "o.npy",
            "--chunk-rows", 2]
    if weighted:
        args += ["--weight", save(tmp_path / "w.npy", w)]
    r = run(*args)
    assert r.rc == 0, r.err
    j = r.json()
    wl = None if w is None else w.astype(dtype)
    mean, tw = lib.nll(x, t, wl, ignore, "mean")
    sm, _ = lib.nll(x, t, wl, ignore, "sum")
    assert same_bits(np.array(j["loss"], dtype=dtype), mean)
    assert same_bits(np.array(j["mean"], dtype=dtype), mean)
    assert same_bits(np.array(j["sum"], dtype=dtype), sm)
    assert same_bits(np.array(j["total_weight"], dtype=dtype), tw)
    o = np.load(tmp_path / "o.npy")
    assert o.shape == t.shape and o.dtype == dtype
    none, _ = lib.nll(x, t, wl, ignore, "none")
    assert same_bits(o, none)
    # PyTorch (int64 targets; its weights in the input's dtype)
    tt = torch.from_numpy(t.astype(np.int64))
    tw_ = None if wl is None else torch.from_numpy(wl)
    ref = torch.nn.functional.nll_loss(torch.from_numpy(x), tt, weight=tw_, ignore_index=ignore, reduction="none")
    np.testing.assert_array_equal(o, ref.numpy())
    refm = torch.nn.functional.nll_loss(torch.from_numpy(x), tt, weight=tw_, ignore_index=ignore).item()
    np.testing.assert_allclose(j["mean"], refm, rtol=1e-5 if dtype == np.float32 else 1e-12, equal_nan=True)


@pytest.mark.parametrize("chunk_bytes", [1 << 12, 3000, 10007, 1 << 20])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_chunks_inside_a_sample(tmp_path, lib, chunk_bytes, reduction):
    """Default chunks smaller than one sample: runs of positions inside a sample, still the one-shot bits."""
    x, t = nll_data((3, 5, 40, 50), np.float32, np.int64, ignore=-100)
    w = (RNG.random(5) + 0.1).astype(np.float32)
    xi, ti, wi = save(tmp_path / "x.npy", x), save(tmp_path / "t.npy", t), save(tmp_path / "w.npy", w)
    r = run("nll", "--input", xi, "--target", ti, "--weight", wi, "--json", "--chunk-bytes", chunk_bytes,
            "--reduction", reduction, "--out", tmp_path / "o.npy")
    assert r.rc == 0, r.err
    j = r.json()
    if chunk_bytes < 5 * 2000 * 4:
        assert j["chunk_elements"] < 2000
    assert same_bits(np.array(j["mean"], dtype=np.float32), lib.nll(x, t, w, reduction="mean")[0])
    assert same_bits(np.array(j["sum"], dtype=np.float32), lib.nll(x, t, w, reduction="sum")[0])
    assert same_bits(np.load(tmp_path / "o.npy"), lib.nll(x, t, w, reduction="none")[0])


@pytest.mark.parametrize("rows", [1, 3, 7, 64, 1000])
@pytest.mark.parametrize("io", ["populate", "prefetch", "window", "pread"])
def test_nll_chunk_rows(tmp_path, lib, rows, io):
    x, t = nll_data((61, 10, 13), np.float64, np.int32, ignore=3)
    xi, ti = save(tmp_path / "x.npy", x), save(tmp_path / "t.npy", t)
    r = run("nll", "--input", xi, "--target", ti, "--json", "--chunk-rows", rows, "--ignore-index", 3,
            "--reduction", "sum", "--io", io)
    assert r.rc == 0, r.err
    j = r.json()
    assert j["chunks"] == -(-61 // min(rows, 61))
    assert same_bits(np.array(j["loss"]), lib.nll(x, t, None, 3, "sum")[0])


def test_nll_1d_input_scalar_target(tmp_path, lib):
    x = np.log(np.array([0.1, 0.2, 0.7], dtype=np.float32))
    t = np.array(2, dtype=np.int64)
    xi, ti = save(tmp_path / "x.npy", x), save(tmp_path / "t.npy", t)
    r = run("nll", "--input", xi, "--target", ti, "--json", "--out", tmp_path / "o.npy")
    assert r.rc == 0, r.err
    assert same_bits(np.array(r.json()["loss"], dtype=np.float32), lib.nll(x, t)[0])
    o = np.load(tmp_path / "o.npy")
    assert o.shape == () and o == -x[2]


def test_nll_all_ignored_and_empty(tmp_path):
    x, t = nll_data((4, 3), np.float32, np.int64)
    t[:] = -100
    r = run("nll", "--input", save(tmp_path / "x.npy", x), "--target", save(tmp_path / "t.npy", t), "--json")
    assert r.rc == 0 and np.isnan(r.json()["loss"]) and r.json()["sum"] == 0
    x = np.zeros((0, 3, 2), np.float32)
    t = np.zeros((0, 2), np.int64)
    r = run("nll", "--input", save(tmp_path / "x.npy", x), "--target", save(tmp_path / "t.npy", t), "--json",
            "--out", tmp_path / "o.npy")
    assert r.rc == 0, r.err
    assert np.isnan(r.json()["mean"]) and np.load(tmp_path / "o.npy").shape == (0, 2)


def test_nll_ignore_index_in_range(tmp_path, lib):
    x, t = nll_data((100, 4), np.float32, np.int64)
    r = run("nll", "--input", save(tmp_path / "x.npy", x), "--target", save(tmp_path / "t.npy", t), "--json",
            "--ignore-index", 0)
    assert r.rc == 0
    assert same_bits(np.array(r.json()["loss"], dtype=np.float32), lib.nll(x, t, None, 0)[0])


# ---- common flags -------------------------------------------------------------------------------------------

@pytest.fixture
def pfiles(tmp_path):
    x, t = poisson_data((1000,), np.float32)
    return x, t, save(tmp_path / "x.npy", x), save(tmp_path / "t.npy", t)


def test_isa_flag(pfiles, lib):
    x, t, xi, ti = pfiles
    ref = lib.poisson(x, t)
    for isa in ["scalar", "avx2", "avx512"]:
        r = run("poisson", "--input", xi, "--target", ti, "--json", "--isa", isa)
        if r.rc == 7:
            continue  # this CPU lacks it
        assert r.rc == 0, r.err
        assert r.json()["isa"] == isa
        assert same_bits(np.array(r.json()["loss"], dtype=np.float32), ref)


def test_quiet_and_human_output(pfiles, lib):
    x, t, xi, ti = pfiles
    r = run("poisson", "--input", xi, "--target", ti, "--quiet")
    assert r.rc == 0 and r.err == ""
    assert same_bits(np.array(float(r.out), dtype=np.float32), lib.poisson(x, t))
    r = run("poisson", "--input", xi, "--target", ti)
    assert r.rc == 0 and "poisson mean loss" in r.out and "isa" in r.out and r.err == ""


def test_progress(pfiles):
    x, t, xi, ti = pfiles
    r = run("poisson", "--input", xi, "--target", ti, "--progress")
    assert r.rc == 0 and "100.0%" in r.err
    r = run("poisson", "--input", xi, "--target", ti, "--progress", "--quiet")
    assert r.rc == 0 and r.err == ""


def test_json_fields(pfiles):
    x, t, xi, ti = pfiles
    j = run("poisson", "--input", xi, "--target", ti, "--json", "--threads", 2).json()
    for k in ["loss", "count", "total_weight", "seconds", "elements_per_s", "isa", "threads", "mean", "sum"]:
        assert k in j
    assert j["count"] == 1000 and j["total_weight"] == 1000 and j["threads"] == 2


def test_help_version():
    r = run("--help")
    assert r.rc == 0 and "exit codes" in r.out and "--chunk-rows" in r.out
    r = run("nll", "--help")
    assert r.rc == 0 and "usage" in r.out
    r = run("--version")
    assert r.rc == 0 and r.out.startswith("nllk-score ")


def test_demo():
    r = run("demo", "--json")
    assert r.rc == 0, r.err
    j = r.json()
    assert j["poisson"]["streamed_bits_equal"] and j["nll"]["streamed_bits_equal"]
    r1 = run("demo", "--json", "--threads", 1, "--isa", "scalar").json()
    for loss in ("poisson", "nll"):
        for k in ("mean", "sum"):
            assert r1[loss][k] == j[loss][k]  # the same bits on every ISA and thread count
    r = run("demo")
    assert r.rc == 0 and "isa" in r.out and "M elements/s" in r.out


def test_progress_tty_short_run_is_silent(pfiles):
    """stderr a terminal: no bar for a run shorter than about a second; --progress draws in place (\\r, erase)."""
    import pty
    import subprocess
    from conftest import SCORE
    x, t, xi, ti = pfiles
    for extra, expect_bar in (([], False), (["--progress"], True)):
        master, slave = pty.openpty()
        p = subprocess.run([SCORE, "poisson", "--input", xi, "--target", ti, *extra], stdout=subprocess.PIPE,
                           stderr=slave, timeout=60)
        os.close(slave)
        err = b""
        try:
            while True:
                b = os.read(master, 4096)
                if not b:
                    break
                err += b
        except OSError:
            pass
        os.close(master)
        assert p.returncode == 0
        assert (b"100.0%" in err) == expect_bar, err
        if expect_bar:
            assert err.startswith(b"\r") and err.endswith(b"\r\x1b[K")


@pytest.mark.parametrize("io", ["auto", "mmap", "populate", "prefetch", "pread", "window"])
def test_memory_bounded(tmp_path, io):
    """The resident set stays near the chunk size whatever the file size (consumed pages are dropped from the
    mapping): its growth over the same run on a small file is far below the 192 MB read; --keep-pages, which leaves
    them mapped, shows that the measurement sees file pages. (Growth, not the absolute size: a sanitizer build's
    own memory is tens of MB.)"""
    import subprocess
    import sys
    from conftest import SCORE
    n = 24 * 1000 * 1000  # 2 x 96 MB
    x = np.zeros(n, np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "t.npy", x)
    np.save(tmp_path / "xs.npy", x[:4096])
    np.save(tmp_path / "ts.npy", x[:4096])
    del x
    probe = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True); "
             "assert p.returncode == 0, p.stderr; print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")

    def max_rss_mb(*extra, small=False):
        x, t = ("xs.npy", "ts.npy") if small else ("x.npy", "t.npy")
        out = subprocess.run([sys.executable, "-c", probe, SCORE, "poisson", "--input", str(tmp_path / x),
                              "--target", str(tmp_path / t), "--io", io, "--quiet", *extra],
                             capture_output=True, text=True, check=True).stdout
        return int(out) / 1024

    growth = max_rss_mb() - max_rss_mb(small=True)
    assert growth < 40, growth
    if io in ("mmap", "populate"):
        assert max_rss_mb("--keep-pages") > 150


def test_default_binary_links_no_mpi():
    """The default nllk-score runs on a machine without MPI (nllk-score-mpi is the sharded one)."""
    import subprocess
    from conftest import SCORE
    needed = subprocess.run(["readelf", "-d", SCORE], capture_output=True, text=True, check=True).stdout
    assert "NEEDED" in needed and "mpi" not in needed.lower(), needed
    r = run("demo", "--quiet", env={"OMPI_COMM_WORLD_SIZE": "2"})
    assert r.rc == 2 and "nllk-score-mpi" in r.err
