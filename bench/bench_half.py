#!/usr/bin/python3
"""bfloat16 storage (issue 13): nllk's _bf16 C functions next to nllk's _f32 ones and PyTorch's bf16 call, on the
same data, timed in interleaved triples in one process (median of the per-triple ratios).

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1,retain:true \\
    NLLK_LIBRARY=build/libnllk.so /usr/bin/python3 bench/bench_half.py [--threads 2] [--reps 21] [--isa avx512]

Workloads (the issue's targets): NLL (65536, 1000) mean, unweighted; NLL (4, 21, 512, 512) mean with class weights
and ignore_index=255 (random targets); Poisson n = 2^24, log_input, mean; each forward and forward+backward;
cross-entropy (65536, 1000), (8192, 32000) and (4, 21, 512, 512) mean, forward and forward+backward
(PyTorch: torch.autograd.grad of the loss; nllk: the forward then the backward into a preallocated gradient).
nllk is called through ctypes on the tensors' memory (no copies), so the timings are the C library's own.
--baseline LIB adds another libnllk's bf16 call to each tuple (e.g. a build of the previous commit: before/after in one
process); --only S runs (and allocates) only the workloads whose name contains S.
Also prints each bf16 result next to the float64 reference (PyTorch's bf16 result accumulates in bf16).
"""
import argparse
import ctypes
import os
import statistics
import time

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
P = ctypes.c_void_p
SZ = ctypes.c_size_t


def load(path):
    lib = ctypes.CDLL(path)
    for dt in ("f32", "bf16"):
        getattr(lib, "nllk_nll_fwd_" + dt).argtypes = [P, P, ctypes.c_int, SZ, SZ, SZ, P, ctypes.c_int64,
                                                       ctypes.c_int, P, P]
        getattr(lib, "nllk_poisson_nll_fwd_" + dt).argtypes = [P, P, SZ, ctypes.c_int, ctypes.c_int,
                                                               ctypes.c_double, ctypes.c_int, P]
        getattr(lib, "nllk_poisson_nll_bwd_" + dt).argtypes = [P, P, SZ, ctypes.c_int, ctypes.c_int,
                                                               ctypes.c_double, ctypes.c_int, P, P, P]
    for dt in ("f32", "bf16"):
        getattr(lib, "nllk_cross_entropy_fwd_" + dt).argtypes = [P, P, ctypes.c_int, SZ, SZ, SZ, P, ctypes.c_int64,
                                                                 ctypes.c_double, ctypes.c_int, P, P, P]
    lib.nllk_cross_entropy_bwd_f32.argtypes = [P, P, P, ctypes.c_int, SZ, SZ, SZ, P, ctypes.c_int64, ctypes.c_double,
                                               ctypes.c_int, ctypes.c_float, P, P]
    lib.nllk_cross_entropy_bwd_bf16.argtypes = [P, P, P, ctypes.c_int, SZ, SZ, SZ, P, ctypes.c_int64,
                                                ctypes.c_double, ctypes.c_int, ctypes.c_uint16, P, P]
    lib.nllk_nll_bwd_f32.argtypes = [P, P, ctypes.c_int, SZ, SZ, SZ, P, ctypes.c_int64, ctypes.c_int,
                                     ctypes.c_float, P]
    lib.nllk_nll_bwd_bf16.argtypes = [P, P, ctypes.c_int, SZ, SZ, SZ, P, ctypes.c_int64, ctypes.c_int,
                                      ctypes.c_uint16, P]
    lib.nllk_set_isa.argtypes = [ctypes.c_char_p]
    lib.nllk_active_isa.restype = ctypes.c_char_p
    lib.nllk_last_error.restype = ctypes.c_char_p
    return lib


def ptr(t):
    return ctypes.c_void_p(t.data_ptr()) if t is not None else None


def check(lib, st):
    if st != 0:
        raise RuntimeError(lib.nllk_last_error().decode())


MEAN = 1


def nll_case(lib, dt, x, t, n, c, d, w, ign, fwdbwd, out, tw, gx, go):
    fwd = getattr(lib, "nllk_nll_fwd_" + dt)
    bwd = getattr(lib, "nllk_nll_bwd_" + dt)

    def run():
        check(lib, fwd(ptr(x), ptr(t), 0, n, c, d, ptr(w), ign, MEAN, ptr(out), ptr(tw)))
        if fwdbwd:
            twv = tw.view(torch.int16).item() & 0xFFFF if dt == "bf16" else tw.item()
            check(lib, bwd(ptr(go), ptr(t), 0, n, c, d, ptr(w), ign, MEAN, twv, ptr(gx)))
    return run


