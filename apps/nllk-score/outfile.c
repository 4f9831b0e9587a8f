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

/* The name of the directory holding path ("." for a bare name, "/" for a name directly under it). */
static void dir_of(char *dir, size_t cap, const char *path)
{
    const char *slash = strrchr(path, '/');
    snprintf(dir, cap, "%.*s", slash ? (int)(slash - path) + (slash == path) : 1, slash ? path : ".");
}

/* The file a message names: the output itself for a FIFO or device and for an unnamed temporary file. */
static const char *shown(const out_file *o) { return o->direct || o->unnamed ? o->path : tmp_path(); }

/* An unnamed temporary file in the output's directory (O_TMPFILE), when the kernel and file system have them and
 * /proc gives it back by descriptor (how out_commit links it and the other ranks open it); else o->fd stays -1. */
static void open_unnamed(out_file *o)
{
    char dir[PATH_MAX], self[64];
    dir_of(dir, sizeof dir, o->target);
    o->fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (o->fd < 0)
        return;
    snprintf(self, sizeof self, "/proc/self/fd/%d", o->fd);
    if (access(self, W_OK) != 0) {
        close(o->fd);
        o->fd = -1;
        return;
    }
    o->unnamed = 1;
}

/* Makes the temporary file under a fresh name (tmp_name) with make, retrying while the name exists: the name is
 * registered before make runs, with signals blocked, so that from the moment the file may exist a signal on any
 * thread removes it (fail.h). Returns make's result (>= 0), or -1 with errno set by the last failure. */
static int claim_tmp_name(const out_file *o, char *tmp, size_t cap, int (*make)(const out_file *o, const char *tmp))
{
    int rc = -1, err = EEXIST;
    for (int tries = 0; tries < 100 && rc < 0 && err == EEXIST; tries++) {
        tmp_name(tmp, cap, o->target);
        sigset_t old;
        signals_block(&old);
        tmp_register(tmp);
        rc = make(o, tmp);
        err = errno;
        if (rc < 0)
            tmp_release();
        signals_restore(&old);
    }
    errno = err;
    return rc;
}

/* make for claim_tmp_name: a new named file, its descriptor. */
static int create_named(const out_file *o, const char *tmp)
{
    (void)o;
    return open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
}

/* make for claim_tmp_name: a name for the unnamed file open as o->fd, 0. */
static int link_named(const out_file *o, const char *tmp)
{
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", o->fd);
    return linkat(AT_FDCWD, self, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW);
}

static void write_all(out_file *o, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        const ssize_t w = o->direct ? write(o->fd, p, len) : pwrite(o->fd, p, len, (off_t)o->pos);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die(EX_IO, "writing '%s': %s", shown(o), w < 0 ? strerror(errno) : "short write");
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
        if (shard_local_size() == shard_size()) /* the other ranks can open it through /proc */
            open_unnamed(o);
        char tmp[PATH_MAX + 128];
        if (o->fd < 0) {
            o->fd = claim_tmp_name(o, tmp, sizeof tmp, create_named);
            if (o->fd < 0)
                die(EX_IO, "cannot create '%s': %s", tmp, strerror(errno));
        }
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
    o->begin = 0;
    o->unnamed = 0;
    phase_check(); /* every rank opened its inputs */
    if (shard_rank() == 0)
        create_tmp(o, path, dt, ndim, shape);
    if (!shard_on())
        return;
    phase_check(); /* rank 0 created the temporary file */
    struct {
        char tmp[PATH_MAX + 128];
        uint64_t header;
        int unnamed;
    } b;
    memset(&b, 0, sizeof b);
    if (shard_rank() == 0) {
        if (o->unnamed)
            snprintf(b.tmp, sizeof b.tmp, "/proc/%ld/fd/%d", (long)getpid(), o->fd);
        else
            snprintf(b.tmp, sizeof b.tmp, "%s", tmp_path());
        b.header = o->pos;
        b.unnamed = o->unnamed;
    }
    shard_bcast(&b, sizeof b);
    if (shard_rank() != 0) {
        tmp_register(b.tmp); /* for messages; rank 0 owns (and removes) the file */
        tmp_release();
        o->unnamed = b.unnamed;
        o->path = path;
        o->fd = open(b.tmp, O_WRONLY | O_CLOEXEC);
        if (o->fd < 0)
            die(EX_IO, "cannot open the temporary file '%s' (rank %d): %s", b.tmp, shard_rank(), strerror(errno));
    }
    o->pos = b.header + first * es;
    if (shard_rank() != 0)
        o->begin = o->pos;
}

void out_write(out_file *o, const void *buf, size_t len) { write_all(o, buf, len); }

/* The data part of fsync in pieces of 8 MiB: a signal is handled between two pieces instead of after the whole
 * slice is on disk. This matters under mpirun, whose Ctrl-C sends SIGTERM and 1 s later (odls_base_sigkill_timeout)
 * SIGKILL: a rank inside one long fsync could not remove the temporary file in time. fsync then writes the rest
 * (metadata). Where sync_file_range is not supported, fsync does all of it. */
static void sync_in_pieces(const out_file *o)
{
    const uint64_t piece = (uint64_t)8 << 20;
    for (uint64_t off = o->begin; off < o->pos; off += piece) {
        const uint64_t len = o->pos - off < piece ? o->pos - off : piece;
        if (sync_file_range(o->fd, (off_t)off, (off_t)len,
                            SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER) != 0)
            return;
    }
}

void out_close(out_file *o)
{
    if (!o->direct) {
        sync_in_pieces(o);
        if (fsync(o->fd) != 0)
            die(EX_IO, "writing '%s': fsync: %s", shown(o), strerror(errno));
    }
    if (!(o->unnamed && shard_rank() == 0)) { /* closing rank 0's unnamed file would delete it */
        const int rc = close(o->fd);
        o->fd = -1;
        if (rc != 0)
            die(EX_IO, "writing '%s': %s", shown(o), strerror(errno));
    }
    phase_check(); /* every rank wrote, synced and closed its slice */
}

/* Gives the unnamed temporary file a temporary name (registered like a named one, so that a signal from here to
 * the rename removes it) and closes it. */
static void link_unnamed(out_file *o)
{
    char tmp[PATH_MAX + 128];
    if (claim_tmp_name(o, tmp, sizeof tmp, link_named) < 0)
        die(EX_IO, "cannot give the temporary file of '%s' a name: %s", o->path, strerror(errno));
    o->unnamed = 0;
    const int cl = close(o->fd);
    o->fd = -1;
    if (cl != 0)
        die(EX_IO, "writing '%s': %s", o->path, strerror(errno));
}

void out_commit(out_file *o)
{
    if (shard_rank() == 0 && o->unnamed)
        link_unnamed(o);
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
        dir_of(dir, sizeof dir, o->target);
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
