/* source.h — an input of nllk-score: one or more .npy files (or .npz members) concatenated along their first
 * dimension, read chunk by chunk as if they were one array.
 *
 * The command line names the parts (cli.h): paths, "ARCHIVE.npz:NAME" members, globs (sorted in byte order; a
 * glob that matches nothing is an error) and manifests "@LIST" (one part per line, relative to the list's
 * directory; blank lines and lines starting with '#' skipped). src_open expands them, opens every part once to
 * check it (the same dtype, and the same shape beyond the first dimension: a mismatch names the file) and closes
 * it again; while scoring, the part that holds the chunk is opened (and the previous one closed), and its header
 * is checked again (a part rewritten in between is an error, not a different array). So any number of parts takes
 * one file descriptor and one mapping at a time.
 *
 * A chunk never spans two parts (score.c cuts chunks at part ends; the accumulators give the same bits for any
 * cut), so a chunk is read from the part in place, as from a single file. */
#ifndef NLLK_SCORE_SOURCE_H
#define NLLK_SCORE_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "npyfile.h"

typedef struct part {
    char *spec;      /* the part's name (path or ARCHIVE.npz:NAME)                               */
    npy_header h;    /* as first read                                                            */
    uint64_t first;  /* its first element in the concatenation                                   */
} part;

typedef struct source {
    const char *role;   /* "input", "target"                                                      */
    int n;              /* parts                                                                   */
    part *parts;
    npy_header h;       /* the concatenation's: dtype, itemsize, shape (shape[0] summed), count    */
    int misaligned;     /* some part is an unaligned .npz member (read through copies only)        */
    npy_file f;         /* the open part (fd -1: none)                                             */
    int cur;            /* its index, or -1                                                        */
    io_mode mode;
    int release;
    size_t reserve;     /* npyf_reserve for every part                                             */
} source;

/* Expands and checks specs[0..n) (see above) into s. Errors end the program: no part, an empty glob, an
 * unreadable manifest (EX_IO), a part that is not a valid .npy (EX_FORMAT), dtypes that differ (EX_FORMAT),
 * shapes that differ beyond the first dimension or a 0-d part among several (EX_SHAPE), each naming the file. */
void src_open(source *s, const char *const *specs, int n, io_mode mode, int release, const char *role);

/* The largest chunk (bytes) src_get will be asked for. */
void src_reserve(source *s, size_t bytes);

/* The part holding element elem (< s->h.count), opened if it is not the open one; *local: elem's index in it. */
npy_file *src_part(source *s, uint64_t elem, uint64_t *local);

/* The end (one past the last element, in the concatenation) of the part holding element elem. */
uint64_t src_part_end(const source *s, uint64_t elem);

/* The part holding elem is not the open one (src_part would switch). */
int src_switching(const source *s, uint64_t elem);

/* Elements [elem, elem + count) (inside one part), valid until src_put; read errors end the program. */
const void *src_get(source *s, uint64_t elem, uint64_t count);
void src_put(source *s, uint64_t elem, uint64_t count);

/* The part's name of element elem (for messages), and elem's index in it. */
const char *src_name(const source *s, uint64_t elem, uint64_t *local);

void src_close(source *s);

#endif
