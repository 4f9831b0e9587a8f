/* cli.h — nllk-score's command line: one table of options drives both the parser and --help. */
#ifndef NLLK_SCORE_CLI_H
#define NLLK_SCORE_CLI_H

#include <stdint.h>

#include <nllk.h>

#include "npyfile.h"

typedef enum command { CMD_POISSON, CMD_NLL, CMD_DEMO, CMD_CE } command;

/* --input / --target: the names given (paths, ARCHIVE.npz:NAME, globs, @LIST; expanded by source.h) */
typedef struct name_list {
    const char **v;
    int n, cap;
} name_list;

typedef struct options {
    command cmd;
    name_list inputs, targets;
    const char *input, *target; /* the first of each (NULL: none given) */
    const char *weight, *out, *isa;
    int log_input, full, json, quiet, progress;
    int per_class, no_warn;
    double label_smoothing; /* ce */
    int probs;              /* ce --probs: the target holds class probabilities (the input's shape) */
    int ignore_set;         /* --ignore-index given */
    double eps;
    int64_t ignore_index;
    nllk_reduction reduction;
    int threads;
    uint64_t chunk_rows, chunk_bytes;
    io_mode io;
    int io_set; /* --io given; else the per-loss default (io_for) */
    int chunk_bytes_set;
    int keep_pages;
} options;

/* Default chunk: input + target bytes per chunk (a few L2s; measured in BENCHMARKS.md, ## nllk-score). */
#define DEFAULT_CHUNK_BYTES (8u << 20)
/* ce's: the library's cross-entropy update has a per-call cost that 8 MiB chunks (one (21, 256, 256) sample) do
 * not amortize: 64 MiB measured 2x faster (BENCHMARKS.md, ## nllk-score, ce). */
#define DEFAULT_CHUNK_BYTES_CE (64u << 20)

/* Parses argv into o (exits with EX_USAGE and one line on a bad command line; prints --help/--version). */
void parse_options(int argc, char **argv, options *o);

/* Applies --threads and --isa to the library. */
void apply_threads_isa(const options *o);

/* The --io mode used for the inputs of o's command. */
io_mode io_for(const options *o);

const char *reduction_name(nllk_reduction r);

#endif
