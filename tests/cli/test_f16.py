"""nllk-score on float16 ('<f2') .npy files (issue 13): poisson, nll and ce read them directly (float math, double
sums). The reported mean and sum are the accumulators' double values: rounded once to float16 they are the
one-shot call's bits, and they lie within float32 rounding of PyTorch's float64 loss on the same float16 values.
--out keeps float16: the one-shot 'none' call's bits."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import run, same_bits

RNG = np.random.default_rng(1613)


def save(path, a):
    np.save(path, a)
    return str(path)


def check(r, lib_mean, lib_sum, ref_mean, ref_sum, scale):
    """The JSON's doubles: the one-shot bits once rounded, and close to the float64 reference."""
    assert r.rc == 0, r.err
    j = r.json()
    assert j["dtype"] == "float16"
    assert same_bits(np.float16(j["mean"]), lib_mean) and same_bits(np.float16(j["sum"]), lib_sum)
    assert abs(j["mean"] - ref_mean) <= 1e-6 * scale and abs(j["sum"] - ref_sum) <= 1e-6 * scale * j["count"]
    return j


def check_out(path, lib_none, ref_none):
    o = np.load(path)
    assert o.dtype == np.dtype("<f2")
    assert same_bits(o, lib_none)
    # and within 1 ulp of the float64 reference
    assert np.all(np.abs(o.astype(np.float64) - ref_none) <= np.spacing(np.abs(ref_none).astype(np.float16))
                  .astype(np.float64) + 2e-5)


@pytest.mark.parametrize("log_input,full", [(True, False), (False, False), (True, True)])
@pytest.mark.parametrize("int_target", [False, True])
def test_poisson_f16(tmp_path, lib, log_input, full, int_target):
    x = RNG.normal(size=(301, 17)).astype(np.float16)
    if not log_input:
        x = np.abs(x) + np.float16(0.01)
    t = RNG.poisson(2.5, size=(301, 17))
    t16 = t.astype(np.float16)
    xi, ti = save(tmp_path / "x.npy", x), save(tmp_path / "t.npy", t.astype(np.int32) if int_target else t16)
    args = ["poisson", "--input", xi, "--target", ti, "--json", "--chunk-rows", 13, "--out", tmp_path / "o.npy"]
    if not log_input:
        args.append("--no-log-input")
    if full:
        args.append("--full")
    kw = dict(log_input=log_input, full=full)
    ref = F.poisson_nll_loss(torch.from_numpy(x).double(), torch.from_numpy(t16).double(), reduction="none", **kw)
    check(run(*args), lib.poisson(x, t16, reduction="mean", **kw), lib.poisson(x, t16, reduction="sum", **kw),
          ref.mean().item(), ref.sum().item(), ref.abs().mean().item() + 1)
    check_out(tmp_path / "o.npy", lib.poisson(x, t16, reduction="none", **kw), ref.numpy())


def test_poisson_f16_count_not_representable(tmp_path):
    x = np.zeros(4, np.float16)
    t = np.array([1, 2, 2049, 3], np.int32)  # 2049 is not a float16
    r = run("poisson", "--input", save(tmp_path / "x.npy", x), "--target", save(tmp_path / "t.npy", t))
    assert r.rc == 6 and "2049" in r.err and "float16" in r.err


@pytest.mark.parametrize("weighted", [False, True])
def test_nll_f16(tmp_path, lib, weighted):
    x = np.log(RNG.dirichlet(np.ones(7), size=(40, 5, 3))).transpose(0, 3, 1, 2).astype(np.float16).copy()
    t = RNG.integers(0, 7, size=(40, 5, 3))
    t[RNG.random(t.shape) < 0.1] = 255
    w = (RNG.random(7) + 0.5).astype(np.float16) if weighted else None
    args = ["nll", "--input", save(tmp_path / "x.npy", x), "--target", save(tmp_path / "t.npy", t),
            "--ignore-index", 255, "--json", "--chunk-rows", 7, "--out", tmp_path / "o.npy"]
    if weighted:  # a float32 weight file, rounded once to the input's float16
        args += ["--weight", save(tmp_path / "w.npy", w.astype(np.float32))]
    kw = dict(weight=w, ignore_index=255)
    wt = None if w is None else torch.from_numpy(w).double()
    ref = F.nll_loss(torch.from_numpy(x).double(), torch.from_numpy(t), weight=wt, ignore_index=255,
                     reduction="none")
    ref_mean = F.nll_loss(torch.from_numpy(x).double(), torch.from_numpy(t), weight=wt, ignore_index=255).item()
    check(run(*args), lib.nll(x, t, reduction="mean", **kw)[0], lib.nll(x, t, reduction="sum", **kw)[0],
          ref_mean, ref.sum().item(), 10)
    check_out(tmp_path / "o.npy", lib.nll(x, t, reduction="none", **kw)[0], ref.numpy())


