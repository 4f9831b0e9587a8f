"""nllk as a PyTorch backend: drop-in loss modules and functions with autograd.

Change one import and a PyTorch program computes its losses with nllk:

    from nllk.torch import PoissonNLLLoss, NLLLoss          # instead of torch.nn's
    import nllk.torch as F                                   # F.poisson_nll_loss, F.nll_loss

The modules subclass torch.nn.PoissonNLLLoss and torch.nn.NLLLoss (same constructor arguments, state_dict,
isinstance), and the functions take torch.nn.functional's arguments, legacy size_average/reduce included.

Backends. The losses run on nllk's PyTorch operators, torch.ops.nllk.nll_loss and torch.ops.nllk.poisson_nll_loss
(libnllk_torch.so, built from torch_ext/ when CMake finds libtorch; shipped in the package by `pip install`):
C++ autograd kernels that keep what backward reads with save_for_backward (so an in-place change of an input
after the forward raises autograd's "modified by an inplace operation" error, as in PyTorch), and that work in
eager mode, under torch.jit.trace and torch.jit.script (the modules' forward calls the operators directly when
scripted), and from C++ (torch_ext/nllk_torch.h). The library is looked for as $NLLK_TORCH_LIBRARY, else
libnllk_torch.so next to the libnllk that nllk loaded (the package directory, a checkout's build/), else in the
package directory. BACKEND says which one is in use: "ops", or "ctypes" -- the documented fallback when the
operator library is missing (or NLLK_TORCH_BACKEND=ctypes): the same kernels through ctypes, forward and first
derivatives in torch.autograd.Function, inputs saved with save_for_backward (version-checked), a create_graph
backward computed by PyTorch's own composite. BACKEND_ERROR says why the operators were not loaded.

Gradients: the first derivatives (w.r.t. input, and w.r.t. target for Poisson, as PyTorch gives it) run nllk's
kernels; a backward with create_graph=True (double backward, gradient penalties) is computed with differentiable
PyTorch operations, so higher derivatives are PyTorch's, never silently dropped.

Arguments are checked by the rules nllk's numpy front end uses (nllk._args: PyTorch's, with PyTorch's messages),
and errors are the same exception classes as nllk.*'s (nllk.NllkError subclasses that are also the built-in
exception PyTorch raises). What nllk does not compute runs on PyTorch unchanged, errors included: tensors not on
the CPU, dtypes other than float32/float64/bfloat16/float16 (or input and target/weight of different dtypes), NLL
targets other
than int64/int32/uint8, tensor subclasses other than nn.Parameter, a class weight that requires grad (PyTorch's
"not differentiable with respect to argument 'weight'"), forward-mode AD (inside torch.autograd.forward_ad.dual_level)
and functorch transforms (vmap, grad, jvp).

Differences from PyTorch, by design (see include/nllk.h): mean and sum are reduced in double along a fixed tree
(the same bits for any thread count; within ~1 ulp of the exact sum), and the Poisson gradient w.r.t. target
with full=True is finite where target <= 0 (PyTorch gives NaN there, an artefact of its masked Stirling term).

bfloat16 and float16: the losses return the input's dtype, computed as nllk.h describes (inputs converted exactly
to float32, float32 math, each output and gradient rounded once, mean and sum reduced in double and rounded once),
where PyTorch 1.13 accumulates bfloat16 NLL sums in bfloat16. float16 is computed by nllk although PyTorch's CPU
kernels do not implement it (its nll_loss, log_softmax and exp raise "not implemented for 'Half'"); a create_graph
(double) backward of a float16 loss is PyTorch's composite and raises that error.
"""
import ctypes
import os
import re
from typing import Optional

import torch
import torch.autograd.forward_ad as _fwad
import torch.nn.functional as _F
from torch import Tensor
from torch.nn import _reduction as _Reduction

from . import _api, _args, _capi
from ._capi import REDUCTION_NONE as _NONE
from ._errors import NllkIndexError, NllkRuntimeError, NllkTypeError, NllkValueError

