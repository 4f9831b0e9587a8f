"""The compiled numpy front end (_nllk_fast, python/src/nllk_fast.c) against the ctypes path (issue 14).

Every public loss function is called on a grid of arguments -- the common calls the compiled path computes and
the unusual ones it hands back (other dtypes, layouts, broadcasting, scalar types, invalid values) -- once with
the compiled path and once without it (nllk._capi.fast = None, the ctypes path): the results must have the same
type, dtype, shape and bits, the exceptions the same type and message, and the inputs must be left unchanged.
The ctypes path's values are themselves checked against PyTorch by the other tests of this folder; here the
compiled path must not differ from it by a bit. A count checks that the compiled path computed the common calls
(rather than handing everything back).
"""
import glob
import itertools
import os

import numpy as np
import pytest

import nllk
from nllk import _capi

_capi.get()
FAST, FAST_WHY = _capi.fast, _capi.FAST_ERROR
if FAST is None and os.environ.get("NLLK_FAST") == "0":  # (ctest python_numpy_ctypes: bind it here ourselves)
    os.environ.pop("NLLK_FAST")
    try:
        FAST, FAST_WHY = _capi._load_fast(_capi.get())
    finally:
        os.environ["NLLK_FAST"] = "0"

pytestmark = pytest.mark.skipif(FAST is None, reason=f"no compiled front end: {FAST_WHY}")


def test_built_module_is_used():
    """A _nllk_fast module next to the loaded library is loaded and bound (not silently skipped)."""
    lib_dir = os.path.dirname(os.path.abspath(_capi.get().path))
    if glob.glob(os.path.join(lib_dir, "_nllk_fast*.so")) and os.environ.get("NLLK_FAST") != "0":
        assert _capi.fast is not None, _capi.FAST_ERROR


def _snapshot(v):
    if isinstance(v, np.ndarray):
        return ("nd", v.dtype.str, v.shape, v.strides, v.tobytes())
    if isinstance(v, tuple):
        return tuple(_snapshot(e) for e in v)
    return ("py", type(v).__name__, repr(v))


def _run(fn, args, kw):
    """(result snapshot or exception (type, message), inputs unchanged)."""
    before = [_snapshot(a) for a in list(args) + list(kw.values())]
    try:
        r = ("ok", _snapshot(fn(*args, **kw)))
    except Exception as e:  # noqa: BLE001 - the exception is the result compared
        r = ("raise", type(e).__name__, str(e))
    after = [_snapshot(a) for a in list(args) + list(kw.values())]
    return r, before == after


class Counter:
    def __init__(self):
        self.computed = 0


def _both(name, args, kw, counter):
    fn = getattr(nllk, name)
    saved = _capi.fast
    try:
        _capi.fast = None
        slow, slow_clean = _run(fn, args, kw)
        _capi.fast = FAST
        fast, fast_clean = _run(fn, args, kw)
        counter.computed += _computed_by_fast(name, args, kw)
    finally:
        _capi.fast = saved
    assert fast == slow, f"{name}{args!r:.300} {kw}"
    assert slow_clean and fast_clean, f"{name}: an input was modified"


_SIGNATURES = {  # the positional order the compiled functions take (the Python functions' defaults filled in)
    "nll_loss": ("input", "target", ("weight", None), ("ignore_index", -100), ("reduction", "mean")),
    "nll_loss_forward": ("input", "target", ("weight", None), ("ignore_index", -100), ("reduction", "mean")),
    "nll_loss_backward": ("grad_output", "input", "target", ("weight", None), ("ignore_index", -100),
                          ("reduction", "mean"), ("total_weight", None)),
    "poisson_nll_loss": ("input", "target", ("log_input", True), ("full", False), ("eps", 1e-8),
                         ("reduction", "mean")),
    "poisson_nll_loss_backward": ("grad_output", "input", "target", ("log_input", True), ("full", False),
                                  ("eps", 1e-8), ("reduction", "mean"), ("compute_grad_target", False)),
    "cross_entropy": ("input", "target", ("weight", None), ("ignore_index", -100), ("reduction", "mean"),
                      ("label_smoothing", 0.0)),
    "cross_entropy_forward": ("input", "target", ("weight", None), ("ignore_index", -100), ("reduction", "mean"),
                              ("label_smoothing", 0.0)),
    "cross_entropy_backward": ("grad_output", "input", "target", ("weight", None), ("ignore_index", -100),
                               ("reduction", "mean"), ("label_smoothing", 0.0), ("total_weight", None),
                               ("lse", None), ("compute_grad_target", False)),
}


def _computed_by_fast(name, args, kw):
    sig = _SIGNATURES[name]
    pos = list(args)
    for p in sig[len(args):]:
        pos.append(kw[p[0]] if p[0] in kw else p[1])
    return FAST.__getattribute__(name)(*pos) is not None


def _try(fn):
    """fn(), or None where it raises (the invalid combinations are compared by _both)."""
    try:
        return fn()
    except Exception:  # noqa: BLE001
        return None


# ---- data ------------------------------------------------------------------------------------------------------
RNG = np.random.default_rng(14)


