"""Per-call latency of nllk.torch against PyTorch's own calls, and PyTorch's speed next to nllk in one process.

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1,retain:true \\
    NLLK_LIBRARY=build/libnllk.so /usr/bin/python3 bench/torch_latency.py [--rounds 31] [--mix]

Latency: for each case, `rounds` rounds; in each round, `calls` back-to-back calls of nllk.torch and of
torch.nn.functional (alternating which goes first), timed as a block and divided by `calls`. Reported: the median
over rounds of each, their ratio, and the limit (issue 14: 1.5x PyTorch). The numpy front end nllk.nll_loss is
compared with the C call it makes (nllk_nll_fwd_f32 through a prepared ctypes call: an upper bound of the C call;
limit: within 3 us).

--mix: PyTorch's own ops alone and interleaved with nllk calls in the same process (each PyTorch call timed by
itself, median; limit: within 10% of alone), at torch.get_num_threads() and after torch.set_num_threads changes.
"""
import argparse
import ctypes
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


def numpy_cases():
    rng = np.random.default_rng(0)
    out = []
    for n, c in ((32, 10), (256, 1000)):
        x = rng.standard_normal((n, c)).astype(np.float32)
        t = rng.integers(0, c, n).astype(np.int64)
        res = np.empty((), np.float32)
        k = _capi.get().f32
        args = (x.ctypes.data, t.ctypes.data, _capi.TARGET_I64, n, c, 1, None, -100, _capi.REDUCTION_MEAN,
                res.ctypes.data, None)
        fwd = k.nll_fwd
        out.append((f"nllk.nll_loss numpy ({n}, {c})", lambda x=x, t=t: nllk.nll_loss(x, t),
                    lambda fwd=fwd, args=args: fwd(*args)))
    return out


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
    print()
    print("| case | nllk.nll_loss us | C call (ctypes) us | difference us | limit |")
    print("|---|---:|---:|---:|---:|")
    for name, ours, theirs in numpy_cases():
        a, b = compare(ours, theirs, rounds, calls)
        print(f"| {name} | {a:.2f} | {b:.2f} | {a - b:.2f} | 3 us |")


# ---- mixing -------------------------------------------------------------------------------------------------------
def timed(fn):
    t0 = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - t0) / 1e3


def mix(rounds):
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(4 << 20, generator=g), torch.randn(4 << 20, generator=g)
    out = torch.empty_like(a)
    lx = torch.randn(1 << 16, 64, generator=g).log_softmax(1)
    lt = torch.randint(0, 64, (1 << 16,), generator=g)
    big_p, big_t = torch.randn(1 << 20, generator=g), torch.rand(1 << 20, generator=g)  # a threaded nllk call
    torch_ops = [("torch.add 4M", lambda: torch.add(a, b, out=out)),
                 ("F.nll_loss (65536, 64)", lambda: F.nll_loss(lx, lt))]
    nllk_call = lambda: nt.poisson_nll_loss(big_p, big_t)  # noqa: E731
    # the control: PyTorch's own call on the same data (the same memory traffic, so the same cache effect)
    torch_call = lambda: F.poisson_nll_loss(big_p, big_t)  # noqa: E731
    print("Each PyTorch op timed by itself right after: the same op (alone), nllk's poisson_nll_loss on 1M "
          "elements, or PyTorch's poisson_nll_loss on the same 1M elements (the control: the same memory traffic)."
          f" Median of {rounds}, us.")
    print("| PyTorch threads | nllk threads | op | alone | after PyTorch's call | after nllk's call | "
          "nllk / PyTorch's call | nllk / alone | limit |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    default = torch.get_num_threads()
    settings = [(default, 0)] + [(k, 0) for k in (1, 2, 4) if k != default] + [(1, 2), (4, 2), (default, 0)]
    for threads, forced in settings:
        torch.set_num_threads(threads)
        nllk.set_num_threads(forced)  # 0: nllk follows OpenMP's (PyTorch's) setting
        for name, op in torch_ops:
            for _ in range(3):
                op()
                nllk_call()
                torch_call()
            alone, after_torch, after_nllk = [], [], []
            for _ in range(rounds):
                op()
                alone.append(timed(op))
                torch_call()
                after_torch.append(timed(op))
                nllk_call()
                after_nllk.append(timed(op))
            m_a, m_t, m_n = (statistics.median(v) for v in (alone, after_torch, after_nllk))
            print(f"| {threads} | {nllk.library_info()['threads']}{' (forced)' if forced else ''} | {name} | "
                  f"{m_a:.0f} | {m_t:.0f} | {m_n:.0f} | {m_n / m_t:.2f}x | {m_n / m_a:.2f}x | 1.10x |")
    nllk.set_num_threads(0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=31)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--mix", action="store_true", help="also PyTorch's ops next to nllk calls")
    ap.add_argument("--mix-only", action="store_true")
    args = ap.parse_args()
    if not args.mix_only:
        latency(args.rounds, args.calls)
    if args.mix or args.mix_only:
        print()
        mix(args.rounds)


if __name__ == "__main__":
    main()