__all__ = ["PoissonNLLLoss", "NLLLoss", "CrossEntropyLoss", "poisson_nll_loss", "nll_loss", "cross_entropy",
           "library_info", "set_num_threads", "BACKEND", "BACKEND_ERROR"]

library_info = _api.library_info
set_num_threads = _api.set_num_threads
_FLOATS = (torch.float32, torch.float64, torch.bfloat16, torch.float16)
_TARGET_TYPES = {torch.int64: _capi.TARGET_I64, torch.int32: _capi.TARGET_I32, torch.uint8: _capi.TARGET_U8}
_STRIDED = torch.strided
_TENSORS = (Tensor, torch.nn.Parameter)  # classes computed by nllk (other subclasses may override torch functions)
_RED = {"none": 0, "mean": 1, "sum": 2}
_transforms_active = torch._C._functorch.are_transforms_active


# ---- the operator library -------------------------------------------------------------------------------------
def _ops_candidates():
    env = os.environ.get("NLLK_TORCH_LIBRARY")
    if env:
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    found = []
    try:
        lib_dir = os.path.dirname(os.path.abspath(_capi.get().path))
        found.append(os.path.join(lib_dir, "libnllk_torch.so"))
    except OSError:
        pass
    found.append(os.path.join(here, "libnllk_torch.so"))
    return [p for i, p in enumerate(found) if p not in found[:i] and os.path.exists(p)]


def _load_ops():
    """(torch.ops.nllk, None), or (None, why not). libnllk is loaded first, so the operators' libnllk.so.0.1 is the
    one nllk (and nllk.set_num_threads) uses."""
    if os.environ.get("NLLK_TORCH_BACKEND") == "ctypes":
        return None, "NLLK_TORCH_BACKEND=ctypes"
    try:
        torch.ops.nllk.nll_loss  # already registered (a library loaded by the program)
        return torch.ops.nllk, None
    except (AttributeError, RuntimeError):
        pass
    tried = []
    for path in _ops_candidates():
        try:
            torch.ops.load_library(path)
            return torch.ops.nllk, None
        except (OSError, RuntimeError) as e:
            tried.append(f"{path}: {e}")
    return None, ("libnllk_torch.so not found" if not tried else "; ".join(tried))


def _load_fast_path():
    """The _nllk_torch module next to libnllk_torch.so (pybind11: the same operators through the dispatcher,
    without torch.ops' per-call schema matching), or None."""
    import importlib.machinery
    import importlib.util
    lib = [p for p in _ops_candidates()] if _OPS is not None else []
    for d in dict.fromkeys(os.path.dirname(p) for p in lib + [os.path.abspath(__file__)]):
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(d, "_nllk_torch" + suffix)
            if os.path.exists(path):
                try:
                    spec = importlib.util.spec_from_file_location("nllk._nllk_torch", path)
                    module = importlib.util.module_from_spec(spec)
                    spec.loader.exec_module(module)
                    return module
                except ImportError:
                    pass
    return None


_OPS, BACKEND_ERROR = _load_ops()
BACKEND = "ops" if _OPS is not None else "ctypes"
_FAST = _load_fast_path() if _OPS is not None else None
# the calls of the common path: the pybind11 functions, else the operators' raw overloads
if _FAST is not None:
    _OP_NLL, _OP_POISSON = _FAST.nll_loss, _FAST.poisson_nll_loss
    _OP_CE = getattr(_FAST, "cross_entropy", None)
elif _OPS is not None:
    _OP_NLL, _OP_POISSON = _OPS.nll_loss.default._op, _OPS.poisson_nll_loss.default._op
    _OP_CE = _OPS.cross_entropy.default._op if hasattr(_OPS, "cross_entropy") else None
else:
    _OP_NLL = _OP_POISSON = _OP_CE = None


def _pytorch_only() -> bool:
    """True where nllk defers to PyTorch whatever the tensors: forward-mode AD and functorch transforms."""
    return _fwad._current_level >= 0 or _transforms_active()


_INDEX = re.compile(r"target\[(\d+)\]")


