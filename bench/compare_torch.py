#!/usr/bin/python3
"""Side-by-side: the same arrays through nllk (nllk.torch, the PyTorch front end) and torch.nn.functional.

    /usr/bin/python3 bench/compare_torch.py [--quick] [--threads 1,2] [--reps 7] [--out DIR]

Workloads (f32): Poisson n = 2^20, 2^24, 2^26 with log_input on/off and full on/off, forward (mean) and
forward+backward; a Poisson size sweep from 16 elements for the chart; NLL (65536, 1000), (1048576, 10),
(16384, 32000) forward mean and forward+backward; NLL 4-D (4, 21, 512, 512) with class weights and
ignore_index=255, mean and none, int64 and uint8 targets, random and coherent (label maps of blobs and rectangles
from bench/labelmaps.py, the generator bench_nllk uses too), cache-warm and cold (a 96 MiB buffer written before
each timed call, untimed), forward and backward alone (ATen's nll_loss2d_backward against nllk's
nll_loss_backward); tiny NLL (16, 10). The NLL 4-D rows time PyTorch and nllk in interleaved pairs and report the
median of the per-pair ratios; their limit is bench_nllk's touched-bytes read (forward: a read of the targets and
every input line a target names, in the same cache state) or its write of grad_input (backward: the best of
memset and streaming stores, plus the targets' read).
Cross-entropy from logits (65536, 1000),
(8192, 32000), (4, 21, 512, 512) forward mean and forward+backward (the CE block: measured in interleaved pairs,
limits = the larger of reading the logits once (+ writing the gradient once, at the rate of writing data: zeros
stream faster here) and N*C SLEEF exps, measured by bench_nllk's limit/* benchmarks in the same run).

Every workload is measured in two worker processes (same code, same arrays, both libraries):
  retaining   LD_PRELOAD=libjemalloc.so.2 MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1,retain:true — PyTorch's
              temporaries reuse memory instead of page-faulting fresh pages on every call: the headline baseline;
  plain       the default glibc allocator, as users run PyTorch.
Times are medians of repeated runs after a warm-up call (inputs are pre-touched by their initialisation).
Forward+backward is `torch.autograd.grad(loss, input)` for both (a fresh gradient each call).
The machine's limits come from bench_nllk (same library build, same ISA, same thread count): a bare read of the
bytes the kernel reads, a write of the bytes it writes, and bare SLEEF exp/log loops; "of limit" is
limit time / nllk time (1.0 = at the limit); "ceiling" = PyTorch time / limit time, the largest speed-up
any implementation could show over PyTorch on this machine.

Every ratio in the table is a quotient of two columns shown next to it (except the NLL 4-D rows timed in pairs,
whose "nllk vs PyTorch" is the median of the per-pair ratios): "nllk vs PyTorch" = PyTorch / nllk of
the same allocator, "nllk of limit" = limit / nllk (retaining), "ceiling" = PyTorch (retaining) / limit. The
targets are judged at full size only: --quick (small arrays, one repetition) and --only runs print no verdicts.

--half: the bfloat16 / float16 comparison of issue 13 instead (NLL (65536, 1000) and (4, 21, 512, 512) weighted,
Poisson n = 2^24 log_input fwd and fwd+bwd, full and log_input=False fwd, cross-entropy (65536, 1000) fwd and
fwd+bwd; PyTorch 16-bit, nllk 16-bit and nllk float32 on the same values in interleaved rounds under the retaining
allocator): compare_torch_half.md / .json, with the issue's targets judged at full size.

Outputs in --out (default build-bench/compare_torch): compare_torch.json, compare_torch.md (the table),
compare_torch.png (every workload measured, Poisson and NLL, forward and forward+backward: nllk's speed-up over
PyTorch with its spread over the repetitions, and the ceiling the machine's limit allows).
"""
import argparse
import ctypes.util
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JEMALLOC_CONF = "dirty_decay_ms:-1,muzzy_decay_ms:-1,retain:true"
ONLY = None  # --only: a regex over workload ids


# ---- workloads --------------------------------------------------------------------------------------------------
def workloads(quick):
    W = []
    pn = [2 ** 12, 2 ** 16] if quick else [2 ** 20, 2 ** 24, 2 ** 26]
    for n in pn:
        for li in (1, 0):
            for full in (0, 1):
                for kind in ("fwd", "fwdbwd"):
                    W.append(dict(loss="poisson", kind=kind, n=n, log_input=li, full=full))
    sweep = [16, 2 ** 10, 2 ** 14] if quick else [16, 2 ** 10, 2 ** 14, 2 ** 17, 2 ** 20, 2 ** 22, 2 ** 24, 2 ** 26]
    for n in sweep:
        if n not in pn:
            W.append(dict(loss="poisson", kind="fwd", n=n, log_input=1, full=0, sweep=True))
    shapes = [(256, 100), (4096, 10)] if quick else [(65536, 1000), (1048576, 10), (16384, 32000)]
    W.append(dict(loss="nll", kind="fwd", shape=(16, 10), weighted=0, target="i64", reduction="mean"))
    for sh in shapes:
        for kind in ("fwd", "fwdbwd"):
            W.append(dict(loss="nll", kind=kind, shape=sh, weighted=0, target="i64", reduction="mean"))
    sh4 = (2, 21, 32, 32) if quick else (4, 21, 512, 512)
    for red in ("mean", "none"):
        for tt in ("i64", "u8"):
            W.append(dict(loss="nll", kind="fwd", shape=sh4, weighted=1, target=tt, reduction=red))
    # segmentation: random and coherent targets, warm and cold caches, the backward alone (interleaved pairs)
    for targets_kind in ("random", "coherent"):
        for tt in ("i64", "u8"):
            for cache in ("warm", "cold"):
                if targets_kind == "random" and cache == "warm":
                    continue  # the row above
                W.append(dict(loss="nll", kind="fwd", shape=sh4, weighted=1, target=tt, reduction="mean",
                              targets=targets_kind, cache=cache, pairs=True))
            W.append(dict(loss="nll", kind="bwd", shape=sh4, weighted=1, target=tt, reduction="mean",
                          targets=targets_kind, cache="warm", pairs=True))
    W += ce_workloads(quick)
    for w in W:
        w["id"] = wid(w)
    if ONLY:
        W = [w for w in W if re.search(ONLY, w["id"])]
    return W


def wid(w):
    if w["loss"] == "ce":
        return ce_wid(w)
    if w["loss"] == "poisson":
        return f"poisson/{w['kind']}/log_input={w['log_input']}/full={w['full']}/n={w['n']}"
    sh = "x".join(map(str, w["shape"]))
    extra = "/weight+ignore255" if w["weighted"] else ""
    if w.get("targets"):
        extra += f"/{w['targets']}/{w['cache']}"
    return f"nll/{w['kind']}/{sh}{extra}/{w['reduction']}/target={w['target']}"


def data_key(w):
    if w["loss"] == "ce":
        return ("ce", w["shape"])
    if w["loss"] == "poisson":
        return ("poisson", w["n"], w["log_input"])
    return ("nll", w["shape"], w["weighted"], w.get("targets", "random"))


