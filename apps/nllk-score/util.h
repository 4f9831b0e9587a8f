/* util.h — small helpers of nllk-score: time, integer parsing, shapes, raw writes (zstd's timefn/util). */
#ifndef NLLK_SCORE_UTIL_H
#define NLLK_SCORE_UTIL_H

#include <stddef.h>
#include <stdint.h>

double now_s(void); /* CLOCK_MONOTONIC, seconds */

int parse_i64(const char *s, int64_t *v);  /* 1 if s is exactly a decimal int64           */
int parse_u64(const char *s, uint64_t *v); /* 1 if s is exactly a decimal uint64, no sign */

/* "(2, 3)", "(7,)", "()": numpy's spelling of a shape (or coordinates). */
void shape_str(char *buf, size_t cap, int ndim, const uint64_t *shape);

/* write(2) all of s to fd, retrying short writes; errors ignored (async-signal-safe: for handlers and bars). */
void write_str(int fd, const char *s);

#endif
