#!/usr/bin/python3
"""bfloat16 and float16 storage (issue 13): nllk's _bf16 / _f16 C functions next to nllk's _f32 ones and PyTorch's
16-bit call, on the same data, timed in interleaved rounds in one process (median of the per-round ratios).

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1,retain:true \\
    NLLK_LIBRARY=build/libnllk.so /usr/bin/python3 bench/bench_half.py [--threads 2] [--reps 21] [--isa avx512] \\
        [--dtypes bf16,f16] [--only poisson] [--baseline OTHER/libnllk.so] [--png bench/results/bench_half.png]

Workloads (the issue's targets): NLL (65536, 1000) mean, unweighted; NLL (4, 21, 512, 512) mean with class weights
and ignore_index=255 (random targets); Poisson n = 2^24, mean: log_input forward and forward+backward, full=True
and log_input=False forward; each NLL forward and forward+backward; cross-entropy (65536, 1000), (8192, 32000) and
(4, 21, 512, 512) mean, forward and forward+backward (bf16 only; --only skips allocating the others). Every
workload in each dtype of --dtypes (float16: PyTorch 1.13 has no
CPU float16 NLL or Poisson; its column says n/a and the float16 row compares nllk with its own float32).
(PyTorch: torch.autograd.grad of the loss; nllk: the forward then the backward into a preallocated gradient).
nllk is called through ctypes on the tensors' memory (no copies), so the timings are the C library's own.
--baseline: another build of libnllk (e.g. the previous commit's) timed in the same rounds: the "vs base" column is
its 16-bit time over this library's (before/after in one process). --png: a chart of the rows (matplotlib).
Also prints each 16-bit result next to the float64 reference (PyTorch's bf16 result accumulates in bf16).
"""
import argparse
import ctypes
import os
import statistics
import textwrap
import time

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
P = ctypes.c_void_p
SZ = ctypes.c_size_t


def load(path):
    lib = ctypes.CDLL(path)
    for dt in ("f32", "bf16", "f16"):
        getattr(lib, "nllk_nll_fwd_" + dt).argtypes = [P, P, ctypes.c_int, SZ, SZ, SZ, P, ctypes.c_int64,
                                                       ctypes.c_int, P, P]
        getattr(lib, "nllk_poisson_nll_fwd_" + dt).argtypes = [P, P, SZ, ctypes.c_int, ctypes.c_int,
                                                               ctypes.c_double, ctypes.c_int, P]
        getattr(lib, "nllk_poisson_nll_bwd_" + dt).argtypes = [P, P, SZ, ctypes.c_int, ctypes.c_int,
                                                               ctypes.c_double, ctypes.c_int, P, P, P]
    for dt in ("f32", "bf16", "f16"):
        getattr(lib, "nllk_cross_entropy_fwd_" + dt).argtypes = [P, P, ctypes.c_int, SZ, SZ, SZ, P, ctypes.c_int64,
                                                                 ctypes.c_double, ctypes.c_int, P, P, P]
    lib.nllk_cross_entropy_bwd_f32.argtypes = [P, P, P, ctypes.c_int, SZ, SZ, SZ, P, ctypes.c_int64, ctypes.c_double,
                                               ctypes.c_int, ctypes.c_float, P, P]
    lib.nllk_cross_entropy_bwd_bf16.argtypes = [P, P, P, ctypes.c_int, SZ, SZ, SZ, P, ctypes.c_int64,
                                                ctypes.c_double, ctypes.c_int, ctypes.c_uint16, P, P]
    lib.nllk_nll_bwd_f32.argtypes = [P, P, ctypes.c_int, SZ, SZ, SZ, P, ctypes.c_int64, ctypes.c_int,
                                     ctypes.c_float, P]
    for dt in ("bf16", "f16"):
        getattr(lib, "nllk_nll_bwd_" + dt).argtypes = [P, P, ctypes.c_int, SZ, SZ, SZ, P, ctypes.c_int64,
                                                       ctypes.c_int, ctypes.c_uint16, P]
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
            twv = tw.view(torch.int16).item() & 0xFFFF if dt != "f32" else tw.item()
            check(lib, bwd(ptr(go), ptr(t), 0, n, c, d, ptr(w), ign, MEAN, twv, ptr(gx)))
    return run


def poisson_case(lib, dt, x, t, n, li, full, fwdbwd, out, gx, go):
    fwd = getattr(lib, "nllk_poisson_nll_fwd_" + dt)
    bwd = getattr(lib, "nllk_poisson_nll_bwd_" + dt)

    def run():
        check(lib, fwd(ptr(x), ptr(t), n, li, full, 1e-8, MEAN, ptr(out)))
        if fwdbwd:
            check(lib, bwd(ptr(x), ptr(t), n, li, full, 1e-8, MEAN, ptr(go), ptr(gx), None))
    return run


