/* nllk-score — batch scoring of .npy datasets with nllk's streaming accumulators.
 *
 *   nllk-score poisson --input X.npy --target Y.npy [--no-log-input] [--full] [--eps E] [--reduction R] [--out F]
 *   nllk-score nll --input LOGP.npy --target T.npy [--weight W.npy] [--ignore-index I] [--reduction R] [--out F]
 *   nllk-score demo
 *
 * Files are mapped and scored chunk by chunk (nllk_*_acc_update_*), so memory stays bounded whatever the file
 * size, and the reduced result has exactly the bits of the library's one-shot call on the whole arrays.
 * Exit codes: see usage() (and README.md, "nllk-score"). */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nllk.h>

#include "npy.h"
#include "npyfile.h"
#include "shard.h"

#ifndef NLLK_SCORE_VERSION
#define NLLK_SCORE_VERSION "0.1.0"
#endif

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

/* Default chunk: input + target bytes per chunk (a few L2s; measured in BENCHMARKS.md, ## nllk-score). */
#define DEFAULT_CHUNK_BYTES (8u << 20)

static const char usage_text[] =
    "usage: nllk-score poisson --input X.npy --target Y.npy [--no-log-input] [--full] [--eps E]\n"
    "                          [--reduction mean|sum|none] [--out LOSSES.npy] [common options]\n"
    "       nllk-score nll --input LOGP.npy --target T.npy [--weight W.npy] [--ignore-index I]\n"
    "                      [--reduction mean|sum|none] [--out LOSSES.npy] [common options]\n"
    "       nllk-score demo [--threads N] [--isa NAME] [--json] [--quiet]\n"
    "\n"
    "Scores .npy files (format 1.0/2.0/3.0, little-endian, C order) of any size in bounded memory with nllk's\n"
    "streaming accumulators; the mean/sum has exactly the bits of the library's one-shot call.\n"
    "\n"
    "poisson   PyTorch's poisson_nll_loss. input and target: float32 or float64 (the same), the same shape.\n"
    "  --no-log-input     input holds rates (loss x - t*log(x+eps)); default: log-rates (exp(x) - t*x)\n"
    "  --full             add the Stirling term where t > 1\n"
    "  --eps E            default 1e-8 (used with --no-log-input)\n"
    "nll       PyTorch's nll_loss. input (C), (N, C) or (N, C, d1..dK) log-probabilities, float32/float64;\n"
    "          target (), (N) or (N, d1..dK): int64, int32 or uint8.\n"
    "  --weight W.npy     C class weights (float32/float64)\n"
    "  --ignore-index I   default -100\n"
    "common:\n"
    "  --reduction R      mean (default), sum, or none (per-element losses; needs --out)\n"
    "  --out F.npy        write the per-element losses (input's dtype, target's shape); written to a\n"
    "                     temporary file renamed at the end: a failure or Ctrl-C leaves no partial file\n"
    "  --threads N        threads (default: NLLK_NUM_THREADS, else the number of cores)\n"
    "  --isa NAME         force scalar, avx2, avx512 or neon\n"
    "  --chunk-rows R     rows (samples; elements for 0-d/1-D Poisson) per chunk; default: ~8 MiB chunks\n"
    "  --chunk-bytes B    the default chunk's size in bytes (when --chunk-rows is not given)\n"
    "  --io MODE          how chunks are read: auto (default: mmap for poisson, pread for nll), mmap,\n"
    "                     pread, populate, prefetch, window (see BENCHMARKS.md)\n"
    "  --keep-pages       leave consumed chunks mapped (a little faster; the resident set grows to the\n"
    "                     file size instead of staying at a few chunks)\n"
    "  --json             print a machine-readable summary (loss, count, total_weight, seconds, elements/s,\n"
    "                     isa, threads, ...)\n"
    "  --progress         always show a progress bar on stderr (default: only when stderr is a terminal and\n"
    "                     the run takes more than about a second)\n"
    "  --quiet, -q        no progress bar; print only the loss value (or nothing for --reduction none)\n"
    "  --help, -h         this text;   --version   the program's and the library's version\n"
    "\n"
    "exit codes: 0 ok, 1 internal error, 2 usage (unknown flag, bad value), 3 I/O (missing or unreadable\n"
    "file, output not writable), 4 bad .npy (not .npy, truncated, Fortran order, big-endian, unsupported\n"
    "dtype), 5 shapes do not match (or weight length is not C), 6 target out of range, 7 ISA not\n"
    "available, 130 interrupted (SIGINT/SIGTERM).\n"
    "\n"
    "MPI builds: under `mpirun -n K nllk-score ...` each rank scores its contiguous shard of the same files and rank\n"
    "0 merges them: the same bits, output and errors as one process (README.md, \"nllk-score on a cluster\").\n";

/* ---- cleanup on errors and signals ------------------------------------------------------------------------- */

static char g_tmp[PATH_MAX + 64];          /* the temporary output file, while it exists */
static volatile sig_atomic_t g_tmp_active; /* 1 while g_tmp exists                        */
static volatile sig_atomic_t g_bar_drawn;  /* a progress line is on the terminal          */

