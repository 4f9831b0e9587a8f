"""nllk: CPU kernels for PyTorch's nll_loss and poisson_nll_loss (forward and backward, float32/float64) with
deterministic, thread-count-independent reductions. A ctypes front end over libnllk.so.

Functions take numpy arrays or torch tensors (CPU) and return the kind of their `input` argument, with
torch.nn.functional's signatures and PyTorch's argument checks:

    poisson_nll_loss(input, target, log_input=True, full=False, eps=1e-8, reduction='mean')
    poisson_nll_loss_backward(grad_output, input, target, log_input=True, full=False, eps=1e-8,
                              reduction='mean', compute_grad_target=False)
    nll_loss(input, target, weight=None, ignore_index=-100, reduction='mean')
    nll_loss_forward(input, target, weight=None, ignore_index=-100, reduction='mean') -> (output, total_weight)
    nll_loss_backward(grad_output, input, target, weight=None, ignore_index=-100, reduction='mean',
                      total_weight=None)
    library_info() -> {'version', 'version_number', 'isa', 'threads', 'path'}
    set_num_threads(k)
    PoissonAccumulator(dtype, log_input, full, eps, begin).update(input, target) ... .result()
    NLLAccumulator(num_classes, spatial, dtype, weight, ignore_index, begin, target_dtype)
        streaming: fold chunks, .merge() adjacent shards; .result() has the one-shot call's exact bits

The results do not take part in torch.autograd: call the *_backward functions for gradients.

The shared library is found through $NLLK_LIBRARY, else next to this package (libnllk.so*), else in the source
tree's default build folder (<repo>/build/libnllk.so); it is loaded on the first call.

Errors: a bad reduction, a batch size mismatch -> ValueError; a target out of [0, C) -> IndexError with the
library's message; a wrong weight length or spatial size -> RuntimeError; an unsupported dtype -> TypeError
(nllk.DTypeError, also a RuntimeError as in PyTorch). Failures reported by the library are nllk.NllkError
subclasses that also derive from the matching built-in exception.
"""
from ._version import __version__
from ._api import (library_info, nll_loss, nll_loss_backward, nll_loss_forward, poisson_nll_loss,
                   poisson_nll_loss_backward, set_num_threads)
from ._stream import AccumulatorResult, NLLAccumulator, PoissonAccumulator
from ._lib import (DTypeError, NllkError, NllkIndexError, NllkOverflowError, NllkRuntimeError,
                   NllkValueError)

__all__ = [
    "poisson_nll_loss", "poisson_nll_loss_backward", "nll_loss", "nll_loss_forward", "nll_loss_backward",
    "library_info", "set_num_threads", "PoissonAccumulator", "NLLAccumulator", "AccumulatorResult",
    "NllkError", "NllkIndexError", "NllkValueError", "NllkOverflowError", "NllkRuntimeError", "DTypeError",
]