def _converted(e: Exception) -> Exception:
    """An error of the operators (c10's IndexError/ValueError/RuntimeError) as nllk's exception class."""
    msg = str(e)
    if isinstance(e, IndexError):
        m = _INDEX.search(msg)
        return NllkIndexError(msg, _capi.ERR_TARGET_OUT_OF_RANGE, "NLLK_ERR_TARGET_OUT_OF_RANGE",
                              int(m.group(1)) if m else None)
    if isinstance(e, ValueError):
        return NllkValueError(msg)
    if isinstance(e, TypeError):
        return NllkTypeError(msg)
    return NllkRuntimeError(msg)


# ---- the ctypes fallback ----------------------------------------------------------------------------------------
_KERNELS = {}  # torch dtype -> _capi.Kernels


def _kernels(dtype: torch.dtype) -> _capi.Kernels:
    """The entry points of a float dtype (loads the library on the first call)."""
    k = _KERNELS.get(dtype)
    if k is None:
        lib = _capi.get()
        k = _KERNELS.setdefault(dtype, {torch.float32: lib.f32, torch.float64: lib.f64, torch.bfloat16: lib.bf16,
                                        torch.float16: lib.f16}[dtype])
    return k


def _ptr(t: Optional[Tensor]) -> Optional[int]:
    return None if t is None else t.data_ptr()  # (0, i.e. NULL, for an empty tensor: the C API allows it)


def _poisson_broadcast(input, target):
    x, t = input, target
    if t.shape != x.shape:
        shape = _args.broadcast_shape(x.shape, t.shape, "poisson_nll_loss")
        x, t = x.expand(shape), t.expand(shape)
    return x.contiguous(), t.contiguous()


def _ctypes_poisson_forward(input, target, options):
    x, t = _poisson_broadcast(input, target)
    log_input, full, eps, red = options
    out = x.new_empty(x.shape if red == _NONE else ())
    _capi.check(_kernels(x.dtype).poisson_nll_fwd(x.data_ptr(), t.data_ptr(), x.numel(), log_input, full, eps,
                                                  red, out.data_ptr()))
    return out


def _needs_composite(grad_output) -> bool:
    """A backward that must be differentiable (create_graph=True), or whose grad_output has no memory of its own
    (vmap's and gradcheck's batched tensors), is computed by PyTorch's composite."""
    if torch.is_grad_enabled():
        return True
    try:
        grad_output.data_ptr()
        return False
    except RuntimeError:
        return True


def _composite_backward(ctx, grad_output, inputs, loss_fn):
    """A create_graph backward: PyTorch's composite loss on the saved inputs, differentiated with create_graph, so
    the gradient carries the inputs' history (double backward is PyTorch's)."""
    wanted = [x for x, need in zip(inputs, ctx.needs_input_grad) if need]
    with torch.enable_grad():
        grads = iter(torch.autograd.grad(loss_fn(*inputs), wanted, grad_output, create_graph=True))
    return [next(grads) if need else None for need in ctx.needs_input_grad[:len(inputs)]]


class _PoissonNLLFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, target, options):
        ctx.save_for_backward(input, target)  # version-checked: an in-place change after this is an error
        ctx.options = options
        return _ctypes_poisson_forward(input, target, options)

    @staticmethod
    def backward(ctx, grad_output):
        input, target = ctx.saved_tensors
        log_input, full, eps, red = ctx.options
        if _needs_composite(grad_output):
            gx, gt = _composite_backward(ctx, grad_output, (input, target), lambda a, b: _F.poisson_nll_loss(
                a, b, log_input=log_input, full=full, eps=eps, reduction=("none", "mean", "sum")[red]))
            return gx, gt, None
        x, t = _poisson_broadcast(input, target)
        shape = x.shape
        need_gx, need_gt = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        go = grad_output.to(x.dtype)
        if red == _NONE and go.shape != shape:
            go = go.expand(shape)
        go = go.contiguous()
        gx = torch.empty(shape, dtype=x.dtype)
        gt = torch.empty(shape, dtype=x.dtype) if need_gt else None
        _capi.check(_kernels(x.dtype).poisson_nll_bwd(x.data_ptr(), t.data_ptr(), x.numel(), log_input, full, eps,
                                                      red, go.data_ptr(), gx.data_ptr(), _ptr(gt)))
        if need_gx and shape != input.shape:
            gx = gx.sum_to_size(input.shape)
        if need_gt and shape != target.shape:
            gt = gt.sum_to_size(target.shape)
        return (gx if need_gx else None), gt, None


