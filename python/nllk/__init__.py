"""nllk: CPU kernels for PyTorch's nll_loss, poisson_nll_loss and cross_entropy (forward and backward,
float32/float64) with deterministic, thread-count-independent reductions. A ctypes front end over libnllk.so.

Functions take numpy arrays or torch tensors (CPU) and return the kind of their `input` argument, with
torch.nn.functional's signatures and PyTorch's argument checks:

    poisson_nll_loss(input, target, log_input=True, full=False, eps=1e-8, reduction='mean')
    poisson_nll_loss_backward(grad_output, input, target, log_input=True, full=False, eps=1e-8,
                              reduction='mean', compute_grad_target=False)
    nll_loss(input, target, weight=None, ignore_index=-100, reduction='mean')
    nll_loss_forward(input, target, weight=None, ignore_index=-100, reduction='mean') -> (output, total_weight)
    nll_loss_backward(grad_output, input, target, weight=None, ignore_index=-100, reduction='mean',
                      total_weight=None)
    cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction='mean', label_smoothing=0.0)      (logits; class indices or class probabilities)
    cross_entropy_forward(input, target, weight=None, ignore_index=-100, reduction='mean', label_smoothing=0.0)
        -> (output, total_weight, lse)
    cross_entropy_backward(grad_output, input, target, weight=None, ignore_index=-100, reduction='mean',
                           label_smoothing=0.0, total_weight=None, lse=None, compute_grad_target=False)
    cross_entropy_forward_backward(input, target, weight=None, ignore_index=-100, reduction='mean',
                                   label_smoothing=0.0, grad_output=None) -> (output, grad_input)
        (one fused pass for class indices; the bits of cross_entropy then cross_entropy_backward)
    library_info() -> {'version', 'version_number', 'isa', 'isas', 'threads', 'path'}
    set_num_threads(k); set_isa(name)
    PoissonAccumulator(dtype, log_input, full, eps, begin).update(input, target[, out]) ... .result()
    NLLAccumulator(num_classes, spatial, dtype, weight, ignore_index, begin, target_dtype)
    CrossEntropyAccumulator(num_classes, spatial, dtype, weight, ignore_index, label_smoothing, begin, target_dtype)
    CrossEntropyProbAccumulator(num_classes, spatial, dtype, weight, label_smoothing, begin)
        streaming: fold chunks, .merge() adjacent shards; .result() has the one-shot call's exact bits

nll_loss, poisson_nll_loss and cross_entropy given a tensor that requires grad are computed by nllk.torch (the
result takes part in autograd); the *_backward and *_forward functions refuse such tensors (NllkRuntimeError)
rather than return a detached result. nllk.torch has the drop-in autograd functions and modules.

The shared library is loaded on the first call, found through $NLLK_LIBRARY, else in this package's directory,
else in a source checkout's build/ folder, else by the system loader (nllk._capi documents the order).

Errors (nllk._errors): every exception nllk or nllk.torch raises is an nllk.NllkError that is also the built-in
exception PyTorch raises for the same mistake: a bad reduction or batch size mismatch NllkValueError
(ValueError); a target out of [0, C) NllkIndexError (IndexError) with the library's message and the offending
element's .index; a wrong weight length or spatial size, ignore_index outside int64 NllkRuntimeError
(RuntimeError); an argument of the wrong type NllkTypeError (TypeError); an unsupported dtype DTypeError (a
TypeError and a RuntimeError); a count too large for C NllkOverflowError (OverflowError).
"""
from ._version import __version__
from ._api import (cross_entropy, cross_entropy_backward, cross_entropy_forward, cross_entropy_forward_backward,
                   library_info, nll_loss, nll_loss_backward, nll_loss_forward, poisson_nll_loss,
                   poisson_nll_loss_backward, set_isa, set_num_threads)
from ._errors import (DTypeError, NllkError, NllkIndexError, NllkOverflowError, NllkRuntimeError, NllkTypeError,
                      NllkValueError)
from ._stream import (AccumulatorResult, CrossEntropyAccumulator, CrossEntropyProbAccumulator, NLLAccumulator,
                      PoissonAccumulator)

__all__ = [
    "poisson_nll_loss", "poisson_nll_loss_backward", "nll_loss", "nll_loss_forward", "nll_loss_backward",
    "cross_entropy", "cross_entropy_forward", "cross_entropy_backward", "cross_entropy_forward_backward",
    "library_info", "set_num_threads", "set_isa", "PoissonAccumulator", "NLLAccumulator", "AccumulatorResult",
    "CrossEntropyAccumulator", "CrossEntropyProbAccumulator",
    "NllkError", "NllkIndexError", "NllkValueError", "NllkTypeError", "NllkOverflowError", "NllkRuntimeError",
    "DTypeError",
]