static void write_str(int fd, const char *s)
{
    size_t n = strlen(s);
    while (n) {
        const ssize_t w = write(fd, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

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

static void block_signals(sigset_t *old)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGINT);
    sigaddset(&s, SIGTERM);
    sigaddset(&s, SIGHUP);
    sigprocmask(SIG_BLOCK, &s, old);
}

static void install_signals(void)
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
    block_signals(&old);
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

static void die(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void die(int code, const char *fmt, ...)
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

/* The end of a phase under MPI (shard.h): exits with the agreed error if any rank failed. No-op otherwise. */
static void phase_check(void)
{
    char msg[1024] = "";
    const int code = shard_on() ? shard_agree(0, msg, sizeof msg) : 0;
    if (code)
        fail(code, msg);
}

static void usage_error(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void usage_error(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    die(EX_USAGE, "%s (see nllk-score --help)", msg);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- options ----------------------------------------------------------------------------------------------- */

typedef enum command { CMD_POISSON, CMD_NLL, CMD_DEMO } command;

typedef struct options {
    command cmd;
    const char *input, *target, *weight, *out, *isa;
    int log_input, full, json, quiet, progress;
    double eps;
    int64_t ignore_index;
    nllk_reduction reduction;
    int threads;
    uint64_t chunk_rows, chunk_bytes;
    io_mode io;
    int io_set; /* --io given; else the per-loss default (io_for) */
    int keep_pages;
    /* which command-specific flags were given (to reject them on the wrong command) */
    const char *poisson_flag, *nll_flag, *file_flag;
} options;

static int parse_i64(const char *s, int64_t *v)
{
    char *end;
    errno = 0;
    const long long x = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return 0;
    *v = x;
    return 1;
}

static int parse_u64(const char *s, uint64_t *v)
{
    char *end;
    if (*s == '-' || *s == '+' || *s == ' ' || !*s)
        return 0;
    errno = 0;
    const unsigned long long x = strtoull(s, &end, 10);
    if (errno || end == s || *end)
        return 0;
    *v = x;
    return 1;
}

static const char *reduction_name(nllk_reduction r)
{
    return r == NLLK_REDUCTION_NONE ? "none" : r == NLLK_REDUCTION_SUM ? "sum" : "mean";
}

enum {
    OPT_INPUT = 256, OPT_TARGET, OPT_WEIGHT, OPT_IGNORE, OPT_REDUCTION, OPT_NO_LOG, OPT_FULL, OPT_EPS, OPT_THREADS,
    OPT_ISA, OPT_CHUNK_ROWS, OPT_CHUNK_BYTES, OPT_JSON, OPT_PROGRESS, OPT_IO, OPT_KEEP_PAGES, OPT_VERSION
};

static void print_version(void)
{
    printf("nllk-score %s (libnllk %s, isa %s)\n", NLLK_SCORE_VERSION, nllk_version_string(), nllk_active_isa());
}

static void parse_options(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->log_input = 1;
    o->eps = 1e-8;
    o->ignore_index = -100;
    o->reduction = NLLK_REDUCTION_MEAN;
    o->chunk_bytes = DEFAULT_CHUNK_BYTES;
    o->io = IO_POPULATE;
    if (argc < 2)
        usage_error("missing command: poisson, nll or demo");
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(usage_text, stdout);
        exit(EX_OK);
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
        print_version();
        exit(EX_OK);
    }
    if (!strcmp(cmd, "poisson"))
        o->cmd = CMD_POISSON;
    else if (!strcmp(cmd, "nll"))
        o->cmd = CMD_NLL;
    else if (!strcmp(cmd, "demo"))
        o->cmd = CMD_DEMO;
    else if (cmd[0] == '-')
        usage_error("missing command before '%s': poisson, nll or demo", cmd);
    else
        usage_error("unknown command '%s': poisson, nll or demo", cmd);

    static const struct option longopts[] = {
        {"input", required_argument, 0, OPT_INPUT},
        {"target", required_argument, 0, OPT_TARGET},
        {"weight", required_argument, 0, OPT_WEIGHT},
        {"ignore-index", required_argument, 0, OPT_IGNORE},
        {"reduction", required_argument, 0, OPT_REDUCTION},
        {"out", required_argument, 0, 'o'},
        {"no-log-input", no_argument, 0, OPT_NO_LOG},
        {"full", no_argument, 0, OPT_FULL},
        {"eps", required_argument, 0, OPT_EPS},
        {"threads", required_argument, 0, OPT_THREADS},
        {"isa", required_argument, 0, OPT_ISA},
        {"chunk-rows", required_argument, 0, OPT_CHUNK_ROWS},
        {"chunk-bytes", required_argument, 0, OPT_CHUNK_BYTES},
        {"io", required_argument, 0, OPT_IO},
        {"keep-pages", no_argument, 0, OPT_KEEP_PAGES},
        {"json", no_argument, 0, OPT_JSON},
        {"quiet", no_argument, 0, 'q'},
        {"progress", no_argument, 0, OPT_PROGRESS},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, OPT_VERSION},
        {0, 0, 0, 0}};
    opterr = 0;
    optind = 1;
    const int ac = argc - 1;
    char **av = argv + 1;
    int c, idx;
    while ((c = getopt_long(ac, av, ":o:qh", longopts, &idx)) != -1) {
        const char *arg = optarg;
        switch (c) {
        case OPT_INPUT: o->input = arg; break;
        case OPT_TARGET: o->target = arg; break;
        case OPT_WEIGHT: o->weight = arg; o->nll_flag = "--weight"; break;
        case OPT_IGNORE:
            if (!parse_i64(arg, &o->ignore_index))
                usage_error("--ignore-index: '%s' is not a 64-bit integer", arg);
            o->nll_flag = "--ignore-index";
            break;
        case OPT_REDUCTION:
            if (!strcmp(arg, "mean"))
                o->reduction = NLLK_REDUCTION_MEAN;
            else if (!strcmp(arg, "sum"))
                o->reduction = NLLK_REDUCTION_SUM;
            else if (!strcmp(arg, "none"))
                o->reduction = NLLK_REDUCTION_NONE;
            else
                usage_error("--reduction: '%s' is not valid (mean, sum or none)", arg);
            o->file_flag = "--reduction";
            break;
        case 'o': o->out = arg; o->file_flag = "--out"; break;
        case OPT_NO_LOG: o->log_input = 0; o->poisson_flag = "--no-log-input"; break;
        case OPT_FULL: o->full = 1; o->poisson_flag = "--full"; break;
        case OPT_EPS: {
            char *end;
            errno = 0;
            o->eps = strtod(arg, &end);
            if (errno == ERANGE && fabs(o->eps) > 1)
                usage_error("--eps: '%s' is out of range", arg);
            if (end == arg || *end)
                usage_error("--eps: '%s' is not a number", arg);
            o->poisson_flag = "--eps";
            break;
        }
        case OPT_THREADS: {
            uint64_t t;
            if (!parse_u64(arg, &t) || t > 4096)
                usage_error("--threads: '%s' is not a thread count (0 = default, 1..4096)", arg);
            o->threads = (int)t;
            break;
        }
        case OPT_ISA: o->isa = arg; break;
        case OPT_CHUNK_ROWS:
            if (!parse_u64(arg, &o->chunk_rows) || o->chunk_rows == 0)
                usage_error("--chunk-rows: '%s' is not a positive integer", arg);
            o->file_flag = "--chunk-rows";
            break;
        case OPT_CHUNK_BYTES:
            if (!parse_u64(arg, &o->chunk_bytes) || o->chunk_bytes == 0)
                usage_error("--chunk-bytes: '%s' is not a positive integer", arg);
            o->file_flag = "--chunk-bytes";
            break;
        case OPT_IO:
            o->io_set = 1;
            if (!strcmp(arg, "auto"))
                o->io_set = 0;
            else if (!strcmp(arg, "populate"))
                o->io = IO_POPULATE;
            else if (!strcmp(arg, "mmap"))
                o->io = IO_MMAP;
            else if (!strcmp(arg, "window"))
                o->io = IO_WINDOW;
            else if (!strcmp(arg, "pread"))
                o->io = IO_PREAD;
            else if (!strcmp(arg, "prefetch"))
                o->io = IO_PREFETCH;
            else
                usage_error("--io: '%s' is not valid (auto, mmap, pread, populate, prefetch, window)", arg);
            o->file_flag = "--io";
            break;
        case OPT_KEEP_PAGES: o->keep_pages = 1; o->file_flag = "--keep-pages"; break;
        case OPT_JSON: o->json = 1; break;
        case 'q': o->quiet = 1; break;
        case OPT_PROGRESS: o->progress = 1; o->file_flag = "--progress"; break;
        case 'h': fputs(usage_text, stdout); exit(EX_OK);
        case OPT_VERSION: print_version(); exit(EX_OK);
        case ':': usage_error("option '%s' needs a value", av[optind - 1]);
        default:
            if (optopt && optopt < 256)
                usage_error("unknown option '-%c'", optopt);
            usage_error("unknown option '%s'", av[optind - 1]);
        }
    }
    if (optind < ac)
        usage_error("unexpected argument '%s'", av[optind]);
    if (o->cmd == CMD_DEMO) {
        if (o->input || o->target || o->poisson_flag || o->nll_flag || o->file_flag)
            usage_error("demo takes only --threads, --isa, --json, --quiet");
        return;
    }
    if (o->cmd == CMD_POISSON && o->nll_flag)
        usage_error("%s is an option of nll, not poisson", o->nll_flag);
    if (o->cmd == CMD_NLL && o->poisson_flag)
        usage_error("%s is an option of poisson, not nll", o->poisson_flag);
    if (!o->input)
        usage_error("--input is required");
    if (!o->target)
        usage_error("--target is required");
    if (o->reduction == NLLK_REDUCTION_NONE && !o->out)
        usage_error("--reduction none writes per-element losses: give --out FILE.npy");
    if (o->quiet)
        o->progress = 0;
}

static void apply_threads_isa(const options *o)
{
    if (o->threads && nllk_set_num_threads(o->threads) != NLLK_OK)
        die(EX_INTERNAL, "nllk_set_num_threads: %s", nllk_last_error());
    if (!o->threads && !getenv("NLLK_NUM_THREADS") && shard_local_size() > 1) {
        const int t = nllk_get_num_threads() / shard_local_size(); /* ranks of one node share its cores */
        nllk_set_num_threads(t > 0 ? t : 1);
    }
    if (o->isa) {
        const nllk_status st = nllk_set_isa(o->isa);
        if (st == NLLK_ERR_INVALID_ARGUMENT)
            usage_error("--isa: unknown instruction set '%s' (scalar, avx2, avx512, neon)", o->isa);
        if (st != NLLK_OK)
            die(EX_UNSUPPORTED, "--isa %s: %s", o->isa, nllk_last_error());
    }
}

/* ---- progress bar ------------------------------------------------------------------------------------------ */

typedef struct progress {
    int on;      /* 0 never, 1 after ~1 s when stderr is a terminal, 2 always (--progress) */
    int tty, drawn;
    double t0, last;
    uint64_t total;
    double scale; /* under MPI: the whole job's bytes per byte of rank 0's shard (0: not scaled) */
} progress;

static void progress_init(progress *p, const options *o, uint64_t total_bytes)
{
    memset(p, 0, sizeof *p);
    p->tty = isatty(2);
    p->on = o->quiet ? 0 : o->progress ? 2 : p->tty ? 1 : 0;
    p->t0 = p->last = now_s();
    p->total = total_bytes;
}

/* Under MPI only rank 0 draws the bar: its own shard's progress (local_total bytes) scaled to the whole job. */
static void progress_shard(progress *p, uint64_t local_total)
{
    if (shard_rank() != 0)
        p->on = 0;
    else if (shard_size() > 1)
        p->scale = local_total ? (double)p->total / (double)local_total : 1.0;
}

static void progress_update(progress *p, uint64_t done)
{
    if (!p->on)
        return;
    if (p->scale)
        done = done * p->scale >= (double)p->total ? p->total : (uint64_t)(done * p->scale);
    const double now = now_s(), el = now - p->t0;
    if (p->on == 1 && el < 1.0)
        return;
    if (now - p->last < (p->tty ? 0.1 : 1.0) && done < p->total && p->drawn)
        return;
    p->last = now;
    const double frac = p->total ? (double)done / (double)p->total : 1.0;
    char bar[31];
    const int fill = (int)(frac * 30.0);
    for (int k = 0; k < 30; k++)
        bar[k] = k < fill ? '#' : '.';
    bar[30] = 0;
    const double rate = el > 0 ? (double)done / el : 0;
    const double eta = rate > 0 ? (double)(p->total - done) / rate : 0;
    char line[200];
    snprintf(line, sizeof line, "%s[%s] %5.1f%%  %.2f/%.2f GB  %.2f GB/s  ETA %d:%02d%s", p->tty ? "\r" : "", bar,
             100.0 * frac, (double)done * 1e-9, (double)p->total * 1e-9, rate * 1e-9, (int)eta / 60, (int)eta % 60,
             p->tty ? "\033[K" : "\n");
    write_str(2, line);
    p->drawn = 1;
    g_bar_drawn = p->tty;
}

static void progress_end(progress *p)
{
    if (g_bar_drawn)
        write_str(2, "\r\033[K");
    g_bar_drawn = 0;
    (void)p;
}

/* ---- output file ------------------------------------------------------------------------------------------- */

typedef struct out_file {
    int fd;
    const char *path;
    uint64_t pos; /* where the next write goes (positioned writes: under MPI every rank writes its slice) */
} out_file;

static mode_t g_umask;

static void out_check(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        die(EX_IO, "--out '%s' is a directory", path);
    if (strlen(path) > PATH_MAX)
        die(EX_IO, "--out '%s': path too long", path);
}

static void out_open(out_file *o, const char *path, npy_dtype dt, int ndim, const uint64_t *shape)
{
    out_check(path);
    const char *slash = strrchr(path, '/');
    const int dirlen = slash ? (int)(slash - path) + 1 : 0;
    sigset_t old;
    block_signals(&old);
    snprintf(g_tmp, sizeof g_tmp, "%.*s.%s.tmp-XXXXXX", dirlen, path, slash ? slash + 1 : path);
    o->fd = mkstemp(g_tmp);
    const int err = errno;
    if (o->fd >= 0)
        g_tmp_active = 1;
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (o->fd < 0)
        die(EX_IO, "cannot create '%s': %s", g_tmp, strerror(err));
    o->path = path;
    fchmod(o->fd, 0666 & ~g_umask);
    unsigned char hdr[NPY_MAX_DIMS * 24 + 256];
    const size_t n = npy_format_header(hdr, sizeof hdr, dt, ndim, shape);
    if (!n)
        die(EX_INTERNAL, "npy header does not fit");
    const ssize_t w = write(o->fd, hdr, n);
    if (w != (ssize_t)n)
        die(EX_IO, "writing '%s': %s", g_tmp, w < 0 ? strerror(errno) : "short write");
    o->pos = n;
}

/* out_open for this rank's slice starting at output element `first`: rank 0 creates the temporary file with the
 * whole output's header, the other ranks open it (a shared filesystem) and write at their own offsets. */
static void out_open_shard(out_file *o, const char *path, npy_dtype dt, int ndim, const uint64_t *shape,
                           uint64_t first, size_t es)
{
    phase_check(); /* every rank opened its inputs */
    if (shard_rank() == 0)
        out_open(o, path, dt, ndim, shape);
    if (!shard_on())
        return;
    phase_check(); /* rank 0 created the temporary file */
    struct {
        char tmp[sizeof g_tmp];
        uint64_t header;
    } b;
    memset(&b, 0, sizeof b);
    if (shard_rank() == 0) {
        memcpy(b.tmp, g_tmp, sizeof g_tmp);
        b.header = o->pos;
    }
    shard_bcast(&b, sizeof b);
    if (shard_rank() != 0) {
        memcpy(g_tmp, b.tmp, sizeof g_tmp); /* for messages; rank 0 owns (and removes) the file: g_tmp_active 0 */
        o->path = path;
        o->fd = open(b.tmp, O_WRONLY | O_CLOEXEC);
        if (o->fd < 0)
            die(EX_IO, "cannot open '%s' (rank %d): %s", b.tmp, shard_rank(), strerror(errno));
    }
    o->pos = b.header + first * es;
}

static void out_write(out_file *o, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        const ssize_t w = pwrite(o->fd, p, len, (off_t)o->pos);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die(EX_IO, "writing '%s': %s", g_tmp, w < 0 ? strerror(errno) : "short write");
        p += w;
        o->pos += (uint64_t)w;
        len -= (size_t)w;
    }
}

static void out_commit(out_file *o)
{
    if (close(o->fd) != 0)
        die(EX_IO, "writing '%s': %s", g_tmp, strerror(errno));
    phase_check(); /* every rank wrote and closed its slice */
    if (shard_rank() != 0)
        return;
    sigset_t old;
    block_signals(&old);
    if (rename(g_tmp, o->path) != 0) {
        const int err = errno;
        sigprocmask(SIG_SETMASK, &old, NULL);
        die(EX_IO, "cannot rename '%s' to '%s': %s", g_tmp, o->path, strerror(err));
    }
    g_tmp_active = 0;
    sigprocmask(SIG_SETMASK, &old, NULL);
}

/* ---- prefetching: the next chunk's pages are mapped on a helper thread while this one is scored ------------ */

typedef struct span {
    npy_file *f;
    uint64_t elem, count;
} span;

typedef struct prefetcher {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int on, busy, quit;
    span pop[2], drop[2];
    int npop, ndrop;
} prefetcher;

static void *prefetch_main(void *arg)
{
    prefetcher *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->busy && !p->quit)
            pthread_cond_wait(&p->cv, &p->mu);
        if (!p->busy)
            break;
        pthread_mutex_unlock(&p->mu);
        for (int k = 0; k < p->ndrop; k++)
            npyf_drop_before(p->drop[k].f, p->drop[k].elem + p->drop[k].count, 0);
        for (int k = 0; k < p->npop; k++)
            npyf_populate(p->pop[k].f, p->pop[k].elem, p->pop[k].count);
        pthread_mutex_lock(&p->mu);
        p->busy = 0;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void prefetch_start(prefetcher *p, int on)
{
    memset(p, 0, sizeof *p);
    p->on = on;
    if (!on)
        return;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old); /* signals go to the main thread */
    if (pthread_create(&p->th, NULL, prefetch_main, p) != 0)
        p->on = 0; /* populate on the calling thread instead */
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void prefetch_wait(prefetcher *p)
{
    pthread_mutex_lock(&p->mu);
    while (p->busy)
        pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

/* Chunk `cur` (n spans, one per file) is about to be scored: make sure its pages are in, then have `next` brought
 * in and `prev` dropped in the background (either may be NULL). Without the helper thread, all happens here. */
static void prefetch_step(prefetcher *p, const span *cur, const span *next, const span *prev, int n, int first)
{
    if (!p->on) {
        for (int k = 0; k < n; k++) {
            if (prev)
                npyf_drop_before(prev[k].f, prev[k].elem + prev[k].count, 0);
            npyf_populate(cur[k].f, cur[k].elem, cur[k].count);
        }
        return;
    }
    prefetch_wait(p);
    if (first) /* nobody brought the first chunk in */
        for (int k = 0; k < n; k++)
            npyf_populate(cur[k].f, cur[k].elem, cur[k].count);
    pthread_mutex_lock(&p->mu);
    p->npop = next ? n : 0;
    p->ndrop = prev ? n : 0;
    for (int k = 0; k < n; k++) {
        if (next)
            p->pop[k] = next[k];
        if (prev)
            p->drop[k] = prev[k];
    }
    p->busy = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void prefetch_stop(prefetcher *p, const span *last, int n)
{
    if (p->on) {
        prefetch_wait(p);
        pthread_mutex_lock(&p->mu);
        p->quit = 1;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->th, NULL);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
    }
    for (int k = 0; last && k < n; k++)
        npyf_drop_before(last[k].f, 0, 1);
    p->on = 0;
}

/* ---- inputs ------------------------------------------------------------------------------------------------ */

/* How chunks are read (BENCHMARKS.md, ## nllk-score): Poisson reads every byte of both files once, best through
 * the mapping (page faults on a page-cached file are cheap when its folios are large, and no copy is made); NLL
 * gathers one class plane value per position, best from a copy of the chunk that stays in the cache (pread into
 * one reused buffer: the sequential copy is faster than the gather's scattered reads from memory). */
static io_mode io_for(const options *o, command cmd)
{
    if (o->io_set)
        return o->io;
    return cmd == CMD_NLL ? IO_PREAD : IO_MMAP;
}

static void open_npy(npy_file *f, const char *path, const options *o, const char *role)
{
    char err[512];
    const int k = npyf_open(f, path, io_for(o, o->cmd), err, sizeof err);
    if (k != NPYF_OK)
        die(k, "%s: %s", role, err);
    f->release = !o->keep_pages;
}

static void shape_str(char *buf, size_t cap, int ndim, const uint64_t *shape)
{
    size_t n = (size_t)snprintf(buf, cap, "(");
    for (int k = 0; k < ndim && n < cap; k++)
        n += (size_t)snprintf(buf + n, cap - n, k ? ", %llu" : "%llu", (unsigned long long)shape[k]);
    if (n < cap)
        snprintf(buf + n, cap - n, ndim == 1 ? ",)" : ")");
}

static int is_float(npy_dtype t) { return t == NPY_F32 || t == NPY_F64; }

static void need_float_input(const npy_file *f)
{
    if (!is_float(f->h.dtype))
        die(EX_FORMAT, "input %s: dtype %s is not supported (float32 or float64)", f->path,
            npy_dtype_name(f->h.dtype));
}

/* ---- results ----------------------------------------------------------------------------------------------- */

typedef struct result {
    const char *command;
    nllk_reduction reduction;
    npy_dtype dtype;
    double mean, sum, total_weight;
    uint64_t count, chunks, chunk_elems, bytes;
    double seconds;
    const char *out;
    int ranks;            /* under MPI: the number of ranks (0 otherwise)  */
    double *rank_seconds; /* and each rank's seconds to score its shard    */
} result;

static void json_number(FILE *fp, double v)
{
    if (isfinite(v))
        fprintf(fp, "%.17g", v);
    else if (isnan(v))
        fputs("NaN", fp); /* as Python's json module writes and reads it */
    else
        fputs(v > 0 ? "Infinity" : "-Infinity", fp);
}

static void json_string(FILE *fp, const char *s)
{
    fputc('"', fp);
    for (; *s; s++) {
        const unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(fp, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(fp, "\\u%04x", ch);
        else
            fputc(ch, fp);
    }
    fputc('"', fp);
}

static void print_result(const options *o, const result *r)
{
    const double loss = r->reduction == NLLK_REDUCTION_SUM ? r->sum : r->mean;
    const double eps = r->seconds > 0 ? (double)r->count / r->seconds : 0;
    const double bps = r->seconds > 0 ? (double)r->bytes / r->seconds : 0;
    if (o->json) {
        printf("{\"command\": \"%s\", \"reduction\": \"%s\", \"loss\": ", r->command, reduction_name(r->reduction));
        if (r->reduction == NLLK_REDUCTION_NONE)
            fputs("null", stdout);
        else
            json_number(stdout, loss);
        fputs(", \"mean\": ", stdout);
        json_number(stdout, r->mean);
        fputs(", \"sum\": ", stdout);
        json_number(stdout, r->sum);
        printf(", \"count\": %llu, \"total_weight\": ", (unsigned long long)r->count);
        json_number(stdout, r->total_weight);
        printf(", \"dtype\": \"%s\", \"seconds\": %.6f, \"elements_per_s\": %.6g, \"bytes\": %llu, "
               "\"bytes_per_s\": %.6g, \"isa\": \"%s\", \"threads\": %d, \"chunks\": %llu, \"chunk_elements\": %llu, "
               "\"output\": ",
               npy_dtype_name(r->dtype), r->seconds, eps, (unsigned long long)r->bytes, bps, nllk_active_isa(),
               nllk_get_num_threads(), (unsigned long long)r->chunks, (unsigned long long)r->chunk_elems);
        if (r->out)
            json_string(stdout, r->out);
        else
            fputs("null", stdout);
        if (r->ranks) {
            printf(", \"ranks\": %d, \"rank_seconds\": [", r->ranks);
            for (int k = 0; k < r->ranks; k++)
                printf(k ? ", %.6f" : "%.6f", r->rank_seconds[k]);
            fputs("]", stdout);
        }
        fputs("}\n", stdout);
    } else if (o->quiet) {
        if (r->reduction != NLLK_REDUCTION_NONE)
            printf("%.*g\n", r->dtype == NPY_F32 ? 9 : 17, loss);
    } else {
        const int prec = r->dtype == NPY_F32 ? 9 : 17;
        if (r->reduction != NLLK_REDUCTION_NONE)
            printf("%s %s loss: %.*g\n", r->command, reduction_name(r->reduction), prec, loss);
        printf("  mean %.*g  sum %.*g  count %llu  total_weight %.*g  (%s)\n", prec, r->mean, prec, r->sum,
               (unsigned long long)r->count, prec, r->total_weight, npy_dtype_name(r->dtype));
        if (r->out)
            printf("  per-element losses written to %s\n", r->out);
        printf("  %.3f s, %.1f M elements/s, %.2f GB/s read, isa %s, %d threads, %llu chunks\n", r->seconds,
               eps * 1e-6, bps * 1e-9, nllk_active_isa(), nllk_get_num_threads(), (unsigned long long)r->chunks);
    }
    if (fflush(stdout) != 0 || ferror(stdout))
        die(EX_IO, "writing to stdout: %s", strerror(errno));
}

static nllk_acc g_acc;

/* Under MPI: every rank scored its shard into g_acc; rank 0 gathers the accumulators and merges them in rank
 * order (the canonical tree: the bits of one process), then the output's slices are closed and renamed.
 * Single process: just the output. `seconds` is this rank's time on its shard. */
static void finish_shards(result *r, out_file *out, double t0, double seconds)
{
    const int k = shard_size(), root = shard_rank() == 0;
    typedef struct {
        double seconds;
        uint64_t chunks;
    } rank_stat;
    rank_stat me = {seconds, r->chunks}, *st = NULL;
    nllk_acc *all = NULL;
    if (shard_on() && root) {
        all = malloc((size_t)k * sizeof *all);
        st = malloc((size_t)k * sizeof *st);
        r->rank_seconds = malloc((size_t)k * sizeof(double));
        if (!all || !st || !r->rank_seconds)
            die(EX_IO, "out of memory (%d accumulators)", k);
    }
    phase_check(); /* every rank scored its shard */
    if (shard_on()) {
        shard_gather_acc(&g_acc, all);
        shard_gather_bytes(&me, sizeof me, st);
        if (root) {
            r->ranks = k;
            r->chunks = 0;
            for (int j = 0; j < k; j++) {
                if (j && nllk_acc_merge(&all[0], &all[j]) != NLLK_OK)
                    die(EX_INTERNAL, "nllk_acc_merge (rank %d): %s", j, nllk_last_error());
                r->rank_seconds[j] = st[j].seconds;
                r->chunks += st[j].chunks;
            }
            memcpy(&g_acc, &all[0], sizeof g_acc);
        }
        free(all);
        free(st);
    }
    if (out)
        out_commit(out);
    r->seconds = shard_on() ? now_s() - t0 : seconds;
}

static void acc_finish(result *r)
{
    if (shard_rank() != 0)
        return; /* a shard's partial accumulator: only rank 0 has the merged result */
    uint64_t count;
    if (nllk_acc_result(&g_acc, NLLK_REDUCTION_MEAN, &r->mean, &r->total_weight, &count) != NLLK_OK ||
        nllk_acc_result(&g_acc, NLLK_REDUCTION_SUM, &r->sum, NULL, &r->count) != NLLK_OK)
        die(EX_INTERNAL, "nllk_acc_result: %s", nllk_last_error());
}

/* ---- poisson ----------------------------------------------------------------------------------------------- */

static void run_poisson(const options *o, result *r)
{
    npy_file in = {.fd = -1}, tg = {.fd = -1};
    open_npy(&in, o->input, o, "input");
    open_npy(&tg, o->target, o, "target");
    need_float_input(&in);
    if (!is_float(tg.h.dtype))
        die(EX_FORMAT, "target %s: dtype %s is not supported (float32 or float64)", tg.path,
            npy_dtype_name(tg.h.dtype));
    if (tg.h.dtype != in.h.dtype)
        die(EX_FORMAT, "target %s is %s but input %s is %s: both must have the same dtype", tg.path,
            npy_dtype_name(tg.h.dtype), in.path, npy_dtype_name(in.h.dtype));
    if (in.h.ndim != tg.h.ndim || memcmp(in.h.shape, tg.h.shape, sizeof(uint64_t) * (size_t)in.h.ndim) != 0) {
        char a[256], b[256];
        shape_str(a, sizeof a, in.h.ndim, in.h.shape);
        shape_str(b, sizeof b, tg.h.ndim, tg.h.shape);
        die(EX_SHAPE, "shapes do not match: input %s has shape %s, target %s has %s", in.path, a, tg.path, b);
    }
    const int f32 = in.h.dtype == NPY_F32;
    const size_t es = in.h.itemsize;
    const uint64_t n = in.h.count;
    uint64_t row = 1;
    for (int k = 1; k < in.h.ndim; k++)
        row *= in.h.shape[k];
    uint64_t chunk;
    if (o->chunk_rows)
        chunk = o->chunk_rows > UINT64_MAX / (row ? row : 1) ? UINT64_MAX : o->chunk_rows * row;
    else {
        chunk = o->chunk_bytes / (2 * es);
        if (chunk > NLLK_BLOCK)
            chunk -= chunk % NLLK_BLOCK;
    }
    if (chunk > n)
        chunk = n;
    if (chunk == 0)
        chunk = 1;
    if (chunk > SIZE_MAX / 2 / es)
        die(EX_USAGE, "--chunk-rows: a chunk of %llu elements is too large", (unsigned long long)chunk);
    char err[512];
    if (npyf_reserve(&in, (size_t)chunk * es, err, sizeof err) || npyf_reserve(&tg, (size_t)chunk * es, err, sizeof err))
        die(EX_IO, "%s", err);

    out_file out = {.fd = -1};
    void *obuf = NULL;
    if (o->out) {
        obuf = aligned_alloc(64, ((size_t)chunk * es + 64) & ~(size_t)63);
        if (!obuf)
            die(EX_IO, "out of memory (%llu-element output buffer)", (unsigned long long)chunk);
    }
    uint64_t e0, e1; /* this rank's elements (all without MPI) */
    shard_range(n, &e0, &e1);
    if (o->out)
        out_open_shard(&out, o->out, in.h.dtype, in.h.ndim, in.h.shape, e0, es);
    phase_check();
    if (nllk_poisson_acc_init(&g_acc, f32 ? NLLK_F32 : NLLK_F64, o->log_input, o->full, o->eps, e0) != NLLK_OK)
        die(EX_INTERNAL, "nllk_poisson_acc_init: %s", nllk_last_error());

    progress pr;
    progress_init(&pr, o, 2 * n * es);
    progress_shard(&pr, 2 * (e1 - e0) * es);
    const double t0 = now_s();
    r->chunks = 0;
    const int pipe = in.mode == IO_PREFETCH;
    prefetcher pf;
    prefetch_start(&pf, pipe);
    span last[2] = {{&in, 0, 0}, {&tg, 0, 0}};
    for (uint64_t e = e0; e < e1; e += chunk) {
        const uint64_t m = e1 - e < chunk ? e1 - e : chunk;
        if (pipe) {
            const uint64_t e2 = e + m, m2 = e1 - e2 < chunk ? e1 - e2 : chunk;
            const span cur[2] = {{&in, e, m}, {&tg, e, m}}, nxt[2] = {{&in, e2, m2}, {&tg, e2, m2}};
            prefetch_step(&pf, cur, m2 ? nxt : NULL, e > e0 && !o->keep_pages ? last : NULL, 2, e == e0);
            last[0] = cur[0];
            last[1] = cur[1];
        }
        const void *x = npyf_get(&in, e, m, err, sizeof err);
        if (!x)
            die(EX_IO, "%s", err);
        const void *t = npyf_get(&tg, e, m, err, sizeof err);
        if (!t)
            die(EX_IO, "%s", err);
        const nllk_status st = f32 ? nllk_poisson_acc_update_f32(&g_acc, x, t, (size_t)m)
                                   : nllk_poisson_acc_update_f64(&g_acc, x, t, (size_t)m);
        if (st != NLLK_OK)
            die(EX_INTERNAL, "nllk_poisson_acc_update: %s", nllk_last_error());
        if (o->out) {
            const nllk_status s2 =
                f32 ? nllk_poisson_nll_fwd_f32(x, t, (size_t)m, o->log_input, o->full, o->eps, NLLK_REDUCTION_NONE,
                                               obuf)
                    : nllk_poisson_nll_fwd_f64(x, t, (size_t)m, o->log_input, o->full, o->eps, NLLK_REDUCTION_NONE,
                                               obuf);
            if (s2 != NLLK_OK)
                die(EX_INTERNAL, "nllk_poisson_nll_fwd: %s", nllk_last_error());
            out_write(&out, obuf, (size_t)m * es);
        }
        npyf_put(&in, e, m);
        npyf_put(&tg, e, m);
        r->chunks++;
        progress_update(&pr, 2 * (e + m - e0) * es);
    }
    prefetch_stop(&pf, pipe && !o->keep_pages ? last : NULL, 2);
    finish_shards(r, o->out ? &out : NULL, t0, now_s() - t0);
    progress_end(&pr);
    acc_finish(r);
    r->command = "poisson";
    r->reduction = o->reduction;
    r->dtype = in.h.dtype;
    r->chunk_elems = chunk;
    r->bytes = 2 * n * es;
    r->out = o->out;
    free(obuf);
    npyf_close(&in);
    npyf_close(&tg);
}

/* ---- nll --------------------------------------------------------------------------------------------------- */

static int64_t target_value(const void *t, nllk_target_type tt, uint64_t k)
{
    switch (tt) {
    case NLLK_TARGET_I64: return ((const int64_t *)t)[k];
    case NLLK_TARGET_I32: return ((const int32_t *)t)[k];
    default: return ((const uint8_t *)t)[k];
    }
}

/* The library rejected a chunk's targets: name the first offending one by flat index and coordinates. */
static void target_error(const npy_file *tf, const void *t, nllk_target_type tt, uint64_t first, uint64_t m,
                         size_t c, int64_t ign)
{
    for (uint64_t k = 0; k < m; k++) {
        const int64_t v = target_value(t, tt, k);
        if (v == ign || (v >= 0 && (uint64_t)v < c))
            continue;
        uint64_t flat = first + k, rem = flat, coord[NPY_MAX_DIMS];
        for (int j = tf->h.ndim - 1; j >= 0; j--) {
            coord[j] = tf->h.shape[j] ? rem % tf->h.shape[j] : 0;
            rem = tf->h.shape[j] ? rem / tf->h.shape[j] : 0;
        }
        char cs[NPY_MAX_DIMS * 24 + 8];
        shape_str(cs, sizeof cs, tf->h.ndim, coord);
        die(EX_TARGET, "target %s: value %lld at flat index %llu, coordinates %s, is out of range [0, %zu) "
                       "(ignore_index %lld)",
            tf->path, (long long)v, (unsigned long long)flat, cs, c, (long long)ign);
    }
    die(EX_TARGET, "target %s: %s", tf->path, nllk_last_error());
}

static void *load_weight(const options *o, npy_dtype want, size_t c)
{
    npy_file wf = {.fd = -1};
    open_npy(&wf, o->weight, o, "weight");
    if (!is_float(wf.h.dtype))
        die(EX_FORMAT, "weight %s: dtype %s is not supported (float32 or float64)", wf.path,
            npy_dtype_name(wf.h.dtype));
    if (wf.h.ndim != 1 || wf.h.shape[0] != c) {
        char a[256];
        shape_str(a, sizeof a, wf.h.ndim, wf.h.shape);
        die(EX_SHAPE, "weight %s has shape %s but the input has %zu classes: it must be (%zu,)", wf.path, a, c, c);
    }
    const size_t es = npy_dtype_size(want);
    void *w = malloc(c ? c * es : 1);
    if (!w)
        die(EX_IO, "out of memory (weight)");
    const unsigned char *src = npyf_data(&wf);
    for (size_t k = 0; k < c; k++) {
        double v;
        if (wf.h.dtype == NPY_F32) {
            float f;
            memcpy(&f, src + 4 * k, 4);
            v = f;
        } else
            memcpy(&v, src + 8 * k, 8);
        if (want == NPY_F32)
            ((float *)w)[k] = (float)v;
        else
            ((double *)w)[k] = v;
    }
    npyf_close(&wf);
    return w;
}

/* Per-element losses of positions [j0, j0 + m) of one sample (a chunk smaller than a sample): the library's
 * formula, (-x) * w[t] and +0 at ignored positions, evaluated in the input's dtype. */
#define NLL_ROW_PART(T)                                                                                           \
    static void nll_part_##T(const T *x, const void *t, nllk_target_type tt, uint64_t m, size_t d, uint64_t j0,   \
                             const T *w, int64_t ign, T *out)                                                     \
    {                                                                                                             \
        for (uint64_t k = 0; k < m; k++) {                                                                        \
            const int64_t v = target_value(t, tt, k);                                                             \
            if (v == ign) {                                                                                       \
                out[k] = (T)0;                                                                                    \
                continue;                                                                                         \
            }                                                                                                     \
            const T nx = -x[(uint64_t)v * d + j0 + k];                                                            \
            out[k] = w ? nx * w[v] : nx;                                                                          \
        }                                                                                                         \
    }
NLL_ROW_PART(float)
NLL_ROW_PART(double)

static void run_nll(const options *o, result *r)
{
    npy_file in = {.fd = -1}, tg = {.fd = -1};
    open_npy(&in, o->input, o, "input");
    open_npy(&tg, o->target, o, "target");
    need_float_input(&in);
    nllk_target_type tt;
    switch (tg.h.dtype) {
    case NPY_I64: tt = NLLK_TARGET_I64; break;
    case NPY_I32: tt = NLLK_TARGET_I32; break;
    case NPY_U8: tt = NLLK_TARGET_U8; break;
    default:
        die(EX_FORMAT, "target %s: dtype %s is not supported (int64, int32 or uint8)", tg.path,
            npy_dtype_name(tg.h.dtype));
    }
    /* geometry: (C) with a 0-d target, or (N, C, d1..dK) with target (N, d1..dK) */
    uint64_t n, c, d = 1;
    int ok;
    if (in.h.ndim == 0)
        ok = 0;
    else if (in.h.ndim == 1) {
        n = 1;
        c = in.h.shape[0];
        ok = tg.h.ndim == 0;
    } else {
        n = in.h.shape[0];
        c = in.h.shape[1];
        ok = tg.h.ndim == in.h.ndim - 1 && tg.h.shape[0] == n;
        for (int k = 2; k < in.h.ndim && ok; k++) {
            ok = tg.h.shape[k - 1] == in.h.shape[k];
            d *= in.h.shape[k];
        }
    }
    if (!ok) {
        char a[256], b[256];
        shape_str(a, sizeof a, in.h.ndim, in.h.shape);
        shape_str(b, sizeof b, tg.h.ndim, tg.h.shape);
        if (in.h.ndim == 0)
            die(EX_SHAPE, "input %s is 0-d: nll needs (C), (N, C) or (N, C, d1, ...)", in.path);
        die(EX_SHAPE, "shapes do not match: input %s has shape %s, so target %s must have shape %s, not %s",
            in.path, a, tg.path,
            in.h.ndim == 1 ? "()" : "(N, d1, ...) (the input's without its class dimension)", b);
    }
    const int f32 = in.h.dtype == NPY_F32;
    const size_t es = in.h.itemsize, ts = tg.h.itemsize;
    void *weight = o->weight ? load_weight(o, in.h.dtype, (size_t)c) : NULL;

    /* chunks: whole samples, or (a default chunk smaller than one sample) runs of positions inside a sample */
    const uint64_t row_bytes = c * d * es + d * ts;
    uint64_t rows = o->chunk_rows, pos = d;
    if (!rows) {
        rows = row_bytes ? o->chunk_bytes / row_bytes : n;
        if (rows == 0) {
            rows = 1;
            pos = o->chunk_bytes / (c * es + ts);
            if (pos > NLLK_BLOCK)
                pos -= pos % NLLK_BLOCK;
            if (pos == 0)
                pos = 1;
            if (pos > d)
                pos = d;
        }
    }
    if (rows > n)
        rows = n ? n : 1;
    const int sub = pos < d;
    if (rows > SIZE_MAX / (row_bytes ? row_bytes : 1))
        die(EX_USAGE, "--chunk-rows: a chunk of %llu rows is too large", (unsigned long long)rows);
    const uint64_t chunk_elems = sub ? pos : rows * d; /* targets (= output elements) per chunk */
    char err[512];
    if ((!sub && npyf_reserve(&in, (size_t)(rows * c * d * es), err, sizeof err)) ||
        npyf_reserve(&tg, (size_t)(chunk_elems * ts), err, sizeof err))
        die(EX_IO, "%s", err);

    out_file out = {.fd = -1};
    void *obuf = NULL;
    if (o->out) {
        obuf = aligned_alloc(64, ((size_t)chunk_elems * es + 64) & ~(size_t)63);
        if (!obuf)
            die(EX_IO, "out of memory (output buffer)");
    }
    const uint64_t total_bytes = n * row_bytes;
    if (d == 0)
        n = 0; /* an empty spatial dimension: no element */
    uint64_t r0, r1; /* this rank's samples (all without MPI) */
    shard_range(n, &r0, &r1);
    if (o->out)
        out_open_shard(&out, o->out, in.h.dtype, tg.h.ndim, tg.h.shape, r0 * d, es);
    phase_check();
    if (nllk_nll_acc_init(&g_acc, f32 ? NLLK_F32 : NLLK_F64, tt, (size_t)c, (size_t)(d ? d : 1), o->ignore_index,
                          r0 * d) != NLLK_OK)
        die(EX_INTERNAL, "nllk_nll_acc_init: %s", nllk_last_error());

    progress pr;
    progress_init(&pr, o, total_bytes);
    progress_shard(&pr, (r1 - r0) * row_bytes);
    const double t0 = now_s();
    r->chunks = 0;
    if (!sub) {
        const int pipe = in.mode == IO_PREFETCH;
        prefetcher pf;
        prefetch_start(&pf, pipe);
        span last[2] = {{&in, 0, 0}, {&tg, 0, 0}};
        for (uint64_t i = r0; i < r1; i += rows) {
            const uint64_t k = r1 - i < rows ? r1 - i : rows, m = k * d;
            if (pipe) {
                const uint64_t i2 = i + k, k2 = r1 - i2 < rows ? r1 - i2 : rows;
                const span cur[2] = {{&in, i * c * d, k * c * d}, {&tg, i * d, m}},
                           nxt[2] = {{&in, i2 * c * d, k2 * c * d}, {&tg, i2 * d, k2 * d}};
                prefetch_step(&pf, cur, k2 ? nxt : NULL, i > r0 && !o->keep_pages ? last : NULL, 2, i == r0);
                last[0] = cur[0];
                last[1] = cur[1];
            }
            const void *x = npyf_get(&in, i * c * d, k * c * d, err, sizeof err);
            if (!x)
                die(EX_IO, "%s", err);
            const void *t = npyf_get(&tg, i * d, m, err, sizeof err);
            if (!t)
                die(EX_IO, "%s", err);
            const nllk_status st = f32 ? nllk_nll_acc_update_f32(&g_acc, x, t, (size_t)m, weight)
                                       : nllk_nll_acc_update_f64(&g_acc, x, t, (size_t)m, weight);
            if (st == NLLK_ERR_TARGET_OUT_OF_RANGE)
                target_error(&tg, t, tt, i * d, m, (size_t)c, o->ignore_index);
            if (st != NLLK_OK)
                die(EX_INTERNAL, "nllk_nll_acc_update: %s", nllk_last_error());
            if (o->out) {
                const nllk_status s2 =
                    f32 ? nllk_nll_fwd_f32(x, t, tt, (size_t)k, (size_t)c, (size_t)d, weight, o->ignore_index,
                                           NLLK_REDUCTION_NONE, obuf, NULL)
                        : nllk_nll_fwd_f64(x, t, tt, (size_t)k, (size_t)c, (size_t)d, weight, o->ignore_index,
                                           NLLK_REDUCTION_NONE, obuf, NULL);
                if (s2 != NLLK_OK)
                    die(EX_INTERNAL, "nllk_nll_fwd: %s", nllk_last_error());
                out_write(&out, obuf, (size_t)m * es);
            }
            npyf_put(&in, i * c * d, k * c * d);
            npyf_put(&tg, i * d, m);
            r->chunks++;
            progress_update(&pr, (i + k - r0) * row_bytes);
        }
        prefetch_stop(&pf, pipe && !o->keep_pages ? last : NULL, 2);
    } else {
        /* runs of positions: the input of sample i is read at c strided runs from the whole-file mapping */
        const unsigned char *base = npyf_data(&in);
        const int big_runs = pos * es >= 65536; /* else c tiny runs: leave the pages to the page faults */
        const int populate = in.mode != IO_MMAP && big_runs;
        for (uint64_t i = r0; i < r1; i++) {
            const unsigned char *xs = base + i * c * d * es;
            for (uint64_t j = 0; j < d; j += pos) {
                const uint64_t m = d - j < pos ? d - j : pos;
                if (populate)
                    for (uint64_t k = 0; k < c; k++)
                        npyf_populate(&in, (i * c + k) * d + j, m);
                const void *t = npyf_get(&tg, i * d + j, m, err, sizeof err);
                if (!t)
                    die(EX_IO, "%s", err);
                const nllk_status st = f32 ? nllk_nll_acc_update_f32(&g_acc, (const float *)(const void *)xs, t,
                                                                     (size_t)m, weight)
                                           : nllk_nll_acc_update_f64(&g_acc, (const double *)(const void *)xs, t,
                                                                     (size_t)m, weight);
                if (st == NLLK_ERR_TARGET_OUT_OF_RANGE)
                    target_error(&tg, t, tt, i * d + j, m, (size_t)c, o->ignore_index);
                if (st != NLLK_OK)
                    die(EX_INTERNAL, "nllk_nll_acc_update: %s", nllk_last_error());
                if (o->out) {
                    if (f32)
                        nll_part_float((const float *)(const void *)xs, t, tt, m, (size_t)d, j, weight,
                                       o->ignore_index, obuf);
                    else
                        nll_part_double((const double *)(const void *)xs, t, tt, m, (size_t)d, j, weight,
                                        o->ignore_index, obuf);
                    out_write(&out, obuf, (size_t)m * es);
                }
                if (big_runs && !o->keep_pages)
                    for (uint64_t k = 0; k < c; k++)
                        npyf_drop(&in, (i * c + k) * d + j, m);
                npyf_put(&tg, i * d + j, m);
                r->chunks++;
                progress_update(&pr, (i - r0) * row_bytes + (j + m) * (c * es + ts));
            }
        }
    }
    finish_shards(r, o->out ? &out : NULL, t0, now_s() - t0);
    progress_end(&pr);
    acc_finish(r);
    r->command = "nll";
    r->reduction = o->reduction;
    r->dtype = in.h.dtype;
    r->chunk_elems = chunk_elems;
    r->bytes = total_bytes;
    r->out = o->out;
    free(obuf);
    free(weight);
    npyf_close(&in);
    npyf_close(&tg);
}

/* ---- demo -------------------------------------------------------------------------------------------------- */

int nllk_score_demo(int json, int quiet); /* demo.c */

int main(int argc, char **argv)
{
    g_umask = umask(0);
    umask(g_umask);
    install_signals();
    shard_init(&argc, &argv); /* MPI, when started by mpirun (shard.h) */
    if (shard_rank() != 0) {   /* rank 0 prints for the job */
        const int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (null >= 0) {
            dup2(null, 1);
            close(null);
        }
    }
    options o;
    parse_options(argc, argv, &o);
    apply_threads_isa(&o);
    if (o.cmd == CMD_DEMO)
        return shard_rank() ? EX_OK : nllk_score_demo(o.json, o.quiet); /* under mpirun: rank 0 only */
    result r;
    memset(&r, 0, sizeof r);
    if (o.cmd == CMD_POISSON)
        run_poisson(&o, &r);
    else
        run_nll(&o, &r);
    if (shard_rank() == 0)
        print_result(&o, &r);
    phase_check(); /* rank 0 committed the output and printed the result */
    free(r.rank_seconds);
    return EX_OK;
}
