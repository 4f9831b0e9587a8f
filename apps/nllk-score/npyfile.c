/* npyfile.c — chunked reading of .npy files (see npyfile.h). */
#define _GNU_SOURCE
#include "npyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14 */
#endif

static int fail(int kind, char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(int kind, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return kind;
}

/* Reads exactly len bytes at off; returns the count read (short only at end of file), or -1 (errno). */
static ssize_t pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    size_t got = 0;
    while (got < len) {
        const ssize_t r = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* The open files with a mapping, for npyf_sigbus (a handler: plain loads of what is set before the mappings are
 * read, no locks). */
enum { MAX_FILES = 8 };
static npy_file *volatile g_files[MAX_FILES];

static void track(npy_file *f, int on)
{
    for (int k = 0; k < MAX_FILES; k++)
        if (g_files[k] == (on ? NULL : f)) {
            g_files[k] = on ? f : NULL;
            return;
        }
}

static int zero_rest(unsigned char *map, size_t len, unsigned char *addr)
{
    if (!map || addr < map || addr >= map + len)
        return 0;
    const uintptr_t ps = (uintptr_t)sysconf(_SC_PAGESIZE);
    unsigned char *lo = (unsigned char *)((uintptr_t)addr & ~(ps - 1));
    return mmap(lo, (size_t)(map + len - lo), PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED;
}

int npyf_sigbus(void *addr)
{
    for (int k = 0; k < MAX_FILES; k++) {
        npy_file *f = g_files[k];
        if (f && (zero_rest(f->map, f->map_len, addr) || zero_rest(f->win, f->win_len, addr))) {
            f->changed = 1;
            return 1;
        }
    }
    return 0;
}

int npyf_changed(const npy_file *f) { return f->changed; }

int npyf_open(npy_file *f, const char *path, io_mode mode, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    f->path = path;
    f->mode = mode;
    f->release = 1;
    /* O_NONBLOCK: a FIFO (or a device) is refused below instead of blocking open() until a writer comes */
    f->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (f->fd < 0)
        return fail(NPYF_IO, err, errlen, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(f->fd, &st) != 0)
        return fail(NPYF_IO, err, errlen, "cannot stat '%s': %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return fail(NPYF_IO, err, errlen, "cannot read '%s': it is a directory", path);
    if (!S_ISREG(st.st_mode))
        return fail(NPYF_IO, err, errlen, "cannot read '%s': not a regular file", path);
    fcntl(f->fd, F_SETFL, fcntl(f->fd, F_GETFL) & ~O_NONBLOCK);
    f->file_size = (uint64_t)st.st_size;

    unsigned char pre[12];
    const ssize_t got = pread_full(f->fd, pre, sizeof pre, 0);
    if (got < 0)
        return fail(NPYF_IO, err, errlen, "cannot read '%s': %s", path, strerror(errno));
    char perr[200];
    uint64_t need = 0;
    npy_status ps = npy_header_size(pre, (size_t)got, &need, perr, sizeof perr);
    if (ps != NPY_OK)
        return fail(NPYF_FORMAT, err, errlen, "%s: %s", path, perr);
    if (need > f->file_size)
        return fail(NPYF_FORMAT, err, errlen, "%s: truncated .npy header (%llu of %llu bytes)", path,
                    (unsigned long long)f->file_size, (unsigned long long)need);
    unsigned char *hbuf = malloc((size_t)need);
    if (!hbuf)
        return fail(NPYF_IO, err, errlen, "%s: out of memory reading the header", path);
    const ssize_t hgot = pread_full(f->fd, hbuf, (size_t)need, 0);
    if (hgot < 0) {
        free(hbuf);
        return fail(NPYF_IO, err, errlen, "cannot read '%s': %s", path, strerror(errno));
    }
    ps = npy_parse(hbuf, (size_t)hgot, &f->h, perr, sizeof perr);
    free(hbuf);
    if (ps != NPY_OK)
        return fail(NPYF_FORMAT, err, errlen, "%s: %s", path, perr);
    if (f->file_size - f->h.data_offset < f->h.nbytes)
        return fail(NPYF_FORMAT, err, errlen, "%s: truncated data (%llu of %llu bytes)", path,
                    (unsigned long long)(f->file_size - f->h.data_offset), (unsigned long long)f->h.nbytes);
    if (f->h.data_offset % f->h.itemsize != 0)
        return fail(NPYF_FORMAT, err, errlen, "%s: data offset %llu is not a multiple of the item size %zu", path,
                    (unsigned long long)f->h.data_offset, f->h.itemsize);
    if ((uint64_t)(size_t)(f->h.data_offset + f->h.nbytes) != f->h.data_offset + f->h.nbytes)
        return fail(NPYF_FORMAT, err, errlen, "%s: too large for this address space", path);
    if (f->h.nbytes > 0) {
        f->map_len = (size_t)(f->h.data_offset + f->h.nbytes);
        f->map = mmap(NULL, f->map_len, PROT_READ, MAP_SHARED, f->fd, 0);
        if (f->map == MAP_FAILED) {
            f->map = NULL;
            return fail(NPYF_IO, err, errlen, "cannot map '%s': %s", path, strerror(errno));
        }
        track(f, 1);
    }
    return NPYF_OK;
}

int npyf_reserve(npy_file *f, size_t bytes, char *err, size_t errlen)
{
    if (f->mode != IO_PREAD || bytes <= f->buf_cap)
        return NPYF_OK;
    free(f->buf);
    f->buf = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!f->buf) {
        f->buf_cap = 0;
        return fail(NPYF_IO, err, errlen, "out of memory (%zu-byte read buffer)", bytes);
    }
    f->buf_cap = bytes;
    return NPYF_OK;
}

static size_t page_size(void)
{
    static size_t ps;
    if (!ps)
        ps = (size_t)sysconf(_SC_PAGESIZE);
    return ps;
}

/* The page-aligned span of the mapping that holds bytes [off, off + len) of the file. */
static void span(const npy_file *f, uint64_t off, uint64_t len, unsigned char **p, size_t *n)
{
    const uint64_t lo = off & ~(uint64_t)(page_size() - 1);
    *p = f->map + lo;
    *n = (size_t)(off + len - lo);
}

void npyf_populate(npy_file *f, uint64_t elem, uint64_t count)
{
    static int no_populate; /* kernels before 5.14: touch the pages instead */
    if (!f->map || count == 0)
        return;
    unsigned char *p;
    size_t n;
    span(f, f->h.data_offset + elem * f->h.itemsize, count * f->h.itemsize, &p, &n);
    if (!no_populate && madvise(p, n, MADV_POPULATE_READ) == 0)
        return;
    if (!no_populate && errno != EINVAL) { /* EFAULT: the file shrank (reading there would raise SIGBUS) */
        if (errno == EFAULT)
            f->changed = 1;
        return;
    }
    no_populate = 1;
    unsigned sink = 0;
    for (size_t k = 0; k < n; k += page_size())
        sink += ((volatile unsigned char *)p)[k];
    (void)sink;
}

void npyf_drop(npy_file *f, uint64_t elem, uint64_t count)
{
    if (!f->map || count == 0)
        return;
    unsigned char *p;
    size_t n;
    span(f, f->h.data_offset + elem * f->h.itemsize, count * f->h.itemsize, &p, &n);
    madvise(p, n, MADV_DONTNEED);
}

/* Sequential chunks: drop everything before the chunk end, rounded down to 2 MiB so that a page-cache folio
 * mapped by one PMD entry and shared with the next chunk stays mapped (zapping part of it would unmap all of it,
 * and the next chunk would fault it in again). `final`: up to the end of the file. */
void npyf_drop_before(npy_file *f, uint64_t elem_end, int final)
{
    if (!f->map)
        return;
    const uint64_t pmd = (uint64_t)2 << 20;
    uint64_t end = final ? f->map_len : (f->h.data_offset + elem_end * f->h.itemsize) & ~(pmd - 1);
    if (end > f->map_len)
        end = f->map_len;
    if (end <= f->dropped)
        return;
    madvise(f->map + f->dropped, (size_t)(end - f->dropped), MADV_DONTNEED);
    f->dropped = end;
}

const void *npyf_data(const npy_file *f) { return f->map ? f->map + f->h.data_offset : NULL; }

const void *npyf_get(npy_file *f, uint64_t elem, uint64_t count, char *err, size_t errlen)
{
    if (count == 0 || !f->map)
        return f->map ? f->map + f->h.data_offset : (const void *)f; /* never dereferenced */
    const uint64_t off = f->h.data_offset + elem * f->h.itemsize, len = count * f->h.itemsize;
    switch (f->mode) {
    case IO_POPULATE:
        npyf_populate(f, elem, count);
        return f->map + off;
    case IO_MMAP:
    case IO_PREFETCH:
        return f->map + off;
    case IO_WINDOW: {
        const uint64_t lo = off & ~(uint64_t)(page_size() - 1);
        f->win_len = (size_t)(off + len - lo);
        f->win = mmap(NULL, f->win_len, PROT_READ, MAP_SHARED | MAP_POPULATE, f->fd, (off_t)lo);
        if (f->win == MAP_FAILED) {
            f->win = NULL;
            fail(NPYF_IO, err, errlen, "cannot map '%s': %s", f->path, strerror(errno));
            return NULL;
        }
        return (unsigned char *)f->win + (off - lo);
    }
    case IO_PREAD: {
        if (len > f->buf_cap && npyf_reserve(f, (size_t)len, err, errlen) != NPYF_OK)
            return NULL;
        const ssize_t r = pread_full(f->fd, f->buf, (size_t)len, off);
        if (r < 0 || (uint64_t)r != len) {
            fail(NPYF_IO, err, errlen, "cannot read '%s': %s", f->path, r < 0 ? strerror(errno) : "file shrank");
            return NULL;
        }
        return f->buf;
    }
    }
    return NULL;
}

void npyf_put(npy_file *f, uint64_t elem, uint64_t count)
{
    if ((f->mode == IO_POPULATE || f->mode == IO_MMAP) && f->release) /* IO_PREFETCH: the caller drops */
        npyf_drop_before(f, elem + count, 0);
    else if (f->mode == IO_WINDOW && f->win) {
        munmap(f->win, f->win_len);
        f->win = NULL;
    }
}

void npyf_close(npy_file *f)
{
    track(f, 0);
    if (f->win)
        munmap(f->win, f->win_len);
    if (f->map)
        munmap(f->map, f->map_len);
    if (f->fd >= 0)
        close(f->fd);
    free(f->buf);
    memset(f, 0, sizeof *f);
    f->fd = -1;
}