def _ctypes_nll_forward(input, target, weight, ignore_index, geometry, tw=None):
    n, c, d, out_shape, red = geometry
    x, t = input.contiguous(), target.contiguous()
    w = None if weight is None else weight.contiguous()
    k = _kernels(x.dtype)
    out = x.new_empty(out_shape if red == _NONE else ())
    _capi.check(k.nll_fwd(x.data_ptr(), t.data_ptr(), _TARGET_TYPES[t.dtype], n, c, d, _ptr(w), ignore_index, red,
                          out.data_ptr(), None if tw is None else ctypes.addressof(tw)))
    return out


class _NLLFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, target, weight, ignore_index, geometry, reduction):
        tw = _kernels(input.dtype).real()
        out = _ctypes_nll_forward(input, target, weight, ignore_index, geometry, tw)
        ctx.save_for_backward(input, target, weight)
        ctx.options = (ignore_index, geometry, tw.value, reduction)
        return out

    @staticmethod
    def backward(ctx, grad_output):
        input, target, weight = ctx.saved_tensors
        ignore_index, (n, c, d, _, red), total_weight, reduction = ctx.options
        if _needs_composite(grad_output):
            gx, = _composite_backward(ctx, grad_output, (input,), lambda a: _F.nll_loss(
                a, target, weight=weight, ignore_index=ignore_index, reduction=reduction))
            return gx, None, None, None, None, None
        go = grad_output.to(input.dtype).contiguous()
        t = target.contiguous()
        w = None if weight is None else weight.contiguous()
        gx = torch.empty(input.shape, dtype=input.dtype)
        _capi.check(_kernels(input.dtype).nll_bwd(go.data_ptr(), t.data_ptr(), _TARGET_TYPES[t.dtype], n, c, d,
                                                  _ptr(w), ignore_index, red, total_weight, gx.data_ptr()))
        return gx, None, None, None, None, None


# ---- Poisson ----------------------------------------------------------------------------------------------------
def _poisson_native(input, target) -> bool:
    """True when nllk computes poisson_nll_loss(input, target) (else PyTorch does)."""
    return (input.__class__ in _TENSORS and target.__class__ in _TENSORS and input.dtype in _FLOATS
            and target.dtype is input.dtype and input.is_cpu and target.is_cpu
            and input.layout is _STRIDED and target.layout is _STRIDED and not _pytorch_only())


def _poisson_slow(input, target, log_input, full, eps, reduction, error):
    """Everything but the common call: argument checks with nllk's exceptions, PyTorch's fallback, the ctypes
    backend, and the conversion of an operator's error."""
    options = _args.poisson_options(log_input, full, eps, reduction, "poisson_nll_loss")
    if not _poisson_native(input, target):
        return _F.poisson_nll_loss(input, target, log_input=log_input, full=full, eps=options[2],
                                   reduction=reduction)
    if input.shape != target.shape:
        try:
            _args.broadcast_shape(input.shape, target.shape, "poisson_nll_loss")
        except NllkRuntimeError as e:
            try:  # ATen's message first (meta tensors: no data), then nllk's
                torch.empty(target.shape, device="meta") * torch.empty(input.shape, device="meta")
            except RuntimeError as aten:
                raise NllkRuntimeError(f"{aten} ({e})") from None
            raise
    if _OP_POISSON is not None:
        if error is None:
            try:
                return _OP_POISSON(input, target, options[0], options[1], options[2], options[3])
            except (RuntimeError, ValueError, IndexError, TypeError) as e:
                error = e
        raise _converted(error) from None
    if torch.is_grad_enabled() and (input.requires_grad or target.requires_grad):
        return _PoissonNLLFunction.apply(input, target, options)
    return _ctypes_poisson_forward(input, target, options)


