/* source.c — see source.h. */
#define _GNU_SOURCE
#include "source.h"

#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fail.h"
#include "util.h"

typedef struct names {
    char **v;
    int n, cap;
} names;

static void push(names *l, char *s)
{
    if (!s)
        die(EX_IO, "out of memory");
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->v = realloc(l->v, (size_t)l->cap * sizeof *l->v);
        if (!l->v)
            die(EX_IO, "out of memory (%d file names)", l->cap);
    }
    l->v[l->n++] = s;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* A glob (sorted in byte order), or the name itself when it has no wildcard or names an existing file. */
static void expand_one(names *l, const char *spec, const char *role)
{
    const size_t alen = npyf_member_split(spec);
    char *file = alen ? strndup(spec, alen) : strdup(spec);
    if (!file)
        die(EX_IO, "out of memory");
    const char *member = alen ? spec + alen : "";
    struct stat st;
    if (!strpbrk(file, "*?[") || stat(file, &st) == 0) {
        free(file);
        push(l, strdup(spec));
        return;
    }
    glob_t g;
    const int rc = glob(file, GLOB_NOSORT, NULL, &g);
    if (rc == GLOB_NOMATCH || (rc == 0 && g.gl_pathc == 0))
        die(EX_IO, "%s: no file matches '%s'", role, file);
    if (rc != 0)
        die(EX_IO, "%s: cannot expand '%s'", role, file);
    qsort(g.gl_pathv, g.gl_pathc, sizeof *g.gl_pathv, cmp_str);
    for (size_t k = 0; k < g.gl_pathc; k++) {
        char *s = malloc(strlen(g.gl_pathv[k]) + strlen(member) + 1);
        if (s)
            strcat(strcpy(s, g.gl_pathv[k]), member);
        push(l, s);
    }
    globfree(&g);
    free(file);
}

