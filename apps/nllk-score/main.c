/* nllk-score — batch scoring of .npy datasets with nllk's streaming accumulators.
 *
 *   nllk-score poisson --input X.npy --target Y.npy [--no-log-input] [--full] [--eps E] [--reduction R] [--out F]
 *   nllk-score nll --input LOGP.npy --target T.npy [--weight W.npy] [--ignore-index I] [--reduction R] [--out F]
 *   nllk-score ce --input LOGITS.npy --target T.npy [--weight W.npy] [--ignore-index I] [--label-smoothing S]
 *                 [--probs] [--reduction R] [--out F]
 *   nllk-score demo
 *
 * Files are mapped and scored chunk by chunk (nllk_*_acc_update_out_*), so memory stays bounded whatever the file
 * size, and the reduced result has exactly the bits of the library's one-shot call on the whole arrays.
 *
 * The program's parts (zstd's programs/ is the model):
 *   cli.c       the options table: parsing, --help, --threads/--isa
 *   fail.c      exit codes, one-line errors agreed across MPI ranks, signals, the temporary file's removal
 *   score.c     the one chunk loop over a loss descriptor (losses.c: poisson, nll, ce), MPI merge
 *   source.c    an input's parts (lists, globs, @lists, .npz members) read as one array;  perclass.c --per-class
 *   npyfile.c   chunked reading (--io), prefetch.c its helper thread
 *   outfile.c   the atomic --out file;  progress.c the bar;  report.c the result (text, --json)
 *   shard_mpi.c / shard_stub.c   MPI or not (nllk-score-mpi / nllk-score);  demo.c  the demo command */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "outfile.h"
#include "fail.h"
#include "report.h"
#include "score.h"
#include "shard.h"

int nllk_score_demo(int json, int quiet); /* demo.c */

int main(int argc, char **argv)
{
    install_signals();
    shard_init(&argc, &argv); /* MPI, when started by mpirun (shard.h) */
    install_signals();        /* again: where MPI_Init set its own */
    if (shard_rank() != 0) {   /* rank 0 prints for the job */
        const int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (null >= 0) {
            dup2(null, 1);
            close(null);
        }
    }
    options o;
    parse_options(argc, argv, &o);
    apply_threads_isa(&o);
    if (o.cmd == CMD_DEMO)
        return shard_rank() ? EX_OK : nllk_score_demo(o.json, o.quiet); /* under mpirun: rank 0 only */
    result r;
    memset(&r, 0, sizeof r);
    out_file out;
    const loss *L = o.cmd == CMD_POISSON ? &loss_poisson
                    : o.cmd == CMD_NLL   ? &loss_nll
                    : o.probs            ? &loss_ce_probs
                                         : &loss_ce;
    score(L, &o, &out, &r);
    /* the report first, the rename last: an output replaced by a run that then fails to report would be a lie */
    if (shard_rank() == 0)
        print_result(&r, o.json, o.quiet);
    phase_check(); /* rank 0 printed the result */
    if (o.out)
        out_commit(&out);
    free(r.rank_seconds);
    for (int k = 0; k < r.ninputs + r.ntargets; k++)
        free((char *)r.inputs[k]);
    free(r.inputs);
    free(r.classes);
    free(o.inputs.v);
    free(o.targets.v);
    return EX_OK;
}
