/* cli.c — see cli.h. The table `opts` below is the one list of options: getopt_long's table, the checks of
 * which command takes which option, and the --help text are all made from it. */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fail.h"
#include "outfile.h"
#include "shard.h"
#include "util.h"

#ifndef NLLK_SCORE_VERSION
#define NLLK_SCORE_VERSION "0.1.0"
#endif

enum { P = 1 << CMD_POISSON, N = 1 << CMD_NLL, D = 1 << CMD_DEMO, C = 1 << CMD_CE, ALL = P | N | C | D };

typedef void (*setter)(options *o, const char *arg);

typedef struct opt_spec {
    const char *name; /* --name                                                                   */
    char short_name;  /* -x, or 0                                                                 */
    const char *arg;  /* the value's placeholder in --help, or NULL for a flag                     */
    unsigned cmds;    /* the commands that take it (P, N, D bits)                                  */
    setter set;
    const char *help; /* --help text; "\n" continues on the next line                              */
} opt_spec;

static const char *reductions[] = {"none", "mean", "sum"}; /* indexed by nllk_reduction */

const char *reduction_name(nllk_reduction r) { return reductions[r]; }

static void print_version(void)
{
    printf("nllk-score %s (libnllk %s, isa %s)\n", NLLK_SCORE_VERSION, nllk_version_string(), nllk_active_isa());
}

static void usage(void);

static name_list *g_last_list; /* the list that file names after --input / --target go to (shell globs) */

static void list_add(name_list *l, const char *a)
{
    if (!*a)
        usage_error("an empty file name");
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 8;
        l->v = realloc(l->v, (size_t)l->cap * sizeof *l->v);
        if (!l->v)
            usage_error("out of memory");
    }
    l->v[l->n++] = a;
    g_last_list = l;
}
static void set_input(options *o, const char *a) { list_add(&o->inputs, a); }
static void set_target(options *o, const char *a) { list_add(&o->targets, a); }
static void set_per_class(options *o, const char *a) { (void)a; o->per_class = 1; }
static void set_no_warn(options *o, const char *a) { (void)a; o->no_warn = 1; }
static void set_weight(options *o, const char *a) { o->weight = a; }
static void set_out(options *o, const char *a)
{
    if (!*a)
        usage_error("--out: an empty file name");
    o->out = a;
}
static void set_no_log(options *o, const char *a) { (void)a; o->log_input = 0; }
static void set_full(options *o, const char *a) { (void)a; o->full = 1; }
static void set_isa(options *o, const char *a) { o->isa = a; }
static void set_keep(options *o, const char *a) { (void)a; o->keep_pages = 1; }
static void set_json(options *o, const char *a) { (void)a; o->json = 1; }
static void set_quiet(options *o, const char *a) { (void)a; o->quiet = 1; }
static void set_progress(options *o, const char *a) { (void)a; o->progress = 1; }
static void set_help(options *o, const char *a) { (void)o; (void)a; usage(); exit(EX_OK); }
static void set_version(options *o, const char *a) { (void)o; (void)a; print_version(); exit(EX_OK); }

static void set_probs(options *o, const char *a) { (void)a; o->probs = 1; }

static void set_smoothing(options *o, const char *a)
{
    char *end;
    errno = 0;
    o->label_smoothing = strtod(a, &end);
    if (end == a || *end || !(o->label_smoothing >= 0 && o->label_smoothing <= 1))
        usage_error("--label-smoothing: '%s' is not a number in [0, 1]", a);
}

static void set_ignore(options *o, const char *a)
{
    o->ignore_set = 1;
    if (!parse_i64(a, &o->ignore_index))
        usage_error("--ignore-index: '%s' is not a 64-bit integer", a);
}

static void set_reduction(options *o, const char *a)
{
    for (int r = 0; r < 3; r++)
        if (!strcmp(a, reductions[r])) {
            o->reduction = (nllk_reduction)r;
            return;
        }
    usage_error("--reduction: '%s' is not valid (mean, sum or none)", a);
}

