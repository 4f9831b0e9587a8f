/* outfile.c — see outfile.h. */
#define _GNU_SOURCE
#include "outfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fail.h"
#include "shard.h"

#define TMP_TAG ".nllk-tmp."

void out_not_input(const char *path, const char *role, const char *input)
{
    struct stat a, b;
    if (input && stat(path, &a) == 0 && stat(input, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
        die(EX_USAGE, "--out '%s' is the same file as %s '%s': it would be destroyed (see nllk-score --help)",
            path, role, input);
}

/* What --out names: sets o->target and o->direct; the mode (and owner) the new file gets. */
static void out_check(out_file *o, const char *path, mode_t *mode, uid_t *uid, gid_t *gid)
{
    struct stat st, lst;
    const mode_t mask = umask(0);
    umask(mask);
    *mode = 0666 & ~mask;
    *uid = (uid_t)-1;
    *gid = (gid_t)-1;
    snprintf(o->target, sizeof o->target, "%s", path);
    if (strlen(path) >= sizeof o->target)
        die(EX_IO, "--out '%s': path too long", path);
    if (stat(path, &st) != 0) {
        if (errno == ENOENT && lstat(path, &lst) == 0)
            die(EX_IO, "--out '%s' is a symbolic link to a missing file", path);
        return; /* a new file (or an error that creating it reports) */
    }
    if (S_ISDIR(st.st_mode))
        die(EX_IO, "--out '%s' is a directory", path);
    if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
        if (shard_size() > 1)
            die(EX_USAGE, "--out '%s' is a FIFO or device: under mpirun the output must be a regular file", path);
        o->direct = 1;
        return;
    }
    if (!S_ISREG(st.st_mode))
        die(EX_IO, "--out '%s' is not a regular file, a FIFO or a character device", path);
    *mode = st.st_mode & 07777 & ~(mode_t)(S_ISUID | S_ISGID);
    *uid = st.st_uid;
    *gid = st.st_gid;
    if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode) && !realpath(path, o->target))
        die(EX_IO, "--out '%s': cannot resolve the symbolic link: %s", path, strerror(errno));
}

/* The temporary name for target: `DIR/.NAME.nllk-tmp.HOST.PID.RANDOM`, NAME cut to keep it within NAME_MAX. */
static void tmp_name(char *buf, size_t cap, const char *target)
{
    static const char abc[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    char host[65] = "localhost", rnd[7], tail[128];
    gethostname(host, sizeof host - 1);
    host[64] = 0;
    unsigned char r[6];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        for (int k = 0; k < 6; k++)
            r[k] = (unsigned char)rand();
    for (int k = 0; k < 6; k++)
        rnd[k] = abc[r[k] % (sizeof abc - 1)];
    rnd[6] = 0;
    const int nt = snprintf(tail, sizeof tail, TMP_TAG "%s.%ld.%s", host, (long)getpid(), rnd);
    const char *slash = strrchr(target, '/');
    const char *name = slash ? slash + 1 : target;
    const int dirlen = (int)(name - target);
    int keep = (int)strlen(name);
    if (1 + keep + nt > NAME_MAX)
        keep = NAME_MAX - 1 - nt;
    snprintf(buf, cap, "%.*s.%.*s%s", dirlen, target, keep > 0 ? keep : 0, name, tail);
}

static void write_all(out_file *o, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        const ssize_t w = o->direct ? write(o->fd, p, len) : pwrite(o->fd, p, len, (off_t)o->pos);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die(EX_IO, "writing '%s': %s", o->direct ? o->path : tmp_path(), w < 0 ? strerror(errno) : "short write");
        p += w;
        o->pos += (uint64_t)w;
        len -= (size_t)w;
    }
}

static void create_tmp(out_file *o, const char *path, npy_dtype dt, int ndim, const uint64_t *shape)
{
    mode_t mode;
    uid_t uid;
    gid_t gid;
    out_check(o, path, &mode, &uid, &gid);
    o->path = path;
    if (o->direct) {
        o->fd = open(path, O_WRONLY | O_CLOEXEC);
        if (o->fd < 0)
            die(EX_IO, "cannot open '%s': %s", path, strerror(errno));
    } else {
        char tmp[PATH_MAX + 128];
        int err = EEXIST;
        for (int tries = 0; tries < 100 && o->fd < 0 && err == EEXIST; tries++) {
            tmp_name(tmp, sizeof tmp, o->target);
            sigset_t old;
            signals_block(&old);
            tmp_register(tmp); /* before it exists: a signal on another thread removes it from now on */
            o->fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            err = errno;
            if (o->fd < 0)
                tmp_release();
            signals_restore(&old);
        }
        if (o->fd < 0)
            die(EX_IO, "cannot create '%s': %s", tmp, strerror(err));
        if (uid != (uid_t)-1 && geteuid() == 0 && fchown(o->fd, uid, gid) != 0)
            errno = 0; /* best effort: the mode below still applies */
        fchmod(o->fd, mode);
    }
    unsigned char hdr[NPY_MAX_DIMS * 24 + 256];
    const size_t n = npy_format_header(hdr, sizeof hdr, dt, ndim, shape);
    if (!n)
        die(EX_INTERNAL, "npy header does not fit");
    o->pos = 0;
    write_all(o, hdr, n);
}

