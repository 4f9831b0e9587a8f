/* bench_folio.c — the cost of bringing page-cached files into a process, by the size of their page-cache folios
 * (BENCHMARKS.md, "nllk-score: many files (issue 17)"). The minimal reproduction of the parts gap: no nllk code.
 *
 *   cc -O2 -Wall -Wextra -o /tmp/bench_folio apps/nllk-score/bench_folio.c
 *   /tmp/bench_folio [-r ROUNDS] [-b BUF_BYTES] [-s] FILE...      (the files are read one after the other)
 *
 * Prints the files' page-cache state — resident pages, folios and pages per folio, read from /proc/self/pagemap and
 * /proc/kpageflags (root only; "n/a" otherwise) — then, per method, the median over ROUNDS (default 5) of the wall
 * time and of the process's CPU time (user + system: what the method costs whatever else runs on the machine):
 *   read      pread into one reused BUF_BYTES buffer (default 4 MiB), file after file
 *   fault     mmap each file, read one byte per 4 KiB page (page faults; the kernel maps folios around the fault),
 *             munmap
 *   populate  mmap each file, madvise(MADV_POPULATE_READ) per BUF_BYTES window, munmap
 * (A mapping method's CPU includes the unmapping, which a long-running reader pays too.) GB/s = bytes / time.
 * -s: print the page-cache state only. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double cpu(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

static int cmp_d(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Resident pages and folios of the file's page cache (-1: not readable). */
static void folios(const char *path, long *pages, long *heads)
{
    *pages = *heads = -1;
    const int pm = open("/proc/self/pagemap", O_RDONLY), kf = open("/proc/kpageflags", O_RDONLY);
    const int fd = open(path, O_RDONLY);
    struct stat st;
    if (pm >= 0 && kf >= 0 && fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 0) {
        const size_t n = (size_t)st.st_size, ps = 4096;
        unsigned char *m = mmap(NULL, n, PROT_READ, MAP_SHARED, fd, 0);
        if (m != MAP_FAILED) {
            /* map what is resident without reading the file: fault only pages mincore() reports resident */
            unsigned char *vec = malloc((n + ps - 1) / ps);
            long p = 0, h = 0;
            int ok = vec && mincore(m, n, vec) == 0;
            for (size_t i = 0; ok && i < (n + ps - 1) / ps; i++) {
                if (!(vec[i] & 1))
                    continue;
                (void)*(volatile unsigned char *)(m + i * ps);
                uint64_t e, fl;
                if (pread(pm, &e, 8, (off_t)(((uintptr_t)m / ps + i) * 8)) != 8 || !(e >> 63))
                    continue;
                const uint64_t pfn = e & ((UINT64_C(1) << 55) - 1);
                if (pfn == 0 || pread(kf, &fl, 8, (off_t)(pfn * 8)) != 8) { /* no PFNs without CAP_SYS_ADMIN */
                    ok = 0;
                    break;
                }
                p++;
                if (!(fl & (UINT64_C(1) << 16))) /* KPF_COMPOUND_TAIL: not a folio's first page */
                    h++;
            }
            if (ok)
                *pages = p, *heads = h;
            free(vec);
            munmap(m, n);
        }
    }
    if (fd >= 0)
        close(fd);
    if (kf >= 0)
        close(kf);
    if (pm >= 0)
        close(pm);
}

enum { READ, FAULT, POPULATE, METHODS };
static const char *const names[METHODS] = {"read", "fault", "populate"};

/* One pass of method k over the files; returns the bytes brought in. */
static uint64_t pass(int k, char **files, int n, unsigned char *buf, size_t bufsz)
{
    uint64_t total = 0;
    unsigned sink = 0;
    for (int a = 0; a < n; a++) {
        const int fd = open(files[a], O_RDONLY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0) {
            perror(files[a]);
            exit(1);
        }
        const size_t len = (size_t)st.st_size;
        if (k == READ) {
            for (size_t off = 0; off < len;) {
                const ssize_t r = pread(fd, buf, bufsz, (off_t)off);
                if (r <= 0)
                    break;
                sink += buf[0];
                off += (size_t)r;
                total += (uint64_t)r;
            }
        } else if (len) {
            unsigned char *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
            if (m == MAP_FAILED) {
                perror(files[a]);
                exit(1);
            }
            for (size_t off = 0; off < len; off += bufsz) {
                const size_t w = len - off < bufsz ? len - off : bufsz;
                if (k == POPULATE)
                    madvise(m + off, w, MADV_POPULATE_READ);
                else
                    for (size_t q = 0; q < w; q += 4096)
                        sink += ((volatile unsigned char *)m)[off + q];
            }
            munmap(m, len);
            total += len;
        }
        close(fd);
    }
    if (sink == 0xdeadbeef)
        puts("");
    return total;
}

int main(int argc, char **argv)
{
    int rounds = 5, a = 1, state_only = 0;
    size_t bufsz = (size_t)4 << 20;
    for (; a < argc && argv[a][0] == '-'; a++) {
        if (!strcmp(argv[a], "-s"))
            state_only = 1;
        else if (a + 1 < argc && !strcmp(argv[a], "-r"))
            rounds = atoi(argv[++a]);
        else if (a + 1 < argc && !strcmp(argv[a], "-b"))
            bufsz = (size_t)strtoull(argv[++a], NULL, 0);
        else
            break;
    }
    if (a >= argc || rounds < 1 || bufsz < 4096) {
        fprintf(stderr, "usage: %s [-r ROUNDS] [-b BUF_BYTES] [-s] FILE...\n", argv[0]);
        return 2;
    }
    bufsz &= ~(size_t)4095;
    char **files = argv + a;
    const int n = argc - a;
    long pages = 0, heads = 0;
    for (int k = 0; k < n && pages >= 0; k++) {
        long p, h;
        folios(files[k], &p, &h);
        if (p < 0)
            pages = -1;
        else
            pages += p, heads += h;
    }
    if (pages >= 0)
        printf("%d files: %ld resident pages in %ld folios, %.1f pages per folio\n", n, pages, heads,
               heads ? (double)pages / (double)heads : 0.0);
    else
        printf("%d files: folio sizes n/a (/proc/kpageflags needs root)\n", n);
    if (state_only)
        return 0;
    unsigned char *buf = aligned_alloc(4096, bufsz);
    if (!buf)
        return 1;
    memset(buf, 1, bufsz); /* (pre-touched: the copy's destination is not faulted in the timed passes) */
    double *wall = malloc(sizeof(double) * (size_t)rounds), *cp = malloc(sizeof(double) * (size_t)rounds);
    if (!wall || !cp)
        return 1;
    for (int k = 0; k < METHODS; k++) {
        uint64_t bytes = 0;
        for (int r = 0; r < rounds; r++) {
            const double t0 = now(), c0 = cpu();
            bytes = pass(k, files, n, buf, bufsz);
            wall[r] = now() - t0;
            cp[r] = cpu() - c0;
        }
        qsort(wall, (size_t)rounds, sizeof *wall, cmp_d);
        qsort(cp, (size_t)rounds, sizeof *cp, cmp_d);
        const double w = wall[rounds / 2], c = cp[rounds / 2];
        printf("%-9s %llu bytes: wall %7.1f ms (%5.1f GB/s)  cpu %7.1f ms (%5.1f GB/s)\n", names[k],
               (unsigned long long)bytes, 1e3 * w, (double)bytes / w / 1e9, 1e3 * c,
               c > 0 ? (double)bytes / c / 1e9 : 0.0);
    }
    free(wall);
    free(cp);
    free(buf);
    return 0;
}
