/* shard_stub.c — nllk-score (no MPI): one rank of one (see shard.h; nllk-score-mpi links shard_mpi.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shard.h"

/* Started by mpirun with more than one rank: K copies would each score everything and race on --out. */
void shard_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *k = getenv("OMPI_COMM_WORLD_SIZE");
    if (!k)
        k = getenv("PMI_SIZE");
    if (k && atoi(k) > 1) {
        fprintf(stderr, "nllk-score: error: this nllk-score has no MPI: under mpirun use nllk-score-mpi\n");
        exit(2);
    }
}
int shard_on(void) { return 0; }
int shard_rank(void) { return 0; }
int shard_size(void) { return 1; }
int shard_local_size(void) { return 1; }

void shard_range(uint64_t n, uint64_t *begin, uint64_t *end)
{
    *begin = 0;
    *end = n;
}

int shard_agree(int code, char *msg, size_t cap)
{
    (void)msg;
    (void)cap;
    return code;
}

void shard_bcast(void *buf, size_t len)
{
    (void)buf;
    (void)len;
}

void shard_gather_acc(const nllk_acc *mine, nllk_acc *all) { memcpy(all, mine, sizeof *mine); }

void shard_gather_bytes(const void *mine, size_t len, void *all) { memcpy(all, mine, len); }

void shard_finalize(void) {}
