#!/usr/bin/env python3
"""nllk-score-mpi under mpirun vs nllk-score (one process), on a page-cached 1 GiB dataset (BENCHMARKS.md, "nllk-score under MPI").

    /usr/bin/python3 apps/nllk-score/bench_mpi.py --build build --dir /tmp/nllk-mpi-bench --reps 9

Workloads: Poisson f32 log_input mean, two files of 128 Mi elements (2 x 512 MiB); NLL f32 mean, input
(268435, 1000) (1 GiB) with int64 targets. The files are written with write() and re-read with read() after
POSIX_FADV_DONTNEED, so they sit in the page cache in large folios (see "nllk-score" in BENCHMARKS.md). Runs are
interleaved; "job" is what --json reports (for MPI: rank 0 from the start of scoring to the merged result, every
rank's shard included), "wall" the whole command with mpirun's launch. Every run's loss must have the same bits.
"""
import argparse
import json
import os
import statistics
import subprocess
import time

import numpy as np


def write_npy(path, shape, dtype, fill):
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": np.dtype(dtype).str, "fortran_order": False,
                                                 "shape": shape})
        n = int(np.prod(shape))
        step = 1 << 24
        for i in range(0, n, step):
            fill(min(step, n - i)).astype(dtype).tofile(f)


def make(d):
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(1)
    n, c = 1 << 27, 1000
    nn = (1 << 30) // (4 * c)
    files = {"px.npy": ((n,), np.float32, lambda m: rng.standard_normal(m, dtype=np.float32) * 0.5),
             "pt.npy": ((n,), np.float32, lambda m: rng.poisson(1.5, m)),
             "nx.npy": ((nn, c), np.float32, lambda m: -rng.random(m, dtype=np.float32) * 5),
             "nt.npy": ((nn,), np.int64, lambda m: rng.integers(0, c, m))}
    for name, (shape, dt, fill) in files.items():
        p = os.path.join(d, name)
        if not os.path.exists(p):
            write_npy(p, shape, dt, fill)
        fd = os.open(p, os.O_RDONLY)  # into the page cache through read(): large folios
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        while os.read(fd, 1 << 24):
            pass
        os.close(fd)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--dir", default="/tmp/nllk-mpi-bench")
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--mpirun", default="mpirun")
    ap.add_argument("losses", nargs="*", default=["poisson", "nll"])
    a = ap.parse_args()
    make(a.dir)
    score = os.path.join(a.build, "nllk-score")
    score_mpi = os.path.join(a.build, "nllk-score-mpi")  # the sharded binary (nllk-score links no MPI)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    env.pop("NLLK_NUM_THREADS", None)
    d = a.dir + "/"
    args = {"poisson": ["poisson", "--input", d + "px.npy", "--target", d + "pt.npy", "--json"],
            "nll": ["nll", "--input", d + "nx.npy", "--target", d + "nt.npy", "--json"]}
    mpi = [a.mpirun, "-q"]
    # one machine: skip probing the network transports (InfiniBand, libfabric, UCX), ~0.2 s of MPI_Init here
    SHM = ["--mca", "pml", "ob1", "--mca", "btl", "self,vader", "--mca", "mtl", "^ofi", "--mca", "osc", "^ucx"]
    for loss in a.losses:
        base, based = [score] + args[loss], [score_mpi] + args[loss]
        cfgs = {"1 process, 2 threads": base + ["--threads", "2"],
                "1 process, 1 thread": base + ["--threads", "1"],
                "mpirun -n 1 --bind-to none, 2 threads": mpi + ["-n", "1", "--bind-to", "none"] + based
                + ["--threads", "2"],
                "mpirun -n 2, 1 thread each": mpi + ["-n", "2"] + based + ["--threads", "1"],
                "mpirun -n 2 (shared-memory transport only), 1 thread each": mpi + ["-n", "2"] + SHM + based
                + ["--threads", "1"]}
        res = {k: ([], []) for k in cfgs}
        bits = set()
        for _ in range(a.reps):
            for k, cmd in cfgs.items():
                t = time.perf_counter()
                p = subprocess.run(cmd, env=env, capture_output=True, text=True)
                w = time.perf_counter() - t
                if p.returncode:
                    raise SystemExit(f"{cmd}: {p.stderr}")
                j = json.loads(p.stdout)
                bits.add(repr(j["loss"]))
                res[k][0].append(j["seconds"])
                res[k][1].append(w)
        assert len(bits) == 1, bits
        gb = sum(os.path.getsize(x) for x in args[loss] if x.endswith(".npy")) / 1e9
        ref = statistics.median(res["1 process, 2 threads"][0])
        ref_w = statistics.median(res["1 process, 2 threads"][1])
        print(f"| {loss} | how | job (ms) | GB/s | vs 1 process, 2 threads | wall (ms) | wall vs 1 process |")
        for k, (s, w) in res.items():
            ms, mw = statistics.median(s), statistics.median(w)
            print(f"| {loss} | {k} | {ms * 1e3:.1f} | {gb / ms:.1f} | {ref / ms * 100:.0f}% | {mw * 1e3:.0f} | "
                  f"{ref_w / mw * 100:.0f}% |", flush=True)
        print(f"(loss {bits.pop()} in every run)")


if __name__ == "__main__":
    main()
