"""The front end's contract: kinds in = kinds out, inputs never modified, odd layouts, the library's location and
library_info()."""
import ctypes.util
import glob
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import nllk
from nllk import _capi

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYDIR = os.path.join(REPO, "python")
REDUCTIONS = ("none", "mean", "sum")


def _nll_data(dt=np.float32):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4, 3, 2)).astype(dt)
    t = rng.integers(0, 4, (6, 3, 2))
    t[0, 0, 0] = -100
    w = rng.random(4).astype(dt)
    return x, t, w


def _every_call(x, t, w, xp, tp, go_none, go_nll_none):
    """Calls every public function once per reduction on (x, t) Poisson and the NLL data."""
    out = []
    for red in REDUCTIONS:
        go = go_none if red == "none" else 1.5
        out.append(nllk.poisson_nll_loss(xp, tp, full=True, reduction=red))
        out.extend(nllk.poisson_nll_loss_backward(go, xp, tp, full=True, reduction=red, compute_grad_target=True))
        out.append(nllk.nll_loss(x, t, weight=w, reduction=red))
        out.extend(nllk.nll_loss_forward(x, t, weight=w, reduction=red))
        out.append(nllk.nll_loss_backward(go_nll_none if red == "none" else 1.5, x, t, weight=w, reduction=red))
    return out


@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_kind_and_dtype_out(kind, dt):
    x, t, w = _nll_data(dt)
    xp = np.linspace(-2, 2, 30).astype(dt).reshape(5, 6)
    tp = np.linspace(0, 4, 30).astype(dt).reshape(5, 6)
    conv = (lambda a: torch.from_numpy(a)) if kind == "torch" else (lambda a: a)
    outs = _every_call(conv(x), conv(t), conv(w), conv(xp), conv(tp), conv(np.ones((5, 6), dt)),
                       conv(np.ones((6, 3, 2), dt)))
    for o in outs:
        if kind == "torch":
            assert isinstance(o, torch.Tensor) and o.dtype == torch.from_numpy(np.zeros(1, dt)).dtype
            assert not o.requires_grad
        else:
            assert type(o) is np.ndarray and o.dtype == dt


def test_numpy_in_numpy_out_scalars():
    out = nllk.poisson_nll_loss(np.ones(3, np.float32), np.ones(3, np.float32))
    assert type(out) is np.ndarray and out.shape == () and out.dtype == np.float32
    out = nllk.nll_loss(np.zeros((2, 3)), np.array([0, 1]))
    assert type(out) is np.ndarray and out.shape == () and out.dtype == np.float64
    # lists are taken as numpy would take them, and give numpy results
    out = nllk.poisson_nll_loss([0.5, 1.0], [1.0, 2.0], reduction="none")
    assert type(out) is np.ndarray and out.dtype == np.float64


def _snapshot(objs):
    return [(o, np.array(o.detach().numpy() if isinstance(o, torch.Tensor) else o, copy=True)) for o in objs]


def _unchanged(snap):
    for o, before in snap:
        now = o.detach().numpy() if isinstance(o, torch.Tensor) else o
        assert now.dtype == before.dtype and now.shape == before.shape
        assert now.tobytes() == before.tobytes()


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_inputs_are_never_modified(kind):
    x, t, w = _nll_data()
    base = np.linspace(-3, 3, 60).astype(np.float32).reshape(6, 10)
    xp = base[:, ::2]                     # non-contiguous
    tp = np.abs(base[::-1, 1::2]) * 2     # non-contiguous, reversed
    xn = np.asfortranarray(x)             # Fortran order
    tn = np.where(t < 0, 0, t).astype(np.uint8)[:, :, ::-1]  # uint8, reversed
    go_p = np.ones((6, 5), np.float32)
    go_n = np.ones((6, 3, 2), np.float32)[:, ::-1]
    objs = [xn, tn, w, xp, tp, go_p, go_n]
    if kind == "torch":
        objs = [torch.from_numpy(np.ascontiguousarray(o)) for o in objs]
        objs[0] = objs[0].transpose(1, 3).contiguous().transpose(1, 3)  # non-contiguous tensor
    snap = _snapshot(objs)
    outs = _every_call(objs[0], objs[1], objs[2], objs[3], objs[4], objs[5], objs[6])
    _unchanged(snap)
    # and no result shares memory with an input
    arrays_in = [o.detach().numpy() if isinstance(o, torch.Tensor) else o for o in objs]
    for r in outs:
        r = r.numpy() if isinstance(r, torch.Tensor) else r
        for a in arrays_in:
            assert not np.shares_memory(r, a)


