#!/usr/bin/python3
"""nllk-score vs the library on the same arrays in memory (BENCHMARKS.md, ## nllk-score).

Writes ~1 GiB .npy datasets (Poisson f32: input + target; NLL f32 segmentation input + int64 targets), reads them
once so they are in the page cache, then for each workload measures
  - the library's one-shot call (through the nllk package) on the arrays loaded into (pre-touched) memory: median
    of --reps calls;
  - nllk-score --json on the files, a fresh process per run: the scoring time it reports (open + header parse
    excluded, every chunk's read + compute + result included), median of --reps runs, and the process's wall time;
for each read method (--io) and a few chunk sizes. Prints a markdown table and writes JSON next to the data.

    /usr/bin/python3 apps/nllk-score/bench_score.py --build build --dir /tmp/nllk-score-bench [--threads 2]
    /usr/bin/python3 apps/nllk-score/bench_score.py --parts 32   # one file vs 1 GiB in 64 files of 16 MiB
    /usr/bin/python3 apps/nllk-score/bench_score.py --ce         # nllk-score ce vs the one-shot call
"""
import argparse
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
            a[i] = -5.0 * rng.random((c, h, w), dtype=np.float32)  # log-probability-like values (any will do)
            t[i] = rng.integers(0, c, size=(h, w))
        a.flush()
        t.flush()
        del a, t
    paths["nll"] = (nx, nt)
    return paths


def cache(paths, state):
    """Brings the files into the page cache in one of two states:
    large: dropped, then read with read(): readahead fills the cache with large folios (up to 2 MiB), which the
           kernel maps with PMD entries — as after np.save, cp, or any buffered read/write on this kernel;
    small: dropped, then faulted in page by page through a MADV_RANDOM mapping: 4 KiB folios, each mapped by its
           own PTE — the slow case (a file last brought in through page faults)."""
    import mmap
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        if state == "large":
            while os.read(fd, 1 << 26):
                pass
        else:
            m = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
            m.madvise(mmap.MADV_RANDOM)
            size = len(m)
            for off in range(0, size, 4096):
                m[off]
            m.close()
        os.close(fd)


def load_nllk(build):
    """The nllk package of this checkout on the build's libnllk."""
    os.environ["NLLK_LIBRARY"] = os.path.join(build, "libnllk.so")  # (read by nllk at its first call)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                    "python"))
    import nllk
    return nllk


def library_call(nllk, kind, paths, threads):
    nllk.set_num_threads(threads)
    x = np.load(paths[0])  # read into anonymous memory: every page touched
    t = np.load(paths[1])
    if kind == "poisson":
        call = lambda: nllk.poisson_nll_loss(x, t)
    else:
        call = lambda: nllk.nll_loss(x, t)

    def timed():
        t0 = time.perf_counter()
        out = call()
        return time.perf_counter() - t0, float(out)
    timed()
    return timed, x.nbytes + t.nbytes