# ---- worker: measures torch and nllk in this process -----------------------------------------------------------
def measure(fn, reps):
    fn()  # warm-up: first touch of outputs, allocator warm
    t0 = time.perf_counter()
    fn()
    once = time.perf_counter() - t0
    inner = 1 if once >= 2e-3 else min(10000, int(2e-3 / max(once, 1e-7)) + 1)
    if once > 0.5:
        reps = min(reps, 3)
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t0) / inner)
    return statistics.median(samples), samples


def measure_pairs(f_a, f_b, reps, before=None):
    """f_a and f_b timed alternately (a, b, a, b, ...), each call alone; before() runs untimed ahead of every call
    (the cold-cache eviction). Returns (median a, median b, samples a, samples b, median of the per-pair a / b)."""
    f_a(), f_b()  # warm-up
    sa, sb = [], []
    for _ in range(max(reps, 5) * 3):
        for f, s in ((f_a, sa), (f_b, sb)):
            if before:
                before()
            t0 = time.perf_counter()
            f()
            s.append(time.perf_counter() - t0)
    ratios = [a / b for a, b in zip(sa, sb)]
    return statistics.median(sa), statistics.median(sb), sa, sb, statistics.median(ratios)


_EVICT = []


def evict_caches():
    """Writes a 96 MiB buffer (3x this machine's L3): the next call starts with cold caches."""
    import numpy as np
    if not _EVICT:
        _EVICT.append(np.ones(96 << 20, dtype=np.uint8))
    _EVICT[0] += 1


def worker(args):
    import torch
    import torch.nn.functional as F

    os.environ.setdefault("NLLK_LIBRARY", args.lib)
    sys.path.insert(0, os.path.join(ROOT, "python"))
    import nllk.torch as nt
    try:
        import nllk as fe  # the numpy/torch front end (no autograd: explicit *_backward calls)
        fe.poisson_nll_loss
    except (ImportError, AttributeError):
        fe = None

    threads = [int(x) for x in args.threads.split(",")]
    results = []
    cache = {}
    g = torch.Generator().manual_seed(0)
    for w in workloads(args.quick):
        if w["loss"] == "ce":
            results += ce_measure(w, args, threads, cache, g, nt, fe)
            continue
        key = data_key(w)
        if key not in cache:
            cache.clear()
            if w["loss"] == "poisson":
                n = w["n"]
                x = torch.rand(n, generator=g) * 4 - 2 if w["log_input"] else torch.rand(n, generator=g) * 5 + 0.01
                t = torch.randint(0, 7, (n,), generator=g).float()
                cache[key] = dict(x=x, t=t)
            else:
                sh = w["shape"]
                c = sh[1]
                x = torch.rand(sh, generator=g) * -10  # log-probabilities (any values do for timing)
                tsh = (sh[0],) + tuple(sh[2:])
                if w.get("targets") == "coherent":  # label maps: blobs and rectangles, 255 rings if weighted
                    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
                    import labelmaps
                    hw = tsh[1:] if len(tsh) == 3 else (1, tsh[1])
                    t = torch.from_numpy(labelmaps.labelmaps(sh[0], hw[0], hw[1], c,
                                                             255 if w["weighted"] else None)).reshape(tsh)
                else:
                    t = torch.randint(0, c, tsh, generator=g)
                    if w["weighted"]:
                        t[torch.rand(tsh, generator=g) < 0.1] = 255  # ~10% ignored, as a segmentation void label
                cache[key] = dict(x=x, t64=t, t8=t.to(torch.uint8) if c <= 255 else None,
                                  weight=torch.rand(c, generator=g) + 0.5)
        d = cache[key]
        if w["loss"] == "poisson":
            kw = dict(log_input=bool(w["log_input"]), full=bool(w["full"]), reduction="mean")
            x, t = d["x"], d["t"]
            one = torch.ones(())
            if w["kind"] == "fwd":
                f_torch = lambda: F.poisson_nll_loss(x, t, **kw)  # noqa: E731
                f_nllk = lambda: nt.poisson_nll_loss(x, t, **kw)  # noqa: E731
                f_fe = lambda: fe.poisson_nll_loss(x, t, **kw)  # noqa: E731
            else:
                xg = x.detach().requires_grad_(True)
                f_torch = lambda: torch.autograd.grad(F.poisson_nll_loss(xg, t, **kw), xg)  # noqa: E731
                f_nllk = lambda: torch.autograd.grad(nt.poisson_nll_loss(xg, t, **kw), xg)  # noqa: E731
                f_fe = lambda: (fe.poisson_nll_loss(x, t, **kw),  # noqa: E731
                                fe.poisson_nll_loss_backward(one, x, t, **kw))
            torch_note = ""
        else:
            x = d["x"]
            kw = dict(reduction=w["reduction"])
            if w["weighted"]:
                kw.update(weight=d["weight"], ignore_index=255)
            t_nllk = d["t8"] if w["target"] == "u8" else d["t64"]
            t_torch, torch_note = t_nllk, ""
            if w["target"] == "u8":
                try:
                    F.nll_loss(x[:1], t_nllk[:1], **kw)
                except Exception:  # PyTorch takes uint8 targets for 1-D/2-D input only
                    t_torch, torch_note = d["t64"], "PyTorch rejects uint8 targets for N-D input: int64"
            one = torch.ones(())
            if w["kind"] == "fwd":
                f_torch = lambda: F.nll_loss(x, t_torch, **kw)  # noqa: E731
                f_nllk = lambda: nt.nll_loss(x, t_nllk, **kw)  # noqa: E731
                f_fe = lambda: fe.nll_loss(x, t_nllk, **kw)  # noqa: E731
            elif w["kind"] == "bwd":  # the backward alone: ATen's kernel against nllk's (each allocates grad_input)
                red_enum = {"none": 0, "mean": 1, "sum": 2}[w["reduction"]]
                wt, ii = kw.get("weight"), kw.get("ignore_index", -100)
                _, tw_t = (torch.ops.aten.nll_loss2d_forward if x.dim() == 4 else torch.ops.aten.nll_loss_forward)(
                    x, t_torch, wt, red_enum, ii)
                bwd_t = torch.ops.aten.nll_loss2d_backward if x.dim() == 4 else torch.ops.aten.nll_loss_backward
                f_torch = lambda: bwd_t(one, x, t_torch, wt, red_enum, ii, tw_t)  # noqa: E731
                _, tw_n = fe.nll_loss_forward(x, t_nllk, **kw)
                f_nllk = lambda: fe.nll_loss_backward(one, x, t_nllk, total_weight=tw_n, **kw)  # noqa: E731
                f_fe = None
            else:
                xg = x.detach().requires_grad_(True)
                f_torch = lambda: torch.autograd.grad(F.nll_loss(xg, t_torch, **kw), xg)  # noqa: E731
                f_nllk = lambda: torch.autograd.grad(nt.nll_loss(xg, t_nllk, **kw), xg)  # noqa: E731

                def f_fe():
                    _, tw = fe.nll_loss_forward(x, t_nllk, **kw)
                    return fe.nll_loss_backward(one, x, t_nllk, total_weight=tw, **kw)
        # sanity: the same answer (relative difference of the results)
        a, b = f_torch(), f_nllk()
        a = a[0] if isinstance(a, tuple) else a
        b = b[0] if isinstance(b, tuple) else b
        diff = float(((a.double() - b.double()).abs().max() / a.double().abs().max().clamp_min(1e-30)).item())
        for th in threads:
            torch.set_num_threads(th)
            nt.set_num_threads(th)
            pair_ratio = None
            if w.get("pairs"):  # NLL segmentation rows: interleaved pairs, optionally cold
                before = evict_caches if w.get("cache") == "cold" else None
                tt, tn, ts, ns, pair_ratio = measure_pairs(f_torch, f_nllk, args.reps, before)
            else:
                tt, ts = measure(f_torch, args.reps)
                tn, ns = measure(f_nllk, args.reps)
            tf = None
            if fe is not None and f_fe is not None and not w.get("pairs"):
                try:
                    tf, _ = measure(f_fe, args.reps)
                except Exception as e:  # the front end is optional here
                    print(f"  front end failed on {w['id']}: {e}", file=sys.stderr)
            results.append(dict(id=w["id"], workload=w, threads=th, torch_s=tt, nllk_s=tn, torch_samples=ts,
                                nllk_samples=ns, nllk_frontend_s=tf, max_rel_diff=diff, torch_note=torch_note,
                                pair_ratio=pair_ratio))
            print(f"  [{args.worker}] {w['id']} threads={th}: torch {tt * 1e3:.3f} ms, nllk {tn * 1e3:.3f} ms",
                  file=sys.stderr, flush=True)
    info = nt.library_info()
    json.dump(dict(mode=args.worker, torch_version=torch.__version__, nllk=info, results=results),
              open(args.worker_out, "w"))