def test_readonly_and_big_endian_arrays():
    x = np.linspace(-1, 1, 12).reshape(3, 4)
    t = np.array([0, 3, 2])
    ref = F.nll_loss(torch.from_numpy(x), torch.from_numpy(t), reduction="sum")
    xb, tb = x.astype(">f8"), t.astype(">i8")
    xb.flags.writeable = False
    tb.flags.writeable = False
    assert float(nllk.nll_loss(xb, tb, reduction="sum")) == float(ref)
    tp = np.abs(x).astype(">f4")
    tp.flags.writeable = False
    got = nllk.poisson_nll_loss(x.astype(np.float32), tp, reduction="none")
    ref = F.poisson_nll_loss(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(tp.astype(np.float32)),
                             reduction="none")
    np.testing.assert_array_equal(got, ref.numpy())


def test_requires_grad_tensors_take_part_in_autograd_or_are_refused():
    """No silent detach (issue 14): the losses go through nllk.torch's autograd functions, the functions that
    cannot take part in autograd raise; under no_grad all of them just compute."""
    x = torch.randn(5, 3, dtype=torch.float64).log_softmax(1).requires_grad_(True)
    t = torch.tensor([0, 2, 1, 1, 0])
    out = nllk.nll_loss(x, t)
    assert out.requires_grad and "NLLFunction" in out.grad_fn.name()
    assert float(out) == pytest.approx(float(F.nll_loss(x, t)), rel=1e-14)
    (g,) = torch.autograd.grad(out, x)
    (ref,) = torch.autograd.grad(F.nll_loss(x, t), x)
    torch.testing.assert_close(g, ref, rtol=1e-14, atol=0)
    px = torch.rand(7, dtype=torch.float64, requires_grad=True)
    pt = torch.rand(7, dtype=torch.float64, requires_grad=True)
    out = nllk.poisson_nll_loss(px, pt, full=True, reduction="sum")
    assert out.requires_grad
    gx, gt = torch.autograd.grad(out, (px, pt))
    rx, rt = torch.autograd.grad(F.poisson_nll_loss(px, pt, full=True, reduction="sum"), (px, pt))
    torch.testing.assert_close(gx, rx, rtol=1e-14, atol=0)
    torch.testing.assert_close(gt[pt > 1], rt[pt > 1], rtol=1e-14, atol=0)
    for call in (lambda: nllk.nll_loss_forward(x, t), lambda: nllk.nll_loss_backward(1.0, x, t),
                 lambda: nllk.poisson_nll_loss_backward(1.0, px, pt),
                 lambda: nllk.nll_loss_backward(torch.ones((), dtype=torch.float64, requires_grad=True),
                                                x.detach(), t)):
        with pytest.raises(nllk.NllkRuntimeError, match="requires grad"):
            call()
    with torch.no_grad():
        for out in (nllk.nll_loss(x, t), nllk.nll_loss_forward(x, t)[0], nllk.nll_loss_backward(1.0, x, t),
                    nllk.poisson_nll_loss_backward(1.0, px, pt)):
            assert not out.requires_grad
    # the argument checks come first, as in PyTorch
    with pytest.raises(ValueError, match="not a valid value"):
        nllk.nll_loss(x, t, reduction="avg")
    with pytest.raises(TypeError):
        nllk.poisson_nll_loss(px, pt, log_input=None)


