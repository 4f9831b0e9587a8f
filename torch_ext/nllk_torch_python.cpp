// _nllk_torch: the Python fast path to nllk's operators. Calls the same registered operators (nllk::nll_loss,
// nllk::poisson_nll_loss) through the dispatcher, so autograd, tracing and every other dispatch key behave as with
// torch.ops.nllk.*, without torch.ops' per-call argument matching against the schema (about 1 us of a 2 us call).
// nllk.torch loads it when it exists next to libnllk_torch.so, else calls torch.ops.nllk.* directly.
#include <torch/extension.h>

namespace {

using NllFn = at::Tensor(const at::Tensor &, const at::Tensor &, const c10::optional<at::Tensor> &, int64_t,
                         int64_t);
using PoissonFn = at::Tensor(const at::Tensor &, const at::Tensor &, bool, bool, double, int64_t);

c10::TypedOperatorHandle<NllFn> nll_op()
{
    static const auto op =
        c10::Dispatcher::singleton().findSchemaOrThrow("nllk::nll_loss", "").typed<NllFn>();
    return op;
}

c10::TypedOperatorHandle<PoissonFn> poisson_op()
{
    static const auto op =
        c10::Dispatcher::singleton().findSchemaOrThrow("nllk::poisson_nll_loss", "").typed<PoissonFn>();
    return op;
}

at::Tensor nll_loss(const at::Tensor &input, const at::Tensor &target, const c10::optional<at::Tensor> &weight,
                    int64_t reduction, int64_t ignore_index)
{
    return nll_op().call(input, target, weight, reduction, ignore_index);
}

at::Tensor poisson_nll_loss(const at::Tensor &input, const at::Tensor &target, bool log_input, bool full,
                            double eps, int64_t reduction)
{
    return poisson_op().call(input, target, log_input, full, eps, reduction);
}

using CeFn = at::Tensor(const at::Tensor &, const at::Tensor &, const c10::optional<at::Tensor> &, int64_t,
                        int64_t, double);

at::Tensor cross_entropy(const at::Tensor &input, const at::Tensor &target, const c10::optional<at::Tensor> &weight,
                         int64_t reduction, int64_t ignore_index, double label_smoothing)
{
    static const auto op =
        c10::Dispatcher::singleton().findSchemaOrThrow("nllk::cross_entropy", "").typed<CeFn>();
    return op.call(input, target, weight, reduction, ignore_index, label_smoothing);
}

}  // namespace

PYBIND11_MODULE(_nllk_torch, m)
{
    m.doc() = "nllk's PyTorch operators, called through the dispatcher (see torch_ext/nllk_torch.cpp)";
    m.def("nll_loss", &nll_loss, "nllk::nll_loss(input, target, weight, reduction, ignore_index)");
    m.def("poisson_nll_loss", &poisson_nll_loss,
          "nllk::poisson_nll_loss(input, target, log_input, full, eps, reduction)");
    m.def("cross_entropy", &cross_entropy,
          "nllk::cross_entropy(input, target, weight, reduction, ignore_index, label_smoothing)");
}
