/* shard_mpi.c — nllk-score across MPI ranks (see shard.h). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "shard.h"

static int g_on, g_rank, g_size = 1, g_local = 1;

static int launched_by_mpi(void)
{
    const char *force = getenv("NLLK_SCORE_MPI");
    if (force && *force)
        return strcmp(force, "0") != 0;
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK") || getenv("PMI_SIZE");
}

void shard_finalize(void)
{
    int init = 0, fin = 0;
    if (!g_on)
        return;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (init && !fin)
        MPI_Finalize();
}

void shard_init(int *argc, char ***argv)
{
    if (!launched_by_mpi())
        return;
    if (MPI_Init(argc, argv) != MPI_SUCCESS) {
        fprintf(stderr, "nllk-score: error: MPI_Init failed\n");
        exit(1);
    }
    g_on = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    MPI_Comm node;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_rank, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_size(node, &g_local);
        MPI_Comm_free(&node);
    }
    atexit(shard_finalize);
}

int shard_on(void) { return g_on; }
int shard_rank(void) { return g_rank; }
int shard_size(void) { return g_size; }
int shard_local_size(void) { return g_local; }

void shard_range(uint64_t n, uint64_t *begin, uint64_t *end)
{
    const unsigned __int128 k = (unsigned)g_size;
    *begin = (uint64_t)((unsigned __int128)n * (unsigned)g_rank / k);
    *end = (uint64_t)((unsigned __int128)n * (unsigned)(g_rank + 1) / k);
}

int shard_agree(int code, char *msg, size_t cap)
{
    if (!g_on)
        return code;
    int mine = code ? g_rank : g_size, first = g_size;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first == g_size)
        return 0;
    struct {
        int code;
        char msg[1024];
    } e;
    memset(&e, 0, sizeof e);
    if (g_rank == first) {
        e.code = code;
        snprintf(e.msg, sizeof e.msg, "%s", msg ? msg : "");
    }
    MPI_Bcast(&e, (int)sizeof e, MPI_BYTE, first, MPI_COMM_WORLD);
    if (msg && cap)
        snprintf(msg, cap, "%s", e.msg);
    return e.code;
}

void shard_bcast(void *buf, size_t len)
{
    if (g_on)
        MPI_Bcast(buf, (int)len, MPI_BYTE, 0, MPI_COMM_WORLD);
}

void shard_gather_bytes(const void *mine, size_t len, void *all)
{
    if (!g_on) {
        memcpy(all, mine, len);
        return;
    }
    MPI_Gather(mine, (int)len, MPI_BYTE, g_rank == 0 ? all : NULL, (int)len, MPI_BYTE, 0, MPI_COMM_WORLD);
}

void shard_gather_acc(const nllk_acc *mine, nllk_acc *all) { shard_gather_bytes(mine, sizeof *mine, all); }
