"""Per-call latency of nllk.torch against PyTorch's own calls, and PyTorch's speed next to nllk in one process.

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1,retain:true \\
    NLLK_LIBRARY=build/libnllk.so /usr/bin/python3 bench/torch_latency.py [--rounds 31] [--mix]

Latency: for each case, `rounds` rounds; in each round, `calls` back-to-back calls of nllk.torch and of
torch.nn.functional (alternating which goes first), timed as a block and divided by `calls`. Reported: the median
over rounds of each, their ratio, and the limit (issue 14: 1.5x PyTorch).

The numpy front end (nllk.nll_loss, nll_loss_backward, cross_entropy, cross_entropy_backward, poisson_nll_loss,
poisson_nll_loss_backward on numpy arrays), on its compiled path (_nllk_fast) and on its ctypes path, against the C
call it makes: that call through a prepared ctypes call, less the same ctypes call on empty input (n = 0: what
ctypes itself costs), is the C call's estimate; limit (issue 14): the compiled path within 3 us of the C call.
All four timed interleaved in one process (--numpy-only: this table alone).

--mix: PyTorch's own ops (torch.add 4M and 256K elements, F.nll_loss (65536, 64)) timed by themselves right after
the same op (alone), and right after a poisson_nll_loss call of PyTorch's or of nllk's on the same data (the same
bytes touched: 8 MB, which evicts the op's data, and 1 MB, a threaded nllk call that mostly does not), in one
process, at torch.get_num_threads(), after torch.set_num_threads changes, and with nllk's count forced below and
above PyTorch's (--mix-settings picks PyTorch:nllk pairs). Ratios are medians of per-round ratios; "pool threads"
counts the threads libgomp creates for the op after nllk's call (ended by nllk's call). Limit (issue 14): within
10%.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import nllk  # noqa: E402
import nllk.torch as nt  # noqa: E402
from nllk import _capi  # noqa: E402


def block(fn, calls):
    t0 = time.perf_counter_ns()
    for _ in range(calls):
        fn()
    return (time.perf_counter_ns() - t0) / calls / 1e3


def compare(ours, theirs, rounds, calls):
    for _ in range(max(1, calls // 10)):  # warm-up
        ours()
        theirs()
    a, b = [], []
    for r in range(rounds):
        if r % 2:
            a.append(block(ours, calls))
            b.append(block(theirs, calls))
        else:
            b.append(block(theirs, calls))
            a.append(block(ours, calls))
    return statistics.median(a), statistics.median(b)


def latency_cases():
    g = torch.Generator().manual_seed(0)
    cases = []
    for n, c in ((32, 10), (256, 1000)):
        x = torch.randn(n, c, generator=g).log_softmax(1)
        t = torch.randint(0, c, (n,), generator=g)
        xr = x.clone().requires_grad_(True)
        cases.append((f"nll_loss ({n}, {c}) forward", lambda x=x, t=t: nt.nll_loss(x, t),
                      lambda x=x, t=t: F.nll_loss(x, t)))
        cases.append((f"nll_loss ({n}, {c}) forward+backward", lambda xr=xr, t=t: nt.nll_loss(xr, t).backward(),
                      lambda xr=xr, t=t: F.nll_loss(xr, t).backward()))
    for n, c in ((32, 10), (256, 1000)):
        x = torch.randn(n, c, generator=g)
        t = torch.randint(0, c, (n,), generator=g)
        xr = x.clone().requires_grad_(True)
        cases.append((f"cross_entropy ({n}, {c}) forward", lambda x=x, t=t: nt.cross_entropy(x, t),
                      lambda x=x, t=t: F.cross_entropy(x, t)))
        cases.append((f"cross_entropy ({n}, {c}) forward+backward",
                      lambda xr=xr, t=t: nt.cross_entropy(xr, t).backward(),
                      lambda xr=xr, t=t: F.cross_entropy(xr, t).backward()))
    p = torch.randn(1024, generator=g)
    pt = torch.rand(1024, generator=g) * 4
    pr = p.clone().requires_grad_(True)
    cases.append(("poisson_nll_loss n=1024 forward", lambda: nt.poisson_nll_loss(p, pt),
                  lambda: F.poisson_nll_loss(p, pt)))
    cases.append(("poisson_nll_loss n=1024 forward+backward", lambda: nt.poisson_nll_loss(pr, pt).backward(),
                  lambda: F.poisson_nll_loss(pr, pt).backward()))
    return cases


_KEEP = []  # the arrays whose addresses the prepared ctypes calls use, alive for the whole run


def _addr(a):
    return a.ctypes.data if a is not None else None


def numpy_cases():
    """(name, nllk call on numpy arrays, the C call it makes through a prepared ctypes call, the same ctypes call on
    empty input (the ctypes overhead: the library returns at once)), per loss and direction; f32, int64 targets,
    'mean'."""
    rng = np.random.default_rng(0)
    k = _capi.get().f32
    T, MEAN = _capi.TARGET_I64, _capi.REDUCTION_MEAN
    out = []
    for n, c in ((32, 10), (256, 1000)):
        x = rng.standard_normal((n, c)).astype(np.float32)
        t = rng.integers(0, c, n).astype(np.int64)
        res, g, gx = np.empty((), np.float32), np.ones((), np.float32), np.empty((n, c), np.float32)
        _KEEP.extend((x, t, res, g, gx))  # (the prepared calls hold only their addresses)
        nll = (_addr(x), _addr(t), T, n, c, 1, None, -100, MEAN, _addr(res), None)
        nll_b = (_addr(g), _addr(t), T, n, c, 1, None, -100, MEAN, 1.0 * n, _addr(gx))
        ce = (_addr(x), _addr(t), T, n, c, 1, None, -100, 0.0, MEAN, _addr(res), None, None)
        ce_b = (_addr(g), _addr(x), _addr(t), T, n, c, 1, None, -100, 0.0, MEAN, 1.0 * n, None, _addr(gx))

        def empty(args, i_n):  # the same call with n = 0
            return args[:i_n] + (0,) + args[i_n + 1:]
        out += [
            (f"nll_loss ({n}, {c})", lambda x=x, t=t: nllk.nll_loss(x, t), k.nll_fwd, nll, empty(nll, 3)),
            (f"nll_loss_backward ({n}, {c})",
             lambda x=x, t=t, tw=1.0 * n: nllk.nll_loss_backward(1.0, x, t, total_weight=tw),
             k.nll_bwd, nll_b, empty(nll_b, 3)),
            (f"cross_entropy ({n}, {c})", lambda x=x, t=t: nllk.cross_entropy(x, t), k.cross_entropy_fwd, ce,
             empty(ce, 3)),
            (f"cross_entropy_backward ({n}, {c})",
             lambda x=x, t=t, tw=1.0 * n: nllk.cross_entropy_backward(1.0, x, t, total_weight=tw),
             k.cross_entropy_bwd, ce_b, empty(ce_b, 4)),
        ]
    p = rng.standard_normal(1024).astype(np.float32)
    pt = (rng.random(1024) * 4).astype(np.float32)
    pres, pg = np.empty((), np.float32), np.empty(1024, np.float32)
    _KEEP.extend((p, pt, pres, pg))
    po = (_addr(p), _addr(pt), 1024, 1, 0, 1e-8, MEAN, _addr(pres))
    pb = (_addr(p), _addr(pt), 1024, 1, 0, 1e-8, MEAN, _addr(g), _addr(pg), None)
    out += [("poisson_nll_loss n=1024", lambda: nllk.poisson_nll_loss(p, pt), k.poisson_nll_fwd, po,
             po[:2] + (0,) + po[3:]),
            ("poisson_nll_loss_backward n=1024", lambda: nllk.poisson_nll_loss_backward(1.0, p, pt),
             k.poisson_nll_bwd, pb, pb[:2] + (0,) + pb[3:])]
    return out


def interleaved(fns, rounds, calls):
    """Median per call (us) of each of fns = [(setup, fn)], timed in blocks of `calls`, in rotating order."""
    times = [[] for _ in fns]
    for _ in range(max(1, calls // 10)):
        for setup, fn in fns:
            setup()
            fn()
    for r in range(rounds):
        for i in range(len(fns)):
            j = (i + r) % len(fns)
            fns[j][0]()
            times[j].append(block(fns[j][1], calls))
    return [statistics.median(v) for v in times]


def numpy_front_end(rounds, calls):
    """nllk's numpy front end on its compiled path and on its ctypes path against the C call."""
    fast = _capi.fast
    state = "loaded" if fast is not None else f"NOT loaded: {_capi.FAST_ERROR}"
    print(f"nllk numpy front end: compiled path {state}; median of {rounds} rounds x {calls} calls, interleaved")
    print("| case | compiled us | ctypes path us | C call via ctypes us | ctypes overhead us | C call us (est.) | "
          "compiled - C call us | limit |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")

    def use(module):
        return lambda: setattr(_capi, "fast", module)
    nothing = lambda: None  # noqa: E731
    for name, ours, cfn, cargs, cempty in numpy_cases():
        fns = [(use(fast), ours), (use(None), ours), (nothing, lambda f=cfn, a=cargs: f(*a)),
               (nothing, lambda f=cfn, a=cempty: f(*a))]
        if fast is None:
            fns = fns[1:]
        m = interleaved(fns, rounds, calls)
        _capi.fast = fast
        if fast is None:
            m = [float("nan")] + m
        c_est = max(m[2] - m[3], 0.0)
        print(f"| {name} | {m[0]:.2f} | {m[1]:.2f} | {m[2]:.2f} | {m[3]:.2f} | {c_est:.2f} | {m[0] - c_est:.2f} | "
              "3 us |")


