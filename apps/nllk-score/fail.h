/* fail.h — how nllk-score ends: exit codes, one-line errors (agreed across MPI ranks), signals, and the one
 * temporary output file that every way out removes. */
#ifndef NLLK_SCORE_FAIL_H
#define NLLK_SCORE_FAIL_H

#include <signal.h>

enum {
    EX_OK = 0,
    EX_INTERNAL = 1,    /* a library failure not covered below (a bug)                          */
    EX_USAGE = 2,       /* unknown flag or command, bad or missing value                        */
    EX_IO = 3,          /* file missing/unreadable, output not writable, write failure          */
    EX_FORMAT = 4,      /* not .npy, truncated, Fortran order, big-endian, unsupported dtype    */
    EX_SHAPE = 5,       /* shapes do not match, weight length is not C                          */
    EX_TARGET = 6,      /* an NLL target outside [0, C) that is not ignore_index                 */
    EX_UNSUPPORTED = 7, /* --isa names an instruction set this CPU or build lacks               */
    EX_INTERRUPTED = 130
};

/* Installs the signal handlers (call before and after MPI_Init: Open MPI installs its own where none is set). */
void install_signals(void);

/* The temporary output file: from tmp_register until tmp_release, every exit path removes it. tmp_register only
 * records the name: call it BEFORE creating the file (a signal in between removes a name that may not exist). */
void tmp_register(const char *path);
void tmp_release(void);
const char *tmp_path(void); /* the registered name ("" before), for messages */

/* A progress line is on the terminal: an error first ends it. */
void fail_bar_drawn(int drawn);

/* Ends the program with an error: under MPI every rank agrees on the error of the lowest failing rank (shard.h),
 * which rank 0 prints. */
void die(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
void usage_error(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* A warning on stderr (an input that looks wrong; not an error): "nllk-score: warning: ..." (under MPI with
 * the rank that saw it). --quiet keeps warnings, --no-warn (warnings_off(1)) silences them. */
void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void warnings_off(int off);

/* The end of a phase under MPI (shard.h): exits with the agreed error if any rank failed. No-op otherwise. */
void phase_check(void);

/* Blocks the termination signals in the calling thread (around creating and renaming the output). */
void signals_block(sigset_t *old);
void signals_restore(const sigset_t *old);

#endif
