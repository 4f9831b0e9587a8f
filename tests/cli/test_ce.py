"""nllk-score ce: cross-entropy from logits, with class-index targets (weight, ignore_index, label_smoothing) and
--probs targets, through the same streaming, --out, parts and --per-class machinery as nll. Every result equals
the library's one-shot call (nllk_cross_entropy_fwd_* / nllk_cross_entropy_prob_fwd_* through ctypes on the same
libnllk) bit for bit, and PyTorch's F.cross_entropy within rounding."""
import ctypes
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import LIBRARY, run, same_bits

RNG = np.random.default_rng(99)
EX_FORMAT, EX_SHAPE, EX_TARGET, EX_USAGE = 4, 5, 6, 2
_lib = ctypes.CDLL(LIBRARY)
TT = {np.dtype(np.int64): 0, np.dtype(np.int32): 1, np.dtype(np.uint8): 2}
RED = {"none": 0, "mean": 1, "sum": 2}


def _ptr(a):
    return None if a is None else a.ctypes.data_as(ctypes.c_void_p)


def geometry(x):
    if x.ndim == 1:
        return 1, x.shape[0], 1
    return x.shape[0], x.shape[1], int(np.prod(x.shape[2:], dtype=np.int64))


def one_shot(x, t, weight=None, ignore=-100, ls=0.0, reduction="mean", probs=False):
    """(value, total_weight) of the library's one-shot call; value is an array for 'none'."""
    x = np.ascontiguousarray(x)
    t = np.ascontiguousarray(t)
    n, c, d = geometry(x)
    ct = ctypes.c_float if x.dtype == np.float32 else ctypes.c_double
    sfx = "f32" if x.dtype == np.float32 else "f64"
    out = np.zeros(n * d if reduction == "none" else 1, x.dtype)
    tw = ct(0)
    w = None if weight is None else np.ascontiguousarray(weight, x.dtype)
    S = ctypes.c_size_t
    if probs:
        f = getattr(_lib, f"nllk_cross_entropy_prob_fwd_{sfx}")
        st = f(_ptr(x), _ptr(t), S(n), S(c), S(d), _ptr(w), ctypes.c_double(ls), ctypes.c_int(RED[reduction]),
               _ptr(out), None)
    else:
        f = getattr(_lib, f"nllk_cross_entropy_fwd_{sfx}")
        st = f(_ptr(x), _ptr(t), ctypes.c_int(TT[t.dtype]), S(n), S(c), S(d), _ptr(w), ctypes.c_int64(ignore),
               ctypes.c_double(ls), ctypes.c_int(RED[reduction]), _ptr(out), ctypes.byref(tw), None)
    assert st == 0
    return (out if reduction == "none" else out[0]), x.dtype.type(tw.value)


def torch_ce(x, t, weight=None, ignore=-100, ls=0.0, reduction="mean", probs=False):
    xt = torch.from_numpy(np.ascontiguousarray(x)).double()
    tt = torch.from_numpy(np.ascontiguousarray(t)).double() if probs else torch.from_numpy(t.astype(np.int64))
    w = None if weight is None else torch.from_numpy(np.asarray(weight, np.float64))
    kw = {} if probs else {"ignore_index": ignore}
    return F.cross_entropy(xt, tt, weight=w, label_smoothing=ls, reduction=reduction, **kw).numpy()


def logits(shape, dtype):
    return (RNG.standard_normal(shape) * 3).astype(dtype)


def probs_like(shape, dtype):
    p = RNG.random(shape) ** 3
    return (p / p.sum(axis=1 if len(shape) > 1 else 0, keepdims=True)).astype(dtype)


def score(tmp_path, x, t, w, *extra):
    """nllk-score ce on x, t (and weights w) saved in tmp_path, --out o.npy, --json: the JSON."""
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "t.npy", t)
    args = ["ce", "--input", tmp_path / "x.npy", "--target", tmp_path / "t.npy", "--out", tmp_path / "o.npy", "--json",
            *extra]
    if w is not None:
        np.save(tmp_path / "w.npy", w)
        args += ["--weight", tmp_path / "w.npy"]
    r = run(*args)
    assert r.rc == 0, r.err
    return r.json()


CASES = [  # shape, ls, weighted, ignore fraction
    ((300, 7), 0.0, False, 0.0), ((300, 7), 0.1, True, 0.1), ((300, 7), 1.0, False, 0.1),
    ((5, 4, 123), 0.2, False, 0.1), ((5, 4, 123), 0.0, True, 0.0), ((11,), 0.3, True, 0.0),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,ls,weighted,frac", CASES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_ce_class_index(tmp_path, dtype, shape, ls, weighted, frac, reduction):
    x = logits(shape, dtype)
    c = shape[0] if len(shape) == 1 else shape[1]
    tshape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    t = RNG.integers(0, c, tshape).astype(np.int64)
    if frac and t.ndim:
        t[RNG.random(tshape) < frac] = -100
    w = RNG.random(c).astype(dtype) if weighted else None
    j = score(tmp_path, x, t, w, "--label-smoothing", ls, "--reduction", reduction, "--chunk-rows", "2")
    assert j["command"] == "ce"
    none, _ = one_shot(x, t, w, ls=ls, reduction="none")
    assert same_bits(np.load(tmp_path / "o.npy"), none.reshape(tshape))
    ref_t = torch_ce(x, t, w, ls=ls, reduction=reduction)
    if reduction != "none":
        v, tw = one_shot(x, t, w, ls=ls, reduction=reduction)
        assert same_bits(np.array(j["loss"], dtype), np.asarray(v, dtype)), (j["loss"], v)
        assert same_bits(np.array(j["total_weight"], dtype), np.asarray(tw, dtype))
        assert np.isclose(j["loss"], float(ref_t), rtol=1e-5, atol=1e-6)
    else:
        assert np.allclose(np.load(tmp_path / "o.npy"), ref_t.reshape(tshape), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,ls,weighted", [((200, 9), 0.0, False), ((200, 9), 0.25, True),
                                               ((3, 5, 777), 0.1, False), ((6,), 0.0, True)])
