/* progress.h — the progress bar on stderr (rank 0's view of the whole job under MPI). */
#ifndef NLLK_SCORE_PROGRESS_H
#define NLLK_SCORE_PROGRESS_H

#include <stdint.h>

typedef struct progress {
    int on;      /* 0 never, 1 after ~1 s when stderr is a terminal, 2 always (--progress) */
    int tty, drawn;
    double t0, last;
    uint64_t total;
    double scale; /* under MPI: the whole job's bytes per byte of rank 0's shard (0: not scaled) */
} progress;

/* mode: 0 quiet, 1 automatic, 2 --progress. total_bytes: the whole job's; local_total: this rank's shard's. */
void progress_init(progress *p, int mode, uint64_t total_bytes, uint64_t local_total);
void progress_update(progress *p, uint64_t done); /* done: bytes of this rank's shard */
void progress_end(progress *p);

#endif
