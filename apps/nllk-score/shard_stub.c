/* shard_stub.c — nllk-score built without MPI: one rank of one (see shard.h). */
#include <string.h>

#include "shard.h"

void shard_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
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
