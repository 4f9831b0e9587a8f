/* prefetch.c — see prefetch.h. */
#define _GNU_SOURCE
#include "prefetch.h"

#include <signal.h>
#include <string.h>

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

void prefetch_start(prefetcher *p, int on)
{
    memset(p, 0, sizeof *p);
    p->on = on;
    if (!on)
        return;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    sigset_t all, old;
    sigfillset(&all);
    /* termination signals go to the main thread; faults stay with the thread that causes them (a blocked SIGBUS
     * kills the process without a word) */
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    pthread_sigmask(SIG_BLOCK, &all, &old);
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

void prefetch_step(prefetcher *p, const span *cur, const span *next, const span *prev, int n, int first)
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

void prefetch_stop(prefetcher *p, const span *last, int n)
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