@pytest.mark.parametrize("chunk", [[], ["--chunk-bytes", "4000"]])
def test_ce_probs(tmp_path, dtype, shape, ls, weighted, chunk):
    x = logits(shape, dtype)
    q = probs_like(shape, dtype)
    c = shape[0] if len(shape) == 1 else shape[1]
    w = RNG.random(c).astype(dtype) if weighted else None
    j = score(tmp_path, x, q, w, "--probs", "--label-smoothing", ls, *chunk)
    v, _ = one_shot(x, q, w, ls=ls, probs=True)
    assert same_bits(np.array(j["loss"], dtype), np.asarray(v, dtype)), (j["loss"], v)
    oshape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    none, _ = one_shot(x, q, w, ls=ls, reduction="none", probs=True)
    o = np.load(tmp_path / "o.npy")
    assert o.shape == oshape and same_bits(o, none.reshape(oshape))
    assert np.isclose(j["loss"], float(torch_ce(x, q, w, ls=ls, probs=True)), rtol=1e-5, atol=1e-6)


def test_ce_parts_and_per_class(tmp_path):
    x = logits((90, 5, 3), np.float32)
    t = RNG.integers(0, 5, (90, 3))
    t[RNG.random(t.shape) < 0.1] = 4
    xs, ts = [], []
    for k, (a, b) in enumerate([(0, 20), (20, 20), (20, 90)]):
        xs.append(str(tmp_path / f"x{k}.npy"))
        np.save(xs[-1], x[a:b])
    for k, (a, b) in enumerate([(0, 45), (45, 90)]):
        ts.append(str(tmp_path / f"t{k}.npy"))
        np.save(ts[-1], t[a:b])
    r = run("ce", "--input", *xs, "--target", *ts, "--label-smoothing", "0.1", "--ignore-index", "4", "--per-class",
            "--json", "--chunk-rows", "7")
    assert r.rc == 0, r.err
    j = r.json()
    v, tw = one_shot(x, t, ignore=4, ls=0.1)
    assert same_bits(np.array(j["loss"], np.float32), np.asarray(v, np.float32))
    rows = np.ascontiguousarray(np.moveaxis(x, 1, -1).reshape(-1, 5))
    flat = t.reshape(-1)
    pc = j["per_class"]
    assert pc["class"] == [0, 1, 2, 3]
    for i, k in enumerate(pc["class"]):
        sel = flat == k
        s, w = one_shot(rows[sel], flat[sel], ls=0.1, reduction="sum")
        assert pc["count"][i] == sel.sum()
        assert same_bits(np.array(pc["sum"][i], np.float32), np.asarray(s, np.float32))
        assert same_bits(np.array(pc["total_weight"][i], np.float32), np.asarray(w, np.float32))


def test_ce_probs_parts_npz(tmp_path):
    x = logits((40, 6), np.float64)
    q = probs_like((40, 6), np.float64)
    np.savez(tmp_path / "a.npz", x=x[:25], q=q[:25])
    np.savez(tmp_path / "b.npz", x=x[25:], q=q[25:])
    r = run("ce", "--probs", "--input", f"{tmp_path}/*.npz:x", "--target", f"{tmp_path}/*.npz:q", "--json",
            "--reduction", "sum")
    assert r.rc == 0, r.err
    v, _ = one_shot(x, q, reduction="sum", probs=True)
    assert same_bits(np.array(r.json()["loss"]), np.asarray(v))


def test_ce_errors(tmp_path):
    x = logits((8, 3), np.float32)
    np.save(tmp_path / "x.npy", x)
    t = RNG.integers(0, 3, 8)
    t[6] = 255
    np.save(tmp_path / "t.npy", t)
    a = ["ce", "--input", tmp_path / "x.npy", "--target", tmp_path / "t.npy"]
    r = run(*a)
    assert r.rc == EX_TARGET and "value 255 at flat index 6" in r.err and "--ignore-index 255" in r.err, r.err
    assert run(*a, "--ignore-index", "255").rc == 0
    for bad in ["-0.1", "1.5", "nan", "x"]:
        r = run(*a, "--label-smoothing", bad)
        assert r.rc == EX_USAGE and "--label-smoothing" in r.err, r.err
    r = run(*a, "--probs", "--ignore-index", "3")
    assert r.rc == EX_USAGE and "--ignore-index" in r.err
    r = run(*a, "--probs")  # int64 targets are not probabilities
    assert r.rc == EX_FORMAT and "--probs" in r.err, r.err
    np.save(tmp_path / "q.npy", probs_like((8, 4), np.float32))
    r = run("ce", "--probs", "--input", tmp_path / "x.npy", "--target", tmp_path / "q.npy")
    assert r.rc == EX_SHAPE, r.err
    r = run("nll", "--input", tmp_path / "x.npy", "--target", tmp_path / "t.npy", "--label-smoothing", "0.1")
    assert r.rc == EX_USAGE and "option of ce" in r.err, r.err


def test_ce_help():
    r = run("--help")
    assert r.rc == 0 and "nllk-score ce" in r.out and "--label-smoothing" in r.out and "--probs" in r.out