def test_poisson_zero_dim_input_broadcast_backward():
    x = np.array(0.3, np.float64)
    t = np.array([0.5, 2.0, 3.0])
    xt, tt = torch.tensor(0.3, dtype=torch.float64, requires_grad=True), torch.from_numpy(t).requires_grad_(True)
    F.poisson_nll_loss(xt, tt, full=True, reduction="sum").backward()
    gx, gt = nllk.poisson_nll_loss_backward(1.0, x, t, full=True, reduction="sum", compute_grad_target=True)
    assert gx.shape == () and gt.shape == (3,)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-14)
    np.testing.assert_allclose(gt, tt.grad.numpy(), rtol=1e-14)


def test_nll_forward_total_weight_matches_aten():
    x, t, w = _nll_data(np.float64)
    x2, t2 = x[:, :, 0, 0], t[:, 0, 0]
    for red, code in (("none", 0), ("mean", 1), ("sum", 2)):
        out, tw = nllk.nll_loss_forward(torch.from_numpy(x2), torch.from_numpy(t2), torch.from_numpy(w),
                                        reduction=red)
        ref_out, ref_tw = torch.ops.aten.nll_loss_forward(torch.from_numpy(x2), torch.from_numpy(t2),
                                                          torch.from_numpy(w), code, -100)
        assert tw.shape == ref_tw.shape == ()
        assert float(tw) == pytest.approx(float(ref_tw), rel=1e-14)
        assert out.shape == ref_out.shape


def test_library_info():
    info = nllk.library_info()
    assert set(info) >= {"version", "isa", "threads"}
    assert info["version"] == "%d.%d.%d" % (info["version_number"] // 10000, info["version_number"] // 100 % 100,
                                            info["version_number"] % 100)
    assert info["isa"] in ("scalar", "avx2", "avx512", "neon")
    assert isinstance(info["threads"], int) and info["threads"] >= 1
    if os.environ.get("NLLK_LIBRARY"):
        assert os.path.samefile(info["path"], os.environ["NLLK_LIBRARY"])
    if os.environ.get("NLLK_ISA") == "scalar":  # forcing the lowest level always works
        assert info["isa"] == "scalar"


def test_set_num_threads():
    try:
        nllk.set_num_threads(3)
        assert nllk.library_info()["threads"] == 3
        nllk.set_num_threads(np.int64(2))
        assert nllk.library_info()["threads"] == 2
        # never truncated to a C int (issue 16 item 13: 2**32 + 2 used to set 2)
        for bad, exc in ((-1, ValueError), (-2 ** 32 + 2, ValueError), (2 ** 32 + 2, OverflowError),
                         (2 ** 31, OverflowError), (2.0, TypeError), (True, TypeError), (None, TypeError),
                         ("2", TypeError)):
            with pytest.raises(exc):
                nllk.set_num_threads(bad)
            assert nllk.library_info()["threads"] == 2
    finally:
        nllk.set_num_threads(0)


def test_isas_and_set_isa():
    info = nllk.library_info()
    assert info["isas"][0] == "scalar" and info["isa"] in info["isas"]
    try:
        nllk.set_isa("scalar")
        assert nllk.library_info()["isa"] == "scalar"
        with pytest.raises(ValueError):
            nllk.set_isa("sse9")
        with pytest.raises(TypeError):
            nllk.set_isa(3)
    finally:
        nllk.set_isa(None)
    assert nllk.library_info()["isa"] == info["isa"]


def _run_python(code, env):
    full_env = dict(os.environ)
    full_env.pop("NLLK_LIBRARY", None)
    full_env.update(env)
    return subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True, text=True, timeout=60)