static void set_eps(options *o, const char *a)
{
    char *end;
    errno = 0;
    o->eps = strtod(a, &end);
    if (errno == ERANGE && fabs(o->eps) > 1)
        usage_error("--eps: '%s' is out of range", a);
    if (end == a || *end)
        usage_error("--eps: '%s' is not a number", a);
}

static void set_threads(options *o, const char *a)
{
    uint64_t t;
    if (!parse_u64(a, &t) || t > 4096)
        usage_error("--threads: '%s' is not a thread count (0 = default, 1..4096)", a);
    o->threads = (int)t;
}

static void set_chunk_rows(options *o, const char *a)
{
    if (!parse_u64(a, &o->chunk_rows) || o->chunk_rows == 0)
        usage_error("--chunk-rows: '%s' is not a positive integer", a);
}

static void set_chunk_bytes(options *o, const char *a)
{
    o->chunk_bytes_set = 1;
    if (!parse_u64(a, &o->chunk_bytes) || o->chunk_bytes == 0)
        usage_error("--chunk-bytes: '%s' is not a positive integer", a);
}

static const char *io_names[] = {"populate", "mmap", "window", "pread", "prefetch"}; /* indexed by io_mode */

static void set_io(options *o, const char *a)
{
    o->io_set = strcmp(a, "auto") != 0;
    for (int k = 0; k < 5 && o->io_set; k++)
        if (!strcmp(a, io_names[k])) {
            o->io = (io_mode)k;
            return;
        }
    if (o->io_set)
        usage_error("--io: '%s' is not valid (auto, mmap, pread, populate, prefetch, window)", a);
}

static const opt_spec opts[] = {
    {"input", 0, "X.npy", P | N | C, set_input, NULL},
    {"target", 0, "Y.npy", P | N | C, set_target, NULL},
    {"per-class", 0, NULL, N | C, set_per_class,
     "also the loss sum, total weight and count of each class (README: each class's\n"
     "sum is the library's sum over that class's elements in order)"},
    {"no-log-input", 0, NULL, P, set_no_log,
     "input holds rates (loss x - t*log(x+eps)); default: log-rates (exp(x) - t*x)"},
    {"full", 0, NULL, P, set_full, "add the Stirling term where t > 1"},
    {"eps", 0, "E", P, set_eps, "default 1e-8 (used with --no-log-input)"},
    {"weight", 0, "W.npy", N | C, set_weight, "C class weights (float32/float64/float16)"},
    {"ignore-index", 0, "I", N | C, set_ignore, "default -100 (class-index targets)"},
    {"label-smoothing", 0, "S", C, set_smoothing, "in [0, 1], default 0 (PyTorch's label_smoothing)"},
    {"probs", 0, NULL, C, set_probs,
     "the target holds class probabilities: float, the input's shape and dtype"},
    {"reduction", 0, "R", P | N | C, set_reduction, "mean (default), sum, or none (per-element losses; needs --out)"},
    {"out", 'o', "F.npy", P | N | C, set_out,
     "write the per-element losses (input's dtype; target's shape, for --probs the input's\n"
     "without its class dimension); written to an unnamed temporary file\n"
     "(else .F.npy.nllk-tmp.HOST.PID.XXXXXX) renamed after the report: a failure\n"
     "or a signal leaves no partial file (named, SIGKILL: see --clean). Keeps an existing F's\n"
     "mode; a FIFO or device (/dev/null) is written through; an input is refused"},
    {"threads", 0, "N", ALL, set_threads, "threads (default: NLLK_NUM_THREADS, else the number of cores)"},
    {"isa", 0, "NAME", ALL, set_isa, NULL /* made by usage(): the build's ISAs */},
    {"chunk-rows", 0, "R", P | N | C, set_chunk_rows,
     "rows (samples; elements for 0-d/1-D Poisson) per chunk; default: ~8 MiB chunks\n"
     "(ce: ~64 MiB)"},
    {"chunk-bytes", 0, "B", P | N | C, set_chunk_bytes, "the default chunk's size in bytes (when --chunk-rows is not given)"},
    {"io", 0, "MODE", P | N | C, set_io,
     "how chunks are read: auto (default: mmap for poisson, pread for nll, populate for\n"
     "ce), mmap, pread, populate, prefetch, window (see BENCHMARKS.md)"},
    {"keep-pages", 0, NULL, P | N | C, set_keep,
     "leave consumed chunks mapped (a little faster; the resident set grows to the\n"
     "file size instead of staying at a few chunks)"},
    {"json", 0, NULL, ALL, set_json,
     "print a machine-readable summary (loss, count, total_weight, seconds, elements/s,\nisa, threads, ...)"},
    {"progress", 0, NULL, P | N | C, set_progress,
     "always show a progress bar on stderr (default: only when stderr is a terminal and\n"
     "the run takes more than about a second)"},
    {"no-warn", 0, NULL, P | N | C, set_no_warn,
     "no warnings on stderr (inputs that look wrong: not log-probabilities, a target of\n"
     "255 or -1 out of range, negative or fractional Poisson counts)"},
    {"quiet", 'q', NULL, ALL, set_quiet, "no progress bar; print only the loss value (or nothing for --reduction none)"},
    {"help", 'h', NULL, ALL, set_help, "this text"},
    {"version", 0, NULL, ALL, set_version, "the program's and the library's version"},
};
enum { NOPTS = sizeof opts / sizeof opts[0] };