def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool = True, full: bool = False,
                     size_average: Optional[bool] = None, eps: float = 1e-8, reduce: Optional[bool] = None,
                     reduction: str = "mean") -> Tensor:
    """torch.nn.functional.poisson_nll_loss on nllk's kernels (same arguments, same results)."""
    if size_average is not None or reduce is not None:
        reduction = _Reduction.legacy_get_string(size_average, reduce)
    red = _RED.get(reduction) if reduction.__class__ is str else None
    error = None
    if (red is not None and log_input.__class__ is bool and full.__class__ is bool and eps.__class__ is float
            and _OP_POISSON is not None and input.__class__ in _TENSORS and target.__class__ in _TENSORS
            and _fwad._current_level < 0 and not _transforms_active()):
        try:
            return _OP_POISSON(input, target, log_input, full, eps, red)
        except (RuntimeError, ValueError, IndexError, TypeError) as e:
            error = e  # (a fallback case, or an error to raise as nllk's exception class)
    return _poisson_slow(input, target, log_input, full, eps, reduction, error)


class PoissonNLLLoss(torch.nn.PoissonNLLLoss):
    """torch.nn.PoissonNLLLoss(log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
    reduction='mean') computed by nllk (scripted: torch.ops.nllk.poisson_nll_loss)."""

    def forward(self, log_input: Tensor, target: Tensor) -> Tensor:
        if torch.jit.is_scripting():
            return torch.ops.nllk.poisson_nll_loss(log_input, target, self.log_input, self.full, self.eps,
                                                   _Reduction.get_enum(self.reduction))
        return poisson_nll_loss(log_input, target, log_input=self.log_input, full=self.full, eps=self.eps,
                                reduction=self.reduction)


# ---- NLL --------------------------------------------------------------------------------------------------------
def _nll_native(input, target, weight) -> bool:
    """True when nllk computes nll_loss(input, target, weight) (else PyTorch does)."""
    return (input.__class__ in _TENSORS and target.__class__ in _TENSORS and input.dtype in _FLOATS
            and target.dtype in _TARGET_TYPES and input.is_cpu and target.is_cpu
            and input.layout is _STRIDED and target.layout is _STRIDED
            and (weight is None or (weight.__class__ in _TENSORS and weight.dtype is input.dtype and weight.is_cpu
                                    and weight.layout is _STRIDED and not weight.requires_grad))
            and not _pytorch_only())


def _nll_slow(input, target, weight, ignore_index, reduction, error):
    """Everything but the common call (see _poisson_slow)."""
    red, ii = _args.nll_options(reduction, ignore_index, "nll_loss")
    if not _nll_native(input, target, weight):
        return _F.nll_loss(input, target, weight=weight, ignore_index=ii, reduction=reduction)
    geometry = _args.nll_geometry(input.shape, target.shape, None if weight is None else weight.shape, red)
    if _OP_NLL is not None:
        if error is None:
            try:
                return _OP_NLL(input, target, weight, red, ii)
            except (RuntimeError, ValueError, IndexError, TypeError) as e:
                error = e
        raise _converted(error) from None
    if input.requires_grad and torch.is_grad_enabled():
        return _NLLFunction.apply(input, target, weight, ii, geometry, reduction)
    return _ctypes_nll_forward(input, target, weight, ii, geometry)


def nll_loss(input: Tensor, target: Tensor, weight: Optional[Tensor] = None, size_average: Optional[bool] = None,
             ignore_index: int = -100, reduce: Optional[bool] = None, reduction: str = "mean") -> Tensor:
    """torch.nn.functional.nll_loss on nllk's kernels (same arguments, same results; targets may also be
    uint8 or int32 for every shape)."""
    if size_average is not None or reduce is not None:
        reduction = _Reduction.legacy_get_string(size_average, reduce)
    red = _RED.get(reduction) if reduction.__class__ is str else None
    error = None
    if (red is not None and ignore_index.__class__ is int and _OP_NLL is not None
            and input.__class__ in _TENSORS and target.__class__ in _TENSORS
            and (weight is None or weight.__class__ in _TENSORS)
            and _fwad._current_level < 0 and not _transforms_active()):
        try:
            return _OP_NLL(input, target, weight, red, ignore_index)
        except (RuntimeError, ValueError, IndexError, TypeError) as e:
            error = e  # (a fallback case, or an error to raise as nllk's exception class)
    return _nll_slow(input, target, weight, ignore_index, reduction, error)