def test_library_location():
    lib_path = _capi.get().path
    code = f"import sys; sys.path.insert(0, {PYDIR!r}); import nllk; print(nllk.library_info()['path'])"
    # NLLK_LIBRARY wins
    r = _run_python(code, {"NLLK_LIBRARY": lib_path})
    assert r.returncode == 0, r.stderr
    assert os.path.samefile(r.stdout.strip(), lib_path)
    # a bad NLLK_LIBRARY is an error naming it, never silently replaced by another library
    r = _run_python(code, {"NLLK_LIBRARY": "/nonexistent/libnllk.so"})
    assert r.returncode != 0 and "/nonexistent/libnllk.so" in r.stderr
    # importing needs no library (it is loaded on the first call) and does not import torch
    r = _run_python(f"import sys; sys.path.insert(0, {PYDIR!r}); import nllk; print('torch' in sys.modules)",
                    {"NLLK_LIBRARY": "/nonexistent/libnllk.so"})
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr
    # nor does nllk.torch: the first call fails, naming the library
    r = _run_python(f"import sys; sys.path.insert(0, {PYDIR!r}); import torch, nllk.torch as nt; "
                    "nt.nll_loss(torch.zeros(2, 3), torch.tensor([0, 1]))", {"NLLK_LIBRARY": "/nonexistent/libnllk.so"})
    assert r.returncode != 0 and "import" not in r.stderr.splitlines()[-1] and "/nonexistent/libnllk.so" in r.stderr


def test_library_search_order(tmp_path):
    """Without NLLK_LIBRARY: a libnllk.so next to the package comes before <repo>/build/libnllk.so."""
    pkg = tmp_path / "nllk"
    pkg.mkdir()
    for f in glob.glob(os.path.join(PYDIR, "nllk", "*.py")):  # a copy of the whole package, without its library
        (pkg / os.path.basename(f)).write_text(open(f).read())
    (pkg / "libnllk.so.0").symlink_to(_capi.get().path)
    code = (f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import nllk; "
            "print(nllk.library_info()['path']); print(nllk._capi.candidates())")
    r = _run_python(code, {})
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == str(pkg / "libnllk.so.0")
    # the candidates: the package's library, then (this is a source checkout) <repo>/build's if it exists,
    # then the system loader's names
    r = _run_python(f"import sys; sys.path.insert(0, {PYDIR!r}); import nllk; print(nllk._capi.candidates())", {})
    assert r.returncode == 0, r.stderr
    names = eval(r.stdout)
    assert names[-1] == "libnllk.so"
    build = os.path.join(REPO, "build", "libnllk.so")
    assert (build in names) == os.path.exists(build)


def test_library_from_the_system_loader(tmp_path):
    """Last in the search order: the system loader (here through LD_LIBRARY_PATH), for a package that holds no
    library and is not in a source checkout."""
    pkg = tmp_path / "site" / "nllk"
    pkg.mkdir(parents=True)
    for f in glob.glob(os.path.join(PYDIR, "nllk", "*.py")):
        (pkg / os.path.basename(f)).write_text(open(f).read())
    libdir = tmp_path / "lib"
    libdir.mkdir()
    (libdir / "libnllk.so").symlink_to(_capi.get().path)
    code = (f"import sys; sys.path.insert(0, {str(tmp_path / 'site')!r}); import nllk; "
            "print(nllk.library_info()['path'])")
    r = _run_python(code, {"LD_LIBRARY_PATH": str(libdir)})
    assert r.returncode == 0, r.stderr
    assert "libnllk" in r.stdout
    if ctypes.util.find_library("nllk") is None:  # (not installed on this machine)
        r = _run_python(code, {"LD_LIBRARY_PATH": ""})
        assert r.returncode != 0 and "libnllk not found" in r.stderr and "Tried" in r.stderr


def test_declaration_table_covers_nllk_h():
    """_capi declares every function of the public header, with its number of parameters."""
    import re
    header = open(os.path.join(REPO, "include", "nllk.h")).read()
    header = re.sub(r"/\*.*?\*/", "", header, flags=re.S)
    in_header = {}
    for m in re.finditer(r"NLLK_API\s+[\w\s\*]*?\b(nllk_\w+)\s*\(([^)]*)\)", header):
        params = m.group(2).strip()
        in_header[m.group(1)] = 0 if params == "void" else params.count(",") + 1
    declared = {name: len(argtypes) for name, _, argtypes in _capi.DECLARATIONS}
    assert declared == in_header
    c = _capi.get().c
    for name in declared:
        assert getattr(c, name).argtypes is not None
