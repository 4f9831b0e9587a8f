"""nllk next to PyTorch in one process: nllk's calls must not end the threads of the OpenMP pool that PyTorch's ops
use (issue 14). libgomp keeps one pool per calling thread, shared by nllk and Debian's python3-torch; a parallel
region with fewer threads than the previous one ends the surplus pool threads, and PyTorch's next op had to create
them again. nllk now runs such a call in the caller's team (dispatch/parallel.c, nllk.h section 4).

The threads are counted in /proc/self/task; the results must be the bits of a one-thread call.
"""
import os

import numpy as np
import pytest
import torch

import nllk

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs /proc/self/task (Linux)")


def _threads():
    return set(os.listdir("/proc/self/task"))


@pytest.fixture
def torch_at_4():
    old = torch.get_num_threads()
    torch.set_num_threads(4)  # (omp_set_num_threads: the caller's OpenMP setting nllk sees too)
    try:
        yield
    finally:
        torch.set_num_threads(old)
        nllk.set_num_threads(0)


def _pytorch_op():
    a = torch.ones(1 << 22)
    torch.add(a, a, out=a)  # a 4-thread region: the pool holds PyTorch's 4 threads


@pytest.mark.parametrize("case", ["forced 2", "small input"])
def test_nllk_call_ends_no_pool_thread(torch_at_4, case):
    rng = np.random.default_rng(5)
    if case == "forced 2":  # nllk told to use 2 threads, PyTorch at 4
        nllk.set_num_threads(2)
        n = 1 << 20
    else:  # nllk follows PyTorch (4 threads) but the input has only 2 grains (nllk_threads_for: 2 threads)
        nllk.set_num_threads(0)
        n = 2 * 32768
    x = rng.standard_normal(n).astype(np.float32)
    t = (rng.random(n) * 4).astype(np.float32)
    _pytorch_op()
    _pytorch_op()  # (any lazily created thread exists by now)
    before = _threads()
    got = nllk.poisson_nll_loss(x, t, reduction="sum")
    after_nllk = _threads()
    _pytorch_op()
    after_torch = _threads()
    assert before - after_nllk == set(), "nllk's call ended pool threads"
    assert after_torch - after_nllk == set(), "PyTorch's next op had to create pool threads"
    nllk.set_num_threads(1)
    assert got.tobytes() == nllk.poisson_nll_loss(x, t, reduction="sum").tobytes()