static void usage_section(unsigned cmds)
{
    for (int k = 0; k < NOPTS; k++) {
        const opt_spec *s = &opts[k];
        if (s->cmds != cmds || (!s->help && s->set != set_isa))
            continue;
        char head[40];
        const int n = snprintf(head, sizeof head, "--%s%s%s", s->name, s->arg ? " " : "", s->arg ? s->arg : "");
        if (s->short_name)
            snprintf(head + n, sizeof head - (size_t)n, ", -%c", s->short_name);
        printf("  %-18s ", head);
        if (s->set == set_isa) {
            fputs("force one of this build's instruction sets:", stdout);
            for (int i = 0; nllk_isa_name(i); i++)
                printf(" %s", nllk_isa_name(i));
            putchar('\n');
            continue;
        }
        for (const char *p = s->help; *p; p++) {
            putchar(*p);
            if (*p == '\n')
                printf("%21s", "");
        }
        putchar('\n');
    }
}

static void usage(void)
{
    fputs("usage: nllk-score poisson --input X.npy --target Y.npy [--no-log-input] [--full] [--eps E]\n"
          "                          [--reduction mean|sum|none] [--out LOSSES.npy] [common options]\n"
          "       nllk-score nll --input LOGP.npy --target T.npy [--weight W.npy] [--ignore-index I]\n"
          "                      [--reduction mean|sum|none] [--out LOSSES.npy] [common options]\n"
          "       nllk-score ce --input LOGITS.npy --target T.npy [--weight W.npy] [--ignore-index I]\n"
          "                     [--label-smoothing S] [--probs] [--reduction mean|sum|none] [--out LOSSES.npy] ...\n"
          "       nllk-score demo [--threads N] [--isa NAME] [--json] [--quiet]\n"
          "       nllk-score --clean DIR   remove DIR's temporary files left by killed runs (their process is gone)\n"
          "\n"
          "Scores .npy files (format 1.0/2.0/3.0, little-endian, C order) of any size in bounded memory with nllk's\n"
          "streaming accumulators; the mean/sum has exactly the bits of the library's one-shot call.\n"
          "\n"
          "--input and --target take one or more parts, concatenated along the first dimension (the result is\n"
          "the one-shot call's on the concatenation): repeat the option or list names after it (--input a.npy\n"
          "b.npy), use a glob ('preds_*.npy', sorted), a list file (@LIST: one name per line, relative to LIST's\n"
          "directory), or a member of an np.savez archive (ARCHIVE.npz:NAME; stored, not compressed).\n"
          "\n"
          "poisson   PyTorch's poisson_nll_loss. input and target: float32, float64 or float16 (the same), the same\n"
          "          shape;"
          " integer targets (int8..int64, uint8..uint64) are converted exactly to the input's dtype.\n"
          "          float16 ('<f2') inputs: float math, double sums, the results the double values, --out\n"
          "          float16 (the same for nll and ce).\n",
          stdout);
    usage_section(P);
    fputs("nll       PyTorch's nll_loss. input (C), (N, C) or (N, C, d1..dK) log-probabilities, float32/float64/\n"
          "          float16;"
          " target (), (N) or (N, d1..dK): int64, int32 or uint8.\n",
          stdout);
    usage_section(N);
    fputs("ce        PyTorch's cross_entropy. input (C), (N, C) or (N, C, d1..dK) logits, float32/float64/float16;\n"
          "          target"
          " class indices as for nll, or (--probs) class probabilities of the input's shape and dtype.\n",
          stdout);
    usage_section(C);
    fputs("nll, ce:\n", stdout);
    usage_section(N | C);
    fputs("common:\n", stdout);
    usage_section(P | N | C);
    usage_section(ALL);
    fputs("\n"
          "exit codes: 0 ok, 1 internal error, 2 usage (unknown flag, bad value), 3 I/O (missing or unreadable\n"
          "file, output not writable), 4 bad .npy (not .npy, truncated, Fortran order, big-endian, unsupported\n"
          "dtype), 5 shapes do not match (or weight length is not C), 6 target out of range, 7 ISA not\n"
          "available, 130 interrupted (SIGINT/SIGTERM/SIGHUP; other terminating signals 128+N). Every failure and\n"
          "signal but SIGKILL removes the temporary output file.\n"
          "\n"
          "MPI: under `mpirun -n K nllk-score-mpi ...` (built when MPI is found) each rank scores its contiguous\n"
          "shard of the same files and rank 0 merges them: the same bits, output and errors as one process\n"
          "(README.md, \"nllk-score on a cluster\"); nllk-score links no MPI.\n",
          stdout);
}

