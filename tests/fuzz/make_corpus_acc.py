#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_acc (tests/fuzz/corpus_acc): valid accumulators as raw inputs, and recipes.

    NLLK_LIBRARY=build/libnllk.so tests/fuzz/make_corpus_acc.py

A raw seed is byte 0 (even: raw mode; bit 1 NLL, bit 2 f64) followed by accumulator A's bytes and B's (B begins
where A ends), made through the library of this build: rerun after a change of the accumulator's layout or
checksum (the harness accepts any bytes; stale seeds only lose their value as valid states). A recipe seed is
byte 0 odd, then begin (8 bytes, big-endian), the chunk counts and 2-byte lengths of A and B, then (3-byte
offset, xor byte) patches."""
import ctypes
import os
import struct
import sys

ACC_SIZE = 72 * 1024
C, D = 4, 3  # as in fuzz_acc.c
lib = ctypes.CDLL(os.environ.get("NLLK_LIBRARY", "build/libnllk.so"))
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus_acc")


def acc(nll, f64, begin, chunks):
    """An accumulator of elements [begin, begin + sum(chunks)) with fuzz_acc.c's data."""
    buf = ctypes.create_string_buffer(ACC_SIZE)
    if nll:
        st = lib.nllk_nll_acc_init(buf, f64, 0, ctypes.c_size_t(C), ctypes.c_size_t(D), ctypes.c_int64(-100),
                                   ctypes.c_uint64(begin))
    else:
        st = lib.nllk_poisson_acc_init(buf, f64, 1, 0, ctypes.c_double(1e-8), ctypes.c_uint64(begin))
    assert st == 0
    end = begin
    for n in chunks:
        if nll:
            s0, samples = end // D, (end % D + n + D - 1) // D
            x = [-float((s0 + s + c) % 13) * 0.25 for s in range(samples) for c in range(C * D)]
            t = (ctypes.c_int64 * max(n, 1))(*[-100 if (end + k) % 7 == 0 else (end + k) % C for k in range(n)])
            xa = (ctypes.c_double if f64 else ctypes.c_float) * max(len(x), 1)
            fn = lib.nllk_nll_acc_update_f64 if f64 else lib.nllk_nll_acc_update_f32
            st = fn(buf, xa(*x), t, ctypes.c_size_t(n), None)
        else:
            ty = (ctypes.c_double if f64 else ctypes.c_float) * max(n, 1)
            x = ty(*[((end + k) % 61) * 0.1 - 3.0 for k in range(n)])
            t = ty(*[float((end + k) % 5) for k in range(n)])
            fn = lib.nllk_poisson_acc_update_f64 if f64 else lib.nllk_poisson_acc_update_f32
            st = fn(buf, x, t, ctypes.c_size_t(n))
        assert st == 0
        end += n
    return buf.raw, end


def raw_seed(name, nll, f64, begin, chunks_a, chunks_b):
    a, mid = acc(nll, f64, begin, chunks_a)
    b, _ = acc(nll, f64, mid, chunks_b)
    with open(os.path.join(out, name), "wb") as f:
        f.write(bytes([2 * nll + 4 * f64]) + a + b)


def recipe_seed(name, nll, f64, begin, chunks_a, chunks_b, patches=()):
    data = bytes([1 + 2 * nll + 4 * f64]) + struct.pack(">Q", begin)
    for chunks in (chunks_a, chunks_b):
        data += bytes([len(chunks)]) + b"".join(struct.pack(">H", n) for n in chunks)
    for off, x in patches:
        data += struct.pack(">I", off)[1:] + bytes([x])
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)


os.makedirs(out, exist_ok=True)
raw_seed("raw_poisson_f32_nodes", 0, 0, 0, [3000, 7000], [100])           # open nodes, an open block
raw_seed("raw_poisson_f64_head", 0, 1, 5000, [12000], [4000])             # a raw head, then nodes
raw_seed("raw_nll_f32_in_head", 1, 0, 12289, [4000], [3, 200])            # all in the head
raw_seed("raw_nll_f64_boundary", 1, 1, 3 * 4096, [2 * 4096], [4096, 1])  # ends on a block boundary
recipe_seed("recipe_poisson_f32", 0, 0, 4095, [1, 4096, 7], [9000])
recipe_seed("recipe_nll_f64", 1, 1, 2**40 + 1, [12000, 300], [5, 4091, 4096])
recipe_seed("recipe_nll_f32_patched", 1, 0, 8191, [500, 8000], [2], [(88, 1), (92, 0x80), (ACC_SIZE + 100, 7)])
recipe_seed("recipe_poisson_f64_empty", 0, 1, 0, [], [])
print(f"wrote {len(os.listdir(out))} seeds to {out}", file=sys.stderr)