CLOCK = time.perf_counter


def timed(fn):
    t0 = CLOCK()
    fn()
    return CLOCK() - t0


TDT = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}


def torch_or_none(fn):
    """fn, or None when PyTorch's CPU has no kernel for the dtype (float16 NLL and Poisson in PyTorch 1.13)."""
    try:
        fn()
    except RuntimeError:
        return None
    return fn


def build_cases(libs, dtypes, quick, only=""):
    """(name, dtype, PyTorch call or None, {lib: nllk 16-bit call}, {lib: nllk f32 call}, (ref, torch, nllk))"""
    lib = libs[0]
    cases = []
    n2, c2 = (256, 100) if quick else (65536, 1000)
    n4, c4, hw = (2, 21, 32) if quick else (4, 21, 512)
    # NLL (65536, 1000) and (4, 21, 512, 512) weighted, ignore_index 255
    for name, shape, weighted in ((f"nll ({n2}, {c2})", (n2, c2, 1), False),
                                  (f"nll ({n4}, {c4}, {hw}, {hw}) weighted", (n4, c4, hw * hw), True)):
        n, c, d = shape
        x32 = torch.log_softmax(torch.randn(n, c, d), 1) if d > 1 else torch.log_softmax(torch.randn(n, c), 1)
        x32 = x32.contiguous()
        t = torch.randint(0, c, (n, d) if d > 1 else (n,), dtype=torch.int64)
        ign = -100
        if weighted:
            ign = 255
            t[torch.rand(t.shape) < 0.1] = 255
        w32 = torch.rand(c) + 0.5 if weighted else None
        xs0 = x32.view(n, c, hw, hw) if d > 1 else x32
        ts = t.view(n, hw, hw) if d > 1 else t
        for dt in dtypes:
            x16, w16 = xs0.to(TDT[dt]).contiguous(), (w32.to(TDT[dt]) if weighted else None)
            xf = x16.float().contiguous()  # the same values in both dtypes
            wf = w16.float() if weighted else None
            for fb in (False, True):
                calls = {}
                for d_, xx, ww in (("f32", xf, wf), (dt, x16, w16)):
                    calls[d_] = {L: nll_case(L, d_, xx, ts, n, c, d, ww, ign, fb, torch.zeros(1, dtype=TDT[d_]),
                                             torch.zeros(1, dtype=TDT[d_]), torch.zeros_like(xx),
                                             torch.ones(1, dtype=TDT[d_])) for L in libs}

                def torch_call(x16=x16, ts=ts, w16=w16, ign=ign, fb=fb):
                    if fb:
                        xg = x16.detach().requires_grad_()
                        loss = F.nll_loss(xg, ts, weight=w16, ignore_index=ign)
                        torch.autograd.grad(loss, xg)
                    else:
                        F.nll_loss(x16, ts, weight=w16, ignore_index=ign)
                tc = torch_or_none(torch_call)
                ref = F.nll_loss(x16.double(), ts, weight=w16.double() if weighted else None,
                                 ignore_index=ign).item()
                pt = F.nll_loss(x16, ts, weight=w16, ignore_index=ign).item() if tc else float("nan")
                out = torch.zeros(1, dtype=TDT[dt])
                check(lib, getattr(lib, "nllk_nll_fwd_" + dt)(ptr(x16), ptr(ts), 0, n, c, d, ptr(w16), ign, MEAN,
                                                              ptr(out), None))
                cases.append((name + (" fwd+bwd" if fb else " fwd"), dt, tc, calls[dt], calls["f32"],
                              (ref, pt, out.item())))
    # Poisson n = 2^24: log_input forward, forward+backward; full=True and log_input=False forward
    n = 2 ** 16 if quick else 2 ** 24
    xl = torch.rand(n) * 4 - 2       # log-rates
    xr = torch.rand(n) * 5 + 0.01    # rates (log_input=False)
    tp = torch.randint(0, 7, (n,)).float()
    for li, full, fb in ((1, 0, False), (1, 0, True), (1, 1, False), (0, 0, False)):
        for dt in dtypes:
            x16, t16 = (xl if li else xr).to(TDT[dt]), tp.to(TDT[dt])
            x32, t32 = x16.float(), t16.float()
            calls = {}
            for d_, xx, tt in (("f32", x32, t32), (dt, x16, t16)):
                calls[d_] = {L: poisson_case(L, d_, xx, tt, n, li, full, fb, torch.zeros(1, dtype=TDT[d_]),
                                             torch.zeros_like(xx), torch.ones(1, dtype=TDT[d_])) for L in libs}

            def torch_call(fb=fb, x16=x16, t16=t16, li=li, full=full):
                if fb:
                    xg = x16.detach().requires_grad_()
                    loss = F.poisson_nll_loss(xg, t16, log_input=bool(li), full=bool(full))
                    torch.autograd.grad(loss, xg)
                else:
                    F.poisson_nll_loss(x16, t16, log_input=bool(li), full=bool(full))
            tc = torch_or_none(torch_call)
            ref = F.poisson_nll_loss(x16.double(), t16.double(), log_input=bool(li), full=bool(full)).item()
            pt = F.poisson_nll_loss(x16, t16, log_input=bool(li), full=bool(full)).item() if tc else float("nan")
            out = torch.zeros(1, dtype=TDT[dt])
            check(lib, getattr(lib, "nllk_poisson_nll_fwd_" + dt)(ptr(x16), ptr(t16), n, li, full, 1e-8, MEAN,
                                                                   ptr(out)))
            opts = ("log_input" if li else "log_input=False") + (" full" if full else "")
            cases.append((f"poisson n=2^{n.bit_length() - 1} {opts}" + (" fwd+bwd" if fb else " fwd"), dt, tc,
                          calls[dt], calls["f32"], (ref, pt, out.item())))

    # cross-entropy, mean: forward (compute-bound: an exp per logit), and forward then backward into a preallocated
    # gradient; bf16
    if "bf16" not in dtypes:
        return cases
    n3, c3 = (64, 3000) if quick else (8192, 32000)
    for name, n, c, d in ((f"cross_entropy ({n2}, {c2})", n2, c2, 1), (f"cross_entropy ({n3}, {c3})", n3, c3, 1),
                          (f"cross_entropy ({n4}, {c4}, {hw}, {hw})", n4, c4, hw * hw)):
        if only and only not in name:
            continue
        cx16 = torch.randn(n, c, d).to(torch.bfloat16) if d > 1 else torch.randn(n, c).to(torch.bfloat16)
        cx32 = cx16.float()
        t = torch.randint(0, c, (n, d) if d > 1 else (n,), dtype=torch.int64)
        cxs16 = cx16.view(n, c, hw, hw) if d > 1 else cx16
        ts = t.view(n, hw, hw) if d > 1 else t
        grads = {}

        def ce(L, dt, xx, fb, n=n, c=c, d=d, t=t, grads=grads):
            fn = getattr(L, "nllk_cross_entropy_fwd_" + dt)
            bwd = getattr(L, "nllk_cross_entropy_bwd_" + dt)
            out, tw, go = torch.zeros(1, dtype=xx.dtype), torch.zeros(1, dtype=xx.dtype), torch.ones(1, dtype=xx.dtype)
            gx = grads.setdefault((id(L), dt), torch.zeros_like(xx)) if fb else None  # one per library and dtype

            def run():
                check(L, fn(ptr(xx), ptr(t), 0, n, c, d, None, -100, 0.0, MEAN, ptr(out), ptr(tw), None))
                if fb:
                    twv = tw.view(torch.int16).item() & 0xFFFF if dt == "bf16" else tw.item()
                    check(L, bwd(ptr(go), ptr(xx), ptr(t), 0, n, c, d, None, -100, 0.0, MEAN, twv, None, ptr(gx)))
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
            cases.append((name + (" fwd+bwd" if fb else " fwd"), "bf16", lambda fb=fb, tc=torch_ce: tc(fb),
                          {L: ce(L, "bf16", cx16, fb) for L in libs}, {L: ce(L, "f32", cx32, fb) for L in libs},
                          (ref, pt, out.item())))
    return cases


