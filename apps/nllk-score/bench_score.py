#!/usr/bin/python3
"""nllk-score vs the library on the same arrays in memory (BENCHMARKS.md, ## nllk-score).

Writes ~1 GiB .npy datasets (Poisson f32: input + target; NLL f32 segmentation input + int64 targets), reads them
once so they are in the page cache, then for each workload measures
  - the library's one-shot call (ctypes) on the arrays loaded into (pre-touched) memory: median of --reps calls;
  - nllk-score --json on the files, a fresh process per run: the scoring time it reports (open + header parse
    excluded, every chunk's read + compute + result included), median of --reps runs, and the process's wall time;
for each read method (--io) and a few chunk sizes. Prints a markdown table and writes JSON next to the data.

    /usr/bin/python3 apps/nllk-score/bench_score.py --build build --dir /tmp/nllk-score-bench [--threads 2]
"""
import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np


def ensure_data(d, gib):
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(7)
    paths = {}
    n = int(gib * (1 << 30)) // 8  # Poisson: input + target f32
    px, pt = os.path.join(d, "poisson_x.npy"), os.path.join(d, "poisson_t.npy")
    if not (os.path.exists(px) and np.load(px, mmap_mode="r").shape == (n,)):
        for p, gen in ((px, lambda m: rng.normal(size=m).astype(np.float32)),
                       (pt, lambda m: rng.poisson(2.0, size=m).astype(np.float32))):
            a = np.lib.format.open_memmap(p, mode="w+", dtype=np.float32, shape=(n,))
            for i in range(0, n, 1 << 24):
                a[i:i + (1 << 24)] = gen(min(1 << 24, n - i))
            a.flush()
            del a
    paths["poisson"] = (px, pt)
    c, h, w = 21, 256, 256
    nb = max(1, int(gib * (1 << 30)) // (c * h * w * 4 + h * w * 8))
    nx, nt = os.path.join(d, "nll_x.npy"), os.path.join(d, "nll_t.npy")
    if not (os.path.exists(nx) and np.load(nx, mmap_mode="r").shape == (nb, c, h, w)):
        a = np.lib.format.open_memmap(nx, mode="w+", dtype=np.float32, shape=(nb, c, h, w))
        t = np.lib.format.open_memmap(nt, mode="w+", dtype=np.int64, shape=(nb, h, w))
        for i in range(nb):
            a[i] = np.log(rng.dirichlet(np.ones(c), size=(h, w)).astype(np.float32)).transpose(2, 0, 1)
            t[i] = rng.integers(0, c, size=(h, w))
        a.flush()
        t.flush()
        del a, t
    paths["nll"] = (nx, nt)
    return paths


def cache(paths):
    for p in paths:
        with open(p, "rb") as f:
            while f.read(1 << 26):
                pass


class Lib:
    def __init__(self, path):
        self.lib = ctypes.CDLL(path)
        P = ctypes.c_void_p
        self.lib.nllk_poisson_nll_fwd_f32.argtypes = [P, P, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                                                      ctypes.c_double, ctypes.c_int, P]
        self.lib.nllk_nll_fwd_f32.argtypes = [P, P, ctypes.c_int, ctypes.c_size_t, ctypes.c_size_t,
                                              ctypes.c_size_t, P, ctypes.c_int64, ctypes.c_int, P, P]
        self.lib.nllk_set_num_threads.argtypes = [ctypes.c_int]
        self.lib.nllk_active_isa.restype = ctypes.c_char_p


def time_library(lib, kind, paths, reps, threads):
    lib.lib.nllk_set_num_threads(threads)
    x = np.load(paths[0])  # read into anonymous memory: every page touched
    t = np.load(paths[1])
    out = np.zeros((), np.float32)
    tw = np.zeros((), np.float32)
    P = lambda a: a.ctypes.data_as(ctypes.c_void_p)
    if kind == "poisson":
        call = lambda: lib.lib.nllk_poisson_nll_fwd_f32(P(x), P(t), x.size, 1, 0, 1e-8, 1, P(out))
        nbytes = x.nbytes + t.nbytes
    else:
        n, c = x.shape[:2]
        d = x[0, 0].size
        call = lambda: lib.lib.nllk_nll_fwd_f32(P(x), P(t), 0, n, c, d, None, -100, 1, P(out), P(tw))
        nbytes = x.nbytes + t.nbytes
    call()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        assert call() == 0
        times.append(time.perf_counter() - t0)
    value = float(out)
    del x, t
    return statistics.median(times), nbytes, value


def time_cli(score, kind, paths, reps, threads, extra):
    secs, walls, j = [], [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        p = subprocess.run([score, kind, "--input", paths[0], "--target", paths[1], "--json", "--quiet",
                            "--threads", str(threads), *extra], capture_output=True, text=True)
        walls.append(time.perf_counter() - t0)
        assert p.returncode == 0, p.stderr
        j = json.loads(p.stdout)
        secs.append(j["seconds"])
    return statistics.median(secs), statistics.median(walls), j


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--dir", default="/tmp/nllk-score-bench")
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--quick", action="store_true", help="small data, few runs (smoke test)")
    a = ap.parse_args()
    if a.quick:
        a.gib, a.reps = 0.02, 2
    score = os.path.join(a.build, "nllk-score")
    lib = Lib(os.path.join(a.build, "libnllk.so"))
    paths = ensure_data(a.dir, a.gib)
    configs = [("populate (default)", []), ("prefetch (populate next chunk on a helper thread)", ["--io", "prefetch"]),
               ("prefetch, 2 MiB chunks", ["--io", "prefetch", "--chunk-bytes", str(2 << 20)]),
               ("prefetch, 32 MiB chunks", ["--io", "prefetch", "--chunk-bytes", str(32 << 20)]), ("populate, 2 MiB chunks", ["--chunk-bytes", str(2 << 20)]),
               ("populate, 32 MiB chunks", ["--chunk-bytes", str(32 << 20)]),
               ("populate, pages kept mapped", ["--keep-pages"]),
               ("window (mmap MAP_POPULATE per chunk)", ["--io", "window"]),
               ("pread into a reused buffer", ["--io", "pread"]), ("plain mmap (page faults)", ["--io", "mmap"])]
    rows = []
    for kind in ("poisson", "nll"):
        cache(paths[kind])
        lt, nbytes, lv = time_library(lib, kind, paths[kind], a.reps, a.threads)
        rows.append(dict(kind=kind, how="library, arrays in memory", seconds=lt, wall=None, gbps=nbytes / lt / 1e9,
                         ratio=1.0, value=lv))
        for name, extra in configs:
            cache(paths[kind])
            s, w, j = time_cli(score, kind, paths[kind], a.reps, a.threads, extra)
            assert np.float32(j["loss"]) == np.float32(lv), (j["loss"], lv)  # same bits as the one-shot call
            rows.append(dict(kind=kind, how=f"nllk-score, {name}", seconds=s, wall=w, gbps=nbytes / s / 1e9,
                             ratio=lt / s, value=j["loss"], chunks=j["chunks"]))
    isa = lib.lib.nllk_active_isa().decode()
    print(f"\n{a.gib:g} GiB per workload, {a.threads} threads, isa {isa}, medians of {a.reps}\n")
    print("| workload | how | time (ms) | process wall (ms) | GB/s | vs library |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        wall = f"{r['wall'] * 1e3:.1f}" if r["wall"] else ""
        print(f"| {r['kind']} | {r['how']} | {r['seconds'] * 1e3:.1f} | {wall} | {r['gbps']:.1f} | "
              f"{100 * r['ratio']:.0f}% |")
    with open(os.path.join(a.dir, "bench_score.json"), "w") as f:
        json.dump(dict(gib=a.gib, threads=a.threads, isa=isa, reps=a.reps, rows=rows), f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
