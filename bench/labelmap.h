// Realistic segmentation label maps (coherent targets: blobs and rectangles) for bench_nllk: the generator of
// bench/labelmaps.py, the same integer algorithm, so both give the same maps bit for bit (bench_nllk
// --nllk_dump_labels writes one for the comparison). Each H x W map starts as one background class and gets
// 6-15 shapes of random classes in [0, c) painted over it in order: rectangles and ellipses with half-sizes
// H/32 .. H/32 + H/6 (W likewise), each with a 2-pixel ring of `ignore` drawn first (no ring when has_ignore is
// false).
#ifndef NLLK_BENCH_LABELMAP_H
#define NLLK_BENCH_LABELMAP_H

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

namespace nllkb {

struct SplitMix64 {
    uint64_t s;
    explicit SplitMix64(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull) {}
    uint64_t next()
    {
        s += 0x9E3779B97F4A7C15ull;
        uint64_t z = s;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    int64_t below(int64_t k) { return k > 0 ? (int64_t)(next() % (uint64_t)k) : 0; }
};

// out[i * h * w + y * w + x], i < n
template <class T>
void labelmaps(T *out, int64_t n, int64_t h, int64_t w, int64_t c, bool has_ignore, int64_t ignore, uint64_t seed)
{
    SplitMix64 rng(seed);
    for (int64_t i = 0; i < n; i++) {
        T *img = out + i * h * w;
        const T bg = (T)rng.below(c);
        std::fill(img, img + h * w, bg);
        const int64_t shapes = 6 + rng.below(10);
        for (int64_t s = 0; s < shapes; s++) {
            const int64_t cls = rng.below(c), ellipse = rng.below(2);
            const int64_t cy = rng.below(h), cx = rng.below(w);
            const int64_t ry = h / 32 + rng.below(h / 6 + 1), rx = w / 32 + rng.below(w / 6 + 1);
            const int64_t y0 = std::max<int64_t>(0, cy - ry - 2), y1 = std::min<int64_t>(h, cy + ry + 3);
            const int64_t x0 = std::max<int64_t>(0, cx - rx - 2), x1 = std::min<int64_t>(w, cx + rx + 3);
            auto inside = [&](int64_t dy, int64_t dx, int64_t a, int64_t b) {
                if (ellipse)
                    return dy * dy * b * b + dx * dx * a * a <= a * a * b * b;
                return std::llabs(dy) <= a && std::llabs(dx) <= b;
            };
            for (int64_t y = y0; y < y1; y++)
                for (int64_t x = x0; x < x1; x++) {
                    const int64_t dy = y - cy, dx = x - cx;
                    if (inside(dy, dx, ry, rx))
                        img[y * w + x] = (T)cls;
                    else if (has_ignore && inside(dy, dx, ry + 2, rx + 2))
                        img[y * w + x] = (T)ignore;
                }
        }
    }
}

}  // namespace nllkb

#endif
