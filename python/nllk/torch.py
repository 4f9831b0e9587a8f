"""nllk as a PyTorch backend: drop-in loss modules and functions with autograd.

Change one import and a PyTorch program computes its losses with nllk:

    from nllk.torch import PoissonNLLLoss, NLLLoss          # instead of torch.nn's
    import nllk.torch as F                                   # F.poisson_nll_loss, F.nll_loss

The modules subclass torch.nn.PoissonNLLLoss and torch.nn.NLLLoss (same constructor arguments, state_dict,
isinstance), and the functions take torch.nn.functional's arguments, legacy size_average/reduce included.
Forward and backward (w.r.t. input, and w.r.t. target for Poisson, as PyTorch gives it) run nllk's kernels on
the tensors' memory, without copies for contiguous inputs. What nllk does not compute falls back to PyTorch
unchanged: tensors not on the CPU, dtypes other than float32/float64 (or input and target/weight of different
dtypes), NLL targets other than int64/int32/uint8, and shapes PyTorch would reject (so its errors are the same).
Double backward is not supported (use torch.nn for higher-order gradients).

Differences from PyTorch, by design (see include/nllk.h): mean and sum are reduced in double along a fixed tree
(the same bits for any thread count; within ~1 ulp of the exact sum), and the Poisson gradient w.r.t. target
with full=True is finite where target <= 0 (PyTorch gives NaN there, an artefact of its masked Stirling term).
"""
import torch
import torch.nn.functional as _F
from torch.nn import _reduction as _Reduction

from . import _torch_capi as _c

__all__ = ["PoissonNLLLoss", "NLLLoss", "poisson_nll_loss", "nll_loss", "library_info", "set_num_threads"]

library_info = _c.library_info
set_num_threads = _c.set_num_threads
_FLOATS = (torch.float32, torch.float64)


def _plain_cpu(t):
    return isinstance(t, torch.Tensor) and t.device.type == "cpu" and t.layout == torch.strided


# ---- Poisson --------------------------------------------------------------------------------------------------
class _PoissonNLLFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, target, log_input, full, eps, reduction):
        red = _c.reduction_code(reduction)
        x, t = input, target
        if x.shape != t.shape:
            x, t = torch.broadcast_tensors(x, t)
        x, t = x.contiguous(), t.contiguous()
        out = _c.poisson_fwd(x, t, log_input, full, eps, red)
        ctx.save_for_backward(x, t)
        ctx.opts = (log_input, full, eps, red, input.shape, target.shape)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        x, t = ctx.saved_tensors
        log_input, full, eps, red, input_shape, target_shape = ctx.opts
        need_gx, need_gt = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        go = grad_output.to(x.dtype).contiguous()
        if red == _c.NONE and go.shape != x.shape:
            go = go.expand(x.shape).contiguous()
        gx, gt = _c.poisson_bwd(x, t, log_input, full, eps, red, go, need_gt)
        if need_gx and gx.shape != input_shape:
            gx = gx.sum_to_size(input_shape)
        if need_gt and gt.shape != target_shape:
            gt = gt.sum_to_size(target_shape)
        return (gx if need_gx else None), (gt if need_gt else None), None, None, None, None


_RED = {"none": _c.NONE, "mean": _c.MEAN, "sum": _c.SUM}


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
                     reduction="mean"):
    """torch.nn.functional.poisson_nll_loss on nllk's kernels (same arguments, same results)."""
    if size_average is not None or reduce is not None:
        reduction = _Reduction.legacy_get_string(size_average, reduce)
    red = _RED.get(reduction)
    if red is None:
        raise ValueError(reduction + " is not valid")
    # fast path: no autograd graph to record, same-shape contiguous CPU tensors of one float dtype
    if (type(input) is torch.Tensor and type(target) is torch.Tensor and input.is_cpu and target.is_cpu
            and input.dtype is target.dtype and input.dtype in _FLOATS
            and not (torch.is_grad_enabled() and (input.requires_grad or target.requires_grad))
            and input.layout is torch.strided and target.layout is torch.strided and input.shape == target.shape
            and input.is_contiguous() and target.is_contiguous()):
        out = input.new_empty(input.shape if red == _c.NONE else ())
        st = _c.POISSON_FWD[input.dtype](input.data_ptr(), target.data_ptr(), input.numel(), bool(log_input),
                                        bool(full), eps, red, out.data_ptr())
        if st:
            _c._check(st)
        return out
    if not (_plain_cpu(input) and _plain_cpu(target) and input.dtype in _FLOATS and target.dtype == input.dtype):
        return _F.poisson_nll_loss(input, target, log_input=log_input, full=full, eps=eps, reduction=reduction)
    try:
        torch.broadcast_shapes(input.shape, target.shape)
    except RuntimeError:
        return _F.poisson_nll_loss(input, target, log_input=log_input, full=full, eps=eps, reduction=reduction)
    return _PoissonNLLFunction.apply(input, target, bool(log_input), bool(full), float(eps), reduction)


