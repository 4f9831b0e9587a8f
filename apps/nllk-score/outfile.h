/* outfile.h — the --out file.
 *
 * A regular file (or a new name) is written atomically: a temporary file in the output's directory, fsync'ed,
 * renamed over the output only when the whole run succeeded and its report was written, then the directory is
 * fsync'ed. The temporary file is unnamed (O_TMPFILE) where the file system allows and every rank runs on this
 * host: no way out leaves it behind, SIGKILL included (mpirun's Ctrl-C ends with SIGKILL one second after its
 * SIGTERM, and its runtime may end a rank without any signal); it gets its name only at the end, linked as below
 * and renamed at once. Otherwise it is named `.NAME.nllk-tmp.HOST.PID.RANDOM` (NAME shortened to keep the whole
 * within NAME_MAX); every way out that runs code removes it (fail.h), and SIGKILL's leftovers are recognizable:
 * `nllk-score --clean DIR`. The new
 * file keeps an existing output's mode (and, for root, its owner); a symbolic link is followed, its target is
 * replaced and the link stays. A FIFO or character device (/dev/null, /dev/stdout on a pipe) is written through:
 * no temporary file, no rename, so a failure can leave part of the output in it. Anything else that is not a
 * regular file, and a file that is one of the inputs, is refused.
 *
 * Under MPI every rank writes its slice of the one temporary file at its own offset; rank 0 creates and renames
 * it (a FIFO or device output is refused there). */
#ifndef NLLK_SCORE_OUTFILE_H
#define NLLK_SCORE_OUTFILE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "npy.h"

typedef struct out_file {
    int fd;
    const char *path;      /* as given                                                        */
    char target[PATH_MAX]; /* the file replaced: path, or where its symbolic links lead       */
    int direct;            /* a FIFO or character device: written through                     */
    uint64_t pos;          /* where the next write goes (positioned writes for regular files) */
    uint64_t begin;        /* where this rank's writes began (0 on rank 0: the header)            */
    int unnamed;           /* the temporary file is an O_TMPFILE (rank 0 keeps fd open until out_commit) */
} out_file;

/* Refuses an output that is the same file (device and inode) as an input (role: "--input", ...). */
void out_not_input(const char *path, const char *role, const char *input);

/* Creates the output (header for `shape`, dtype dt) for this rank's slice starting at element `first` of
 * es bytes. Collective under MPI. */
void out_open(out_file *o, const char *path, npy_dtype dt, int ndim, const uint64_t *shape, uint64_t first,
              size_t es);

/* Appends len bytes to this rank's slice. */
void out_write(out_file *o, const void *buf, size_t len);

/* fsync and close this rank's slice (collective under MPI; rank 0 keeps an unnamed file open for out_commit). */
void out_close(out_file *o);

/* Renames the temporary file over the output and fsyncs the directory (rank 0; collective under MPI). */
void out_commit(out_file *o);

/* nllk-score --clean DIR: removes DIR's temporary files whose process (on this host) is gone. Returns an exit
 * code. */
int out_clean(const char *dir);

#endif