def poisson_case(lib, dt, x, t, n, fwdbwd, out, gx, go):
    fwd = getattr(lib, "nllk_poisson_nll_fwd_" + dt)
    bwd = getattr(lib, "nllk_poisson_nll_bwd_" + dt)

    def run():
        check(lib, fwd(ptr(x), ptr(t), n, 1, 0, 1e-8, MEAN, ptr(out)))
        if fwdbwd:
            check(lib, bwd(ptr(x), ptr(t), n, 1, 0, 1e-8, MEAN, ptr(go), ptr(gx), None))
    return run


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=21)
    ap.add_argument("--isa", default="")
    ap.add_argument("--only", default="")
    ap.add_argument("--baseline", default="")
    a = ap.parse_args()
    lib = load(os.environ.get("NLLK_LIBRARY", os.path.join(ROOT, "build", "libnllk.so")))
    base = load(os.path.abspath(a.baseline)) if a.baseline else None
    for lb in (lib, base) if base else (lib,):
        if a.isa:
            check(lb, lb.nllk_set_isa(a.isa.encode()))
        lb.nllk_set_num_threads(a.threads)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    print(f"isa {lib.nllk_active_isa().decode()}, threads {a.threads}, torch {torch.__version__}, "
          f"LD_PRELOAD={os.environ.get('LD_PRELOAD', '')}, load {os.getloadavg()[0]:.1f}")

    cases = []
    # NLL (65536, 1000) and (4, 21, 512, 512) weighted, ignore_index 255
    for name, shape, weighted in (("nll (65536, 1000)", (65536, 1000, 1), False),
                                  ("nll (4, 21, 512, 512) weighted", (4, 21, 512 * 512), True)):
        if a.only and a.only not in name:
            continue
        n, c, d = shape
        x32 = torch.log_softmax(torch.randn(n, c, d), 1) if d > 1 else torch.log_softmax(torch.randn(n, c), 1)
        x32 = x32.contiguous()
        t = torch.randint(0, c, (n, d) if d > 1 else (n,), dtype=torch.int64)
        ign = -100
        if weighted:
            ign = 255
            t[torch.rand(t.shape) < 0.1] = 255
        w32 = torch.rand(c) + 0.5 if weighted else None
        xs = x32.view(n, c, 512, 512) if d > 1 else x32
        ts = t.view(n, 512, 512) if d > 1 else t
        x16, w16 = xs.to(torch.bfloat16).contiguous(), (w32.to(torch.bfloat16) if weighted else None)
        x32 = x16.float().contiguous()  # the same values in both dtypes
        w32 = w16.float() if weighted else None
        for fb in (False, True):
            bufs = {}
            for dt, xx, ww in (("f32", x32, w32), ("bf16", x16, w16)):
                tdt = torch.float32 if dt == "f32" else torch.bfloat16
                bufs[dt] = nll_case(lib, dt, xx, ts, n, c, d, ww, ign, fb, torch.zeros(1, dtype=tdt),
                                    torch.zeros(1, dtype=tdt), torch.zeros_like(xx), torch.ones(1, dtype=tdt))

            def torch_call(x16=x16, ts=ts, w16=w16, ign=ign, fb=fb):
                if fb:
                    xg = x16.detach().requires_grad_()
                    loss = F.nll_loss(xg, ts, weight=w16, ignore_index=ign)
                    torch.autograd.grad(loss, xg)
                else:
                    F.nll_loss(x16, ts, weight=w16, ignore_index=ign)
            ref = F.nll_loss(xs.double(), ts, weight=w32.double() if weighted else None, ignore_index=ign).item()
            pt = F.nll_loss(x16, ts, weight=w16, ignore_index=ign).item()
            out = torch.zeros(1, dtype=torch.bfloat16)
            check(lib, lib.nllk_nll_fwd_bf16(ptr(x16), ptr(ts), 0, n, c, d, ptr(w16), ign, MEAN, ptr(out), None))
            cases.append((name + (" fwd+bwd" if fb else " fwd"), torch_call, bufs["bf16"], bufs["f32"],
                          (ref, pt, out.item()), None))
    # Poisson n = 2^24, log_input
    n = 2 ** 24
    if a.only and a.only not in "poisson n=2^24 log_input":
        n = 0  # not run (nothing to allocate)
    x16 = (torch.rand(n) * 4 - 2).to(torch.bfloat16)
    t16 = torch.randint(0, 7, (n,)).to(torch.bfloat16)
    x32, t32 = x16.float(), t16.float()
    for fb in (False, True):
        bufs = {}
        for dt, xx, tt in (("f32", x32, t32), ("bf16", x16, t16)):
            tdt = torch.float32 if dt == "f32" else torch.bfloat16
            bufs[dt] = poisson_case(lib, dt, xx, tt, n, fb, torch.zeros(1, dtype=tdt), torch.zeros_like(xx),
                                    torch.ones(1, dtype=tdt))

        def torch_call(fb=fb, x16=x16, t16=t16):
            if fb:
                xg = x16.detach().requires_grad_()
                loss = F.poisson_nll_loss(xg, t16, log_input=True, full=False)
                torch.autograd.grad(loss, xg)
            else:
                F.poisson_nll_loss(x16, t16, log_input=True, full=False)
        ref = F.poisson_nll_loss(x16.double(), t16.double(), log_input=True).item()
        pt = F.poisson_nll_loss(x16, t16, log_input=True).item()
        out = torch.zeros(1, dtype=torch.bfloat16)
        check(lib, lib.nllk_poisson_nll_fwd_bf16(ptr(x16), ptr(t16), n, 1, 0, 1e-8, MEAN, ptr(out)))
        cases.append(("poisson n=2^24 log_input" + (" fwd+bwd" if fb else " fwd"), torch_call, bufs["bf16"],
                      bufs["f32"], (ref, pt, out.item()), None))

    # cross-entropy, mean: forward (compute-bound: an exp per logit), and forward+backward into a preallocated gradient
    for name, n, c, d in (("cross_entropy (65536, 1000)", 65536, 1000, 1), ("cross_entropy (8192, 32000)", 8192, 32000, 1),
                          ("cross_entropy (4, 21, 512, 512)", 4, 21, 512 * 512)):
        if a.only and a.only not in name:
            continue
        cx16 = torch.randn(n, c, d).to(torch.bfloat16) if d > 1 else torch.randn(n, c).to(torch.bfloat16)
        cx32 = cx16.float()
        t = torch.randint(0, c, (n, d) if d > 1 else (n,), dtype=torch.int64)
        cxs16 = cx16.view(n, c, 512, 512) if d > 1 else cx16
        ts = t.view(n, 512, 512) if d > 1 else t
        grads = {}

        def ce(lb, dt, xx, fb, n=n, c=c, d=d, t=t):
            fn = getattr(lb, "nllk_cross_entropy_fwd_" + dt)
            bwd = getattr(lb, "nllk_cross_entropy_bwd_" + dt)
            out, tw, go = torch.zeros(1, dtype=xx.dtype), torch.zeros(1, dtype=xx.dtype), torch.ones(1, dtype=xx.dtype)
            if fb and (id(lb), dt) not in grads:
                grads[(id(lb), dt)] = torch.zeros_like(xx)  # one gradient buffer per library and dtype
            gx = grads.get((id(lb), dt))

            def run():
                check(lb, fn(ptr(xx), ptr(t), 0, n, c, d, None, -100, 0.0, MEAN, ptr(out), ptr(tw), None))
                if fb:
                    twv = tw.view(torch.int16).item() & 0xFFFF if dt == "bf16" else tw.item()
                    check(lb, bwd(ptr(go), ptr(xx), ptr(t), 0, n, c, d, None, -100, 0.0, MEAN, twv, None, ptr(gx)))
            return run

        def torch_ce(fb, cxs16=cxs16, ts=ts):
            if fb:
                xg = cxs16.detach().requires_grad_()
                torch.autograd.grad(F.cross_entropy(xg, ts), xg)
            else:
                F.cross_entropy(cxs16, ts)
        out = torch.zeros(1, dtype=torch.bfloat16)
        check(lib, lib.nllk_cross_entropy_fwd_bf16(ptr(cx16), ptr(t), 0, n, c, d, None, -100, 0.0, MEAN, ptr(out),
                                                   None, None))
        ref = F.cross_entropy(cxs16.double(), ts).item()
        pt = F.cross_entropy(cxs16, ts).item()
        for fb in (False, True):
            cases.append((name + (" fwd+bwd" if fb else " fwd"), lambda fb=fb, tc=torch_ce: tc(fb),
                          ce(lib, "bf16", cx16, fb), ce(lib, "f32", cx32, fb), (ref, pt, out.item()),
                          ce(base, "bf16", cx16, fb) if base and c <= 4096 else None))  # (the wrapper's limit)

    print(f"{'workload':42s} {'torch bf16':>11s} {'nllk bf16':>10s} {'nllk f32':>9s} {'bf16 vs torch':>14s} "
          f"{'bf16 vs f32':>12s}" + (f" {'base bf16':>10s} {'vs base':>8s}" if base else "") +
          "   result: float64 ref / torch bf16 / nllk bf16")
    for name, tc, n16, n32, (ref, pt, nk), nb in cases:
        if a.only and a.only not in name:
            continue
        for f in (tc, n16, n32, nb) if nb else (tc, n16, n32):  # warm-up
            f()
        ts, t16s, t32s, r_t, r_f, tbs, r_b = [], [], [], [], [], [], []
        for _ in range(a.reps):
            x, y, z = timed(tc), timed(n16), timed(n32)
            ts.append(x), t16s.append(y), t32s.append(z)
            r_t.append(x / y), r_f.append(z / y)
            if nb:
                b = timed(nb)
                tbs.append(b), r_b.append(b / y)
        med = statistics.median
        extra = f" {med(tbs) * 1e3:8.2f}ms {med(r_b):7.2f}x" if nb else ""
        print(f"{name:42s} {med(ts) * 1e3:9.2f}ms {med(t16s) * 1e3:8.2f}ms {med(t32s) * 1e3:7.2f}ms "
              f"{med(r_t):13.2f}x {med(r_f):11.2f}x{extra}   {ref:.7g} / {pt:.7g} / {nk:.7g}", flush=True)
    print(f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
