/* outfile.c — see outfile.h. */
#define _GNU_SOURCE
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fail.h"
#include "shard.h"

static void out_check(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        die(EX_IO, "--out '%s' is a directory", path);
    if (strlen(path) > PATH_MAX)
        die(EX_IO, "--out '%s': path too long", path);
}

static void create_tmp(out_file *o, const char *path, npy_dtype dt, int ndim, const uint64_t *shape)
{
    out_check(path);
    const mode_t mask = umask(0);
    umask(mask);
    const char *slash = strrchr(path, '/');
    const int dirlen = slash ? (int)(slash - path) + 1 : 0;
    char tmp[PATH_MAX + 64];
    snprintf(tmp, sizeof tmp, "%.*s.%s.tmp-XXXXXX", dirlen, path, slash ? slash + 1 : path);
    sigset_t old;
    signals_block(&old);
    o->fd = mkstemp(tmp);
    const int err = errno;
    if (o->fd >= 0)
        tmp_register(tmp);
    signals_restore(&old);
    if (o->fd < 0)
        die(EX_IO, "cannot create '%s': %s", tmp, strerror(err));
    o->path = path;
    fchmod(o->fd, 0666 & ~mask);
    unsigned char hdr[NPY_MAX_DIMS * 24 + 256];
    const size_t n = npy_format_header(hdr, sizeof hdr, dt, ndim, shape);
    if (!n)
        die(EX_INTERNAL, "npy header does not fit");
    const ssize_t w = write(o->fd, hdr, n);
    if (w != (ssize_t)n)
        die(EX_IO, "writing '%s': %s", tmp_path(), w < 0 ? strerror(errno) : "short write");
    o->pos = n;
}

void out_open(out_file *o, const char *path, npy_dtype dt, int ndim, const uint64_t *shape, uint64_t first,
              size_t es)
{
    phase_check(); /* every rank opened its inputs */
    if (shard_rank() == 0)
        create_tmp(o, path, dt, ndim, shape);
    if (!shard_on())
        return;
    phase_check(); /* rank 0 created the temporary file */
    struct {
        char tmp[PATH_MAX + 64];
        uint64_t header;
    } b;
    memset(&b, 0, sizeof b);
    if (shard_rank() == 0) {
        snprintf(b.tmp, sizeof b.tmp, "%s", tmp_path());
        b.header = o->pos;
    }
    shard_bcast(&b, sizeof b);
    if (shard_rank() != 0) {
        tmp_register(b.tmp); /* for messages; rank 0 owns (and removes) the file */
        tmp_release();
        o->path = path;
        o->fd = open(b.tmp, O_WRONLY | O_CLOEXEC);
        if (o->fd < 0)
            die(EX_IO, "cannot open '%s' (rank %d): %s", b.tmp, shard_rank(), strerror(errno));
    }
    o->pos = b.header + first * es;
}

void out_write(out_file *o, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        const ssize_t w = pwrite(o->fd, p, len, (off_t)o->pos);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die(EX_IO, "writing '%s': %s", tmp_path(), w < 0 ? strerror(errno) : "short write");
        p += w;
        o->pos += (uint64_t)w;
        len -= (size_t)w;
    }
}

void out_commit(out_file *o)
{
    if (close(o->fd) != 0)
        die(EX_IO, "writing '%s': %s", tmp_path(), strerror(errno));
    phase_check(); /* every rank wrote and closed its slice */
    if (shard_rank() != 0)
        return;
    sigset_t old;
    signals_block(&old);
    if (rename(tmp_path(), o->path) != 0) {
        const int err = errno;
        signals_restore(&old);
        die(EX_IO, "cannot rename '%s' to '%s': %s", tmp_path(), o->path, strerror(err));
    }
    tmp_release();
    signals_restore(&old);
}