def cli_call(score, kind, paths, threads, extra):
    t0 = time.perf_counter()
    p = subprocess.run([score, kind, "--input", paths[0], "--target", paths[1], "--json", "--quiet", "--no-warn",
                        "--threads", str(threads), *extra], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    return j["seconds"], wall, j


def split_parts(d, paths, parts):
    """Each array of a workload cut along its first dimension into `parts` files (dir/parts/): for the 1 GiB
    Poisson workload, 2 x 32 files of 16 MiB. Returns the two globs."""
    out = []
    for p in paths:
        stem = os.path.splitext(os.path.basename(p))[0]
        a = np.load(p, mmap_mode="r")
        os.makedirs(os.path.join(d, "parts"), exist_ok=True)
        bounds = [a.shape[0] * k // parts for k in range(parts + 1)]
        for k in range(parts):
            q = os.path.join(d, "parts", f"{stem}_{k:03d}.npy")
            if not (os.path.exists(q) and np.load(q, mmap_mode="r").shape[0] == bounds[k + 1] - bounds[k]):
                np.save(q, a[bounds[k]:bounds[k + 1]])
        out.append(os.path.join(d, "parts", f"{stem}_*.npy"))
    return out


def rewrite(files):
    """Each file copied to a new file renamed over it: its page cache as a writer (np.save, cp) leaves it."""
    for f in files:
        with open(f, "rb") as g:
            data = g.read()
        with open(f + ".tmp", "wb") as g:
            g.write(data)
        os.replace(f + ".tmp", f)
    os.sync()


def bench_parts(a, score, paths):
    """--parts N: the same data as one file per array and as N parts per array, interleaved, medians, page cache
    warm in two states (see BENCHMARKS.md): the parts' throughput as a share of the single files'.
      read back:   every file dropped and read with read() (cache()'s "large"): the 1 GiB files end up in large
                   folios, but readahead leaves 16 MiB files in folios of 1-4 pages (measured with
                   /proc/kpageflags), which a mapping must map one PTE at a time;
      as written:  the single files as above, the parts rewritten (copied and renamed): large folios, as np.save
                   leaves files it has just written."""
    import glob
    print(f"\n{a.gib:g} GiB per workload, {a.threads} threads, medians of {a.reps}\n")
    print("| page cache of the parts | workload | --io | files | one file per array (ms) | parts (ms) | "
          "parts / one file |")
    print("|---|---|---|---:|---:|---:|---:|")
    rows = []
    for kind in ("poisson", "nll"):
        globs = split_parts(a.dir, paths[kind], a.parts)
        files = sorted(glob.glob(globs[0])) + sorted(glob.glob(globs[1]))
        for state in ("read back", "as written"):
            cache(list(paths[kind]) + files, "large")
            if state == "as written":
                rewrite(files)
            ios = ["auto", "pread"] if kind == "poisson" else ["auto"]  # (nll's auto is pread)
            res = {}
            for _ in range(a.reps):
                for io in ios:
                    extra = [] if io == "auto" else ["--io", io]
                    s1, _, j1 = cli_call(score, kind, paths[kind], a.threads, extra)
                    s2, _, j2 = cli_call(score, kind, globs, a.threads, extra)
                    assert j1["loss"] == j2["loss"] and len(j2["inputs"]) == a.parts, (j1["loss"], j2["loss"])
                    res.setdefault(io, ([], []))
                    res[io][0].append(s1)
                    res[io][1].append(s2)
            for io in ios:
                m1, m2 = statistics.median(res[io][0]), statistics.median(res[io][1])
                rows.append(dict(state=state, kind=kind, io=io, files=len(files), one=m1, parts=m2, ratio=m1 / m2,
                                 one_all=res[io][0], parts_all=res[io][1]))
                print(f"| {state} | {kind} | {io} | {len(files)} | {m1 * 1e3:.1f} | {m2 * 1e3:.1f} | "
                      f"{100 * m1 / m2:.0f}% |", flush=True)
    with open(os.path.join(a.dir, "bench_parts.json"), "w") as f:
        json.dump(dict(gib=a.gib, threads=a.threads, reps=a.reps, parts=a.parts, rows=rows), f, indent=1)


def bench_ce(a, score, paths):
    """--ce: nllk-score ce (class indices) on the NLL workload's arrays read as logits, against the library's
    one-shot nllk_cross_entropy_fwd_f32 (ctypes) on the arrays in memory, interleaved, medians."""
    import ctypes
    lib = ctypes.CDLL(os.path.join(a.build, "libnllk.so"))
    lib.nllk_set_num_threads(a.threads)
    x = np.load(paths["nll"][0])
    t = np.load(paths["nll"][1])
    n, c, d = x.shape[0], x.shape[1], int(np.prod(x.shape[2:]))
    out, tw = ctypes.c_float(), ctypes.c_float()
    S = ctypes.c_size_t

    def call():
        t0 = time.perf_counter()
        st = lib.nllk_cross_entropy_fwd_f32(x.ctypes.data_as(ctypes.c_void_p), t.ctypes.data_as(ctypes.c_void_p), 0,
                                            S(n), S(c), S(d), None, ctypes.c_int64(-100), ctypes.c_double(0.0), 1,
                                            ctypes.byref(out), ctypes.byref(tw), None)
        assert st == 0
        return time.perf_counter() - t0
    call()
    cache(paths["nll"], "large")
    lt, ct = [], []
    for _ in range(a.reps):
        lt += [call() for _ in range(3)]
        sec, _, j = cli_call(score, "ce", paths["nll"], a.threads, [])
        assert np.float32(j["loss"]) == out.value, (j["loss"], out.value)  # the one-shot bits
        ct.append(sec)
    m1, m2 = statistics.median(lt), statistics.median(ct)
    nbytes = x.nbytes + t.nbytes
    print(f"\nce on {x.shape} f32 logits + int64 targets, {a.threads} threads, medians of {a.reps}")
    print(f"library one-shot (arrays in memory) {m1 * 1e3:.1f} ms ({nbytes / m1 / 1e9:.1f} GB/s); "
          f"nllk-score ce {m2 * 1e3:.1f} ms ({nbytes / m2 / 1e9:.1f} GB/s): {100 * m1 / m2:.0f}% of the library")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--dir", default="/tmp/nllk-score-bench")
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--cache", nargs="+", default=["large", "small"], choices=["large", "small"],
                    help="page-cache states to measure (see cache())")
    ap.add_argument("--all", action="store_true", help="also the other read methods and chunk sizes")
    ap.add_argument("--quick", action="store_true", help="small data, few runs (smoke test)")
    ap.add_argument("--parts", type=int, default=0,
                    help="instead: one file per array against N parts per array (32: 1 GiB in 64 files of 16 MiB)")
    ap.add_argument("--ce", action="store_true", help="instead: nllk-score ce against the library's one-shot call")
    a = ap.parse_args()
    if a.quick:
        a.gib, a.reps = 0.02, 2
    score = os.path.join(a.build, "nllk-score")
    nllk = load_nllk(a.build)
    paths = ensure_data(a.dir, a.gib)
    if a.parts:
        return bench_parts(a, score, paths)
    if a.ce:
        return bench_ce(a, score, paths)
    configs = [("auto (default: mmap for poisson, pread for nll)", []),
               ("mmap (page faults), pages kept mapped", ["--io", "mmap", "--keep-pages"]),
               ("mmap", ["--io", "mmap"]), ("pread", ["--io", "pread"]),
               ("populate (MADV_POPULATE_READ per chunk)", ["--io", "populate"]),
               ("prefetch (next chunk populated on a helper thread)", ["--io", "prefetch"]),
               ("window (mmap MAP_POPULATE per chunk)", ["--io", "window"]),
               ("auto, 2 MiB chunks", ["--chunk-bytes", str(2 << 20)]),
               ("auto, 32 MiB chunks", ["--chunk-bytes", str(32 << 20)])]
    if not a.all:
        configs = [c for c in configs if c[0].split(" ")[0] in ("auto", "mmap", "pread", "prefetch")
                   and "MiB" not in c[0]]
    rows = []
    for state in a.cache:
        for kind in ("poisson", "nll"):
            cache(paths[kind], state)
            timed, nbytes = library_call(nllk, kind, paths[kind], a.threads)
            lib_t, cli = [], {name: ([], [], None) for name, _ in configs}
            value = None
            for _ in range(a.reps):  # interleaved, so the machine's noise hits every variant alike
                for _ in range(3):
                    dt, value = timed()
                    lib_t.append(dt)
                for name, extra in configs:
                    sec, wall, j = cli_call(score, kind, paths[kind], a.threads, extra)
                    assert np.float32(j["loss"]) == np.float32(value), (j["loss"], value)  # the one-shot bits
                    cli[name][0].append(sec)
                    cli[name][1].append(wall)
                    cli[name] = (cli[name][0], cli[name][1], j)
            lt = statistics.median(lib_t)
            rows.append(dict(cache=state, kind=kind, how="library, arrays in memory", seconds=lt, wall=None,
                             gbps=nbytes / lt / 1e9, ratio=1.0))
            for name, _ in configs:
                s_, w_, j = cli[name]
                s_, w_ = statistics.median(s_), statistics.median(w_)
                rows.append(dict(cache=state, kind=kind, how=f"nllk-score, {name}", seconds=s_, wall=w_,
                                 gbps=nbytes / s_ / 1e9, ratio=lt / s_, chunks=j["chunks"]))
            del timed
    isa = nllk.library_info()["isa"]
    print(f"\n{a.gib:g} GiB per workload, {a.threads} threads, isa {isa}, medians of {a.reps}\n")
    print("| page cache | workload | how | time (ms) | process wall (ms) | GB/s | vs library |")
    print("|---|---|---|---:|---:|---:|---:|")
    for r in rows:
        wall = f"{r['wall'] * 1e3:.1f}" if r["wall"] else ""
        print(f"| {r['cache']} folios | {r['kind']} | {r['how']} | {r['seconds'] * 1e3:.1f} | {wall} | "
              f"{r['gbps']:.1f} | {100 * r['ratio']:.0f}% |")
    with open(os.path.join(a.dir, "bench_score.json"), "w") as f:
        json.dump(dict(gib=a.gib, threads=a.threads, isa=isa, reps=a.reps, rows=rows), f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