def _logits(shape, dt):
    return RNG.standard_normal(shape).astype(dt)


def _targets(shape, c, dt, ignore=None):
    t = RNG.integers(0, max(c, 1), shape).astype(dt)
    if ignore is not None and t.size:
        t.flat[0] = ignore
    return t


NLL_SHAPES = [((8, 5), (8,)), ((5,), ()), ((4, 3, 2, 3), (4, 2, 3)), ((0, 4), (0,)), ((3, 4, 0), (3, 0)),
              ((6, 3), (5,)), ((2, 3, 4), (2, 4, 4))]
REDS = ["mean", "sum", "none"]


def _nll_cases():
    for (xs, ts), xdt, tdt in itertools.product(NLL_SHAPES, [np.float32, np.float64],
                                                [np.int64, np.int32, np.uint8, np.int16, np.longlong]):
        c = xs[1] if len(xs) > 1 else xs[0]
        yield _logits(xs, xdt), _targets(ts, c, tdt), c


def _weights(c, dt):
    return [None, RNG.random(c).astype(dt), RNG.random(c).astype(np.float64 if dt == np.float32 else np.float32),
            RNG.random(c + 1).astype(dt)]


def test_nll_grid():
    k = Counter()
    for x, t, c in _nll_cases():
        for red, w in itertools.product(REDS, _weights(c, x.dtype)):
            kw = {"weight": w, "reduction": red}
            _both("nll_loss", (x, t), kw, k)
            _both("nll_loss_forward", (x, t), kw, k)
            out = _try(lambda: nllk.nll_loss(x, t, reduction=red)) if red == "none" else None
            go = np.ones_like(out) if out is not None and out.ndim else 0.75
            for tw in (None, 3.0, np.asarray(2.5, x.dtype)):
                _both("nll_loss_backward", (go, x, t), dict(kw, total_weight=tw), k)
    assert k.computed > 500, k.computed


def test_nll_unusual():
    k = Counter()
    x, t = _logits((7, 4), np.float32), _targets((7,), 4, np.int64, ignore=-100)
    bad = t.copy()
    bad[3] = 9
    cases = [
        ((x, t), {}), ((x, t), {"ignore_index": 2}), ((x, t), {"ignore_index": 2**63}),
        ((x, t), {"ignore_index": True}), ((x, t), {"ignore_index": 1.5}), ((x, t), {"ignore_index": np.int64(1)}),
        ((x, t), {"reduction": "bad"}), ((x, t), {"reduction": None}), ((x, t), {"reduction": "elementwise_mean"}),
        ((x, bad), {}), ((x, bad), {"reduction": "none"}), ((x, bad), {"ignore_index": 9}),
        ((x.T.copy().T, t), {}), ((x[:, ::2], t), {}), ((x[::2], t[::2]), {}),
        ((x.astype(">f4"), t), {}), ((x, t.astype(">i8")), {}), ((x.astype(np.float16), t), {}),
        ((x, t.astype(np.uint64)), {}), ((x, t.astype(np.float32)), {}), ((x, t.astype(bool)), {}),
        ((x.astype(np.int32), t), {}), ((x.tolist(), t), {}), ((x, t.tolist()), {}),
        ((np.float32(1.0), np.int64(0)), {}), ((x, t[:, None]), {}), ((x[None], t), {}),
        ((np.asfortranarray(_logits((5, 3), np.float64)), _targets((5,), 3, np.int64)), {}),
    ]
    ro = x.copy()
    ro.flags.writeable = False
    cases.append(((ro, t), {}))
    for args, kw in cases:
        _both("nll_loss", args, kw, k)
        _both("nll_loss_forward", args, kw, k)
        _both("nll_loss_backward", (1.0,) + args, kw, k)
    g = np.ones(7, np.float32)
    for go, red in [(g, "none"), (g[:6], "none"), (g[::2], "none"), (g.astype(np.float64), "none"), (1, "mean"),
                    (np.ones((1, 1), np.float32), "mean"), (np.ones(2, np.float32), "mean"), (np.float32(2), "sum"),
                    (np.asarray(2.0), "sum"), ("a", "sum"), (1.0, "none"), (g.astype(np.int64), "none")]:
        _both("nll_loss_backward", (go, x, t), {"reduction": red}, k)
    for tw in (1, np.asarray([2.0]), np.ones(2), np.int64(3), np.asarray(2, np.int32), "x"):
        _both("nll_loss_backward", (1.0, x, t), {"total_weight": tw}, k)
    assert k.computed >= 8, k.computed


def test_poisson_grid():
    k = Counter()
    for shape, dt in itertools.product([(1024,), (3, 5), (), (0,), (2, 0, 3)], [np.float32, np.float64]):
        x = RNG.standard_normal(shape).astype(dt)
        t = (RNG.random(shape) * 4).astype(dt)
        for li, fu, eps, red in itertools.product([True, False], [False, True], [1e-8, 0.5], REDS):
            kw = {"log_input": li, "full": fu, "eps": eps, "reduction": red}
            _both("poisson_nll_loss", (x, t), kw, k)
            go = np.full(shape, 0.5, dt) if red == "none" else 2.0
            for gt in (False, True):
                _both("poisson_nll_loss_backward", (go, x, t), dict(kw, compute_grad_target=gt), k)
    assert k.computed > 300, k.computed