def latency(rounds, calls):
    print(f"nllk.torch backend: {nt.BACKEND}" + (" (pybind11 fast path)" if nt._FAST is not None else "")
          + f"; torch {torch.__version__}, threads {torch.get_num_threads()}; median of {rounds} rounds x "
          f"{calls} calls")
    cases = latency_cases()
    t_end = time.perf_counter() + 1.0  # warm-up of every path (allocator, dispatcher caches, autograd)
    while time.perf_counter() < t_end:
        for _, ours, theirs in cases:
            ours()
            theirs()
    print("| case | nllk us | PyTorch us | ratio | limit |")
    print("|---|---:|---:|---:|---:|")
    for name, ours, theirs in cases:
        a, b = compare(ours, theirs, rounds, calls)
        print(f"| {name} | {a:.2f} | {b:.2f} | {a / b:.2f}x | 1.5x |")


# ---- mixing -------------------------------------------------------------------------------------------------------
def timed(fn):
    t0 = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - t0) / 1e3


def _tids():
    try:
        return set(os.listdir("/proc/self/task"))
    except OSError:  # (not Linux)
        return set()


def mix(rounds, only=None):
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(4 << 20, generator=g), torch.randn(4 << 20, generator=g)
    out = torch.empty_like(a)
    sa, sb, sout = a[:1 << 18].clone(), b[:1 << 18].clone(), out[:1 << 18].clone()
    lx = torch.randn(1 << 16, 64, generator=g).log_softmax(1)
    lt = torch.randint(0, 64, (1 << 16,), generator=g)
    torch_ops = [("torch.add 4M", lambda: torch.add(a, b, out=out)),
                 ("torch.add 256K", lambda: torch.add(sa, sb, out=sout)),
                 ("F.nll_loss (65536, 64)", lambda: F.nll_loss(lx, lt))]
    # the neighbours: PyTorch's own poisson_nll_loss (PT) and nllk's on the same data (the same bytes touched, so
    # the same cache effect), on 1M elements (8 MB: evicts the op's data) and on 128K (1 MB: a threaded nllk call
    # -- 4 blocks of NLLK_GRAIN -- that leaves most of the op's data in the caches)
    neighbours = []
    for n in (1 << 20, 1 << 17):
        p, t = torch.randn(n, generator=g), torch.rand(n, generator=g)
        neighbours.append((lambda p=p, t=t: F.poisson_nll_loss(p, t), lambda p=p, t=t: nt.poisson_nll_loss(p, t)))
    calls = [f for pair in neighbours for f in pair]
    print("Each PyTorch op timed by itself right after: the same op (alone), or a poisson_nll_loss call of PyTorch's "
          "(PT) or of nllk's on the same data, 1M elements (8 MB) or 128K (1 MB); one round times all five, in "
          f"rotating order. Times: median of {rounds} rounds, us. Ratios: median over rounds of the ratio within a "
          "round (robust to the machine's slow phases). Limit: within 10% (1.10x). 'pool threads': libgomp threads "
          "created per round by the op after nllk's 8 MB call (pool threads nllk's call had ended).")
    print("| PyTorch threads | nllk threads | op | alone | after PT 8MB | after nllk 8MB | nllk / PT | nllk / alone | "
          "after PT 1MB | after nllk 1MB | nllk / PT | nllk / alone | pool threads |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    default = torch.get_num_threads()
    settings = ([(default, 0)] + [(k, 0) for k in (1, 2, 4) if k != default] + [(1, 2), (4, 2), (2, 4)]
                + [(default, 0)]) if only is None else only
    for threads, forced in settings:
        torch.set_num_threads(threads)
        nllk.set_num_threads(forced)  # 0: nllk follows OpenMP's (PyTorch's) setting
        for name, op in torch_ops:
            for _ in range(3):
                op()
                for f in calls:
                    f()
            created = 0
            for _ in range(5):
                op()
                calls[1]()
                before = _tids()
                op()
                created += len(_tids() - before)
            alone, after = [], [[] for _ in calls]
            for r in range(rounds):
                op()
                alone.append(timed(op))
                for i in range(len(calls)):  # (rotating order)
                    j = (i + r) % len(calls)
                    calls[j]()
                    after[j].append(timed(op))
            m_a = statistics.median(alone)
            m = [statistics.median(v) for v in after]

            def ratio(num, den):
                return statistics.median(x / y for x, y in zip(num, den))
            print(f"| {threads} | {nllk.library_info()['threads']}{' (forced)' if forced else ''} | {name} | "
                  f"{m_a:.0f} | {m[0]:.0f} | {m[1]:.0f} | {ratio(after[1], after[0]):.2f}x | "
                  f"{ratio(after[1], alone):.2f}x | {m[2]:.0f} | {m[3]:.0f} | {ratio(after[3], after[2]):.2f}x | "
                  f"{ratio(after[3], alone):.2f}x | {created / 5:.1f} |")
    nllk.set_num_threads(0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=31)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--mix", action="store_true", help="also PyTorch's ops next to nllk calls")
    ap.add_argument("--mix-only", action="store_true")
    ap.add_argument("--numpy-only", action="store_true", help="only the numpy front end against the C call")
    ap.add_argument("--mix-settings", help="--mix at these (PyTorch threads:nllk threads, 0 = follow) only, "
                    "e.g. 4:2,1:2")
    args = ap.parse_args()
    if not args.mix_only and not args.numpy_only:
        latency(args.rounds, args.calls)
        print()
    if not args.mix_only:
        numpy_front_end(args.rounds, args.calls)
    if args.mix or args.mix_only:
        print()
        only = None
        if args.mix_settings:
            only = [tuple(int(v) for v in pair.split(":")) for pair in args.mix_settings.split(",")]
        mix(args.rounds, only)


if __name__ == "__main__":
    main()
