/* report.c — see report.h. */
#define _GNU_SOURCE
#include "report.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "fail.h"

static void json_number(FILE *fp, double v)
{
    if (isfinite(v))
        fprintf(fp, "%.17g", v);
    else if (isnan(v))
        fputs("NaN", fp); /* as Python's json module writes and reads it */
    else
        fputs(v > 0 ? "Infinity" : "-Infinity", fp);
}

/* The length of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs, no surrogates, <= U+10FFFF), or 0. */
static int utf8_len(const unsigned char *s)
{
    const unsigned c = s[0];
    int n;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, min = 0x10000;
    else
        return 0;
    unsigned cp = c & (0x7fu >> n);
    for (int k = 1; k < n; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[k] & 0x3fu);
    }
    return cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ? 0 : n;
}

/* A JSON string of any bytes (a path): valid UTF-8 as is, control characters as \u00XX, and every byte that is
 * not part of valid UTF-8 as the lone surrogate \uDCXX, Python's surrogateescape: os.fsencode() of the decoded
 * string gives the original bytes back. */
static void json_string(FILE *fp, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', fp);
    while (*s) {
        const int n = utf8_len(s);
        if (n == 0)
            fprintf(fp, "\\udc%02x", *s++);
        else if (*s == '"' || *s == '\\')
            fprintf(fp, "\\%c", *s++);
        else if (*s < 0x20)
            fprintf(fp, "\\u%04x", *s++);
        else {
            fwrite(s, 1, (size_t)n, fp);
            s += n;
        }
    }
    fputc('"', fp);
}

static void print_json(const result *r, double loss, double eps, double bps)
{
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
    const char **lists[2] = {r->inputs, r->targets};
    const int lens[2] = {r->ninputs, r->ntargets};
    for (int l = 0; l < 2; l++) {
        printf(", \"%s\": [", l ? "targets" : "inputs");
        for (int k = 0; k < lens[l]; k++) {
            if (k)
                fputs(", ", stdout);
            json_string(stdout, lists[l][k]);
        }
        fputs("]", stdout);
    }
    if (r->per_class) { /* the classes that occur, as parallel arrays */
        static const char *keys[] = {"class", "count", "total_weight", "sum"};
        fputs(", \"per_class\": {", stdout);
        for (int f = 0; f < 4; f++) {
            printf("%s\"%s\": [", f ? ", " : "", keys[f]);
            for (uint64_t k = 0; k < r->nclasses; k++) {
                const class_result *c = &r->classes[k];
                if (k)
                    fputs(", ", stdout);
                if (f < 2)
                    printf("%llu", (unsigned long long)(f ? c->count : c->cls));
                else
                    json_number(stdout, f == 2 ? c->total_weight : c->sum);
            }
            fputs("]", stdout);
        }
        fputs("}", stdout);
    }
    if (r->ranks) {
        printf(", \"ranks\": %d, \"rank_seconds\": [", r->ranks);
        for (int k = 0; k < r->ranks; k++)
            printf(k ? ", %.6f" : "%.6f", r->rank_seconds[k]);
        fputs("]", stdout);
    }
    fputs("}\n", stdout);
}

void print_result(const result *r, int json, int quiet)
{
    const double loss = r->reduction == NLLK_REDUCTION_SUM ? r->sum : r->mean;
    const double eps = r->seconds > 0 ? (double)r->count / r->seconds : 0;
    const double bps = r->seconds > 0 ? (double)r->bytes / r->seconds : 0;
    const int prec = r->dtype == NPY_F32 ? 9 : 17;
    if (json)
        print_json(r, loss, eps, bps);
    else if (quiet) {
        if (r->reduction != NLLK_REDUCTION_NONE)
            printf("%.*g\n", prec, loss);
    } else {
        if (r->reduction != NLLK_REDUCTION_NONE)
            printf("%s %s loss: %.*g\n", r->command, reduction_name(r->reduction), prec, loss);
        printf("  mean %.*g  sum %.*g  count %llu  total_weight %.*g  (%s)\n", prec, r->mean, prec, r->sum,
               (unsigned long long)r->count, prec, r->total_weight, npy_dtype_name(r->dtype));
        if (r->out)
            printf("  per-element losses written to %s\n", r->out);
        if (r->ninputs > 1 || r->ntargets > 1)
            printf("  %d input and %d target parts, concatenated along the first dimension\n", r->ninputs,
                   r->ntargets);
        if (r->per_class) {
            printf("  %10s %14s %*s %*s %*s\n", "class", "count", prec + 7, "total_weight", prec + 7, "sum",
                   prec + 7, "sum/weight");
            for (uint64_t k = 0; k < r->nclasses; k++) {
                const class_result *c = &r->classes[k];
                printf("  %10llu %14llu %*.*g %*.*g %*.*g\n", (unsigned long long)c->cls,
                       (unsigned long long)c->count, prec + 7, prec, c->total_weight, prec + 7, prec, c->sum,
                       prec + 7, prec, c->sum / c->total_weight);
            }
        }
        printf("  %.3f s, %.1f M elements/s, %.2f GB/s read, isa %s, %d threads, %llu chunks\n", r->seconds,
               eps * 1e-6, bps * 1e-9, nllk_active_isa(), nllk_get_num_threads(), (unsigned long long)r->chunks);
    }
    if (fflush(stdout) != 0 || ferror(stdout))
        die(EX_IO, "writing to stdout: %s", strerror(errno));
}
