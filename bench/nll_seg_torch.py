#!/usr/bin/python3
"""nll_seg_torch: the (4, 21, 512, 512) weighted N-D NLL (ignore 255, mean) of nllk's C API next to PyTorch's, in one
process, interleaved pairs (BENCHMARKS.md, "NLL on segmentation targets (issue 18)"). Coherent targets are
bench/labelmaps.py's maps, random ones 10% ignored. Prints, per row, the minimum and median of each and the median of
the per-pair ratios PyTorch / nllk. PyTorch runs int64 targets (it takes no uint8 for N-D input) and, for bf16, its
bf16 call; nllk runs the dtype and target type of the row. Cold: 96 MiB written before each call.

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 \\
    MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1,retain:true \\
    /usr/bin/python3 bench/nll_seg_torch.py --lib build/libnllk.so --threads 2 --reps 21
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labelmaps  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--lib", default="build/libnllk.so")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--reps", type=int, default=21)
ap.add_argument("--rows", default="fwd,bwd,bf16")
args = ap.parse_args()

lib = ctypes.CDLL(args.lib)
lib.nllk_set_num_threads(args.threads)
torch.set_num_threads(args.threads)
P = ctypes.c_void_p
for name in ("nllk_nll_fwd_f32", "nllk_nll_fwd_bf16"):
    getattr(lib, name).argtypes = [P, P, ctypes.c_int, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_size_t, P,
                                   ctypes.c_int64, ctypes.c_int, P, P]
lib.nllk_nll_bwd_f32.argtypes = [P, P, ctypes.c_int, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_size_t, P,
                                 ctypes.c_int64, ctypes.c_int, ctypes.c_float, P]
I64, U8, MEAN = 0, 2, 1

n, c, h, w = 4, 21, 512, 512
d = h * w
g = torch.Generator().manual_seed(0)
x = torch.randn(n, c, h, w, generator=g)
wt = 0.5 + torch.arange(c, dtype=torch.float32) * 0.01
coh = torch.from_numpy(labelmaps.labelmaps(n, h, w, c))
rnd = torch.randint(0, c, (n, h, w), generator=g)
rnd[torch.rand(n, h, w, generator=g) < 0.1] = 255
evict = np.ones(96 << 20, np.uint8)
out = torch.empty(2)
gx = torch.empty_like(x)


def p(t):
    return ctypes.c_void_p(t.data_ptr())


def timed(f, cold):
    if cold:
        evict[:] += 1
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def row(label, ft, fn, cold):
    ft(), fn()
    tt, tn = [], []
    for r in range(args.reps):
        pair = [(ft, tt), (fn, tn)] if r % 2 == 0 else [(fn, tn), (ft, tt)]
        for f, acc in pair:
            if not cold:
                f()  # warm: the second of two calls
            acc.append(timed(f, cold))
    ratio = statistics.median(a / b for a, b in zip(tt, tn))
    print(f"{label:44s} torch min {min(tt) * 1e3:7.3f} med {statistics.median(tt) * 1e3:7.3f} ms | "
          f"nllk min {min(tn) * 1e3:7.3f} med {statistics.median(tn) * 1e3:7.3f} ms | torch/nllk {ratio:5.2f}x",
          flush=True)


print(f"{args.threads} threads, {args.reps} pairs, load {os.getloadavg()[0]:.1f}", flush=True)
rows = args.rows.split(",")
for kind, t in (("coherent", coh), ("random", rnd)):
    t8 = t.to(torch.uint8)
    for cold in (False, True):
        cs = "cold" if cold else "warm"
        if "fwd" in rows:
            ft = lambda t=t: F.nll_loss(x, t, weight=wt, ignore_index=255)  # noqa: E731
            for tn, tname, tcode in ((t, "int64", I64), (t8, "uint8", U8)):
                fn = lambda tn=tn, tcode=tcode: lib.nllk_nll_fwd_f32(  # noqa: E731
                    p(x), p(tn), tcode, n, c, d, p(wt), 255, MEAN, p(out), ctypes.c_void_p(out.data_ptr() + 4))
                row(f"fwd f32 {kind} {tname} {cs}", ft, fn, cold)
        if "bf16" in rows and not cold:
            xb, wb = x.to(torch.bfloat16), wt.to(torch.bfloat16)
            ob = torch.empty(2, dtype=torch.bfloat16)
            ft = lambda t=t: F.nll_loss(xb, t, weight=wb, ignore_index=255)  # noqa: E731
            fn = lambda t8=t8: lib.nllk_nll_fwd_bf16(  # noqa: E731
                p(xb), p(t8), U8, n, c, d, p(wb), 255, MEAN, p(ob), ctypes.c_void_p(ob.data_ptr() + 2))
            row(f"fwd bf16 {kind} uint8 {cs}", ft, fn, cold)
    if "bwd" in rows:
        tw = float((wt[t.clamp(max=c - 1)] * (t != 255)).sum())
        go = torch.ones(())
        ft = lambda t=t: torch.ops.aten.nll_loss2d_backward(go, x, t, wt, 1, 255, torch.tensor(tw))  # noqa: E731
        for tn, tname, tcode in ((t, "int64", I64), (t8, "uint8", U8)):
            fn = lambda tn=tn, tcode=tcode: lib.nllk_nll_bwd_f32(  # noqa: E731
                p(go), p(tn), tcode, n, c, d, p(wt), 255, MEAN, tw, p(gx))
            row(f"bwd f32 {kind} {tname} warm", ft, fn, False)
