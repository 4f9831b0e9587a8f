/* npyfile.h — an .npy file opened for chunked reading.
 *
 * The file is mapped read-only once (address space only), and each chunk is brought in by one of five methods
 * (nllk-score --io; the measurements behind the defaults are in BENCHMARKS.md, ## nllk-score):
 *   IO_MMAP      page faults on the mapping (cheap on a page-cached file held in large folios, which the kernel
 *                maps 2 MiB at a time); no copy. Default for Poisson.
 *   IO_PREAD     pread into one reused buffer per file: a copy, but a sequential one that leaves the chunk in
 *                the cache. Default for NLL, whose gather of one class value per position reads it scattered.
 *   IO_POPULATE  madvise(MADV_POPULATE_READ) on the chunk first (one call maps all its pages).
 *   IO_PREFETCH  the same, for the next chunk on a helper thread while this one is scored.
 *   IO_WINDOW    one mmap(MAP_POPULATE) per chunk, munmap after.
 * After a chunk is consumed its pages are dropped from the mapping (MADV_DONTNEED: the page cache keeps them,
 * the process does not), so the resident set stays bounded by the chunk size whatever the file size. */
#ifndef NLLK_SCORE_NPYFILE_H
#define NLLK_SCORE_NPYFILE_H

#include <stddef.h>
#include <stdint.h>

#include "npy.h"

typedef enum io_mode {
    IO_POPULATE = 0, /* whole-file map, MADV_POPULATE_READ per chunk, MADV_DONTNEED after       */
    IO_MMAP,         /* whole-file map, page faults, MADV_DONTNEED after                       */
    IO_WINDOW,       /* one mmap(MAP_POPULATE) per chunk window, munmap after                  */
    IO_PREAD,        /* pread into one reused buffer per file                                  */
    IO_PREFETCH      /* whole-file map; the caller populates the next chunk on another thread
                        while it scores this one (npyf_get only returns the pointer)           */
} io_mode;

typedef struct npy_file {
    const char *path;
    int fd;
    npy_header h;
    uint64_t file_size;
    io_mode mode;
    int release;           /* IO_POPULATE, IO_MMAP: drop a chunk's pages from the mapping after use */
    unsigned char *map;    /* the whole file, PROT_READ (NULL when the file has no data)     */
    size_t map_len;
    unsigned char *buf;    /* IO_PREAD buffer                                                */
    size_t buf_cap;
    void *win;             /* IO_WINDOW current mapping                                      */
    size_t win_len;
    uint64_t dropped;      /* npyf_drop_before: bytes [0, dropped) of the mapping are dropped */
    int misaligned;        /* an .npz member whose data is not aligned to its item size: read
                              through the IO_PREAD copy only (npyf_data's pointer is unaligned) */
    volatile int changed;  /* see npyf_changed                                                */
} npy_file;

/* Error kinds returned by the functions below (they match nllk-score's exit codes). */
enum { NPYF_OK = 0, NPYF_IO = 3, NPYF_FORMAT = 4 };

/* Opens and validates path: preamble and header (npy_parse), the data is all there, its offset is aligned to
 * the item size. Returns NPYF_OK, NPYF_IO (open/stat/read/map failed) or NPYF_FORMAT; err gets one line.
 *
 * path may name a member of an .npz archive (np.savez): "ARCHIVE.npz:NAME" (NAME or NAME.npy in the archive).
 * A stored member is read in place, like an .npy file: mapped, or through the pread copy when its data is not
 * aligned to its item size (zip places members at any offset; then f->misaligned and the mode is IO_PREAD).
 * A deflated member (np.savez_compressed) is refused with a message saying how to convert it: streaming it
 * would make every MPI rank inflate the archive from its start up to its shard (no random access in a deflate
 * stream), forbid the strided in-place reads of samples larger than a chunk, and bound the rate by one core's
 * inflate speed (a few hundred MB/s, against GB/s from the page cache) — a one-time conversion costs less. */
int npyf_open(npy_file *f, const char *path, io_mode mode, char *err, size_t errlen);

/* The length of the archive's path in "ARCHIVE.npz:NAME" (0: not an .npz member). */
size_t npyf_member_split(const char *spec);

/* Sets the largest chunk (bytes) npyf_get will be asked for (IO_PREAD allocates its buffer). */
int npyf_reserve(npy_file *f, size_t bytes, char *err, size_t errlen);

/* A pointer to elements [elem, elem + count) of the data, valid until npyf_put / the next npyf_get.
 * NULL on a read error (err set). */
const void *npyf_get(npy_file *f, uint64_t elem, uint64_t count, char *err, size_t errlen);
void npyf_put(npy_file *f, uint64_t elem, uint64_t count);

/* The whole data through the mapping (for strided access), and a prefetch/release of a byte range of it. */
const void *npyf_data(const npy_file *f);
void npyf_populate(npy_file *f, uint64_t elem, uint64_t count);
void npyf_drop(npy_file *f, uint64_t elem, uint64_t count);
/* For chunks read in order: drops the mapping before element elem_end (at 2 MiB granularity), or all (final). */
void npyf_drop_before(npy_file *f, uint64_t elem_end, int final);

void npyf_close(npy_file *f);

/* For the SIGBUS handler (async-signal-safe): if addr is in an open file's mapping (the file shrank under it),
 * maps zeros over the rest of that mapping, marks the file changed and returns 1; else 0. */
int npyf_sigbus(void *addr);

/* The file's mapping lost pages (npyf_sigbus) or could not be brought in (npyf_populate): the reader must not
 * trust what it read. */
int npyf_changed(const npy_file *f);

#endif