# ---- limits from bench_nllk -------------------------------------------------------------------------------------
def bench_limits(args, isa, W):
    if not os.path.exists(args.bench_bin):
        print(f"compare_torch: {args.bench_bin} not found: no limits (build with -DNLLK_BUILD_BENCHMARKS=ON)",
              file=sys.stderr)
        return {}
    pn = sorted({w["n"] for w in W if w["loss"] == "poisson"})
    shapes = sorted({w["shape"] for w in W if w["loss"] == "nll"})
    if not pn and not shapes:  # (e.g. --only '^ce/': the CE limits come from ce_limits)
        return {}
    nll_shapes = []
    for sh in shapes:
        d = 1
        for s in sh[2:]:
            d *= s
        nll_shapes.append(f"{sh[0]}x{sh[1]}x{d}")
    flt = (r"^(poisson_fwd/f32/log_input:./full:./mean|poisson_bwd/f32/log_input:./full:0/grad_target:0/mean"
           r"|nll_(fwd|bwd)/f32/custom/target:(i64|u8)/(plain|weighted_ignored)(/coherent)?(/cold)?/(mean|none))/")
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    cmd = [args.bench_bin, "--nllk_dtypes=f32", "--nllk_poisson_n=" + ",".join(map(str, pn)),
           "--nllk_nll_shapes=" + ",".join(nll_shapes), "--nllk_threads=" + args.threads, "--nllk_isas=" + isa,
           "--nllk_nll_targets=random,coherent", "--nllk_nll_cache=warm,cold",
           "--benchmark_filter=" + flt, "--benchmark_min_time=" + ("0.01" if args.quick else "0.1"),
           "--benchmark_out=" + out, "--benchmark_out_format=json"]
    print("compare_torch: limits: " + " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    data = json.load(open(out))
    os.unlink(out)
    lim = {}
    for b in data["benchmarks"]:
        if b.get("error_occurred"):
            continue
        name = re.sub(r"/(real|manual)_time$", "", b["name"])
        lim[name] = dict(limit_s=max(b["mem_limit_s"], b["sleef_limit_s"]), mem_limit_s=b["mem_limit_s"],
                         sleef_limit_s=b["sleef_limit_s"], c_s=b["us_per_call"] * 1e-6, limit_frac=b["limit_frac"])
        if "touched_limit_s" in b:  # NLL N-D forward: the touched-bytes read is the limit
            lim[name].update(limit_s=b["touched_limit_s"], touched_bytes=b["touched_bytes"],
                             gather_limit_s=b["mem_limit_s"], limit_frac=b["touched_frac"])
    return lim


def limit_names(w, isa, th):
    if w["loss"] == "ce":
        return [ce_limit_name(w, th)]
    sfx = f"/isa:{isa}/threads:{th}"
    if w["loss"] == "poisson":
        names = [f"poisson_fwd/f32/log_input:{w['log_input']}/full:{w['full']}/mean/n:{w['n']}" + sfx]
        if w["kind"] == "fwdbwd":
            names.append(f"poisson_bwd/f32/log_input:{w['log_input']}/full:0/grad_target:0/mean/n:{w['n']}" + sfx)
        return names
    sh = w["shape"]
    d = 1
    for s in sh[2:]:
        d *= s
    shp = f"shape:{sh[0]}x{sh[1]}x{d}"
    wi = "weighted_ignored" if w["weighted"] else "plain"
    if w.get("targets") == "coherent":
        wi += "/coherent"
    if w["kind"] == "bwd":
        return [f"nll_bwd/f32/custom/target:{w['target']}/{wi}/mean/{shp}" + sfx]
    cold = "/cold" if w.get("cache") == "cold" else ""
    names = [f"nll_fwd/f32/custom/target:{w['target']}/{wi}{cold}/{w['reduction']}/{shp}" + sfx]
    if w["kind"] == "fwdbwd":
        names.append(f"nll_bwd/f32/custom/target:{w['target']}/{wi}/mean/{shp}" + sfx)
    return names


# ---- report -----------------------------------------------------------------------------------------------------
def fmt_t(s):
    if s is None:
        return "-"
    return f"{s * 1e6:.2f} us" if s < 1e-3 else f"{s * 1e3:.2f} ms"


def build_rows(modes, lim, isa):
    ret = modes.get("retaining")
    plain = modes.get("plain")
    base = ret or plain
    idx_plain = {(r["id"], r["threads"]): r for r in plain["results"]} if plain else {}
    rows = []
    for r in base["results"]:
        w = r["workload"]
        p = idx_plain.get((r["id"], r["threads"]))
        names = limit_names(w, isa, r["threads"])
        limit = None
        c_s = None
        if all(n in lim for n in names):
            limit = sum(lim[n]["limit_s"] for n in names)
            c_s = sum(lim[n]["c_s"] for n in names) if all(lim[n].get("c_s") is not None for n in names) else None
        rows.append(dict(
            id=r["id"], workload=w, threads=r["threads"],
            torch_retaining_s=r["torch_s"] if ret else None, nllk_s=r["nllk_s"],
            torch_plain_s=p["torch_s"] if p else None, nllk_plain_s=p["nllk_s"] if p else None,
            nllk_frontend_s=r.get("nllk_frontend_s"),
            ratio=(r.get("pair_ratio") or r["torch_s"] / r["nllk_s"]) if ret else None,
            ratio_plain=(p["torch_s"] / p["nllk_s"]) if p else None,
            limit_s=limit, frac_of_limit=(limit / r["nllk_s"]) if limit and ret else None, c_kernel_s=c_s,
            max_rel_diff=r["max_rel_diff"], torch_note=r["torch_note"],
            mode="retaining" if ret else "plain", torch_samples=r["torch_samples"], nllk_samples=r["nllk_samples"]))
    return rows


def markdown(rows):
    # each ratio is the quotient of two columns shown: a reader can recompute every one
    out = ["| workload | thr | PyTorch (retaining) | nllk.torch (retaining) | nllk vs PyTorch (retaining) "
           "| PyTorch (plain) | nllk.torch (plain) | nllk vs PyTorch (plain) | limit | nllk of limit "
           "| ceiling (PyTorch / limit) | nllk.* front end |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        ratio = f"**{r['ratio']:.2f}x**" if r["ratio"] else "-"
        rp = f"{r['ratio_plain']:.2f}x" if r["ratio_plain"] else "-"
        fr = f"{r['frac_of_limit'] * 100:.0f}%" if r["frac_of_limit"] else "-"
        note = " (PyTorch: int64)" if r["torch_note"] else ""
        ceil = f"{r['torch_retaining_s'] / r['limit_s']:.1f}x" if r["limit_s"] and r["torch_retaining_s"] else "-"
        nllk_ret = fmt_t(r["nllk_s"]) if r["torch_retaining_s"] else "-"
        out.append(f"| {r['id']}{note} | {r['threads']} | {fmt_t(r['torch_retaining_s'])} | {nllk_ret} | {ratio} "
                   f"| {fmt_t(r['torch_plain_s'])} | {fmt_t(r['nllk_plain_s'])} | {rp} | {fmt_t(r['limit_s'])} "
                   f"| {fr} | {ceil} | {fmt_t(r['nllk_frontend_s'])} |")
    return "\n".join(out)


def targets(rows, lim, isa, th):
    def find(pred):
        return [r for r in rows if r["threads"] == th and pred(r["workload"])]

    res = []

    def check(name, rs, ok, detail):
        res.append(dict(target=name, met=bool(rs) and all(ok(r) for r in rs),
                        detail=[detail(r) for r in rs] or ["not measured"]))

    big = max((w["n"] for w in (r["workload"] for r in rows) if w["loss"] == "poisson"), default=0)
    n24 = 2 ** 24 if any(r["workload"].get("n") == 2 ** 24 for r in rows) else big
    pf = lambda w: w["loss"] == "poisson" and not w.get("sweep")  # noqa: E731
    check(f"Poisson fwd mean log_input n={n24}: >= 3x PyTorch and >= 80% of limit",
          find(lambda w: pf(w) and w["kind"] == "fwd" and w["log_input"] and not w["full"] and w["n"] == n24),
          lambda r: (r["ratio"] or 0) >= 3 and (r["frac_of_limit"] or 0) >= 0.8,
          lambda r: f"{r['ratio'] or 0:.2f}x, {100 * (r['frac_of_limit'] or 0):.0f}% of limit")
    check("Poisson fwd full=True: >= 10x", find(lambda w: pf(w) and w["kind"] == "fwd" and w["full"]),
          lambda r: (r["ratio"] or 0) >= 10, lambda r: f"{r['id']}: {r['ratio'] or 0:.2f}x")
    check("Poisson fwd+bwd: >= 3x", find(lambda w: pf(w) and w["kind"] == "fwdbwd"),
          lambda r: (r["ratio"] or 0) >= 3, lambda r: f"{r['id']}: {r['ratio'] or 0:.2f}x")
    check("NLL (65536, 1000) fwd mean: >= 4x",
          find(lambda w: w["loss"] == "nll" and tuple(w["shape"]) == (65536, 1000) and w["kind"] == "fwd"),
          lambda r: (r["ratio"] or 0) >= 4, lambda r: f"{r['ratio'] or 0:.2f}x")
    for tt, x in (("i64", 4), ("u8", 6)):
        check(f"NLL 4-D weighted/ignored mean, {tt} targets: >= {x}x",
              find(lambda w: w["loss"] == "nll" and len(w["shape"]) == 4 and w["reduction"] == "mean"
                   and w["target"] == tt and not w.get("targets")),
              lambda r, x=x: (r["ratio"] or 0) >= x, lambda r: f"{r['id']}: {r['ratio'] or 0:.2f}x")
    # issue 18 (segmentation NLL at the machine's limit)
    seg = lambda w: w["loss"] == "nll" and len(w["shape"]) == 4 and w.get("targets")  # noqa: E731
    both = lambda r: f"{r['id']}: {r['ratio'] or 0:.2f}x, {100 * (r['frac_of_limit'] or 0):.0f}% of limit"  # noqa: E731
    for tt, x in (("u8", 5), ("i64", 4)):
        check(f"NLL 4-D fwd, coherent targets, {tt}: >= {x}x PyTorch and >= 75% of the touched-bytes limit",
              find(lambda w: seg(w) and w["kind"] == "fwd" and w["targets"] == "coherent" and w["target"] == tt),
              lambda r, x=x: (r["ratio"] or 0) >= x and (r["frac_of_limit"] or 0) >= 0.75, both)
    check("NLL 4-D fwd, random targets: >= 3x PyTorch",
          find(lambda w: w["loss"] == "nll" and len(w["shape"]) == 4 and w["kind"] == "fwd"
               and w.get("targets", "random") == "random" and w["reduction"] == "mean"),
          lambda r: (r["ratio"] or 0) >= 3, lambda r: f"{r['id']}: {r['ratio'] or 0:.2f}x")
    check("NLL 4-D bwd: >= 80% of the streaming write limit and >= 4x PyTorch",
          find(lambda w: seg(w) and w["kind"] == "bwd"),
          lambda r: (r["ratio"] or 0) >= 4 and (r["frac_of_limit"] or 0) >= 0.8, both)
    bname = f"nll_bwd/f32/custom/target:i64/plain/mean/shape:65536x1000x1/isa:{isa}/threads:{th}"
    rs = [dict(id=bname, frac=lim[bname]["limit_frac"])] if bname in lim else []
    res.append(dict(target="NLL bwd (65536, 1000): >= 80% of the write limit",
                    met=bool(rs) and rs[0]["frac"] >= 0.8,
                    detail=[f"{100 * r['frac']:.0f}% of limit (bench_nllk)" for r in rs] or ["not measured"]))
    slow = [r for r in rows if r["ratio"] is not None and r["ratio"] < 1]
    res.append(dict(target="No workload slower than PyTorch (any size, any thread count)", met=not slow,
                    detail=[f"{r['id']} threads={r['threads']}: {r['ratio']:.2f}x" for r in slow] or ["none slower"]))
    return res


def chart_label(w):
    """A workload's short label for the chart."""
    if w["loss"] == "ce":
        return f"({'x'.join(map(str, w['shape']))}), {w['reduction']}"
    if w["loss"] == "poisson":
        opts = ("log_input" if w["log_input"] else "rates") + (", full" if w["full"] else "")
        n = w["n"]
        size = f"2^{n.bit_length() - 1}" if n & (n - 1) == 0 else str(n)
        return f"n={size}, {opts}"
    sh = "x".join(map(str, w["shape"]))
    extra = ", weight+ignore" if w["weighted"] else ""
    return f"({sh}){extra}, {w['reduction']}, {w['target']}"


def chart(rows, path, threads, note=None):
    """Every measured row, grouped by loss and kind (Poisson/NLL x forward/forward+backward), one column of panels
    per thread count: nllk's speed-up over PyTorch (median ratio, bar = lowest to highest ratio any two repetitions
    give), the ceiling the machine's limit allows (PyTorch / limit), and 1x (as fast as PyTorch)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [(loss, kind) for loss in ("poisson", "nll", "ce") for kind in ("fwd", "fwdbwd")
              if any(r["workload"]["loss"] == loss and r["workload"]["kind"] == kind for r in rows)]
    if not groups:
        return False
    sizes = [max(1, len({r["id"] for r in rows if (r["workload"]["loss"], r["workload"]["kind"]) == g}))
             for g in groups]
    fig, axes = plt.subplots(len(groups), len(threads), squeeze=False, sharex=True,
                             figsize=(6.5 * len(threads), 1.2 + 0.28 * sum(sizes) + 0.6 * len(groups)),
                             gridspec_kw=dict(height_ratios=sizes))
    title = {"poisson": "Poisson NLL", "nll": "NLL", "ce": "cross-entropy", "fwd": "forward",
             "fwdbwd": "forward+backward"}
    for gi, (loss, kind) in enumerate(groups):
        for ti, th in enumerate(threads):
            ax = axes[gi][ti]
            rs = [r for r in rows if r["threads"] == th and r["workload"]["loss"] == loss
                  and r["workload"]["kind"] == kind]
            if loss == "poisson":  # by size, then options
                rs.sort(key=lambda r: (r["workload"]["n"], -r["workload"]["log_input"], r["workload"]["full"]))
            for y, r in enumerate(rs):
                ts, ns = r["torch_samples"], r["nllk_samples"]
                mid = statistics.median(ts) / statistics.median(ns)
                lo, hi = min(ts) / max(ns), max(ts) / min(ns)
                ax.errorbar([mid], [y], xerr=[[mid - lo], [hi - mid]], fmt="o", color="C0", capsize=3,
                            label="nllk / PyTorch speed-up (bar: spread)" if y == 0 else None)
                torch_s = r["torch_retaining_s"] if r["mode"] == "retaining" else r["torch_plain_s"]
                if r["limit_s"] and torch_s:
                    ax.plot([torch_s / r["limit_s"]], [y], "|", color="k", markersize=14, markeredgewidth=2,
                            label="ceiling: PyTorch / machine limit" if y == 0 else None)
            ax.axvline(1.0, color="C3", linestyle="--", linewidth=1, label="as fast as PyTorch")
            ax.set_yticks(range(len(rs)))
            ax.set_yticklabels([chart_label(r["workload"]) for r in rs], fontsize=7)
            ax.set_ylim(len(rs) - 0.5, -0.5)
            ax.set_xscale("log")
            ax.grid(True, axis="x", which="both", alpha=0.3)
            ax.set_title(f"{title[loss]}, {title[kind]}, {th} thread{'s' if th > 1 else ''}", fontsize=9)
            if gi == len(groups) - 1:
                ax.set_xlabel(f"speed-up over PyTorch ({rows[0]['mode']} allocator), log scale")
    handles, labels = {}, []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in handles:
                handles[lab] = h
                labels.append(lab)
    fig.legend([handles[lab] for lab in labels], labels, loc="lower center", ncol=len(labels), fontsize=8)
    if note:
        fig.suptitle(note, fontsize=8)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# ==== cross-entropy (the `cepy` block: workloads, paired measurement, limits, targets) =========================
# PyTorch's F.cross_entropy against nllk on logits; the nllk side is nllk.torch.cross_entropy (autograd) when
# that exists, else the front end (nllk.cross_entropy; fwd+bwd = nllk.cross_entropy_forward_backward, the fused
# training step). Torch and nllk calls alternate (interleaved pairs, the order swapped
# every repetition) so that the machine's noise hits both alike; each time is the median of its repetitions.
CE_SHAPES = [(65536, 1000), (8192, 32000), (4, 21, 512, 512)]
CE_SHAPES_QUICK = [(256, 100), (64, 3200), (2, 21, 32, 32)]
CE_LIMIT_BYTES = 134217728  # bench_nllk's limit/read and limit/write sizes (default size set): 128 MiB, past L3


def ce_workloads(quick):
    return [dict(loss="ce", kind=kind, shape=sh, reduction="mean", weighted=0, target="i64")
            for sh in (CE_SHAPES_QUICK if quick else CE_SHAPES) for kind in ("fwd", "fwdbwd")]


def ce_wid(w):
    return f"ce/{w['kind']}/{'x'.join(map(str, w['shape']))}/{w['reduction']}/target={w['target']}"


def measure_pair(fa, fb, reps):
    """Median times of fa and fb measured in interleaved pairs (a b, b a, a b, ...) after a warm-up of each."""
    fa()
    fb()
    t0 = time.perf_counter()
    fa()
    once = time.perf_counter() - t0
    inner = 1 if once >= 2e-3 else min(10000, int(2e-3 / max(once, 1e-7)) + 1)
    if once > 0.5:
        reps = min(reps, 3)
    sa, sb = [], []
    for i in range(reps):
        for f, out in ((fa, sa), (fb, sb)) if i % 2 == 0 else ((fb, sb), (fa, sa)):
            t0 = time.perf_counter()
            for _ in range(inner):
                f()
            out.append((time.perf_counter() - t0) / inner)
    return statistics.median(sa), sa, statistics.median(sb), sb


def ce_measure(w, args, threads, cache, g, nt, fe):
    import torch
    import torch.nn.functional as F

    key = data_key(w)
    if key not in cache:
        cache.clear()
        sh = w["shape"]
        x = torch.randn(sh, generator=g) * 3  # logits
        t = torch.randint(0, sh[1], (sh[0],) + tuple(sh[2:]), generator=g)
        cache[key] = dict(x=x, t=t)
    x, t = cache[key]["x"], cache[key]["t"]
    kw = dict(reduction=w["reduction"])
    # nllk.torch.cross_entropy computes with nllk only on its operator backend (without it, it is PyTorch's)
    use_nt = hasattr(nt, "cross_entropy") and getattr(nt, "BACKEND", "ops") == "ops"
    via = "nllk.torch.cross_entropy" if use_nt else "nllk.cross_entropy (front end)"
    if w["kind"] == "fwd":
        f_torch = lambda: F.cross_entropy(x, t, **kw)  # noqa: E731
        f_fe = lambda: fe.cross_entropy(x, t, **kw)  # noqa: E731
        f_nllk = (lambda: nt.cross_entropy(x, t, **kw)) if use_nt else f_fe  # noqa: E731
    else:
        xg = x.detach().requires_grad_(True)
        f_torch = lambda: torch.autograd.grad(F.cross_entropy(xg, t, **kw), xg)  # noqa: E731

        f_fe = lambda: fe.cross_entropy_forward_backward(x, t, **kw)[1]  # noqa: E731 (the fused training step)
        if use_nt:
            f_nllk = lambda: torch.autograd.grad(nt.cross_entropy(xg, t, **kw), xg)  # noqa: E731
        else:
            f_nllk = f_fe
    a, b = f_torch(), f_nllk()
    a = a[0] if isinstance(a, tuple) else a
    b = b[0] if isinstance(b, tuple) else b
    diff = float(((a.double() - b.double()).abs().max() / a.double().abs().max().clamp_min(1e-30)).item())
    out = []
    for th in threads:
        torch.set_num_threads(th)
        nt.set_num_threads(th)
        tt, ts, tn, ns = measure_pair(f_torch, f_nllk, args.reps)
        tf = None
        if f_fe is not f_nllk:
            tf, _, _, _ = measure_pair(f_fe, f_fe, 1)
        out.append(dict(id=w["id"], workload=w, threads=th, torch_s=tt, nllk_s=tn, torch_samples=ts,
                        nllk_samples=ns, nllk_frontend_s=tf, max_rel_diff=diff, torch_note="", nllk_via=via))
        print(f"  [{args.worker}] {w['id']} threads={th}: torch {tt * 1e3:.3f} ms, nllk {tn * 1e3:.3f} ms ({via})",
              file=sys.stderr, flush=True)
    return out


def ce_limit_name(w, th):
    return f"ce_limit/{w['kind']}/{'x'.join(map(str, w['shape']))}/threads:{th}"


def ce_limits(args, isa, W):
    """The machine's limit of each CE workload, from bench_nllk's limit/* benchmarks run now: the larger of
    reading the logits once (forward; + writing the gradient once for forward+backward) at the measured
    read/write bandwidth, and N*C exps at the measured SLEEF exp (f32, this ISA) rate. The gradient is data, so its
    write counts at the best rate of writing data (limit/write_data, limit/write_stream_data), not of zeros (which
    stream about 1.8x faster on this machine; reported as write_zero_B_per_s)."""
    ce = [w for w in W if w["loss"] == "ce"]
    if not ce or not os.path.exists(args.bench_bin):
        return {}
    flt = (f"^limit/(read|write_memset|write_stream|write_data|write_stream_data)/bytes:{CE_LIMIT_BYTES}/threads:|"
           f"^limit/sleef_exp_f32/isa:{isa}/threads:")
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    cmd = [args.bench_bin, "--nllk_ops=none", "--nllk_threads=" + args.threads, "--nllk_isas=" + isa,
           "--benchmark_filter=" + flt, "--benchmark_min_time=" + ("0.01" if args.quick else "0.2"),
           "--benchmark_out=" + out, "--benchmark_out_format=json"]
    print("compare_torch: CE limits: " + " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    data = json.load(open(out))
    os.unlink(out)
    rate = {}
    for b in data["benchmarks"]:
        if b.get("error_occurred"):
            continue
        m = re.match(r"limit/(\w+)(?:/isa:\w+)?(?:/bytes:\d+)?/threads:(\d+)", b["name"])
        if not m:
            continue
        kind, th = m.group(1), int(m.group(2))
        v = b["elem_per_s"] if kind.startswith("sleef") else b["bytes_per_second"]
        if kind.startswith("write"):
            kind = "write_data" if kind.endswith("data") else "write_zero"
        rate[(kind, th)] = max(rate.get((kind, th), 0.0), v)
    lim = {}
    for w in ce:
        n = 1
        for s in w["shape"]:
            n *= s
        for th in (int(x) for x in args.threads.split(",")):
            if ("read", th) not in rate or ("sleef_exp_f32", th) not in rate:
                continue
            mem = 4 * n / rate[("read", th)]
            if w["kind"] == "fwdbwd":
                mem += 4 * n / rate[("write_data", th)]
            exp = n / rate[("sleef_exp_f32", th)]
            lim[ce_limit_name(w, th)] = dict(limit_s=max(mem, exp), mem_limit_s=mem, sleef_limit_s=exp, c_s=None,
                                             limit_frac=None, read_B_per_s=rate[("read", th)],
                                             write_B_per_s=rate.get(("write_data", th)),
                                             write_zero_B_per_s=rate.get(("write_zero", th)),
                                             exp_per_s=rate[("sleef_exp_f32", th)])
    return lim


def ce_targets(rows, th):
    """Issue 12: forward >= 2.5x F.cross_entropy, forward+backward >= 3x, each at >= 75% of its limit."""
    res = []
    for kind, x in (("fwd", 2.5), ("fwdbwd", 3.0)):
        rs = [r for r in rows if r["threads"] == th and r["workload"]["loss"] == "ce" and r["workload"]["kind"] == kind]
        res.append(dict(target=f"cross-entropy {kind} mean: >= {x}x PyTorch and >= 75% of the limit",
                        met=bool(rs) and all((r["ratio"] or 0) >= x and (r["frac_of_limit"] or 0) >= 0.75 for r in rs),
                        detail=[f"{r['id']}: {r['ratio'] or 0:.2f}x, {100 * (r['frac_of_limit'] or 0):.0f}% of limit"
                                for r in rs] or ["not measured"]))
    return res
# ==== end of the cross-entropy block ==========================================================================


# ---- bfloat16 / float16 (issue 13): --half ----------------------------------------------------------------------
# The same arrays in a 16-bit dtype through PyTorch and nllk.torch, and their float32 values (the 16-bit values
# widened exactly) through nllk.torch in float32: one worker under the retaining allocator, the three calls timed
# in interleaved rounds (PyTorch, nllk 16-bit, nllk f32, ...), medians of the per-round ratios. PyTorch 1.13 has
# no CPU float16 for these losses: the float16 rows compare nllk with itself (float16 against float32).
HALF_TARGETS = {  # workload id prefix -> (minimum nllk vs PyTorch, minimum nllk f32 time / nllk 16-bit time)
    "nll/fwd/65536x1000/": (4.0, 1.0),
    "nll/fwd/4x21x512x512/": (4.0, 1.0),
    "poisson/fwd/log_input=1/full=0/": (3.5, None),
    "poisson/fwdbwd/log_input=1/full=0/": (4.0, None),
    "poisson/fwd/log_input=1/full=1/": (None, 1.0),
    "poisson/fwd/log_input=0/full=0/": (None, 1.0),
    "ce/": (None, 1.0),
}


def half_workloads(quick):
    n = 2 ** 16 if quick else 2 ** 24
    nll2 = (256, 100) if quick else (65536, 1000)
    nll4 = (2, 21, 32, 32) if quick else (4, 21, 512, 512)
    W = []
    for dt in ("bf16", "f16"):
        W.append(dict(loss="nll", kind="fwd", shape=nll2, weighted=0, dtype=dt))
        W.append(dict(loss="nll", kind="fwdbwd", shape=nll2, weighted=0, dtype=dt))
        W.append(dict(loss="nll", kind="fwd", shape=nll4, weighted=1, dtype=dt))
        for li, full, kind in ((1, 0, "fwd"), (1, 0, "fwdbwd"), (1, 1, "fwd"), (0, 0, "fwd")):
            W.append(dict(loss="poisson", kind=kind, n=n, log_input=li, full=full, dtype=dt))
        W.append(dict(loss="ce", kind="fwd", shape=nll2, dtype=dt))
        W.append(dict(loss="ce", kind="fwdbwd", shape=nll2, dtype=dt))
    for w in W:
        if w["loss"] == "poisson":
            w["id"] = f"poisson/{w['kind']}/log_input={w['log_input']}/full={w['full']}/n={w['n']}"
        else:
            extra = "/weight+ignore255" if w.get("weighted") else ""
            w["id"] = f"{w['loss']}/{w['kind']}/{'x'.join(map(str, w['shape']))}{extra}/mean"
    if ONLY:
        W = [w for w in W if re.search(ONLY, w["id"] + "/" + w["dtype"])]
    return W


def measure_rounds(fns, reps):
    """fns timed in interleaved rounds (each call alone). Returns (medians, per-round samples)."""
    for f in fns:
        f()  # warm-up
    samples = [[] for _ in fns]
    for _ in range(max(reps, 5) * 3):
        for f, s in zip(fns, samples):
            t0 = time.perf_counter()
            f()
            s.append(time.perf_counter() - t0)
    return [statistics.median(s) for s in samples], samples


def half_worker(args):
    import torch
    import torch.nn.functional as F

    os.environ.setdefault("NLLK_LIBRARY", args.lib)
    sys.path.insert(0, os.path.join(ROOT, "python"))
    import nllk.torch as nt
    g = torch.Generator().manual_seed(0)
    dtypes = {"bf16": torch.bfloat16, "f16": torch.float16}
    results = []
    for w in half_workloads(args.quick):
        dt = dtypes[w["dtype"]]
        kw = {}
        if w["loss"] == "poisson":
            n = w["n"]
            x = torch.rand(n, generator=g) * 4 - 2 if w["log_input"] else torch.rand(n, generator=g) * 5 + 0.01
            t = torch.randint(0, 7, (n,), generator=g).float()
            args16, args32 = (x.to(dt), t.to(dt)), (x.to(dt).float(), t.to(dt).float())
            kw = dict(log_input=bool(w["log_input"]), full=bool(w["full"]))
            loss_t, loss_n = F.poisson_nll_loss, nt.poisson_nll_loss
        else:
            sh = w["shape"]
            x = torch.randn(sh, generator=g) * 3
            if w["loss"] == "nll":
                x = torch.log_softmax(x, 1)
            tsh = (sh[0],) + tuple(sh[2:])
            t = torch.randint(0, sh[1], tsh, generator=g)
            if w.get("weighted"):
                t[torch.rand(tsh, generator=g) < 0.1] = 255
                kw = dict(ignore_index=255, weight=torch.rand(sh[1], generator=g) + 0.5)
            args16, args32 = (x.to(dt), t), (x.to(dt).float(), t)
            loss_t, loss_n = (F.nll_loss, nt.nll_loss) if w["loss"] == "nll" else (F.cross_entropy, nt.cross_entropy)
        # (a class weight in the input's dtype, as PyTorch requires)
        kw16 = {k: v.to(dt) if torch.is_tensor(v) else v for k, v in kw.items()}
        kw32 = {k: v.to(dt).float() if torch.is_tensor(v) else v for k, v in kw.items()}

        def make(fn, a, k):
            if w["kind"] == "fwd":
                return lambda: fn(*a, **k)
            xg = a[0].detach().requires_grad_(True)
            return lambda: torch.autograd.grad(fn(xg, *a[1:], **k), xg)

        f_torch, f_16, f_32 = make(loss_t, args16, kw16), make(loss_n, args16, kw16), make(loss_n, args32, kw32)
        try:
            f_torch()
        except RuntimeError as e:  # float16: not implemented on PyTorch's CPU
            f_torch, torch_note = None, str(e).splitlines()[0]
        else:
            torch_note = ""
        # PyTorch in float64 on the same (16-bit) values: the reference of the forward rows' error columns
        ref = loss_t(*(a.double() if a.is_floating_point() else a for a in args16),
                     **{k: v.double() if torch.is_tensor(v) else v for k, v in kw16.items()}).item() \
            if w["kind"] == "fwd" else None
        for th in [int(v) for v in args.threads.split(",")]:
            torch.set_num_threads(th)
            nt.set_num_threads(th)
            fns = [f for f in (f_torch, f_16, f_32) if f is not None]
            med, samples = measure_rounds(fns, args.reps)
            if f_torch is None:
                med, samples = [None] + med, [None] + samples
            r = dict(id=w["id"], dtype=w["dtype"], workload=w, threads=th, torch_s=med[0], nllk16_s=med[1],
                     nllk32_s=med[2], torch_note=torch_note,
                     vs_torch=statistics.median(a / b for a, b in zip(samples[0], samples[1])) if med[0] else None,
                     vs_f32=statistics.median(a / b for a, b in zip(samples[2], samples[1])))
            if ref is not None:  # the results' distance from the float64 reference (a sanity check, not a test)
                r["err_nllk"] = abs(f_16().double().item() - ref)
                r["err_torch"] = abs(f_torch().double().item() - ref) if f_torch else None
            results.append(r)
            print(f"  [half] {w['id']} {w['dtype']} threads={th}: torch {fmt_t(med[0])}, nllk {fmt_t(med[1])}, "
                  f"nllk f32 {fmt_t(med[2])}", file=sys.stderr, flush=True)
    json.dump(dict(torch_version=torch.__version__, nllk=nt.library_info(), results=results),
              open(args.worker_out, "w"))


def half_verdict(r):
    for prefix, (min_torch, min_f32) in HALF_TARGETS.items():
        if r["id"].startswith(prefix) and r["dtype"] == "bf16":
            parts, ok = [], True
            if min_torch is not None:
                ok &= r["vs_torch"] is not None and r["vs_torch"] >= min_torch
                parts.append(f">= {min_torch}x PyTorch")
            if min_f32 is not None:
                ok &= r["vs_f32"] >= min_f32
                parts.append("no slower than nllk f32")
            return (" and ".join(parts)), ok
    return "", None


def half_main(args, jemalloc):
    os.makedirs(args.out, exist_ok=True)
    load_before = os.getloadavg()[0]
    wout = os.path.join(args.out, "worker_half.json")
    if not (args.reuse and os.path.exists(wout)):
        env = dict(os.environ, NLLK_LIBRARY=args.lib)
        if jemalloc:
            env.update(LD_PRELOAD=jemalloc, MALLOC_CONF=JEMALLOC_CONF)
        else:
            print("compare_torch: libjemalloc2 not installed: PyTorch runs on the plain allocator", file=sys.stderr)
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "half", "--worker-out", wout, "--threads",
               args.threads, "--reps", str(args.reps), "--lib", args.lib] + (["--quick"] if args.quick else []) + (
                   ["--only", args.only] if args.only else [])
        subprocess.run(cmd, env=env, check=True)
    data = json.load(open(wout))
    load_after = os.getloadavg()[0]
    header = (f"nllk {data['nllk']['version']} ({data['nllk']['isa']}), PyTorch {data['torch_version']} "
              f"({'retaining allocator' if jemalloc else 'plain allocator'}), {os.cpu_count()} CPUs, load average "
              f"before/after: {load_before:.2f}/{load_after:.2f}; medians of {max(args.reps, 5) * 3} interleaved "
              "rounds")
    out = ["| workload | dtype | thr | PyTorch 16-bit | nllk 16-bit | nllk f32 | nllk vs PyTorch | nllk f32 / 16-bit "
           "| target | verdict |", "|---|---|---:|---:|---:|---:|---:|---:|---|---|"]
    verdicts = []
    for r in data["results"]:
        target, ok = half_verdict(r)
        judged = ok is not None and not args.quick and r["threads"] == max(int(v) for v in args.threads.split(","))
        vt = f"**{r['vs_torch']:.2f}x**" if r["vs_torch"] else ("n/a (not implemented)" if r["torch_note"] else "-")
        out.append(f"| {r['id']} | {r['dtype']} | {r['threads']} | {fmt_t(r['torch_s'])} | {fmt_t(r['nllk16_s'])} "
                   f"| {fmt_t(r['nllk32_s'])} | {vt} | {r['vs_f32']:.2f}x | {target} "
                   f"| {('MET' if ok else 'MISSED') if judged else '-'} |")
        if judged:
            verdicts.append((ok, r, target))
    errs = [r for r in data["results"] if r.get("err_nllk") is not None and r.get("err_torch") is not None]
    err_md = ["| workload | thr | abs. error of nllk bf16 | abs. error of PyTorch bf16 |", "|---|---:|---:|---:|"]
    err_md += [f"| {r['id']} | {r['threads']} | {r['err_nllk']:.3g} | {r['err_torch']:.3g} |" for r in errs
               if r["dtype"] == "bf16"]
    md = header + "\n\n" + "\n".join(out) + "\n\nDistance of the forward results from the float64 reference:\n\n" + \
        "\n".join(err_md) + "\n"
    with open(os.path.join(args.out, "compare_torch_half.md"), "w") as f:
        f.write(md)
    json.dump(dict(header=header, command=" ".join(sys.argv), **data),
              open(os.path.join(args.out, "compare_torch_half.json"), "w"), indent=1)
    print(md)
    for ok, r, target in verdicts:
        print(f"{'MET   ' if ok else 'MISSED'} {r['id']} bf16: {target} (vs PyTorch "
              f"{r['vs_torch'] or float('nan'):.2f}x, f32/bf16 {r['vs_f32']:.2f}x)")
    print(f"compare_torch: wrote {args.out}/compare_torch_half.md, .json", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, few repetitions (smoke test)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=None, help="timed runs per median (default 7, quick 3)")
    ap.add_argument("--out", default=os.path.join(ROOT, "build-bench", "compare_torch"))
    ap.add_argument("--lib", default=os.environ.get("NLLK_LIBRARY", os.path.join(ROOT, "build-bench", "libnllk.so")))
    ap.add_argument("--bench-bin", default=os.path.join(ROOT, "build-bench", "bench", "bench_nllk"))
    ap.add_argument("--modes", default="retaining,plain")
    ap.add_argument("--no-chart", action="store_true")
    ap.add_argument("--reuse", action="store_true", help="reuse the worker JSON files in --out (limits and report only)")
    ap.add_argument("--only", default=None, help="only workloads whose id matches this regex")
    ap.add_argument("--half", action="store_true",
                    help="the bfloat16/float16 comparison (issue 13) instead: compare_torch_half.md in --out")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    global ONLY
    ONLY = args.only
    if args.reps is None:
        args.reps = 3 if args.quick else 7
    if args.worker == "half":
        return half_worker(args)
    if args.worker:
        return worker(args)

    os.makedirs(args.out, exist_ok=True)
    load_before = os.getloadavg()[0]
    jemalloc = None
    for cand in ("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2"):
        if os.path.exists(cand):
            jemalloc = cand
    if jemalloc is None and ctypes.util.find_library("jemalloc"):
        jemalloc = "libjemalloc.so.2"
    if args.half:
        return half_main(args, jemalloc)
    modes = {}
    for mode in args.modes.split(","):
        wout = os.path.join(args.out, f"worker_{mode}.json")
        if args.reuse and os.path.exists(wout):  # report again from the workers' JSON (e.g. new limits)
            modes[mode] = json.load(open(wout))
            continue
        env = dict(os.environ, NLLK_LIBRARY=args.lib)
        env.pop("LD_PRELOAD", None)
        if mode == "retaining":
            if not jemalloc:
                print("compare_torch: libjemalloc2 not installed: no retaining-allocator baseline", file=sys.stderr)
                continue
            env.update(LD_PRELOAD=jemalloc, MALLOC_CONF=JEMALLOC_CONF)
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", mode, "--worker-out", wout,
               "--threads", args.threads, "--reps", str(args.reps if mode == "retaining" else max(3, args.reps // 2)),
               "--lib", args.lib] + (["--quick"] if args.quick else []) + (["--only", args.only] if args.only else [])
        print(f"compare_torch: {mode} worker", file=sys.stderr, flush=True)
        subprocess.run(cmd, env=env, check=True)
        modes[mode] = json.load(open(wout))
    base = modes.get("retaining") or modes.get("plain")
    isa = base["nllk"]["isa"]
    W = workloads(args.quick)
    lim = bench_limits(args, isa, W)
    lim.update(ce_limits(args, isa, W))
    rows = build_rows(modes, lim, isa)
    threads = [int(x) for x in args.threads.split(",")]
    # verdicts need the full-size workloads: not at --quick sizes, not for a subset chosen with --only
    judged = not args.quick and not args.only
    tgt = targets(rows, lim, isa, max(threads)) if judged else []
    ce_judged = not args.quick and any(r["workload"]["loss"] == "ce" for r in rows)
    if ce_judged:  # (judged on their own, also under --only '^ce/')
        tgt += ce_targets(rows, max(threads))
        judged = True
    md = markdown(rows)
    load_after = os.getloadavg()[0]
    header = (f"nllk {base['nllk']['version']} ({isa}), PyTorch {base['torch_version']}, "
              f"{os.cpu_count()} CPUs, load average before/after: {load_before:.2f}/{load_after:.2f}; "
              f"medians of {args.reps} runs; f32")
    no_verdict = ("Targets: not judged (" + ("--quick sizes" if args.quick else "--only subset") +
                  "; run the full comparison for verdicts)")
    with open(os.path.join(args.out, "compare_torch.md"), "w") as f:
        f.write(header + "\n\n" + md + "\n\n")
        if judged:
            f.write("Targets (threads=%d):\n\n" % max(threads))
            for t in tgt:
                f.write(f"- {'MET' if t['met'] else 'MISSED'}: {t['target']} — {'; '.join(t['detail'])}\n")
        else:
            f.write(no_verdict + "\n")
    json.dump(dict(header=header, isa=isa, nllk=base["nllk"], torch_version=base["torch_version"],
                   threads=threads, reps=args.reps, quick=args.quick, rows=rows, targets=tgt, limits=lim,
                   workers=modes, command=" ".join(sys.argv)),
              open(os.path.join(args.out, "compare_torch.json"), "w"), indent=1)
    print(header)
    print(md)
    print()
    for t in tgt:
        print(f"{'MET   ' if t['met'] else 'MISSED'} {t['target']}: {'; '.join(t['detail'])}")
    if not judged:
        print(no_verdict)
    charted = False
    if not args.no_chart:
        try:
            charted = chart(rows, os.path.join(args.out, "compare_torch.png"), threads, note=header)
        except ImportError:
            print("compare_torch: python3-matplotlib not installed: no chart", file=sys.stderr)
    print(f"compare_torch: wrote {args.out}/compare_torch.json, .md" + (", .png" if charted else ""),
          file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
