/* npyfile.c — chunked reading of .npy files (see npyfile.h). */
#define _GNU_SOURCE
#include "npyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

/* ---- .npz members --------------------------------------------------------------------------------------- */

static uint16_t le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const unsigned char *p) { return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16; }
static uint64_t le64(const unsigned char *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

/* "ARCHIVE.npz:NAME" -> the archive's path length (the part before the last ':' when it ends in .npz), else 0. */
size_t npyf_member_split(const char *spec)
{
    const char *colon = strrchr(spec, ':');
    if (!colon || colon - spec < 4 || !colon[1])
        return 0;
    return strncasecmp(colon - 4, ".npz", 4) == 0 ? (size_t)(colon - spec) : 0;
}

/* Finds member `name` (or `name`.npy, as np.savez names them) of the zip archive fd of `size` bytes: *off = the
 * first byte of its data, *len = its stored size. Zip64 archives (np.savez writes them for members > 4 GiB) are
 * read. Deflated members (np.savez_compressed) are refused (npyfile.h says why). */
static int npz_find(int fd, uint64_t size, const char *arch, const char *name, uint64_t *off, uint64_t *len,
                    char *err, size_t errlen)
{
    /* the end of central directory record: in the last 22 + 65535 bytes */
    const size_t tail = size < 22 + 65535 ? (size_t)size : 22 + 65535;
    unsigned char *t = malloc(tail ? tail : 1);
    if (!t)
        return fail(NPYF_IO, err, errlen, "%s: out of memory", arch);
    if (pread_full(fd, t, tail, size - tail) != (ssize_t)tail) {
        free(t);
        return fail(NPYF_IO, err, errlen, "cannot read '%s': %s", arch, strerror(errno));
    }
    ssize_t e = -1;
    for (ssize_t k = (ssize_t)tail - 22; k >= 0 && e < 0; k--)
        if (le32(t + k) == 0x06054b50)
            e = k;
    if (e < 0) {
        free(t);
        return fail(NPYF_FORMAT, err, errlen, "%s: not a zip archive (.npz): no end of central directory", arch);
    }
    uint64_t entries = le16(t + e + 10), cd_size = le32(t + e + 12), cd_off = le32(t + e + 16);
    if (e >= 20 && le32(t + e - 20) == 0x07064b50) { /* zip64 locator -> zip64 end of central directory */
        unsigned char z[56];
        const uint64_t zoff = le64(t + e - 20 + 8);
        if (zoff > size || pread_full(fd, z, sizeof z, zoff) != (ssize_t)sizeof z || le32(z) != 0x06064b50) {
            free(t);
            return fail(NPYF_FORMAT, err, errlen, "%s: bad zip64 end of central directory", arch);
        }
        entries = le64(z + 32);
        cd_size = le64(z + 40);
        cd_off = le64(z + 48);
    }
    free(t);
    if (cd_off > size || cd_size > size - cd_off || cd_size > ((uint64_t)1 << 30))
        return fail(NPYF_FORMAT, err, errlen, "%s: bad zip central directory", arch);
    unsigned char *cd = malloc(cd_size ? (size_t)cd_size : 1);
    if (!cd)
        return fail(NPYF_IO, err, errlen, "%s: out of memory", arch);
    if (pread_full(fd, cd, (size_t)cd_size, cd_off) != (ssize_t)cd_size) {
        free(cd);
        return fail(NPYF_IO, err, errlen, "cannot read '%s': %s", arch, strerror(errno));
    }
    const size_t nlen = strlen(name);
    char names[400];
    size_t nn = 0;
    names[0] = 0;
    int rc = -1;
    uint64_t p = 0;
    for (uint64_t k = 0; k < entries && rc < 0; k++) {
        if (cd_size - p < 46 || le32(cd + p) != 0x02014b50) {
            rc = fail(NPYF_FORMAT, err, errlen, "%s: bad zip central directory entry %llu", arch,
                      (unsigned long long)k);
            break;
        }
        const unsigned char *h = cd + p;
        const unsigned method = le16(h + 10), fl = le16(h + 28), xl = le16(h + 30), cl = le16(h + 32);
        uint64_t csize = le32(h + 20), usize = le32(h + 24), loff = le32(h + 42);
        if (cd_size - p - 46 < (uint64_t)fl + xl + cl) {
            rc = fail(NPYF_FORMAT, err, errlen, "%s: bad zip central directory entry %llu", arch,
                      (unsigned long long)k);
            break;
        }
        const char *fn = (const char *)h + 46;
        for (const unsigned char *x = h + 46 + fl; x + 4 <= h + 46 + fl + xl;) { /* zip64 extra: 64-bit sizes */
            const unsigned id = le16(x), sz = le16(x + 2);
            const unsigned char *v = x + 4, *vend = x + 4 + sz;
            if (vend > h + 46 + fl + xl)
                break;
            if (id == 1) {
                if (usize == 0xffffffffu && v + 8 <= vend)
                    usize = le64(v), v += 8;
                if (csize == 0xffffffffu && v + 8 <= vend)
                    csize = le64(v), v += 8;
                if (loff == 0xffffffffu && v + 8 <= vend)
                    loff = le64(v);
            }
            x = vend;
        }
        const int hit = (fl == nlen && !memcmp(fn, name, nlen)) ||
                        (fl == nlen + 4 && !memcmp(fn, name, nlen) && !memcmp(fn + nlen, ".npy", 4));
        if (nn + fl + 3 < sizeof names) { /* printable ASCII as is, any other byte as '?' (one line of text) */
            if (nn)
                nn += (size_t)snprintf(names + nn, sizeof names - nn, ", ");
            const unsigned shown = fl > 4 && !memcmp(fn + fl - 4, ".npy", 4) ? fl - 4u : fl;
            for (unsigned q = 0; q < shown; q++)
                names[nn++] = fn[q] >= 0x20 && fn[q] < 0x7f ? fn[q] : '?';
            names[nn] = 0;
        }
        p += 46 + (uint64_t)fl + xl + cl;
        if (!hit)
            continue;
        if (method == 8) {
            rc = fail(NPYF_FORMAT, err, errlen,
                      "%s:%s is deflated (np.savez_compressed): only stored members are read (np.savez); "
                      "extract it (numpy.load(...)[...] then numpy.save) or save with np.savez", arch, name);
            break;
        }
        if (method != 0 || csize != usize) {
            rc = fail(NPYF_FORMAT, err, errlen, "%s:%s: unsupported zip compression method %u", arch, name, method);
            break;
        }
        unsigned char lh[30];
        if (loff > size || pread_full(fd, lh, sizeof lh, loff) != (ssize_t)sizeof lh || le32(lh) != 0x04034b50) {
            rc = fail(NPYF_FORMAT, err, errlen, "%s:%s: bad zip local header", arch, name);
            break;
        }
        *off = loff + 30 + le16(lh + 26) + le16(lh + 28);
        *len = usize;
        if (*off > size || *len > size - *off)
            rc = fail(NPYF_FORMAT, err, errlen, "%s:%s: truncated zip member", arch, name);
        else
            rc = NPYF_OK;
    }
    free(cd);
    if (rc < 0)
        rc = fail(NPYF_FORMAT, err, errlen, "%s: no member '%s' (members: %s)", arch, name, names);
    return rc;
}

/* The file mapped read-only at a 2 MiB-aligned address (when the kernel gives the address space), so that file
 * offsets and addresses agree modulo 2 MiB and the page cache's large folios can be mapped by PMD entries:
 * the kernel aligns a mapping only when asked for a large one, and the parts of a dataset are often small. */
static unsigned char *map_aligned(int fd, size_t len)
{
    const size_t pmd = (size_t)2 << 20;
    if (len < pmd)
        return mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    unsigned char *r = mmap(NULL, len + pmd, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED)
        return mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    unsigned char *a = (unsigned char *)(((uintptr_t)r + pmd - 1) & ~(uintptr_t)(pmd - 1));
    unsigned char *m = mmap(a, len, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
    if (m == MAP_FAILED) {
        munmap(r, len + pmd);
        return mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    }
    const size_t ps = (size_t)sysconf(_SC_PAGESIZE), end = (len + ps - 1) & ~(ps - 1);
    if (a > r) /* the reservation's ends */
        munmap(r, (size_t)(a - r));
    if (a + end < r + len + pmd)
        munmap(a + end, (size_t)(r + len + pmd - (a + end)));
    return m;
}

int npyf_open(npy_file *f, const char *spec, io_mode mode, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    f->path = spec;
    f->mode = mode;
    f->release = 1;
    char pathbuf[4096];
    const char *path = spec, *member = NULL;
    const size_t alen = npyf_member_split(spec);
    if (alen) {
        if (alen >= sizeof pathbuf)
            return fail(NPYF_IO, err, errlen, "cannot open '%s': name too long", spec);
        memcpy(pathbuf, spec, alen);
        pathbuf[alen] = 0;
        path = pathbuf;
        member = spec + alen + 1;
    }
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
    uint64_t base = 0, end = f->file_size; /* the .npy's bytes in the file: all, or an .npz member's */
    if (member) {
        uint64_t len = 0;
        const int k = npz_find(f->fd, f->file_size, path, member, &base, &len, err, errlen);
        if (k != NPYF_OK)
            return k;
        end = base + len;
    }

    unsigned char pre[12];
    const ssize_t got = pread_full(f->fd, pre, (size_t)(end - base < sizeof pre ? end - base : sizeof pre), base);
    if (got < 0)
        return fail(NPYF_IO, err, errlen, "cannot read '%s': %s", path, strerror(errno));
    char perr[200];
    uint64_t need = 0;
    npy_status ps = npy_header_size(pre, (size_t)got, &need, perr, sizeof perr);
    if (ps == NPY_E_NOT_NPY && !member && got >= 4 && !memcmp(pre, "PK\3\4", 4))
        return fail(NPYF_FORMAT, err, errlen, "%s: a zip archive (.npz?), not an .npy: name one of its arrays, "
                    "'%s:NAME'", spec, spec);
    if (ps != NPY_OK)
        return fail(NPYF_FORMAT, err, errlen, "%s: %s", spec, perr);
    if (need > end - base)
        return fail(NPYF_FORMAT, err, errlen, "%s: truncated .npy header (%llu of %llu bytes)", spec,
                    (unsigned long long)(end - base), (unsigned long long)need);
    unsigned char *hbuf = malloc((size_t)need);
    if (!hbuf)
        return fail(NPYF_IO, err, errlen, "%s: out of memory reading the header", path);
    const ssize_t hgot = pread_full(f->fd, hbuf, (size_t)need, base);
    if (hgot < 0) {
        free(hbuf);
        return fail(NPYF_IO, err, errlen, "cannot read '%s': %s", path, strerror(errno));
    }
    ps = npy_parse(hbuf, (size_t)hgot, &f->h, perr, sizeof perr);
    free(hbuf);
    if (ps != NPY_OK)
        return fail(NPYF_FORMAT, err, errlen, "%s: %s", spec, perr);
    if (end - base - f->h.data_offset < f->h.nbytes)
        return fail(NPYF_FORMAT, err, errlen, "%s: truncated data (%llu of %llu bytes)", spec,
                    (unsigned long long)(end - base - f->h.data_offset), (unsigned long long)f->h.nbytes);
    f->h.data_offset += base; /* from here on: the data's offset in the file */
    if (f->h.data_offset % f->h.itemsize != 0) {
        if (!member)
            return fail(NPYF_FORMAT, err, errlen, "%s: data offset %llu is not a multiple of the item size %zu",
                        spec, (unsigned long long)f->h.data_offset, f->h.itemsize);
        f->misaligned = 1; /* a zip member starts anywhere: read it through an aligned copy */
        f->mode = IO_PREAD;
    }
    if ((uint64_t)(size_t)(f->h.data_offset + f->h.nbytes) != f->h.data_offset + f->h.nbytes)
        return fail(NPYF_FORMAT, err, errlen, "%s: too large for this address space", spec);
    if (f->h.nbytes > 0) {
        f->map_len = (size_t)(f->h.data_offset + f->h.nbytes);
        f->map = map_aligned(f->fd, f->map_len);
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
