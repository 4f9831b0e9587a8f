#!/usr/bin/env python3
"""Markdown summary of a bench_nllk JSON file (Google Benchmark --benchmark_out).

    bench/summarize_bench.py build-bench/bench_nllk_default.json [--dtype f32] [--threads 2] [--grep REGEX]

One row per kernel case, one column group per ISA: time per call, GB/s of the bytes the kernel must move, and
the fraction of the machine's limit (limit_frac: max(bare read/write/gather of the same bytes, bare SLEEF
exp/log for the same count) / kernel time). Then the machine's limits on their own.
"""
import argparse
import json
import re
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("json")
    ap.add_argument("--dtype", default="f32")
    ap.add_argument("--threads", type=int, default=None, help="default: the largest in the file")
    ap.add_argument("--grep", default=None, help="only cases matching this regex")
    args = ap.parse_args()
    data = json.load(open(args.json))
    rows = {}
    isas = []
    limits = []
    all_threads = set()
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        name = re.sub(r"(/real_time|/manual_time|/iterations:\d+)?(_median)?$", "", b["name"])
        m = re.match(r"(.*)/isa:([a-z0-9]+)/threads:(\d+)$", name)
        if name.startswith("limit/"):
            limits.append((name, b))
            continue
        if not m or b.get("error_occurred"):
            continue
        case, isa, th = m.group(1), m.group(2), int(m.group(3))
        all_threads.add(th)
        if f"/{args.dtype}/" not in case or (args.grep and not re.search(args.grep, case)):
            continue
        if isa not in isas:
            isas.append(isa)
        rows.setdefault((case, th), {})[isa] = b
    th = args.threads or max(all_threads or {1})
    out = [f"bench_nllk, {args.dtype}, {th} thread(s): time per call / GB/s / fraction of the machine's limit", ""]
    out.append("| case | " + " | ".join(isas) + " |")
    out.append("|---|" + "---:|" * len(isas))
    for (case, t), per in rows.items():
        if t != th:
            continue
        cells = []
        for isa in isas:
            b = per.get(isa)
            if not b:
                cells.append("-")
                continue
            us = b["us_per_call"]
            tm = f"{us:.2f} us" if us < 1000 else f"{us / 1000:.2f} ms"
            cells.append(f"{tm} / {b['GB_per_s']:.1f} / {100 * b['limit_frac']:.0f}%")
        out.append(f"| {case} | " + " | ".join(cells) + " |")
    out += ["", "Machine limits (bench_nllk limit/*):", "", "| limit | value |", "|---|---:|"]
    for name, b in limits:
        if "bytes_per_second" in b:
            v = f"{b['bytes_per_second'] / 1e9:.1f} GB/s"
        else:
            v = f"{b.get('elem_per_s', 0) / 1e9:.2f} G elements/s"
        out.append(f"| {name} | {v} |")
    print("\n".join(out))


if __name__ == "__main__":
    sys.exit(main())
