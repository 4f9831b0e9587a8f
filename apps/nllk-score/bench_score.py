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
    /usr/bin/python3 apps/nllk-score/bench_score.py --parts 32 --folios   # the same files through bench_folio.c
    /usr/bin/python3 apps/nllk-score/bench_score.py --parts 32 --ce       # also ce, one file vs parts
    /usr/bin/python3 apps/nllk-score/bench_score.py --ce         # nllk-score ce vs the one-shot call
"""
import argparse
import json
import os
import resource
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


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cli_call(score, kind, paths, threads, extra):
    t0, c0 = time.perf_counter(), children_cpu()
    p = subprocess.run([score, kind, "--input", paths[0], "--target", paths[1], "--json", "--quiet", "--no-warn",
                        "--threads", str(threads), *extra], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    j["cpu"] = children_cpu() - c0  # the process's user + system time (all threads, whole process)
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


def bench_folio(build):
    """bench_folio.c (the minimal reproduction, no nllk code) built next to the build; None without a compiler."""
    exe = os.path.join(build, "bench_folio")
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_folio.c")
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
        if subprocess.run(["cc", "-O2", "-o", exe, src]).returncode != 0:
            return None
    return exe


def folio_state(exe, files):
    """Pages per page-cache folio of the files (bench_folio -s; needs root), as text."""
    if not exe:
        return "n/a"
    out = subprocess.run([exe, "-s", *files], capture_output=True, text=True).stdout
    return out.split(", ")[-1].strip() if "per folio" in out else "n/a (needs root)"


PART_STATES = ("read back", "as written", "4 KiB folios")


def set_state(state, singles, parts):
    """The page-cache state of a --parts comparison (see bench_parts)."""
    if state == "4 KiB folios":
        cache(singles + parts, "small")
        return
    cache(singles + parts, "large")
    if state == "as written":
        rewrite(parts)


def bench_parts(a, score, paths):
    """--parts N: the same data as one file per array and as N parts per array, interleaved, medians, page cache
    warm in three states (see BENCHMARKS.md): the parts' throughput as a share of the single files'.
      read back:    every file dropped and read with read() (cache()'s "large", 64 MiB reads): the 1 GiB files end
                    up mostly in large folios (how large varies from run to run with the memory's fragmentation),
                    but readahead leaves 16 MiB files read this way in folios of 1-2 pages (measured with
                    /proc/kpageflags), which a mapping maps and a read copies one 4 KiB page at a time;
      as written:   the single files as above, the parts rewritten (copied and renamed): large folios, as np.save
                    leaves files it has just written;
      4 KiB folios: single files and parts alike faulted in page by page (cache()'s "small"): the same state for
                    both, so the ratio is the program's per-part cost alone.
    Also the CPU time (user + system of the whole process): a ratio the machine's load disturbs less.
    --folios: instead of nllk-score, bench_folio.c reads the same files in the same states (no nllk code).
    --ce: also nllk-score ce (on the nll workload's arrays)."""
    import glob
    exe = bench_folio(a.build)
    print(f"\n{a.gib:g} GiB per workload, {a.threads} threads, medians of {a.reps}, load {os.getloadavg()}\n")
    if a.folios:
        print("| page cache of the parts | workload | files | pages per folio | method | wall (ms) | CPU (ms) | "
              "GB/s per CPU second |")
        print("|---|---|---:|---:|---|---:|---:|---:|")
    else:
        print("| page cache of the parts | workload | --io | pages per folio (one file / parts) | one file per array "
              "(ms) | parts (ms) | parts / one file | CPU one file / parts (ms) | CPU ratio |")
        print("|---|---|---|---|---:|---:|---:|---:|---:|")
    rows = []
    for kind in ("poisson", "nll") + (("ce",) if a.ce else ()):  # (ce: the nll arrays read as logits)
        if kind == "ce":
            paths = dict(paths, ce=paths["nll"])
        globs = split_parts(a.dir, paths[kind], a.parts)
        files = sorted(glob.glob(globs[0])) + sorted(glob.glob(globs[1]))
        for state in PART_STATES:
            set_state(state, list(paths[kind]), files)
            fs = (folio_state(exe, list(paths[kind])), folio_state(exe, files))
            if a.folios:
                for name, fl, st in (("one file per array", list(paths[kind]), fs[0]), ("parts", files, fs[1])):
                    out = subprocess.run([exe, "-r", str(a.reps), *fl], capture_output=True, text=True).stdout
                    for line in out.splitlines()[1:]:
                        m, rest = line.split(None, 1)
                        w = float(rest.split("wall")[1].split("ms")[0])
                        c = float(rest.split("cpu")[1].split("ms")[0])
                        gb = rest.split("(")[-1].split(" GB/s")[0].strip()
                        rows.append(dict(state=state, kind=kind, files=len(fl), folio=st, method=m, wall=w, cpu=c))
                        print(f"| {state} | {kind} | {len(fl)} | {st} | {m} | {w:.1f} | {c:.1f} | {gb} |",
                              flush=True)
                continue
            ios = ["auto", "pread"] if kind == "poisson" else ["auto"]  # (nll's auto is pread, ce's populate)
            res = {}
            for _ in range(a.reps):
                for io in ios:
                    extra = [] if io == "auto" else ["--io", io]
                    s1, _, j1 = cli_call(score, kind, paths[kind], a.threads, extra)
                    s2, _, j2 = cli_call(score, kind, globs, a.threads, extra)
                    assert j1["loss"] == j2["loss"] and len(j2["inputs"]) == a.parts, (j1["loss"], j2["loss"])
                    r = res.setdefault(io, ([], [], [], []))
                    r[0].append(s1)
                    r[1].append(s2)
                    r[2].append(j1["cpu"])
                    r[3].append(j2["cpu"])
            for io in ios:
                m1, m2 = statistics.median(res[io][0]), statistics.median(res[io][1])
                c1, c2 = statistics.median(res[io][2]), statistics.median(res[io][3])
                rows.append(dict(state=state, kind=kind, io=io, files=len(files), folios=fs, one=m1, parts=m2,
                                 ratio=m1 / m2, cpu_one=c1, cpu_parts=c2, one_all=res[io][0],
                                 parts_all=res[io][1], cpu_one_all=res[io][2], cpu_parts_all=res[io][3]))
                print(f"| {state} | {kind} | {io} | {fs[0]} / {fs[1]} | {m1 * 1e3:.1f} | {m2 * 1e3:.1f} | "
                      f"{100 * m1 / m2:.0f}% | {c1 * 1e3:.0f} / {c2 * 1e3:.0f} | {100 * c1 / c2:.0f}% |", flush=True)
    print(f"\nload after: {os.getloadavg()}")
    with open(os.path.join(a.dir, "bench_folio.json" if a.folios else "bench_parts.json"), "w") as f:
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
    ap.add_argument("--folios", action="store_true",
                    help="with --parts: read the files with bench_folio.c (no nllk code) instead of nllk-score")
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
