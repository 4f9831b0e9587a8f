/* A process forked after a multi-threaded nllk call can still call nllk. libgomp's thread pool does not survive
 * fork(): without nllk's fork handler the child's first parallel region waits forever for the parent's pool
 * threads (here: killed by the alarm). The child must finish, on one thread, with the parent's bits. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

enum { N = 1 << 21 };

static float poisson_mean(const float *x, const float *t)
{
    float loss = 0;
    CHECK_OK(nllk_poisson_nll_fwd_f32(x, t, N, 1, 0, 1e-8, NLLK_REDUCTION_MEAN, &loss));
    return loss;
}

int main(void)
{
    float *x = malloc(N * sizeof *x), *t = malloc(N * sizeof *t);
    if (!x || !t)
        return 1;
    tu_seed(7);
    for (int i = 0; i < N; i++) {
        x[i] = (float)(2 * tu_unit() - 1);
        t[i] = (float)(int)(5 * tu_unit());
    }
    CHECK_OK(nllk_set_num_threads(2));
    CHECK(nllk_get_num_threads() == 2, "parent: %d threads, expected 2", nllk_get_num_threads());
    const float parent = poisson_mean(x, t); /* starts a 2-thread OpenMP team (its pool stays behind) */

    for (int round = 0; round < 2; round++) { /* round 1: the child forks again (a grandchild) */
        fflush(stdout);
        const pid_t pid = fork();
        CHECK(pid >= 0, "fork: %s", strerror(errno));
        if (pid == 0) {
            alarm(60);
            int ok = poisson_mean(x, t) == parent && nllk_get_num_threads() == 1;
            if (ok && round == 1) {
                const pid_t grandchild = fork();
                if (grandchild == 0) {
                    alarm(60);
                    _exit(poisson_mean(x, t) == parent ? 0 : 1);
                }
                int st;
                ok = grandchild > 0 && waitpid(grandchild, &st, 0) == grandchild && WIFEXITED(st) &&
                     WEXITSTATUS(st) == 0;
            }
            _exit(ok && tu_failures == 0 ? 0 : 1);
        }
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "round %d: child %s %d (a signal 14 is the alarm: hung)",
              round, WIFSIGNALED(status) ? "killed by signal" : "exited with", WIFSIGNALED(status) ?
              WTERMSIG(status) : WEXITSTATUS(status));
    }
    /* the parent keeps its threads */
    CHECK(nllk_get_num_threads() == 2, "parent after fork: %d threads", nllk_get_num_threads());
    CHECK(poisson_mean(x, t) == parent, "parent after fork: different bits");
    free(x);
    free(t);
    return tu_summary();
}
