/* shard.h — nllk-score across MPI ranks: nllk-score-mpi links shard_mpi.c, nllk-score shard_stub.c (no MPI).
 *
 * Under `mpirun -n K nllk-score-mpi ...` every rank opens the same files, scores its contiguous shard [n*r/K,
 * n*(r+1)/K) through an accumulator started at the shard's global offset, and rank 0 merges the K accumulators
 * in rank order: the canonical tree, so the result has the bits of one process for every K.
 *
 * Errors are agreed on, never left to one rank: every rank passes through the same sequence of shard_agree()
 * calls (one per phase: inputs opened, output created, scored, output closed, result printed); a rank that
 * fails calls it from its error path with its message, the others at the end of the phase with code 0, and all
 * of them learn the error of the lowest failing rank (the one a single process meets first) and exit with its
 * code. Without mpirun (no launcher in the environment) nothing of MPI is touched: one rank of one. */
#ifndef NLLK_SCORE_SHARD_H
#define NLLK_SCORE_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include <nllk.h>

/* Initializes MPI when the program was started by an MPI launcher (OMPI_COMM_WORLD_SIZE, PMIX_RANK, PMI_RANK
 * in the environment; NLLK_SCORE_MPI=0 never, =1 always). Registers MPI_Finalize at exit. */
void shard_init(int *argc, char ***argv);

int shard_on(void);         /* MPI is initialized (even with one rank)                         */
int shard_rank(void);       /* 0 without MPI                                                   */
int shard_size(void);       /* 1 without MPI                                                   */
int shard_local_size(void); /* ranks on this node (1 without MPI)                              */

/* This rank's part [*begin, *end) of n items. */
void shard_range(uint64_t n, uint64_t *begin, uint64_t *end);

/* Collective: every rank reports its outcome (code 0: fine; else its exit code and message). Returns 0 when all
 * ranks succeeded, else the code of the lowest failing rank, whose message is copied into msg on every rank. */
int shard_agree(int code, char *msg, size_t cap);

/* Collective: rank 0's len bytes of buf to every rank. */
void shard_bcast(void *buf, size_t len);

/* Collective: every rank's accumulator to rank 0, into all[0..K-1] (all is ignored on the other ranks). */
void shard_gather_acc(const nllk_acc *mine, nllk_acc *all);

/* Collective: every rank's len bytes to rank 0, into all (K * len bytes; ignored on the other ranks). */
void shard_gather_bytes(const void *mine, size_t len, void *all);

/* MPI_Finalize (once; also run at exit). */
void shard_finalize(void);

#endif
