/* util.c — see util.h. */
#define _GNU_SOURCE
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int parse_i64(const char *s, int64_t *v)
{
    char *end;
    errno = 0;
    const long long x = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return 0;
    *v = x;
    return 1;
}

int parse_u64(const char *s, uint64_t *v)
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

void shape_str(char *buf, size_t cap, int ndim, const uint64_t *shape)
{
    size_t n = (size_t)snprintf(buf, cap, "(");
    for (int k = 0; k < ndim && n < cap; k++)
        n += (size_t)snprintf(buf + n, cap - n, k ? ", %llu" : "%llu", (unsigned long long)shape[k]);
    if (n < cap)
        snprintf(buf + n, cap - n, ndim == 1 ? ",)" : ")");
}

void write_str(int fd, const char *s)
{
    size_t n = strlen(s);
    while (n) {
        const ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}
