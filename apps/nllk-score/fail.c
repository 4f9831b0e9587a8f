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

#include "npyfile.h"
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

/* Signals that end the program by default and can be caught (SIGPIPE and SIGXFSZ are ignored instead: a write
 * then fails with EPIPE or EFBIG and the ordinary error path reports it). SIGINT, SIGTERM, SIGHUP exit 130; the
 * others 128 + the signal's number. */
static const int g_term[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGXCPU,
                             SIGPOLL,
#ifdef SIGPWR
                             SIGPWR,
#endif
#ifdef SIGSTKFLT
                             SIGSTKFLT
#endif
};
/* Faults (a bug, or a mapped input gone: SIGBUS, see on_sigbus): remove the temporary file, then the previous
 * disposition (the default, or a sanitizer's report) takes over. */
static const int g_fault[] = {SIGSEGV, SIGFPE, SIGILL, SIGABRT, SIGSYS};
static struct sigaction g_prev[65];

static void remove_tmp_and_bar(void)
{
    if (g_tmp_active)
        unlink(g_tmp);
    g_tmp_active = 0;
    if (g_bar_drawn)
        write_str(2, "\n");
}

static void on_terminate(int sig)
{
    remove_tmp_and_bar();
    const int classic = sig == SIGINT || sig == SIGTERM || sig == SIGHUP;
    if (shard_rank() == 0) { /* under mpirun every rank gets the signal: one line for the job */
        write_str(2, "nllk-score: interrupted");
        if (!classic) {
            write_str(2, " (SIG");
            write_str(2, sigabbrev_np(sig));
            write_str(2, ")");
        }
        write_str(2, "\n");
    }
    _exit(classic ? EX_INTERRUPTED : 128 + sig);
}

static void on_fault(int sig, siginfo_t *info, void *ctx)
{
    (void)ctx;
    remove_tmp_and_bar();
    write_str(2, "nllk-score: internal error: SIG");
    write_str(2, sigabbrev_np(sig));
    write_str(2, "\n");
    sigaction(sig, &g_prev[sig], NULL);
    if (info->si_code <= 0 || sig == SIGABRT || sig == SIGSYS) /* sent, not a fault: returning would not repeat it */
        raise(sig);
}

static void on_sigbus(int sig, siginfo_t *info, void *ctx)
{
    (void)sig;
    (void)ctx;
    if (npyf_sigbus(info->si_addr)) /* an input mapping lost its pages: zeros there, the reader reports it */
        return;
    remove_tmp_and_bar();
    write_str(2, "nllk-score: error: an input file changed or became unreadable while mapped (SIGBUS)\n");
    _exit(EX_IO);
}

void signals_block(sigset_t *old)
{
    sigset_t s;
    sigemptyset(&s);
    for (size_t k = 0; k < sizeof g_term / sizeof g_term[0]; k++)
        sigaddset(&s, g_term[k]);
    sigprocmask(SIG_BLOCK, &s, old);
}

void signals_restore(const sigset_t *old) { sigprocmask(SIG_SETMASK, old, NULL); }

void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sigaction(SIGXFSZ, &sa, NULL);
    sa.sa_handler = on_terminate;
    for (size_t k = 0; k < sizeof g_term / sizeof g_term[0]; k++)
        sigaction(g_term[k], &sa, NULL);
    sa.sa_flags = SA_SIGINFO;
    sa.sa_sigaction = on_sigbus;
    sigaction(SIGBUS, &sa, NULL);
    sa.sa_sigaction = on_fault;
    for (size_t k = 0; k < sizeof g_fault / sizeof g_fault[0]; k++) {
        struct sigaction prev;
        sigaction(g_fault[k], NULL, &prev);
        if (prev.sa_sigaction == on_fault) /* installed already (before MPI_Init) */
            continue;
        g_prev[g_fault[k]] = prev;
        sigaction(g_fault[k], &sa, NULL);
    }
}

/* Ends the program with an error every rank agreed on (shard.h): rank 0 prints it. */
static void fail(int code, const char *msg) __attribute__((noreturn));
static void fail(int code, const char *msg)
{
    if (shard_on()) {
        /* every rank is exiting with this error: mpirun's SIGTERM to the slower ones (sent when the first exits,
         * and delivered to any of MPI's threads, which do not block it) must not turn it into "interrupted" */
        for (size_t k = 0; k < sizeof g_term / sizeof g_term[0]; k++)
            signal(g_term[k], SIG_IGN);
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

void die(int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++) /* one line */
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    /* under MPI: the error of the lowest failing rank, the one a single process would meet first */
    fail(shard_on() ? shard_agree(code, msg, sizeof msg) : code, msg);
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

static int g_no_warn;

void warnings_off(int off) { g_no_warn = off; }

void warn(const char *fmt, ...)
{
    if (g_no_warn)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (g_bar_drawn)
        write_str(2, "\n");
    if (shard_on())
        fprintf(stderr, "nllk-score: warning (rank %d): %s\n", shard_rank(), msg);
    else
        fprintf(stderr, "nllk-score: warning: %s\n", msg);
}
