/* prefetch.h — --io prefetch: the next chunk's pages are mapped on a helper thread while this one is scored. */
#ifndef NLLK_SCORE_PREFETCH_H
#define NLLK_SCORE_PREFETCH_H

#include <pthread.h>
#include <stdint.h>

#include "npyfile.h"

typedef struct span {
    npy_file *f;
    uint64_t elem, count;
} span;

enum { PREFETCH_FILES = 2 }; /* spans per chunk: one per file */

typedef struct prefetcher {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int on, busy, quit;
    span pop[PREFETCH_FILES], drop[PREFETCH_FILES];
    int npop, ndrop;
} prefetcher;

/* on: start the helper thread (if it cannot start, prefetch_step populates on the calling thread). */
void prefetch_start(prefetcher *p, int on);

/* Chunk `cur` (n spans, one per file) is about to be scored: make sure its pages are in, then have `next` brought
 * in and `prev` dropped in the background (either may be NULL). Without the helper thread, all happens here. */
void prefetch_step(prefetcher *p, const span *cur, const span *next, const span *prev, int n, int first);

/* Stops the helper and drops the mapping of `last`'s files (NULL: keep). */
void prefetch_stop(prefetcher *p, const span *last, int n);

#endif