/* "@LIST": one part per line, relative to LIST's directory; blank lines and '#' comments skipped. */
static void expand_manifest(names *l, const char *list, const char *role)
{
    FILE *fp = fopen(list, "r");
    if (!fp)
        die(EX_IO, "%s: cannot read the list '%s': %s", role, list, strerror(errno));
    const char *slash = strrchr(list, '/');
    const size_t dlen = slash ? (size_t)(slash - list + 1) : 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    const int before = l->n;
    while ((len = getline(&line, &cap, fp)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (len == 0 || line[0] == '#')
            continue;
        char *s = malloc(dlen + (size_t)len + 1);
        if (!s)
            die(EX_IO, "out of memory");
        if (line[0] == '/')
            strcpy(s, line);
        else {
            memcpy(s, list, dlen);
            strcpy(s + dlen, line);
        }
        push(l, s);
    }
    const int bad = ferror(fp);
    free(line);
    fclose(fp);
    if (bad)
        die(EX_IO, "%s: cannot read the list '%s'", role, list);
    if (l->n == before)
        die(EX_IO, "%s: the list '%s' names no file", role, list);
}

static void open_part(npy_file *f, const char *spec, io_mode mode, const char *role)
{
    char err[512];
    const int k = npyf_open(f, spec, mode, err, sizeof err);
    if (k != NPYF_OK)
        die(k, "%s: %s", role, err);
}

void src_open(source *s, const char *const *specs, int n, io_mode mode, int release, const char *role)
{
    memset(s, 0, sizeof *s);
    s->role = role;
    s->mode = mode;
    s->release = release;
    s->cur = -1;
    s->f.fd = -1;
    names l = {0};
    for (int k = 0; k < n; k++) {
        if (specs[k][0] == '@' && specs[k][1])
            expand_manifest(&l, specs[k] + 1, role);
        else
            expand_one(&l, specs[k], role);
    }
    if (l.n == 0)
        die(EX_USAGE, "--%s is required", role);
    s->n = l.n;
    s->parts = calloc((size_t)l.n, sizeof *s->parts);
    if (!s->parts)
        die(EX_IO, "out of memory (%d parts)", l.n);
    uint64_t first = 0;
    for (int k = 0; k < l.n; k++) {
        part *p = &s->parts[k];
        p->spec = l.v[k];
        npy_file f;
        open_part(&f, p->spec, mode, role);
        p->h = f.h;
        p->first = first;
        s->misaligned |= f.misaligned;
        npyf_close(&f);
        const npy_header *h0 = &s->parts[0].h;
        if (k && p->h.dtype != h0->dtype)
            die(EX_FORMAT, "%s %s is %s but %s is %s: the parts of one %s must have one dtype", role, p->spec,
                npy_dtype_name(p->h.dtype), s->parts[0].spec, npy_dtype_name(h0->dtype), role);
        if (l.n > 1 && p->h.ndim == 0)
            die(EX_SHAPE, "%s %s is 0-d: only arrays of at least one dimension are concatenated", role, p->spec);
        if (k && (p->h.ndim != h0->ndim ||
                  memcmp(p->h.shape + 1, h0->shape + 1, sizeof(uint64_t) * (size_t)(h0->ndim - 1)) != 0)) {
            char a[256], b[256];
            shape_str(a, sizeof a, p->h.ndim, p->h.shape);
            shape_str(b, sizeof b, h0->ndim, h0->shape);
            die(EX_SHAPE, "%s %s has shape %s but %s has %s: the parts must agree beyond the first dimension", role,
                p->spec, a, s->parts[0].spec, b);
        }
        if (p->h.count > UINT64_MAX - first)
            die(EX_SHAPE, "%s: the parts hold more than 2^64 elements", role);
        first += p->h.count;
    }
    s->h = s->parts[0].h;
    s->h.count = first;
    s->h.nbytes = first * s->h.itemsize;
    if (s->h.ndim > 0) {
        s->h.shape[0] = 0;
        for (int k = 0; k < l.n; k++)
            s->h.shape[0] += s->parts[k].h.shape[0];
    }
    free(l.v);
}

void src_reserve(source *s, size_t bytes) { s->reserve = bytes; }

static int part_of(const source *s, uint64_t elem)
{
    if (s->cur >= 0 && elem >= s->parts[s->cur].first && elem - s->parts[s->cur].first < s->parts[s->cur].h.count)
        return s->cur;
    int lo = 0, hi = s->n - 1; /* the last part whose first <= elem (empty parts are skipped by this) */
    while (lo < hi) {
        const int mid = (lo + hi + 1) / 2;
        if (s->parts[mid].first <= elem)
            lo = mid;
        else
            hi = mid - 1;
    }
    while (lo + 1 < s->n && s->parts[lo].h.count == 0)
        lo++;
    return lo;
}

int src_switching(const source *s, uint64_t elem) { return part_of(s, elem) != s->cur; }

uint64_t src_part_end(const source *s, uint64_t elem)
{
    const part *p = &s->parts[part_of(s, elem)];
    return p->first + p->h.count;
}

const char *src_name(const source *s, uint64_t elem, uint64_t *local)
{
    const part *p = &s->parts[part_of(s, elem)];
    if (local)
        *local = elem - p->first;
    return p->spec;
}

npy_file *src_part(source *s, uint64_t elem, uint64_t *local)
{
    const int k = part_of(s, elem);
    const part *p = &s->parts[k];
    if (k != s->cur) {
        /* the read buffer outlives the parts (a new one per part would be faulted in and zeroed again) */
        unsigned char *buf = s->f.buf;
        size_t cap = s->f.buf_cap;
        s->f.buf = NULL;
        npyf_close(&s->f);
        s->cur = -1;
        open_part(&s->f, p->spec, s->mode, s->role);
        s->f.buf = buf;
        s->f.buf_cap = cap;
        const npy_header *a = &s->f.h, *b = &p->h;
        if (a->dtype != b->dtype || a->ndim != b->ndim || a->data_offset != b->data_offset ||
            memcmp(a->shape, b->shape, sizeof(uint64_t) * (size_t)a->ndim) != 0)
            die(EX_IO, "%s %s changed while being read (its header is not the one read at the start)", s->role,
                p->spec);
        s->f.release = s->release;
        char err[512];
        if (npyf_reserve(&s->f, s->reserve, err, sizeof err) != NPYF_OK)
            die(EX_IO, "%s", err);
        s->cur = k;
    }
    *local = elem - p->first;
    return &s->f;
}

const void *src_get(source *s, uint64_t elem, uint64_t count)
{
    uint64_t local;
    npy_file *f = src_part(s, elem, &local);
    char err[512];
    const void *x = npyf_get(f, local, count, err, sizeof err);
    if (!x)
        die(EX_IO, "%s", err);
    return x;
}

void src_put(source *s, uint64_t elem, uint64_t count)
{
    if (s->cur < 0)
        return;
    npyf_put(&s->f, elem - s->parts[s->cur].first, count);
}

void src_close(source *s)
{
    npyf_close(&s->f);
    for (int k = 0; k < s->n; k++)
        free(s->parts[k].spec);
    free(s->parts);
    memset(s, 0, sizeof *s);
    s->f.fd = -1;
    s->cur = -1;
}
