/* report.h — the result of a run, printed for people or as one JSON object (--json). */
#ifndef NLLK_SCORE_REPORT_H
#define NLLK_SCORE_REPORT_H

#include <stdint.h>

#include <nllk.h>

#include "npy.h"
#include "perclass.h"

typedef struct result {
    const char *command;
    nllk_reduction reduction;
    npy_dtype dtype;
    double mean, sum, total_weight;
    uint64_t count, chunks, chunk_elems, bytes;
    double seconds;
    const char *out;
    const char **inputs, **targets; /* the parts, in the order scored (malloc'ed names; targets points into
                                       the inputs array, which holds both) */
    int ninputs, ntargets;
    int per_class;                  /* --per-class: classes[0..nclasses), the classes that occur */
    class_result *classes;
    uint64_t nclasses;
    int ranks;            /* under MPI: the number of ranks (0 otherwise)  */
    double *rank_seconds; /* and each rank's seconds to score its shard    */
} result;

/* Prints r to stdout (json: one JSON object; quiet: the loss only) and flushes; a write error is fatal. */
void print_result(const result *r, int json, int quiet);

#endif
