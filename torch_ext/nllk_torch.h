// nllk's PyTorch operators for libtorch programs: link libnllk_torch.so (it registers the operators nllk::*
// when loaded: link it with -Wl,--no-as-needed, or load it with dlopen) and call them through the dispatcher,
// with autograd, exactly as Python's torch.ops.nllk.* and TorchScript do.
//
//   at::Tensor loss = nllk_torch::nll_loss(log_probs, target);   // at::Reduction::Mean, ignore_index -100
//   loss.backward();
//
// reduction is at::Reduction::None / Mean / Sum. Inputs: dense CPU float32/float64/bfloat16/float16 tensors (NLL
// targets int64, int32 or uint8; results in the input's dtype); anything else raises c10::Error. See
// torch_ext/nllk_torch.cpp for the operator schemas.
#ifndef NLLK_TORCH_H
#define NLLK_TORCH_H

#include <ATen/core/Reduction.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/Tensor.h>

namespace nllk_torch {

inline at::Tensor nll_loss(const at::Tensor &input, const at::Tensor &target,
                           const c10::optional<at::Tensor> &weight = c10::nullopt,
                           int64_t reduction = at::Reduction::Mean, int64_t ignore_index = -100)
{
    static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("nllk::nll_loss", "").typed<
        at::Tensor(const at::Tensor &, const at::Tensor &, const c10::optional<at::Tensor> &, int64_t, int64_t)>();
    return op.call(input, target, weight, reduction, ignore_index);
}

inline at::Tensor poisson_nll_loss(const at::Tensor &input, const at::Tensor &target, bool log_input = true,
                                   bool full = false, double eps = 1e-8, int64_t reduction = at::Reduction::Mean)
{
    static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("nllk::poisson_nll_loss", "").typed<
        at::Tensor(const at::Tensor &, const at::Tensor &, bool, bool, double, int64_t)>();
    return op.call(input, target, log_input, full, eps, reduction);
}

// Class-index (integer) or probability (floating, the input's shape) targets, as torch::cross_entropy_loss.
inline at::Tensor cross_entropy(const at::Tensor &input, const at::Tensor &target,
                                const c10::optional<at::Tensor> &weight = c10::nullopt,
                                int64_t reduction = at::Reduction::Mean, int64_t ignore_index = -100,
                                double label_smoothing = 0.0)
{
    static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("nllk::cross_entropy", "").typed<
        at::Tensor(const at::Tensor &, const at::Tensor &, const c10::optional<at::Tensor> &, int64_t, int64_t,
                   double)>();
    return op.call(input, target, weight, reduction, ignore_index, label_smoothing);
}

}  // namespace nllk_torch

#endif
