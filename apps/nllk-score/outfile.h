/* outfile.h — the --out file, written atomically: a temporary file in the output's directory, renamed over the
 * output only when the whole run succeeded (fail.h removes it on every other way out). Under MPI every rank
 * writes its slice of the one temporary file at its own offset; rank 0 creates and renames it. */
#ifndef NLLK_SCORE_OUTFILE_H
#define NLLK_SCORE_OUTFILE_H

#include <stddef.h>
#include <stdint.h>

#include "npy.h"

typedef struct out_file {
    int fd;
    const char *path;
    uint64_t pos; /* where the next write goes (positioned writes: under MPI every rank writes its slice) */
} out_file;

/* Creates the output (header for `shape`, dtype dt) for this rank's slice starting at element `first` of
 * es bytes. Collective under MPI. */
void out_open(out_file *o, const char *path, npy_dtype dt, int ndim, const uint64_t *shape, uint64_t first,
              size_t es);

/* Appends len bytes to this rank's slice. */
void out_write(out_file *o, const void *buf, size_t len);

/* Closes the file and renames it over the output (collective under MPI). */
void out_commit(out_file *o);

#endif
