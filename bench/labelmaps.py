#!/usr/bin/python3
"""Realistic segmentation label maps for the NLL benchmarks: coherent targets (blobs and rectangles).

    /usr/bin/python3 bench/labelmaps.py N H W C [--ignore 255] [--seed 0] [--out maps.npy] [--stats]

Each of the N maps (H x W, int64) starts as one background class and gets 6-15 shapes painted over it in order,
each of a random class in [0, C): axis-aligned rectangles and ellipses with half-sizes H/32 .. H/32 + H/6 (W likewise),
each drawn with a 2-pixel ring of `ignore` around it first (the void boundary of PASCAL VOC-style masks; no ring
when ignore is None). Rows are therefore long runs of one class, as in real masks: what the N-D NLL kernels exploit.

The generator uses integer arithmetic only (splitmix64, integer ellipse tests), so bench/labelmap.h (C++, used by
bench_nllk) produces the same maps bit for bit. Check: `bench_nllk --nllk_dump_labels=FILE` writes the (4, 512, 512)
map of 21 classes with 255 rings, and `np.fromfile(FILE, np.uint8)` equals `labelmaps(4, 512, 512, 21)` (checked
2026-12-03). Used by bench/compare_torch.py (import labelmaps) and bench/bench_nllk.cc (labelmap.h).
"""
import argparse
import sys

import numpy as np

M64 = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.s = (seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & M64

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & M64
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    def below(self, k):
        return self.next() % k if k > 0 else 0


def labelmaps(n, h, w, c, ignore=255, seed=0):
    """(n, h, w) int64 label maps: classes in [0, c), boundary rings of `ignore` (None: no rings)."""
    out = np.empty((n, h, w), dtype=np.int64)
    rng = SplitMix64(seed)
    yy = np.arange(h, dtype=np.int64)[:, None]
    xx = np.arange(w, dtype=np.int64)[None, :]
    for i in range(n):
        img = out[i]
        img[:] = rng.below(c)
        for _ in range(6 + rng.below(10)):
            cls = rng.below(c)
            ellipse = rng.below(2)
            cy, cx = rng.below(h), rng.below(w)
            ry = h // 32 + rng.below(h // 6 + 1)
            rx = w // 32 + rng.below(w // 6 + 1)
            y0, y1 = max(0, cy - ry - 2), min(h, cy + ry + 3)
            x0, x1 = max(0, cx - rx - 2), min(w, cx + rx + 3)
            dy, dx = yy[y0:y1] - cy, xx[:, x0:x1] - cx

            def inside(a, b):  # a, b: half-sizes along y, x
                if ellipse:
                    return dy * dy * b * b + dx * dx * a * a <= a * a * b * b
                return (np.abs(dy) <= a) & (np.abs(dx) <= b)

            inner = inside(ry, rx)
            sub = img[y0:y1, x0:x1]
            if ignore is not None:
                sub[inside(ry + 2, rx + 2) & ~inner] = ignore
            sub[inner] = cls
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("n", type=int)
    ap.add_argument("h", type=int)
    ap.add_argument("w", type=int)
    ap.add_argument("c", type=int)
    ap.add_argument("--ignore", type=int, default=255)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out")
    ap.add_argument("--stats", action="store_true", help="run lengths and the ignored fraction")
    a = ap.parse_args()
    m = labelmaps(a.n, a.h, a.w, a.c, a.ignore, a.seed)
    if a.out:
        np.save(a.out, m)
    if a.stats or not a.out:
        flat = m.reshape(a.n * a.h, a.w)
        changes = int((flat[:, 1:] != flat[:, :-1]).sum())
        runs = flat.shape[0] + changes
        print(f"{a.n}x{a.h}x{a.w}: mean run along a row {m.size / runs:.1f} px, "
              f"ignored {(m == a.ignore).mean() * 100:.2f}%, classes present {len(np.unique(m))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