class PoissonNLLLoss(torch.nn.PoissonNLLLoss):
    """torch.nn.PoissonNLLLoss(log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
    reduction='mean') computed by nllk."""

    def forward(self, log_input, target):
        return poisson_nll_loss(log_input, target, log_input=self.log_input, full=self.full, eps=self.eps,
                                reduction=self.reduction)


# ---- NLL ------------------------------------------------------------------------------------------------------
def _nll_geometry(input, target):
    """(n, c, d, output shape) when nllk takes these shapes as PyTorch does, else None (PyTorch decides)."""
    if input.dim() == 1:
        if target.dim() != 0:
            return None
        return 1, input.shape[0], 1, ()
    if input.dim() < 1 or target.dim() != input.dim() - 1 or target.shape[0] != input.shape[0]:
        return None
    if tuple(target.shape[1:]) != tuple(input.shape[2:]):
        return None
    d = 1
    for s in input.shape[2:]:
        d *= s
    return input.shape[0], input.shape[1], d, tuple(target.shape)


class _NLLFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, target, weight, ignore_index, reduction, geometry):
        n, c, d, out_shape = geometry
        red = _c.reduction_code(reduction)
        x = input.contiguous()
        t = target.contiguous()
        w = weight.contiguous() if weight is not None else None
        out, total_weight = _c.nll_fwd(x, t, n, c, d, w, ignore_index, red)
        if red == _c.NONE:
            out = out.view(out_shape)
        ctx.save_for_backward(t, w, total_weight)
        ctx.opts = (n, c, d, ignore_index, red, input.shape, input.dtype)
        ctx.mark_non_differentiable(total_weight)
        return out, total_weight

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output, _grad_total_weight):
        t, w, total_weight = ctx.saved_tensors
        n, c, d, ignore_index, red, input_shape, dtype = ctx.opts
        go = grad_output.to(dtype).contiguous()
        gx = torch.empty(input_shape, dtype=dtype)
        _c.nll_bwd(go, t, n, c, d, w, ignore_index, red, total_weight.item(), gx)
        return gx, None, None, None, None, None


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    """torch.nn.functional.nll_loss on nllk's kernels (same arguments, same results; targets may also be
    uint8 or int32 for every shape)."""
    if size_average is not None or reduce is not None:
        reduction = _Reduction.legacy_get_string(size_average, reduce)
    red = _RED.get(reduction)
    # fast path: (N, C) contiguous float input, int64 targets, no autograd graph to record
    if (red is not None and type(input) is torch.Tensor and type(target) is torch.Tensor and input.is_cpu
            and target.is_cpu and input.dim() == 2 and target.dim() == 1 and input.dtype in _FLOATS
            and target.dtype is torch.int64 and not (torch.is_grad_enabled() and input.requires_grad)
            and input.layout is torch.strided and input.is_contiguous() and target.is_contiguous()
            and (weight is None or (type(weight) is torch.Tensor and weight.is_cpu and weight.dtype is input.dtype
                                    and weight.dim() == 1 and weight.is_contiguous()))):
        n, c = input.shape
        if target.shape[0] == n and (weight is None or weight.shape[0] == c):
            out = input.new_empty((n,) if red == _c.NONE else ())
            st = _c.NLL_FWD[input.dtype](input.data_ptr(), target.data_ptr(), 0, n, c, 1,
                                         weight.data_ptr() if weight is not None else None, int(ignore_index), red,
                                         out.data_ptr() if n or red else None, None)
            if st == _c.ERR_TARGET_OUT_OF_RANGE:
                raise IndexError(_c.lib.nllk_last_error().decode(errors="replace"))
            if st:
                _c._check(st)
            return out
    geometry = None
    if (_plain_cpu(input) and _plain_cpu(target) and input.dtype in _FLOATS
            and target.dtype in (torch.int64, torch.int32, torch.uint8)
            and (weight is None or (_plain_cpu(weight) and weight.dtype == input.dtype and weight.dim() == 1
                                    and input.dim() >= 1 and weight.shape[0] == input.shape[min(1, input.dim() - 1)]))
            and reduction in ("none", "mean", "sum")):
        geometry = _nll_geometry(input, target)
    if geometry is None:
        return _F.nll_loss(input, target, weight=weight, ignore_index=ignore_index, reduction=reduction)
    out, _ = _NLLFunction.apply(input, target, weight, int(ignore_index), reduction, geometry)
    return out


class NLLLoss(torch.nn.NLLLoss):
    """torch.nn.NLLLoss(weight=None, size_average=None, ignore_index=-100, reduce=None, reduction='mean')
    computed by nllk."""

    def forward(self, input, target):
        return nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index, reduction=self.reduction)