@pytest.mark.parametrize("probs", [False, True])
def test_ce_f16(tmp_path, lib, probs):
    try:
        lib.nllk.cross_entropy(np.zeros((1, 2), np.float16), np.zeros(1, np.int64))
    except lib.nllk.NllkRuntimeError as e:
        if e.status != 5:
            raise
        pytest.skip("this libnllk refuses 16-bit cross-entropy (NLLK_ERR_UNSUPPORTED)")
    x = (RNG.normal(size=(64, 9)) * 3).astype(np.float16)
    t = RNG.dirichlet(np.ones(9), size=64).astype(np.float16) if probs else RNG.integers(0, 9, size=64)
    args = ["ce", "--input", save(tmp_path / "x.npy", x), "--target", save(tmp_path / "t.npy", t), "--json",
            "--chunk-rows", 5, "--out", tmp_path / "o.npy"] + (["--probs"] if probs else [])
    tt = torch.from_numpy(t).double() if probs else torch.from_numpy(t)
    ref = F.cross_entropy(torch.from_numpy(x).double(), tt, reduction="none")
    nllk = lib.nllk
    check(run(*args), nllk.cross_entropy(x, t), nllk.cross_entropy(x, t, reduction="sum"), ref.mean().item(),
          ref.sum().item(), 10)
    check_out(tmp_path / "o.npy", nllk.cross_entropy(x, t, reduction="none"), ref.numpy())


def test_per_class_f16(tmp_path):
    """--per-class on float16 input: each class's sum adds the float16 per-element losses (the --out values, as
    perclass.h defines it), its total weight is count copies of w[k], its count the class's size. Reference: the
    losses computed here in float64 from the float16 values (the product of two float16 values is exact, so its
    rounding to float16 is the library's per-element result), summed exactly (math.fsum)."""
    import math
    c = 6
    x = np.log(RNG.dirichlet(np.ones(c), size=(300, 7))).transpose(0, 2, 1).astype(np.float16).copy()  # (300, c, 7)
    t = RNG.integers(0, c - 1, size=(300, 7))  # class c-1 never occurs
    t[RNG.random(t.shape) < 0.1] = 2           # ignored
    w = (RNG.random(c) + 0.5).astype(np.float16)
    r = run("nll", "--input", save(tmp_path / "x.npy", x), "--target", save(tmp_path / "t.npy", t),
            "--weight", save(tmp_path / "w.npy", w), "--ignore-index", 2, "--per-class", "--json",
            "--chunk-rows", 11, "--out", tmp_path / "o.npy")
    assert r.rc == 0, r.err
    pc = r.json()["per_class"]
    xt = np.take_along_axis(x, t.clip(0, c - 1)[:, None, :], 1)[:, 0, :].astype(np.float64)
    losses = (-(w.astype(np.float64)[t.clip(0, c - 1)] * xt)).astype(np.float16)
    out = np.load(tmp_path / "o.npy")
    assert same_bits(out[t != 2], losses[t != 2])
    expect = [k for k in range(c) if k != 2 and (t == k).any()]
    assert pc["class"] == expect
    for i, k in enumerate(expect):
        sel = t == k
        assert pc["count"][i] == sel.sum()
        assert pc["total_weight"][i] == float(w[k]) * sel.sum()  # exact: at most 2100 copies of an 11-bit value
        ref = math.fsum(losses[sel].astype(np.float64))
        assert abs(pc["sum"][i] - ref) <= 1e-13 * abs(ref), (k, pc["sum"][i], ref)
