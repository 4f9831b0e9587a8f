/* bench_map.c — how fast can a page-cached file be brought into a process? (BENCHMARKS.md, ## nllk-score)
 *
 *   cc -O2 -o /tmp/bench_map apps/nllk-score/bench_map.c && /tmp/bench_map FILE [CHUNK_BYTES]
 *
 * For the whole file, by CHUNK_BYTES windows (default: all at once): madvise(MADV_POPULATE_READ), a touch of every
 * page afterwards, madvise(MADV_DONTNEED); then mmap(MAP_POPULATE) + munmap, and plain page faults (a touch of
 * every page of a fresh mapping), and pread into one reused buffer. GB/s of file bytes, 3 rounds. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
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

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE [CHUNK_BYTES]\n", argv[0]);
        return 2;
    }
    const int fd = open(argv[1], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        perror(argv[1]);
        return 1;
    }
    const size_t n = (size_t)st.st_size, chunk = argc > 2 ? (size_t)atol(argv[2]) : n;
    const size_t bufsz = 8u << 20;
    char *buf = malloc(bufsz);
    volatile long sink = 0;
    for (int rep = 0; rep < 3; rep++) {
        char *p = mmap(NULL, n, PROT_READ, MAP_SHARED, fd, 0);
        double t0 = now();
        for (size_t o = 0; o < n; o += chunk)
            madvise(p + o, n - o < chunk ? n - o : chunk, MADV_POPULATE_READ);
        double t1 = now();
        for (size_t o = 0; o < n; o += 4096)
            sink += p[o];
        double t2 = now();
        for (size_t o = 0; o < n; o += chunk)
            madvise(p + o, n - o < chunk ? n - o : chunk, MADV_DONTNEED);
        double t3 = now();
        munmap(p, n);
        double t4 = now();
        char *q = mmap(NULL, n, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
        munmap(q, n);
        double t5 = now();
        char *r = mmap(NULL, n, PROT_READ, MAP_SHARED, fd, 0);
        double t6 = now();
        for (size_t o = 0; o < n; o += 4096)
            sink += r[o];
        munmap(r, n);
        double t7 = now();
        for (size_t o = 0; o < n; o += bufsz)
            if (pread(fd, buf, n - o < bufsz ? n - o : bufsz, (off_t)o) < 0)
                perror("pread");
        double t8 = now();
        printf("MADV_POPULATE_READ %7.1f GB/s  touch after %6.1f  MADV_DONTNEED %7.1f  MAP_POPULATE+munmap %7.1f  "
               "faults+munmap %6.1f  pread 8 MiB %5.1f\n",
               n / (t1 - t0) / 1e9, n / (t2 - t1) / 1e9, n / (t3 - t2) / 1e9, n / (t5 - t4) / 1e9,
               n / (t7 - t6) / 1e9, n / (t8 - t7) / 1e9);
    }
    free(buf);
    return 0;
}
