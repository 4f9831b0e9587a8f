/* progress.c — see progress.h. */
#define _GNU_SOURCE
#include "progress.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fail.h"
#include "shard.h"
#include "util.h"

void progress_init(progress *p, int mode, uint64_t total_bytes, uint64_t local_total)
{
    memset(p, 0, sizeof *p);
    p->tty = isatty(2);
    p->on = mode == 2 ? 2 : mode == 1 && p->tty ? 1 : 0;
    p->t0 = p->last = now_s();
    p->total = total_bytes;
    /* under MPI only rank 0 draws the bar: its own shard's progress scaled to the whole job */
    if (shard_rank() != 0)
        p->on = 0;
    else if (shard_size() > 1)
        p->scale = local_total ? (double)p->total / (double)local_total : 1.0;
}

void progress_update(progress *p, uint64_t done)
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
    fail_bar_drawn(p->tty);
}

void progress_end(progress *p)
{
    if (p->drawn && p->tty)
        write_str(2, "\r\033[K");
    fail_bar_drawn(0);
}