class NLLLoss(torch.nn.NLLLoss):
    """torch.nn.NLLLoss(weight=None, size_average=None, ignore_index=-100, reduce=None, reduction='mean')
    computed by nllk (scripted: torch.ops.nllk.nll_loss)."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        if torch.jit.is_scripting():
            return torch.ops.nllk.nll_loss(input, target, self.weight, _Reduction.get_enum(self.reduction),
                                           self.ignore_index)
        return nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


# ---- cross-entropy ------------------------------------------------------------------------------------------------
def _ce_slow(input, target, weight, ignore_index, reduction, label_smoothing, error):
    """Everything but the common call. Where the operator refused the call (or cannot run: no operators, a
    weight that requires grad, forward AD, functorch transforms, tensor subclasses), PyTorch decides: its result
    (a case nllk does not compute) or its error, raised as nllk's exception class."""
    red, ii = _args.nll_options(reduction, ignore_index, "cross_entropy")
    if label_smoothing.__class__ is not float:
        label_smoothing = _args.real(label_smoothing, "label_smoothing", "cross_entropy")
    native = (_OP_CE is not None and input.__class__ in _TENSORS and target.__class__ in _TENSORS
              and (weight is None or (weight.__class__ in _TENSORS and not weight.requires_grad))
              and not _pytorch_only())
    if native and error is None:
        try:
            return _OP_CE(input, target, weight, red, ii, label_smoothing)
        except (RuntimeError, ValueError, IndexError, TypeError) as e:
            error = e
    if native and isinstance(error, IndexError):  # a target out of range: nllk's message and index
        raise _converted(error) from None
    try:
        return _F.cross_entropy(input, target, weight=weight, ignore_index=ii, reduction=reduction,
                                label_smoothing=label_smoothing)
    except (RuntimeError, ValueError, IndexError, TypeError) as e:
        raise _converted(e) from None


def cross_entropy(input: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                  size_average: Optional[bool] = None, ignore_index: int = -100, reduce: Optional[bool] = None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """torch.nn.functional.cross_entropy on nllk's fused log_softmax + NLL kernels: class-index targets (int64,
    int32, uint8) or probabilities (the input's shape and dtype), weight, ignore_index, label_smoothing. Needs the
    operators (BACKEND "ops"); without them it is PyTorch's."""
    if size_average is not None or reduce is not None:
        reduction = _Reduction.legacy_get_string(size_average, reduce)
    red = _RED.get(reduction) if reduction.__class__ is str else None
    error = None
    if (red is not None and ignore_index.__class__ is int and label_smoothing.__class__ is float
            and _OP_CE is not None and input.__class__ in _TENSORS and target.__class__ in _TENSORS
            and (weight is None or weight.__class__ in _TENSORS)
            and _fwad._current_level < 0 and not _transforms_active()):
        try:
            return _OP_CE(input, target, weight, red, ignore_index, label_smoothing)
        except (RuntimeError, ValueError, IndexError, TypeError) as e:
            error = e
    return _ce_slow(input, target, weight, ignore_index, reduction, label_smoothing, error)


class CrossEntropyLoss(torch.nn.CrossEntropyLoss):
    """torch.nn.CrossEntropyLoss(weight=None, size_average=None, ignore_index=-100, reduce=None, reduction='mean',
    label_smoothing=0.0) computed by nllk (scripted: torch.ops.nllk.cross_entropy)."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        if torch.jit.is_scripting():
            return torch.ops.nllk.cross_entropy(input, target, self.weight, _Reduction.get_enum(self.reduction),
                                                self.ignore_index, self.label_smoothing)
        return cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                             reduction=self.reduction, label_smoothing=self.label_smoothing)
