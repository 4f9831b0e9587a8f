/* fail.c — see fail.h. */
#define _GNU_SOURCE
#include "fail.h"

#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shard.h"
#include "util.h"

static char g_tmp[PATH_MAX + 64];          /* the temporary output file's name, while registered */
static volatile sig_atomic_t g_tmp_active; /* 1 while g_tmp may exist                             */
static volatile sig_atomic_t g_bar_drawn;  /* a progress line is on the terminal                  */

void tmp_register(const char *path)
{
    snprintf(g_tmp, sizeof g_tmp, "%s", path);
    g_tmp_active = 1;
}

void tmp_release(void) { g_tmp_active = 0; }
const char *tmp_path(void) { return g_tmp; }
void fail_bar_drawn(int drawn) { g_bar_drawn = drawn; }

static void on_signal(int sig)
{
    if (g_tmp_active)
        unlink(g_tmp);
    if (g_bar_drawn)
        write_str(2, "\n");
    if (sig == SIGBUS) {
        write_str(2, "nllk-score: error: an input file changed or became unreadable while mapped (SIGBUS)\n");
        _exit(EX_IO);
    }
    if (shard_rank() == 0) /* under mpirun every rank gets the signal: one line for the job */
        write_str(2, "nllk-score: interrupted\n");
    _exit(EX_INTERRUPTED);
}

void signals_block(void *old)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGINT);
    sigaddset(&s, SIGTERM);
    sigaddset(&s, SIGHUP);
    sigprocmask(SIG_BLOCK, &s, old);
}

void signals_restore(const void *old) { sigprocmask(SIG_SETMASK, old, NULL); }

void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
}

/* Ends the program with an error every rank agreed on (shard.h): rank 0 prints it. */
static void fail(int code, const char *msg) __attribute__((noreturn));
static void fail(int code, const char *msg)
{
    if (shard_on()) {
        /* every rank is exiting with this error: mpirun's SIGTERM to the slower ones (sent when the first exits,
         * and delivered to any of MPI's threads, which do not block it) must not turn it into "interrupted" */
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
    }
    sigset_t old;
    signals_block(&old);
    if (g_tmp_active) {
        unlink(g_tmp);
        g_tmp_active = 0;
    }
    if (g_bar_drawn)
        write_str(2, "\n");
    if (shard_rank() == 0)
        fprintf(stderr, "nllk-score: error: %s\n", msg);
    exit(code);
}

static void vdie(int code, const char *fmt, va_list ap) __attribute__((noreturn, format(printf, 2, 0)));
static void vdie(int code, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    for (char *p = msg; *p; p++) /* one line */
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    /* under MPI: the error of the lowest failing rank, the one a single process would meet first */
    fail(shard_on() ? shard_agree(code, msg, sizeof msg) : code, msg);
}

void die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vdie(code, fmt, ap);
}

void usage_error(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    die(EX_USAGE, "%s (see nllk-score --help)", msg);
}

void phase_check(void)
{
    char msg[1024] = "";
    const int code = shard_on() ? shard_agree(0, msg, sizeof msg) : 0;
    if (code)
        fail(code, msg);
}
