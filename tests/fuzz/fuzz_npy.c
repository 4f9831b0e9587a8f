/* libFuzzer harness for nllk-score's .npy header parser (apps/nllk-score/npy.c).
 *
 * Build (clang only): cmake -DNLLK_FUZZ=ON -DCMAKE_C_COMPILER=clang ...  then  fuzz_npy tests/fuzz/corpus
 * Besides "no crash, no out-of-bounds read" (ASan), it checks invariants of every accepted header: the sizes are
 * consistent, and the header npy_format_header writes for the parsed dtype and shape parses back to the same
 * array description. The same function runs over the committed corpus in ctest (run_corpus.c), so CI needs no
 * clang. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "npy.h"

#define CHECK(c)                                                                                                  \
    do {                                                                                                          \
        if (!(c))                                                                                                 \
            abort();                                                                                              \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    uint64_t need = 0;
    npy_header h;
    const npy_status s1 = npy_header_size(data, size, &need, err, sizeof err);
    const npy_status s2 = npy_parse(data, size, &h, err, sizeof err);
    CHECK(memchr(err, 0, sizeof err) != NULL);
    if (s2 != NPY_OK)
        return 0;
    CHECK(s1 == NPY_OK && need <= size && h.data_offset == need);
    CHECK(h.major >= 1 && h.major <= 3 && h.minor == 0);
    CHECK(h.ndim >= 0 && h.ndim <= NPY_MAX_DIMS);
    CHECK(h.itemsize == npy_dtype_size(h.dtype) && h.itemsize > 0);
    uint64_t count = 1;
    for (int k = 0; k < h.ndim; k++)
        count *= h.shape[k];
    CHECK(count == h.count && h.nbytes == count * h.itemsize && h.nbytes / h.itemsize == count);
    CHECK(h.data_offset + h.nbytes >= h.data_offset);
    /* round trip through the writer */
    static unsigned char buf[NPY_MAX_DIMS * 24 + 256];
    const size_t n = npy_format_header(buf, sizeof buf, h.dtype, h.ndim, h.shape);
    CHECK(n > 0 && n % 64 == 0);
    npy_header g;
    CHECK(npy_parse(buf, n, &g, err, sizeof err) == NPY_OK);
    CHECK(g.dtype == h.dtype && g.ndim == h.ndim && g.count == h.count && g.data_offset == n);
    CHECK(memcmp(g.shape, h.shape, sizeof(uint64_t) * (size_t)h.ndim) == 0);
    return 0;
}
