#!/usr/bin/python3
"""Cross-entropy (issue 12): nllk's C API against PyTorch's F.cross_entropy on the same arrays, in interleaved rounds.

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 MALLOC_CONF=retain:true \\
        /usr/bin/python3 bench/ce_torch_pairs.py --lib build/libnllk.so [--old OTHER/libnllk.so] [--rounds 9]

f32, mean, class-index targets, 2 threads (--threads). Shapes (65536, 1000), (8192, 32000), (4, 21, 512, 512).
Each round times, back to back on the same arrays: PyTorch, nllk (--lib) and, with --old, a second nllk library
(e.g. main's build) loaded side by side through ctypes. fwd: F.cross_entropy(x, t) / nllk_cross_entropy_fwd_f32
(lse written). fwd+bwd: torch.autograd.grad(F.cross_entropy(x, t), x) / nllk's fwd then bwd (a fresh gradient
buffer is not allocated per call: nllk writes into one pre-touched buffer, as bench_ce does). fused: the same
PyTorch call / nllk_cross_entropy_fwdbwd_f32 (loss and gradient in one call, grad_output NULL = 1). Quoted: the median
time of each and the median of the per-round ratios (PyTorch / nllk), which is what survives a noisy machine.
"""
import argparse
import ctypes
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

SHAPES = [(65536, 1000), (8192, 32000), (4, 21, 512, 512)]


class Lib:
    def __init__(self, path):
        self.l = ctypes.CDLL(path)
        P, S, D, I = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_double, ctypes.c_int
        self.l.nllk_cross_entropy_fwd_f32.argtypes = [P, P, I, S, S, S, P, ctypes.c_int64, D, I, P, P, P]
        self.l.nllk_cross_entropy_bwd_f32.argtypes = [P, P, P, I, S, S, S, P, ctypes.c_int64, D, I, ctypes.c_float,
                                                      P, P]
        self.l.nllk_set_num_threads.argtypes = [I]
        self.fused_ok = hasattr(self.l, "nllk_cross_entropy_fwdbwd_f32")  # (an --old library may predate it)
        if self.fused_ok:
            self.l.nllk_cross_entropy_fwdbwd_f32.argtypes = [P, P, I, S, S, S, P, ctypes.c_int64, D, I, P, P, P, P, P]

    def fwd(self, x, t, n, c, d, out, tw, lse):
        st = self.l.nllk_cross_entropy_fwd_f32(x.ctypes.data, t.ctypes.data, 0, n, c, d, None, -100, 0.0, 1,
                                              out.ctypes.data, tw.ctypes.data, lse.ctypes.data)
        assert st == 0

    def fwd_bwd(self, x, t, n, c, d, out, tw, lse, go, gx):
        self.fwd(x, t, n, c, d, out, tw, lse)
        st = self.l.nllk_cross_entropy_bwd_f32(go.ctypes.data, x.ctypes.data, t.ctypes.data, 0, n, c, d, None, -100,
                                              0.0, 1, float(tw[0]), lse.ctypes.data, gx.ctypes.data)
        assert st == 0

    def fused(self, x, t, n, c, d, out, tw, lse, go, gx):
        if not self.fused_ok:
            return self.fwd_bwd(x, t, n, c, d, out, tw, lse, go, gx)
        st = self.l.nllk_cross_entropy_fwdbwd_f32(x.ctypes.data, t.ctypes.data, 0, n, c, d, None, -100, 0.0, 1,
                                                 out.ctypes.data, tw.ctypes.data, lse.ctypes.data, None,
                                                 gx.ctypes.data)
        assert st == 0


def timed(f):
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--old", default=None)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    libs = [("nllk", Lib(a.lib))] + ([("old", Lib(a.old))] if a.old else [])
    for _, L in libs:
        L.l.nllk_set_num_threads(a.threads)
    rng = np.random.default_rng(1)
    for shape in SHAPES:
        n, c = shape[0], shape[1]
        d = int(np.prod(shape[2:])) if len(shape) > 2 else 1
        x = (rng.standard_normal(shape, dtype=np.float32) * 3).astype(np.float32)
        t = rng.integers(0, c, (n,) + tuple(shape[2:])).astype(np.int64)
        xt, tt = torch.from_numpy(x), torch.from_numpy(t)
        out, tw, lse = np.zeros(1, np.float32), np.zeros(1, np.float32), np.zeros(n * d, np.float32)
        go, gx = np.ones(1, np.float32), np.zeros(x.shape, np.float32)
        xg = xt.clone().requires_grad_(True)
        ref = F.cross_entropy(xt, tt).item()
        libs[0][1].fwd(x, t, n, c, d, out, tw, lse)
        assert abs(out[0] - ref) <= 1e-5 * abs(ref), (out[0], ref)
        for kind in ("fwd", "fwd+bwd", "fused"):
            if kind == "fwd":
                ft = lambda: F.cross_entropy(xt, tt)
                fn = [(nm, (lambda L=L: L.fwd(x, t, n, c, d, out, tw, lse))) for nm, L in libs]
            else:
                ft = lambda: torch.autograd.grad(F.cross_entropy(xg, tt), xg)
                call = "fwd_bwd" if kind == "fwd+bwd" else "fused"
                fn = [(nm, (lambda L=L: getattr(L, call)(x, t, n, c, d, out, tw, lse, go, gx))) for nm, L in libs]
            ft()
            for _, f in fn:
                f()
            ts, tn = [], {nm: [] for nm, _ in fn}
            for _ in range(a.rounds):
                ts.append(timed(ft))
                for nm, f in fn:
                    tn[nm].append(timed(f))
            line = f"{str(shape):20s} {kind:8s} torch {statistics.median(ts) * 1e3:7.1f} ms"
            for nm, _ in fn:
                ratio = statistics.median([b / m for b, m in zip(ts, tn[nm])])
                line += f" | {nm} {statistics.median(tn[nm]) * 1e3:7.1f} ms  x{ratio:.2f}"
            print(line, flush=True)
        del xg, x, t, gx, xt, tt


if __name__ == "__main__":
    main()
