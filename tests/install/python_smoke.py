"""Smoke test of an installed nllk package (run by check_python.sh from outside the source tree): the library is
the one inside the package, the version is CMake's, the losses match PyTorch, and a fork-based Pool works after a
2-thread call. With NLLK_EXPECT_FAST=1 (check_python.sh sets it when the interpreter has its headers, so the
build made the compiled numpy front end) _nllk_fast must be loaded from the package too and agree with PyTorch.
Usage: python_smoke.py <expected version> [<folder the package must come from>]"""
import multiprocessing
import os
import sys

import torch

import numpy as np

import nllk
import nllk._capi
import nllk.torch

expected_version = sys.argv[1]
expected_site = sys.argv[2] if len(sys.argv) > 2 else sys.prefix  # the venv, or cmake --install's folder
package_dir = os.path.dirname(os.path.abspath(nllk.__file__))
assert package_dir.startswith(os.path.abspath(expected_site)), f"nllk imported from {package_dir}, not {expected_site}"
info = nllk.library_info()
assert os.path.dirname(info["path"]) == package_dir, f"library {info['path']} is not inside {package_dir}"
assert nllk.__version__ == expected_version == info["version"], (nllk.__version__, info["version"], expected_version)

torch.manual_seed(0)
x = torch.randn(64, 7).log_softmax(1)
t = torch.randint(0, 7, (64,))
rate, count = torch.randn(1000), torch.poisson(torch.full((1000,), 3.0))
torch.testing.assert_close(nllk.nll_loss(x, t), torch.nn.functional.nll_loss(x, t))
torch.testing.assert_close(nllk.poisson_nll_loss(rate, count), torch.nn.functional.poisson_nll_loss(rate, count))
xg = x.clone().requires_grad_()
nllk.torch.nll_loss(xg, t).backward()
xr = x.clone().requires_grad_()
torch.nn.functional.nll_loss(xr, t).backward()
torch.testing.assert_close(xg.grad, xr.grad)

if os.environ.get("NLLK_EXPECT_FAST") == "1":
    fast = nllk._capi.fast
    assert fast is not None, f"_nllk_fast not loaded: {nllk._capi.FAST_ERROR}"
    assert os.path.dirname(os.path.abspath(fast.__file__)) == package_dir, f"{fast.__file__} not in {package_dir}"
    xn, tn = x.numpy(), t.numpy()
    np.testing.assert_allclose(nllk.nll_loss(xn, tn), torch.nn.functional.nll_loss(x, t).item(), rtol=1e-6)
    np.testing.assert_allclose(nllk.cross_entropy(xn, tn), torch.nn.functional.cross_entropy(x, t).item(), rtol=1e-6)

# fork after a 2-thread call: libgomp's thread pool does not survive fork; the child must still finish (nllk runs
# single-threaded there, with the same bits)
big_x, big_t = torch.randn(1 << 21), torch.rand(1 << 21) * 5
torch.set_num_threads(1)
nllk.set_num_threads(2)  # an explicit count wins over PyTorch's setting of a shared OpenMP runtime
assert nllk.library_info()["threads"] == 2, nllk.library_info()
parent = nllk.poisson_nll_loss(big_x, big_t).item()


def child_loss(_):
    return nllk.poisson_nll_loss(big_x, big_t).item(), nllk.library_info()["threads"]


with multiprocessing.get_context("fork").Pool(2) as pool:
    got = pool.map_async(child_loss, range(4)).get(timeout=120)
assert got == [(parent, 1)] * 4, (got, parent)
print(f"python package: nllk {nllk.__version__} from {package_dir}, ISA {info['isa']}, compiled numpy front end "
      f"{'loaded' if nllk._capi.fast is not None else 'absent'}: matches PyTorch; "
      f"fork Pool after a 2-thread call gives the parent's bits")