static command parse_command(const char *cmd)
{
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help"))
        set_help(NULL, NULL);
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V"))
        set_version(NULL, NULL);
    if (!strcmp(cmd, "poisson"))
        return CMD_POISSON;
    if (!strcmp(cmd, "nll"))
        return CMD_NLL;
    if (!strcmp(cmd, "demo"))
        return CMD_DEMO;
    if (!strcmp(cmd, "ce"))
        return CMD_CE;
    if (cmd[0] == '-')
        usage_error("missing command before '%s': poisson, nll, ce or demo", cmd);
    usage_error("unknown command '%s': poisson, nll, ce or demo", cmd);
}

void parse_options(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->log_input = 1;
    o->eps = 1e-8;
    o->ignore_index = -100;
    o->reduction = NLLK_REDUCTION_MEAN;
    o->chunk_bytes = DEFAULT_CHUNK_BYTES;
    o->io = IO_POPULATE;
    if (argc < 2)
        usage_error("missing command: poisson, nll, ce or demo");
    if (!strcmp(argv[1], "--clean")) {
        if (argc != 3)
            usage_error("--clean takes one directory");
        exit(out_clean(argv[2]));
    }
    o->cmd = parse_command(argv[1]);

    struct option longopts[NOPTS + 1];
    char shorts[2 * NOPTS + 3] = "-:"; /* '-': file names after --input/--target come in order (code 1) */
    size_t ns = 2;
    for (int k = 0; k < NOPTS; k++) {
        longopts[k] = (struct option){opts[k].name, opts[k].arg ? required_argument : no_argument, 0, 256 + k};
        if (opts[k].short_name) {
            shorts[ns++] = opts[k].short_name;
            if (opts[k].arg)
                shorts[ns++] = ':';
        }
    }
    shorts[ns] = 0;
    longopts[NOPTS] = (struct option){0, 0, 0, 0};
    opterr = 0;
    optind = 1;
    const int ac = argc - 1;
    char **av = argv + 1;
    const opt_spec *wrong = NULL; /* the last option given that the command does not take */
    int c, idx;
    g_last_list = NULL;
    while ((c = getopt_long(ac, av, shorts, longopts, &idx)) != -1) {
        const opt_spec *s = NULL;
        if (c == 1) { /* a name after --input X or --target Y: one more part */
            if (!g_last_list)
                usage_error("unexpected argument '%s'", optarg);
            list_add(g_last_list, optarg);
            continue;
        }
        if (c != 256 + 0 && c != 256 + 1) /* any option but --input/--target ends a list */
            g_last_list = NULL;
        if (c >= 256)
            s = &opts[c - 256];
        for (int k = 0; k < NOPTS && !s && c != '?' && c != ':'; k++)
            if (opts[k].short_name == c)
                s = &opts[k];
        if (c == ':')
            usage_error("option '%s' needs a value", av[optind - 1]);
        if (!s) {
            if (optopt && optopt < 256)
                usage_error("unknown option '-%c'", optopt);
            usage_error("unknown option '%s'", av[optind - 1]);
        }
        s->set(o, optarg);
        if (!(s->cmds & (1u << o->cmd)))
            wrong = s;
    }
    if (optind < ac)
        usage_error("unexpected argument '%s'", av[optind]);
    if (wrong && o->cmd == CMD_DEMO)
        usage_error("demo takes only --threads, --isa, --json, --quiet");
    static const char *cmd_names[] = {"poisson", "nll", "demo", "ce"}; /* indexed by command */
    if (wrong) {
        char who[64] = "";
        for (int k = 0; k < 4; k++)
            if (wrong->cmds & (1u << k))
                snprintf(who + strlen(who), sizeof who - strlen(who), "%s%s", *who ? " and " : "", cmd_names[k]);
        usage_error("--%s is an option of %s, not %s", wrong->name, who, cmd_names[o->cmd]);
    }
    if (o->cmd == CMD_DEMO)
        return;
    if (!o->inputs.n)
        usage_error("--input is required");
    if (!o->targets.n)
        usage_error("--target is required");
    o->input = o->inputs.v[0];
    o->target = o->targets.v[0];
    if (o->probs && o->ignore_set)
        usage_error("--ignore-index is for class-index targets, not --probs");
    if (o->probs && o->per_class)
        usage_error("--per-class is for class-index targets, not --probs");

    if (o->reduction == NLLK_REDUCTION_NONE && !o->out)
        usage_error("--reduction none writes per-element losses: give --out FILE.npy");
    if (o->quiet)
        o->progress = 0;
    if (o->cmd == CMD_CE && !o->chunk_bytes_set)
        o->chunk_bytes = DEFAULT_CHUNK_BYTES_CE;
}

void apply_threads_isa(const options *o)
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
            usage_error("--isa: unknown instruction set '%s'", o->isa);
        if (st != NLLK_OK)
            die(EX_UNSUPPORTED, "--isa %s: %s", o->isa, nllk_last_error());
    }
}

/* How chunks are read (BENCHMARKS.md, ## nllk-score): Poisson reads every byte of both files once, best through
 * the mapping (page faults on a page-cached file are cheap when its folios are large, and no copy is made); NLL
 * gathers one class plane value per position, best from a copy of the chunk that stays in the cache (pread into
 * one reused buffer: the sequential copy is faster than the gather's scattered reads from memory); CE reads every
 * logit (two passes over each position's classes), in large chunks (DEFAULT_CHUNK_BYTES_CE) populated in place. */
io_mode io_for(const options *o)
{
    if (o->io_set)
        return o->io;
    return o->cmd == CMD_POISSON ? IO_MMAP : o->cmd == CMD_CE ? IO_POPULATE : IO_PREAD;
}