def test_poisson_unusual():
    k = Counter()
    x = RNG.standard_normal((4, 6)).astype(np.float32)
    t = (RNG.random((4, 6)) * 3).astype(np.float32)
    cases = [
        ((x, t[:1]), {}), ((x, t[:, :1]), {}), ((x, t[:3]), {}), ((x, 2.0), {}), ((x, 2), {}),
        ((x, t.astype(np.float64)), {}), ((x.astype(np.float64), t), {}), ((x, t.astype(np.int64)), {}),
        ((x, t.astype(bool)), {}), ((x.astype(np.float16), t), {}), ((x.astype(">f4"), t), {}),
        ((x[:, ::2], t[:, ::2]), {}), ((x.T, t.T), {}), ((x, t), {"log_input": 1}), ((x, t), {"full": None}),
        ((x, t), {"eps": 1}), ((x, t), {"eps": "a"}), ((x, t), {"eps": np.float32(0.1)}), ((x, t), {"eps": 2**2000}),
        ((x, t), {"reduction": "bad"}), ((x, t), {"reduction": 3}), ((x.tolist(), t), {}),
    ]
    for args, kw in cases:
        _both("poisson_nll_loss", args, kw, k)
        _both("poisson_nll_loss_backward", (1.0,) + args, kw, k)
        _both("poisson_nll_loss_backward", (1.0,) + args, dict(kw, compute_grad_target=True), k)
    for go, red in [(np.ones((4, 6), np.float32), "none"), (np.ones((4, 5), np.float32), "none"),
                    (np.ones(6, np.float32), "none"), (1, "mean"), (np.ones(1, np.float64), "mean"),
                    (np.ones(2, np.float32), "sum"), (None, "sum")]:
        _both("poisson_nll_loss_backward", (go, x, t), {"reduction": red}, k)
    _both("poisson_nll_loss_backward", (1.0, x, t), {"compute_grad_target": 1}, k)
    assert k.computed >= 1, k.computed


@pytest.mark.filterwarnings("ignore:size_average and reduce")
def test_cross_entropy_grid():
    k = Counter()
    shapes = [((8, 5), (8,)), ((5,), ()), ((3, 4, 2, 2), (3, 2, 2)), ((0, 3), (0,)), ((6, 3), (6, 3)),
              ((4,), (4,)), ((2, 3, 5), (2, 3, 5)), ((2, 3), (3,))]
    for (xs, ts), dt in itertools.product(shapes, [np.float32, np.float64]):
        x = _logits(xs, dt)
        c = xs[1] if len(xs) > 1 else xs[0]
        prob = xs == ts
        targets = [RNG.random(ts).astype(dt), RNG.random(ts).astype(np.float64)] if prob else \
            [_targets(ts, c, np.int64, ignore=-100), _targets(ts, c, np.uint8)]
        for t, red, ls, w, ii in itertools.product(targets, REDS, [0.0, 0.2, -0.5, 1.5],
                                                   [None, RNG.random(c).astype(dt)], [-100, 1]):
            kw = {"weight": w, "reduction": red, "label_smoothing": ls, "ignore_index": ii}
            _both("cross_entropy", (x, t), kw, k)
            _both("cross_entropy_forward", (x, t), kw, k)
            r = _try(lambda: nllk.cross_entropy_forward(x, t, **kw))
            go = np.ones_like(r[0]) if r is not None and red == "none" and r[0].ndim else 1.25
            lses = [None] if r is None else [None, r[2], r[2].astype(np.float16)]
            for tw, lse, gt in itertools.product([None, 2.0], lses, [False, True]):
                _both("cross_entropy_backward", (go, x, t),
                      dict(kw, total_weight=tw, lse=lse, compute_grad_target=gt), k)
    _both("cross_entropy", (x, t), {"reduce": False}, k)
    _both("cross_entropy", (x, t), {"size_average": False}, k)
    assert k.computed > 1000, k.computed


def test_bound_to_the_loaded_library():
    """nllk.set_isa acts on the compiled path too (one library: the same ISA, the same bits)."""
    x, t = _logits((64, 33), np.float32), _targets((64,), 33, np.int64)
    isas = nllk.library_info()["isas"]
    try:
        for isa in isas:
            nllk.set_isa(isa)
            assert nllk.library_info()["isa"] == isa
            k = Counter()
            _both("cross_entropy", (x, t), {"label_smoothing": 0.1}, k)
            assert k.computed == 1
    finally:
        nllk.set_isa(None)


def test_fast_module_returns_none_unbound_args():
    """The compiled functions hand back (None) what they do not take, never raise for it."""
    assert FAST.nll_loss() is None
    assert FAST.nll_loss(1, 2, 3, 4, 5, 6) is None
    assert FAST.poisson_nll_loss(object(), object(), True, False, 1e-8, "mean") is None
    with pytest.raises(TypeError):
        FAST.bind()