def chart(rows, path, head):
    """One row per workload and dtype: nllk 16-bit's speed-up over PyTorch's 16-bit call (bf16), over nllk f32, and
    (with --baseline) over the baseline library's 16-bit call; the issue's targets as marks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = {"nll (65536, 1000) fwd": 4.0, "nll (4, 21, 512, 512) weighted fwd": 4.0,
               "poisson n=2^24 log_input fwd": 3.5, "poisson n=2^24 log_input fwd+bwd": 4.0}
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.32 * len(rows)))
    labels = []
    for y, r in enumerate(rows):
        labels.append(f"{r['name']}  [{r['dtype']}]")
        if r["vs_torch"]:
            ax.plot([r["vs_torch"]], [y], "o", color="C0", label="nllk 16-bit / PyTorch 16-bit")
        ax.plot([r["vs_f32"]], [y], "s", color="C2", label="nllk 16-bit / nllk float32")
        if r.get("vs_base"):
            ax.plot([r["vs_base"]], [y], "^", color="C1", label="nllk 16-bit / baseline library 16-bit")
        tg = targets.get(r["name"])
        if tg and r["dtype"] == "bf16":
            ax.plot([tg], [y], "|", color="k", markersize=14, markeredgewidth=2, label="target vs PyTorch")
    ax.axvline(1.0, color="C3", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xscale("log")
    ax.set_xticks([0.25, 0.5, 1, 2, 4, 8])
    ax.set_xticklabels(["0.25x", "0.5x", "1x", "2x", "4x", "8x"])
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.set_xlabel("speed-up (time of the other call / time of nllk's 16-bit call), log scale; median of "
                  "per-round ratios", fontsize=8)
    seen = {}
    for hd, lab in zip(*ax.get_legend_handles_labels()):
        if lab not in seen:
            seen[lab] = hd
    ax.legend(list(seen.values()), list(seen.keys()), fontsize=7, loc="lower right")
    ax.set_title("\n".join(textwrap.wrap(head, 120)), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=21)
    ap.add_argument("--isa", default="")
    ap.add_argument("--only", default="", help="only the workloads whose name contains this")
    ap.add_argument("--dtypes", default="bf16,f16")
    ap.add_argument("--baseline", default="", help="another libnllk.so timed in the same rounds")
    ap.add_argument("--png", default="", help="write a chart of the rows here")
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    ap.add_argument("--cputime", action="store_true",
                    help="time with the calling thread's CPU time (--threads 1 only): on a loaded machine it leaves "
                         "out the time the thread waits for a CPU")
    a = ap.parse_args()
    if a.cputime:
        if a.threads != 1:
            ap.error("--cputime needs --threads 1")
        global CLOCK
        CLOCK = time.thread_time
    libs = [load(os.environ.get("NLLK_LIBRARY", os.path.join(ROOT, "build", "libnllk.so")))]
    if a.baseline:
        libs.append(load(a.baseline))
    for L in libs:
        if a.isa:
            check(L, L.nllk_set_isa(a.isa.encode()))
        L.nllk_set_num_threads(a.threads)
    lib = libs[0]
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    head = (f"isa {lib.nllk_active_isa().decode()}, threads {a.threads}{' (CPU time)' if a.cputime else ''}, "
            f"torch {torch.__version__}, "
            f"LD_PRELOAD={os.environ.get('LD_PRELOAD', '')}, load {os.getloadavg()[0]:.1f}")
    print(head)
    cases = build_cases(libs, [d for d in a.dtypes.split(",") if d], a.quick, a.only)

    print(f"{'workload':42s} {'dtype':5s} {'torch 16':>10s} {'nllk 16':>9s} {'nllk f32':>9s} {'16 vs torch':>12s} "
          f"{'16 vs f32':>10s}" + (f" {'vs base':>8s}" if a.baseline else "") +
          "   result: float64 ref / torch 16-bit / nllk 16-bit")
    rows = []
    med = statistics.median
    for name, dt, tc, n16, n32, (ref, pt, nk) in cases:
        if a.only and a.only not in name:
            continue
        fns = [f for f in (tc, n16[lib], n32[lib], n16.get(libs[-1]) if a.baseline else None) if f is not None]
        for f in fns:  # warm-up
            f()
        samples = [[] for _ in fns]
        for _ in range(a.reps):
            for f, s in zip(fns, samples):
                s.append(timed(f))
        if tc is None:
            samples.insert(0, None)
        if not a.baseline:
            samples.append(None)
        ts, t16s, t32s, tbs = samples
        r = dict(name=name, dtype=dt, torch_s=med(ts) if ts else None, nllk16_s=med(t16s), nllk32_s=med(t32s),
                 vs_torch=med([x / y for x, y in zip(ts, t16s)]) if ts else None,
                 vs_f32=med([z / y for z, y in zip(t32s, t16s)]),
                 vs_base=med([b / y for b, y in zip(tbs, t16s)]) if tbs else None)
        rows.append(r)
        tcol = f"{r['torch_s'] * 1e3:8.2f}ms" if ts else f"{'n/a':>10s}"
        rcol = f"{r['vs_torch']:11.2f}x" if ts else f"{'n/a':>12s}"
        print(f"{name:42s} {dt:5s} {tcol} {r['nllk16_s'] * 1e3:7.2f}ms {r['nllk32_s'] * 1e3:7.2f}ms {rcol} "
              f"{r['vs_f32']:9.2f}x" + (f" {r['vs_base']:7.2f}x" if tbs else "") +
              f"   {ref:.7g} / {pt:.7g} / {nk:.7g}", flush=True)
    print(f"load {os.getloadavg()[0]:.1f}")
    if a.png:
        chart(rows, a.png, head + f", load after {os.getloadavg()[0]:.1f}, {a.reps} rounds")
        print(f"wrote {a.png}")


if __name__ == "__main__":
    main()