void out_open(out_file *o, const char *path, npy_dtype dt, int ndim, const uint64_t *shape, uint64_t first,
              size_t es)
{
    o->fd = -1;
    o->direct = 0;
    phase_check(); /* every rank opened its inputs */
    if (shard_rank() == 0)
        create_tmp(o, path, dt, ndim, shape);
    if (!shard_on())
        return;
    phase_check(); /* rank 0 created the temporary file */
    struct {
        char tmp[PATH_MAX + 128];
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

void out_write(out_file *o, const void *buf, size_t len) { write_all(o, buf, len); }

void out_close(out_file *o)
{
    if (!o->direct && fsync(o->fd) != 0)
        die(EX_IO, "writing '%s': fsync: %s", tmp_path(), strerror(errno));
    const int rc = close(o->fd);
    o->fd = -1;
    if (rc != 0)
        die(EX_IO, "writing '%s': %s", o->direct ? o->path : tmp_path(), strerror(errno));
    phase_check(); /* every rank wrote, synced and closed its slice */
}

void out_commit(out_file *o)
{
    if (shard_rank() == 0 && !o->direct) {
        sigset_t old;
        signals_block(&old);
        if (rename(tmp_path(), o->target) != 0) {
            const int err = errno;
            signals_restore(&old);
            die(EX_IO, "cannot rename '%s' to '%s': %s", tmp_path(), o->target, strerror(err));
        }
        tmp_release();
        signals_restore(&old);
        /* the rename itself survives a power loss only once the directory is synced */
        char dir[PATH_MAX];
        const char *slash = strrchr(o->target, '/');
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - o->target) + (slash == o->target) : 1,
                 slash ? o->target : ".");
        const int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) != 0)
            die(EX_IO, "'%s' was written, but syncing its directory '%s' failed: %s", o->target, dir,
                strerror(errno));
        close(fd);
    }
    phase_check(); /* rank 0 renamed the output */
}

/* `.NAME.nllk-tmp.HOST.PID.RANDOM`: host and pid, or 0 if name is not one of ours. */
static int parse_tmp(const char *name, char *host, size_t cap, long *pid)
{
    const char *tag = NULL;
    for (const char *p = strstr(name, TMP_TAG); p; p = strstr(p + 1, TMP_TAG))
        tag = p;
    if (name[0] != '.' || !tag)
        return 0;
    const char *h = tag + strlen(TMP_TAG), *dot_rnd = strrchr(h, '.');
    if (!dot_rnd || strlen(dot_rnd + 1) != 6 || dot_rnd == h)
        return 0;
    const char *dot_pid = dot_rnd - 1;
    while (dot_pid > h && *dot_pid != '.')
        dot_pid--;
    if (*dot_pid != '.' || dot_pid + 1 == dot_rnd)
        return 0;
    char *end;
    *pid = strtol(dot_pid + 1, &end, 10);
    if (end != dot_rnd || *pid <= 0)
        return 0;
    snprintf(host, cap, "%.*s", (int)(dot_pid - h), h);
    return 1;
}

int out_clean(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "nllk-score: error: --clean '%s': %s\n", dir, strerror(errno));
        return EX_IO;
    }
    char me[65] = "localhost", host[300], path[PATH_MAX];
    gethostname(me, sizeof me - 1);
    me[64] = 0;
    int code = EX_OK;
    for (struct dirent *e; (e = readdir(d));) {
        long pid;
        if (!parse_tmp(e->d_name, host, sizeof host, &pid))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (strcmp(host, me) != 0)
            fprintf(stderr, "nllk-score: kept %s (made on host %s: run --clean there)\n", path, host);
        else if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            fprintf(stderr, "nllk-score: kept %s (process %ld is running)\n", path, pid);
        else if (unlink(path) == 0)
            printf("removed %s\n", path);
        else {
            fprintf(stderr, "nllk-score: error: cannot remove %s: %s\n", path, strerror(errno));
            code = EX_IO;
        }
    }
    closedir(d);
    return code;
}
