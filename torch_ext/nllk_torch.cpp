// nllk's losses as PyTorch operators (libnllk_torch.so): torch.ops.nllk.* in Python, eager and TorchScript
// (script and trace), and the same operators for libtorch programs (nllk_torch.h).
//
//   nllk::nll_loss(Tensor self, Tensor target, Tensor? weight=None, int reduction=1, int ignore_index=-100)
//   nllk::poisson_nll_loss(Tensor input, Tensor target, bool log_input=True, bool full=False, float eps=1e-08,
//                          int reduction=1)
//   nllk::cross_entropy(Tensor self, Tensor target, Tensor? weight=None, int reduction=1, int ignore_index=-100,
//                       float label_smoothing=0.0)   (class-index targets: integer; probabilities: floating)
//   and their forward/backward parts: nllk::nll_loss_forward, nllk::nll_loss_backward,
//   nllk::poisson_nll_loss_backward, nllk::cross_entropy_forward, nllk::cross_entropy_backward (no autograd of
//   their own: autograd's "not implemented" error).
//
// reduction is ATen's enum (0 none, 1 mean, 2 sum, at::Reduction). CPU kernels compute float32, float64, bfloat16
// and float16 with libnllk (16-bit storage: f32 math, outputs and gradients rounded once to the input's dtype, which
// the results have; float16 although PyTorch's CPU kernels do not implement it); anything else (other dtypes,
// devices, layouts) is an error here (nllk.torch routes it to PyTorch).
// The Autograd kernels keep what backward reads with save_for_backward (so an in-place change of an input, or
// set_, after the forward is detected by autograd's version check, as in PyTorch). First derivatives run nllk's
// backward kernels (a class-index cross-entropy on f32/f64 runs the fused forward+backward in its forward and keeps
// the gradient, which the backward scales by grad_output); a backward that must itself be differentiable (create_graph=True: double backward, gradient
// penalties) is computed with differentiable ATen operations instead, so higher derivatives are PyTorch's (NLL: the
// gradient is linear in grad_output; Poisson: the closed form; cross-entropy: PyTorch's composite, differentiated).
// The same holds for a grad_output without storage (vmap's batched tensors, gradcheck's batched-grad check).
// A class weight that requires grad is rejected with PyTorch's own error (nllk.torch gives a probability-target
// cross-entropy with such a weight to PyTorch, which differentiates it).
#include <ATen/ATen.h>
#include <ATen/core/Reduction.h>
#include <torch/autograd.h>
#include <torch/library.h>
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>

#include <cstring>
#include <sstream>

extern "C" {
#include "nllk.h"
}

namespace {

using at::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

std::string shape_str(at::IntArrayRef s)
{
    std::ostringstream o;
    o << "[";
    for (size_t i = 0; i < s.size(); i++)
        o << (i ? ", " : "") << s[i];
    o << "]";
    return o.str();
}

// A failed libnllk call as the exception PyTorch raises for it (IndexError for a target out of range).
[[noreturn]] void fail(nllk_status status)
{
    const char *msg = nllk_last_error();
    if (status == NLLK_ERR_TARGET_OUT_OF_RANGE)
        TORCH_CHECK_INDEX(false, msg);
    if (status == NLLK_ERR_INVALID_ARGUMENT)
        TORCH_CHECK_VALUE(false, msg);
    TORCH_CHECK(false, msg, " (", nllk_status_name(status), ")");
}

inline void check(nllk_status status)
{
    if (status != NLLK_OK)
        fail(status);
}

void check_reduction(int64_t reduction)
{
    TORCH_CHECK_VALUE(reduction >= 0 && reduction <= 2, reduction, " is not a valid value for reduction");
}

void check_float(const Tensor &t, const char *fn, const char *role)
{
    TORCH_CHECK(t.device().is_cpu() && t.layout() == at::kStrided, fn, ": nllk computes on dense CPU tensors, got ",
                role, " on ", t.device(), " with layout ", t.layout());
    const at::ScalarType st = t.scalar_type();
    TORCH_CHECK(st == at::kFloat || st == at::kDouble || st == at::kBFloat16 || st == at::kHalf, fn,
                ": nllk computes in float32, float64, bfloat16 and float16, got ", role, " of dtype ", st);
}

// ---- dtypes: the libnllk entry points of each storage type ------------------------------------------------------
// Api<T>: the functions of ATen's element type T; E is their C element type (float, double, nllk_bf16, nllk_f16:
// at::BFloat16 and at::Half hold exactly those bits).
template <typename T> struct Api;
#define NLLK_TORCH_API(T, E_, sfx)                                                                                  \
    template <> struct Api<T> {                                                                                     \
        using E = E_;                                                                                               \
        static constexpr auto nll_fwd = nllk_nll_fwd_##sfx;                                                         \
        static constexpr auto nll_bwd = nllk_nll_bwd_##sfx;                                                         \
        static constexpr auto poisson_fwd = nllk_poisson_nll_fwd_##sfx;                                             \
        static constexpr auto poisson_bwd = nllk_poisson_nll_bwd_##sfx;                                             \
        static constexpr auto ce_fwd = nllk_cross_entropy_fwd_##sfx;                                                \
        static constexpr auto ce_bwd = nllk_cross_entropy_bwd_##sfx;                                                \
        static constexpr auto ce_fwdbwd = nllk_cross_entropy_fwdbwd_##sfx;                                          \
        static constexpr auto ce_prob_fwd = nllk_cross_entropy_prob_fwd_##sfx;                                      \
        static constexpr auto ce_prob_bwd = nllk_cross_entropy_prob_bwd_##sfx;                                      \
    };
NLLK_TORCH_API(float, float, f32)
NLLK_TORCH_API(double, double, f64)
NLLK_TORCH_API(at::BFloat16, nllk_bf16, bf16)
NLLK_TORCH_API(at::Half, nllk_f16, f16)
#undef NLLK_TORCH_API

// Calls f(Api<T>{}) for the element type of st (checked by check_float before).
template <typename F> void with_api(at::ScalarType st, F &&f)
{
    switch (st) {
    case at::kFloat: f(Api<float>{}); break;
    case at::kDouble: f(Api<double>{}); break;
    case at::kBFloat16: f(Api<at::BFloat16>{}); break;
    case at::kHalf: f(Api<at::Half>{}); break;
    default: TORCH_CHECK(false, "nllk: no kernels for dtype ", st);
    }
}

// The data of a contiguous tensor of C element type E (nullptr for an undefined tensor).
template <typename E> E *ptr(const Tensor &t) { return t.defined() ? static_cast<E *>(t.data_ptr()) : nullptr; }

// The one value of a tensor as an element scalar of E (the C API's total_weight), converted by ATen to st.
template <typename E> E scalar(const Tensor &t, at::ScalarType st)
{
    if (!t.defined())
        return E{};  // (+0.0: all-zero bits for every element type)
    const Tensor v = t.to(st).contiguous();
    return *static_cast<const E *>(v.data_ptr());
}

// ---- NLL -------------------------------------------------------------------------------------------------------
struct NllGeometry {
    size_t n, c, d;
    std::vector<int64_t> out_shape;
    nllk_reduction reduction;
    nllk_target_type target_type;
};

// The geometry of an NLL call, checked as ATen checks it, with its messages and exception types.
NllGeometry nll_geometry(const Tensor &self, const Tensor &target, const c10::optional<Tensor> &weight,
                         int64_t reduction)
{
    check_reduction(reduction);
    check_float(self, "nll_loss", "input");
    TORCH_CHECK(target.device().is_cpu() && target.layout() == at::kStrided,
                "nll_loss: nllk computes on dense CPU tensors, got target on ", target.device());
    NllGeometry g;
    switch (target.scalar_type()) {
    case at::kLong: g.target_type = NLLK_TARGET_I64; break;
    case at::kInt: g.target_type = NLLK_TARGET_I32; break;
    case at::kByte: g.target_type = NLLK_TARGET_U8; break;
    default: TORCH_CHECK(false, "nll_loss: nllk takes int64, int32 or uint8 targets, got ", target.scalar_type());
    }
    g.reduction = static_cast<nllk_reduction>(reduction);
    const auto xs = self.sizes(), ts = target.sizes();
    const int64_t dims = self.dim();
    if (dims == 2 && ts.size() == 1 && xs[0] == ts[0]) {
        g.n = xs[0], g.c = xs[1], g.d = 1;
        g.out_shape = {xs[0]};
    } else if (dims < 1) {
        TORCH_CHECK_VALUE(false, "Expected 1 or more dimensions (got ", dims, ")");
    } else if (dims == 1) {
        TORCH_CHECK(ts.size() <= 1, "0D or 1D target tensor expected, multi-target not supported");
        TORCH_CHECK(ts.size() == 0, "size mismatch (got input: ", shape_str(xs), ", target: ", shape_str(ts), ")");
        g.n = 1, g.c = xs[0], g.d = 1;
        if (g.reduction == NLLK_REDUCTION_NONE)  // ATen's 1-D 'none' is a sum of one element (+0.0, not -0.0)
            g.reduction = NLLK_REDUCTION_SUM;
    } else {
        const int64_t batch = ts.size() > 0 ? ts[0] : 0;
        TORCH_CHECK_VALUE(ts.size() > 0 && xs[0] == batch, "Expected input batch_size (", xs[0],
                          ") to match target batch_size (", batch, ").");
        TORCH_CHECK(dims != 2, "0D or 1D target tensor expected, multi-target not supported");
        g.out_shape.push_back(xs[0]);
        for (int64_t i = 2; i < dims; i++)
            g.out_shape.push_back(xs[i]);
        TORCH_CHECK(ts.vec() == g.out_shape, "Expected target size ", shape_str(g.out_shape), ", got ",
                    shape_str(ts));
        g.n = xs[0], g.c = xs[1], g.d = 1;
        for (int64_t i = 2; i < dims; i++)
            g.d *= xs[i];
    }
    if (weight.has_value() && weight->defined()) {
        const Tensor &w = *weight;
        check_float(w, "nll_loss", "weight");
        TORCH_CHECK(w.scalar_type() == self.scalar_type(), "expected scalar type ", self.scalar_type(),
                    " but found ", w.scalar_type());
        TORCH_CHECK(w.dim() == 1 && w.size(0) == static_cast<int64_t>(g.c),
                    "weight tensor should be defined either for all ", g.c,
                    " classes or no classes but got weight tensor of shape: ", shape_str(w.sizes()));
    }
    return g;
}

const Tensor *defined(const c10::optional<Tensor> &w) { return w.has_value() && w->defined() ? &*w : nullptr; }

std::tuple<Tensor, Tensor> nll_loss_forward_cpu(const Tensor &self, const Tensor &target,
                                                const c10::optional<Tensor> &weight, int64_t reduction,
                                                int64_t ignore_index)
{
    const NllGeometry g = nll_geometry(self, target, weight, reduction);
    const Tensor x = self.contiguous(), t = target.contiguous();
    const Tensor *wp = defined(weight);
    const Tensor w = wp ? wp->contiguous() : Tensor();
    Tensor out = at::empty(g.reduction == NLLK_REDUCTION_NONE ? at::IntArrayRef(g.out_shape) : at::IntArrayRef{},
                           x.options());
    Tensor tw = at::empty({}, x.options());
    with_api(x.scalar_type(), [&](auto api) {
        using A = decltype(api);
        using E = typename A::E;
        check(A::nll_fwd(ptr<E>(x), t.data_ptr(), g.target_type, g.n, g.c, g.d, ptr<E>(w), ignore_index,
                         g.reduction, ptr<E>(out), ptr<E>(tw)));
    });
    return {out, tw};
}

Tensor nll_loss_cpu(const Tensor &self, const Tensor &target, const c10::optional<Tensor> &weight,
                    int64_t reduction, int64_t ignore_index)
{
    return std::get<0>(nll_loss_forward_cpu(self, target, weight, reduction, ignore_index));
}

Tensor nll_loss_backward_cpu(const Tensor &grad_output, const Tensor &self, const Tensor &target,
                             const c10::optional<Tensor> &weight, int64_t reduction, int64_t ignore_index,
                             const Tensor &total_weight)
{
    const NllGeometry g = nll_geometry(self, target, weight, reduction);
    const int64_t want = g.reduction == NLLK_REDUCTION_NONE ? static_cast<int64_t>(g.n * g.d) : 1;
    TORCH_CHECK(grad_output.numel() == want, "nll_loss_backward: grad_output has ", grad_output.numel(),
                " elements, expected ", want);
    TORCH_CHECK(total_weight.numel() == 1, "nll_loss_backward: total_weight must hold one value");
    const Tensor go = grad_output.to(self.scalar_type()).contiguous();
    const Tensor t = target.contiguous();
    const Tensor *wp = defined(weight);
    const Tensor w = wp ? wp->contiguous() : Tensor();
    Tensor gx = at::empty(self.sizes(), self.options().memory_format(at::MemoryFormat::Contiguous));
    with_api(self.scalar_type(), [&](auto api) {
        using A = decltype(api);
        using E = typename A::E;
        check(A::nll_bwd(ptr<E>(go), t.data_ptr(), g.target_type, g.n, g.c, g.d, ptr<E>(w), ignore_index,
                         g.reduction, scalar<E>(total_weight, self.scalar_type()), ptr<E>(gx)));
    });
    return gx;
}

// A backward computed with differentiable ATen operations rather than nllk's kernel: when it must itself be
// differentiable (create_graph=True runs backward in grad mode), or when grad_output has no memory of its own
// (a batched tensor of vmap or gradcheck's batched-grad check).
bool composite_backward(const Tensor &grad_output)
{
    return at::GradMode::is_enabled() || !grad_output.has_storage();
}

void check_weight_grad(const c10::optional<Tensor> &weight)
{
    const Tensor *w = defined(weight);
    TORCH_CHECK(!(w && w->requires_grad() && at::GradMode::is_enabled()),
                "The function 'nll_loss_forward' is not differentiable with respect to argument 'weight'. "
                "This input cannot have requires_grad True.");
}

struct NLLFunction : public torch::autograd::Function<NLLFunction> {
    static Tensor forward(AutogradContext *ctx, const Tensor &self, const Tensor &target,
                          const c10::optional<Tensor> &weight, int64_t reduction, int64_t ignore_index)
    {
        Tensor out, tw;
        std::tie(out, tw) = nll_loss_forward_cpu(self, target, weight, reduction, ignore_index);
        const Tensor *w = defined(weight);
        ctx->save_for_backward({self, target, w ? *w : Tensor(), tw});
        ctx->saved_data["r"] = reduction;
        ctx->saved_data["i"] = ignore_index;
        return out;
    }

    static variable_list backward(AutogradContext *ctx, variable_list grads)
    {
        const auto s = ctx->get_saved_variables();
        const int64_t reduction = ctx->saved_data["r"].toInt(), ignore_index = ctx->saved_data["i"].toInt();
        const c10::optional<Tensor> weight = s[2].defined() ? c10::optional<Tensor>(s[2]) : c10::nullopt;
        Tensor gx;
        if (!composite_backward(grads[0])) {
            gx = nll_loss_backward_cpu(grads[0], s[0], s[1], weight, reduction, ignore_index, s[3]);
        } else {
            // The gradient is linear in grad_output and does not depend on the input, so it is M * grad_output
            // with M = the backward of ones (computed by nllk, a constant): differentiable in grad_output (its
            // derivative w.r.t. the input is 0, as in PyTorch), and batched by vmap like any ATen product.
            Tensor m;
            {
                at::NoGradGuard no_grad;
                m = nll_loss_backward_cpu(at::ones(grads[0].sizes(), s[0].options()), s[0], s[1], weight,
                                          reduction, ignore_index, s[3]);
            }
            Tensor go = grads[0];
            if (go.dim() >= 1 && s[0].dim() >= 2)
                go = go.unsqueeze(1);  // (N, d1..dK) -> (N, 1, d1..dK) against (N, C, d1..dK)
            gx = m * go.to(m.scalar_type());
        }
        return {gx, Tensor(), Tensor(), Tensor(), Tensor()};
    }
};

Tensor nll_loss_autograd(const Tensor &self, const Tensor &target, const c10::optional<Tensor> &weight,
                         int64_t reduction, int64_t ignore_index)
{
    check_weight_grad(weight);
    if (!(at::GradMode::is_enabled() && self.requires_grad())) {
        at::AutoDispatchBelowADInplaceOrView guard;
        return nll_loss_cpu(self, target, weight, reduction, ignore_index);
    }
    return NLLFunction::apply(self, target, weight, reduction, ignore_index);
}

// ---- Poisson ---------------------------------------------------------------------------------------------------
struct PoissonArgs {
    Tensor x, t;  // broadcast together, contiguous
    nllk_reduction reduction;
};

PoissonArgs poisson_args(const Tensor &input, const Tensor &target, int64_t reduction)
{
    check_reduction(reduction);
    check_float(input, "poisson_nll_loss", "input");
    check_float(target, "poisson_nll_loss", "target");
    TORCH_CHECK(target.scalar_type() == input.scalar_type(), "poisson_nll_loss: nllk takes input and target of one "
                "dtype, got ", input.scalar_type(), " and ", target.scalar_type());
    PoissonArgs a;
    a.reduction = static_cast<nllk_reduction>(reduction);
    if (input.sizes() == target.sizes()) {
        a.x = input.contiguous(), a.t = target.contiguous();
    } else {
        const auto shape = at::infer_size(target.sizes(), input.sizes());  // (PyTorch's order: target * input)
        a.x = input.expand(shape).contiguous(), a.t = target.expand(shape).contiguous();
    }
    return a;
}

Tensor poisson_nll_loss_cpu(const Tensor &input, const Tensor &target, bool log_input, bool full, double eps,
                            int64_t reduction)
{
    const PoissonArgs a = poisson_args(input, target, reduction);
    Tensor out = at::empty(a.reduction == NLLK_REDUCTION_NONE ? a.x.sizes() : at::IntArrayRef{}, a.x.options());
    const size_t n = a.x.numel();
    with_api(a.x.scalar_type(), [&](auto api) {
        using A = decltype(api);
        using E = typename A::E;
        check(A::poisson_fwd(ptr<E>(a.x), ptr<E>(a.t), n, log_input, full, eps, a.reduction, ptr<E>(out)));
    });
    return out;
}

std::tuple<Tensor, Tensor> poisson_nll_loss_backward_cpu(const Tensor &grad_output, const Tensor &input,
                                                         const Tensor &target, bool log_input, bool full,
                                                         double eps, int64_t reduction, bool grad_target)
{
    const PoissonArgs a = poisson_args(input, target, reduction);
    Tensor go = grad_output.to(a.x.scalar_type());
    if (a.reduction == NLLK_REDUCTION_NONE) {
        if (go.sizes() != a.x.sizes())
            go = go.expand(a.x.sizes());
    } else {
        TORCH_CHECK(go.numel() == 1, "poisson_nll_loss_backward: grad_output of a reduced loss must hold one value");
    }
    go = go.contiguous();
    Tensor gx = at::empty(a.x.sizes(), a.x.options());
    Tensor gt = grad_target ? at::empty(a.x.sizes(), a.x.options()) : Tensor();
    const size_t n = a.x.numel();
    with_api(a.x.scalar_type(), [&](auto api) {
        using A = decltype(api);
        using E = typename A::E;
        check(A::poisson_bwd(ptr<E>(a.x), ptr<E>(a.t), n, log_input, full, eps, a.reduction, ptr<E>(go),
                             ptr<E>(gx), ptr<E>(gt)));
    });
    if (gx.sizes() != input.sizes())
        gx = gx.sum_to_size(input.sizes());
    if (grad_target && gt.sizes() != target.sizes())
        gt = gt.sum_to_size(target.sizes());
    return {gx, gt};
}

// The Poisson gradients as differentiable ATen operations (the create_graph path): PyTorch's derivatives of its
// composite poisson_nll_loss (nllk.h's formulas), except that the Stirling term's derivative w.r.t. target is 0
// where target <= 1 (finite, as nllk's kernel gives it; PyTorch's autograd gives NaN at target <= 0).
std::tuple<Tensor, Tensor> poisson_grads_composite(const Tensor &go_in, const Tensor &input, const Tensor &target,
                                                   bool log_input, bool full, double eps, int64_t reduction,
                                                   bool need_gx, bool need_gt)
{
    const auto shape = at::infer_size(target.sizes(), input.sizes());  // (PyTorch's order: target * input)
    const Tensor x = input.expand(shape), t = target.expand(shape);
    Tensor go = go_in.to(input.scalar_type());
    if (reduction == at::Reduction::Mean)
        go = go / static_cast<double>(x.numel());
    Tensor gx, gt;
    if (need_gx) {
        gx = log_input ? go * (x.exp() - t) : go * (1 - t / (x + eps));
        if (gx.sizes() != input.sizes())
            gx = gx.sum_to_size(input.sizes());
    }
    if (need_gt) {
        gt = log_input ? -go * x : -go * (x + eps).log();
        if (full) {
            const Tensor tc = t.clamp_min(1);
            gt = gt + go * at::where(t > 1, tc.log() + 0.5 / tc, at::zeros_like(tc));
        }
        if (gt.sizes() != target.sizes())
            gt = gt.sum_to_size(target.sizes());
    }
    return {gx, gt};
}

struct PoissonNLLFunction : public torch::autograd::Function<PoissonNLLFunction> {
    static Tensor forward(AutogradContext *ctx, const Tensor &input, const Tensor &target, bool log_input,
                          bool full, double eps, int64_t reduction)
    {
        Tensor out = poisson_nll_loss_cpu(input, target, log_input, full, eps, reduction);
        ctx->save_for_backward({input, target});
        ctx->saved_data["l"] = log_input;
        ctx->saved_data["f"] = full;
        ctx->saved_data["e"] = eps;
        ctx->saved_data["r"] = reduction;
        return out;
    }

    static variable_list backward(AutogradContext *ctx, variable_list grads)
    {
        const auto s = ctx->get_saved_variables();
        const bool log_input = ctx->saved_data["l"].toBool(), full = ctx->saved_data["f"].toBool();
        const double eps = ctx->saved_data["e"].toDouble();
        const int64_t reduction = ctx->saved_data["r"].toInt();
        const bool need_gx = ctx->needs_input_grad(0), need_gt = ctx->needs_input_grad(1);
        Tensor gx, gt;
        if (!composite_backward(grads[0]))
            std::tie(gx, gt) =
                poisson_nll_loss_backward_cpu(grads[0], s[0], s[1], log_input, full, eps, reduction, need_gt);
        else
            std::tie(gx, gt) =
                poisson_grads_composite(grads[0], s[0], s[1], log_input, full, eps, reduction, need_gx, need_gt);
        return {need_gx ? gx : Tensor(), need_gt ? gt : Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
    }
};

Tensor poisson_nll_loss_autograd(const Tensor &input, const Tensor &target, bool log_input, bool full, double eps,
                                 int64_t reduction)
{
    if (!(at::GradMode::is_enabled() && (input.requires_grad() || target.requires_grad()))) {
        at::AutoDispatchBelowADInplaceOrView guard;
        return poisson_nll_loss_cpu(input, target, log_input, full, eps, reduction);
    }
    return PoissonNLLFunction::apply(input, target, log_input, full, eps, reduction);
}

// ---- cross-entropy -----------------------------------------------------------------------------------------------
// Class-index targets (integer target: the NLL geometry) or probabilities (a floating target of the input's shape).
struct CeGeometry {
    NllGeometry g;
    bool prob;
};

CeGeometry ce_geometry(const Tensor &self, const Tensor &target, const c10::optional<Tensor> &weight,
                       int64_t reduction, int64_t ignore_index, double label_smoothing)
{
    TORCH_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0,
                "label_smoothing must be between 0.0 and 1.0. Got: ", label_smoothing);
    CeGeometry r;
    r.prob = at::isFloatingType(target.scalar_type());
    if (!r.prob) {
        r.g = nll_geometry(self, target, weight, reduction);
        return r;
    }
    check_reduction(reduction);
    check_float(self, "cross_entropy", "input");
    check_float(target, "cross_entropy", "target");
    TORCH_CHECK(target.scalar_type() == self.scalar_type(), "cross_entropy: nllk takes probability targets of the "
                "input's dtype, got ", self.scalar_type(), " and ", target.scalar_type());
    TORCH_CHECK(ignore_index < 0, "ignore_index is not supported for floating point target");
    const int64_t dims = self.dim();
    TORCH_CHECK_VALUE(dims >= 1, "Expected 1 or more dimensions (got ", dims, ")");
    TORCH_CHECK(target.sizes() == self.sizes(), "cross_entropy: probability targets must have the input's shape ",
                shape_str(self.sizes()), ", got ", shape_str(target.sizes()));
    NllGeometry &g = r.g;
    g.reduction = static_cast<nllk_reduction>(reduction);
    g.target_type = NLLK_TARGET_I64;  // (unused)
    if (dims == 1) {
        g.n = 1, g.c = self.size(0), g.d = 1;
    } else {
        g.n = self.size(0), g.c = self.size(1), g.d = 1;
        g.out_shape.push_back(self.size(0));
        for (int64_t i = 2; i < dims; i++)
            g.out_shape.push_back(self.size(i)), g.d *= self.size(i);
    }
    if (const Tensor *w = defined(weight)) {
        check_float(*w, "cross_entropy", "weight");
        TORCH_CHECK(w->scalar_type() == self.scalar_type(), "expected scalar type ", self.scalar_type(),
                    " but found ", w->scalar_type());
        TORCH_CHECK(w->dim() == 1 && w->size(0) == static_cast<int64_t>(g.c),
                    "weight tensor should be defined either for all ", g.c,
                    " classes or no classes but got weight tensor of shape: ", shape_str(w->sizes()));
    }
    return r;
}

// A cross-entropy call's checked geometry, its contiguous input, target and weight, and its loss tensor.
struct CeCall {
    CeGeometry r;
    Tensor x, t, w, out;
};
CeCall ce_call(const Tensor &self, const Tensor &target, const c10::optional<Tensor> &weight, int64_t reduction,
               int64_t ignore_index, double label_smoothing)
{
    const CeGeometry r = ce_geometry(self, target, weight, reduction, ignore_index, label_smoothing);
    const Tensor x = self.contiguous();
    const Tensor *wp = defined(weight);
    Tensor out = at::empty(r.g.reduction == NLLK_REDUCTION_NONE ? at::IntArrayRef(r.g.out_shape) : at::IntArrayRef{},
                           x.options());
    return {r, x, target.contiguous(), wp ? wp->contiguous() : Tensor(), out};
}

// (loss, total_weight, lse): total_weight and lse are what the backward reads (not computed when `saved` is
// false: the undefined tensors then, and no allocation for them).
std::tuple<Tensor, Tensor, Tensor> cross_entropy_impl(const Tensor &self, const Tensor &target,
                                                      const c10::optional<Tensor> &weight, int64_t reduction,
                                                      int64_t ignore_index, double label_smoothing, bool saved)
{
    const CeCall k = ce_call(self, target, weight, reduction, ignore_index, label_smoothing);
    const CeGeometry &r = k.r;
    const NllGeometry &g = r.g;
    const Tensor &x = k.x, &t = k.t, &w = k.w;
    Tensor out = k.out;
    Tensor tw = saved ? at::zeros({}, x.options()) : Tensor();
    Tensor lse = saved ? at::empty({static_cast<int64_t>(g.n * g.d)}, x.options()) : Tensor();
    with_api(x.scalar_type(), [&](auto api) {
        using A = decltype(api);
        using E = typename A::E;
        if (r.prob)
            check(A::ce_prob_fwd(ptr<E>(x), ptr<E>(t), g.n, g.c, g.d, ptr<E>(w), label_smoothing, g.reduction,
                                 ptr<E>(out), ptr<E>(lse)));
        else
            check(A::ce_fwd(ptr<E>(x), t.data_ptr(), g.target_type, g.n, g.c, g.d, ptr<E>(w), ignore_index,
                            label_smoothing, g.reduction, ptr<E>(out), ptr<E>(tw), ptr<E>(lse)));
    });
    return {out, tw, lse};
}

std::tuple<Tensor, Tensor, Tensor> cross_entropy_forward_cpu(const Tensor &self, const Tensor &target,
                                                             const c10::optional<Tensor> &weight, int64_t reduction,
                                                             int64_t ignore_index, double label_smoothing)
{
    return cross_entropy_impl(self, target, weight, reduction, ignore_index, label_smoothing, true);
}

Tensor cross_entropy_cpu(const Tensor &self, const Tensor &target, const c10::optional<Tensor> &weight,
                         int64_t reduction, int64_t ignore_index, double label_smoothing)
{
    return std::get<0>(cross_entropy_impl(self, target, weight, reduction, ignore_index, label_smoothing, false));
}

// (grad_input, grad_target (probability targets, when asked)).
std::tuple<Tensor, Tensor> cross_entropy_backward_cpu(const Tensor &grad_output, const Tensor &self,
                                                      const Tensor &target, const c10::optional<Tensor> &weight,
                                                      int64_t reduction, int64_t ignore_index, double label_smoothing,
                                                      const Tensor &total_weight, const Tensor &lse,
                                                      bool grad_target)
{
    const CeGeometry r = ce_geometry(self, target, weight, reduction, ignore_index, label_smoothing);
    const NllGeometry &g = r.g;
    const int64_t want = g.reduction == NLLK_REDUCTION_NONE ? static_cast<int64_t>(g.n * g.d) : 1;
    TORCH_CHECK(grad_output.numel() == want, "cross_entropy_backward: grad_output has ", grad_output.numel(),
                " elements, expected ", want);
    const Tensor go = grad_output.to(self.scalar_type()).contiguous();
    const Tensor x = self.contiguous(), t = target.contiguous();
    const Tensor *wp = defined(weight);
    const Tensor w = wp ? wp->contiguous() : Tensor();
    const Tensor l = lse.defined() && lse.numel() == static_cast<int64_t>(g.n * g.d) ? lse.contiguous() : Tensor();
    Tensor gx = at::empty(self.sizes(), x.options());
    Tensor gt = r.prob && grad_target ? at::empty(self.sizes(), x.options()) : Tensor();
    with_api(x.scalar_type(), [&](auto api) {
        using A = decltype(api);
        using E = typename A::E;
        if (r.prob)
            check(A::ce_prob_bwd(ptr<E>(go), ptr<E>(x), ptr<E>(t), g.n, g.c, g.d, ptr<E>(w), label_smoothing,
                                 g.reduction, ptr<E>(l), ptr<E>(gx), ptr<E>(gt)));
        else
            check(A::ce_bwd(ptr<E>(go), ptr<E>(x), t.data_ptr(), g.target_type, g.n, g.c, g.d, ptr<E>(w),
                            ignore_index, label_smoothing, g.reduction, scalar<E>(total_weight, x.scalar_type()),
                            ptr<E>(l), ptr<E>(gx)));
    });
    return {gx, gt};
}

// (loss, total_weight, d loss / d self): the fused forward and backward (nllk_cross_entropy_fwdbwd_*) with
// grad_output 1, class-index targets.
std::tuple<Tensor, Tensor, Tensor> cross_entropy_fused_cpu(const Tensor &self, const Tensor &target,
                                                   const c10::optional<Tensor> &weight, int64_t reduction,
                                                   int64_t ignore_index, double label_smoothing)
{
    const CeCall k = ce_call(self, target, weight, reduction, ignore_index, label_smoothing);
    const CeGeometry &r = k.r;
    const NllGeometry &g = r.g;
    const Tensor &x = k.x, &t = k.t, &w = k.w;
    Tensor out = k.out;
    Tensor tw = at::zeros({}, x.options());
    Tensor gx = at::empty(self.sizes(), x.options());
    with_api(x.scalar_type(), [&](auto api) {
        using A = decltype(api);
        using E = typename A::E;
        check(A::ce_fwdbwd(ptr<E>(x), t.data_ptr(), g.target_type, g.n, g.c, g.d, ptr<E>(w), ignore_index,
                           label_smoothing, g.reduction, ptr<E>(out), ptr<E>(tw), nullptr, nullptr, ptr<E>(gx)));
    });
    return {out, tw, gx};
}

// The fused gradient (grad_output 1) times grad_output: MEAN, SUM a scalar (no product when it is 1), NONE one value
// per position (the loss's shape, broadcast over the classes: dimension 1 of an input of 2 or more dimensions).
Tensor cross_entropy_scale_grad(const Tensor &gx1, const Tensor &grad_output, int64_t reduction)
{
    const Tensor go = grad_output.to(gx1.scalar_type());
    if (reduction != at::Reduction::None) {
        if (go.numel() == 1 && go.item<double>() == 1.0)
            return gx1;
        return gx1 * go.reshape({});
    }
    return gx1.dim() >= 2 ? gx1 * go.unsqueeze(1) : gx1 * go;
}

struct CrossEntropyFunction : public torch::autograd::Function<CrossEntropyFunction> {
    // With class-index targets and an f32/f64 input that requires grad, the forward runs the fused forward and
    // backward (one read of the logits, one exp per logit) and keeps d loss / d input for the backward, which
    // scales it by grad_output. Otherwise (probability targets, 16-bit storage, whose one rounding a later product
    // would break) the forward keeps total_weight and lse and the backward calls nllk's backward.
    // The kept gradient is not a saved variable but ctx->saved_data["gx"]: a backward whose grad_output is 1 hands
    // that tensor itself to autograd and drops it from the context, so nothing the caller does to it (in place)
    // reaches a later backward over the same graph (retain_graph), which then calls nllk's backward (the same bits)
    // with the kept total_weight; and AccumulateGrad can adopt it without a copy.
    static Tensor forward(AutogradContext *ctx, const Tensor &self, const Tensor &target,
                          const c10::optional<Tensor> &weight, int64_t reduction, int64_t ignore_index,
                          double label_smoothing)
    {
        const Tensor *w = defined(weight);
        const at::ScalarType st = self.scalar_type();
        const bool fused = self.requires_grad() && !at::isFloatingType(target.scalar_type()) &&
                           (st == at::kFloat || st == at::kDouble);
        Tensor out, tw, lse, gx1;
        if (fused)
            std::tie(out, tw, gx1) =
                cross_entropy_fused_cpu(self, target, weight, reduction, ignore_index, label_smoothing);
        else
            std::tie(out, tw, lse) =
                cross_entropy_forward_cpu(self, target, weight, reduction, ignore_index, label_smoothing);
        ctx->save_for_backward({self, target, w ? *w : Tensor(), tw, lse});
        ctx->saved_data["r"] = reduction;
        ctx->saved_data["i"] = ignore_index;
        ctx->saved_data["s"] = label_smoothing;
        ctx->saved_data["gx"] = gx1; // undefined unless fused
        return out;
    }

    static variable_list backward(AutogradContext *ctx, variable_list grads)
    {
        const auto s = ctx->get_saved_variables();
        const int64_t reduction = ctx->saved_data["r"].toInt(), ignore_index = ctx->saved_data["i"].toInt();
        const double ls = ctx->saved_data["s"].toDouble();
        const c10::optional<Tensor> weight = s[2].defined() ? c10::optional<Tensor>(s[2]) : c10::nullopt;
        const bool need_gx = ctx->needs_input_grad(0), need_gt = ctx->needs_input_grad(1);
        Tensor gx, gt;
        const Tensor gx1 = ctx->saved_data["gx"].toTensor();
        if (!composite_backward(grads[0]) && gx1.defined()) {
            if (need_gx) {
                gx = cross_entropy_scale_grad(gx1, grads[0], reduction);
                if (gx.is_same(gx1)) // handed out itself: no longer ours to reuse
                    ctx->saved_data["gx"] = Tensor();
            }
        } else if (!composite_backward(grads[0])) {
            std::tie(gx, gt) = cross_entropy_backward_cpu(grads[0], s[0], s[1], weight, reduction, ignore_index, ls,
                                                          s[3], s[4], need_gt);
        } else {
            // PyTorch's composite cross_entropy on the saved inputs, differentiated (with create_graph when
            // this backward is itself recorded): higher derivatives and batched grad_outputs are PyTorch's.
            const bool create_graph = at::GradMode::is_enabled();
            at::AutoGradMode enable(true);
            Tensor loss = at::cross_entropy_loss(s[0], s[1], weight, reduction, ignore_index, ls);
            variable_list wrt;
            if (need_gx)
                wrt.push_back(s[0]);
            if (need_gt)
                wrt.push_back(s[1]);
            variable_list g = torch::autograd::grad({loss}, wrt, {grads[0]}, true, create_graph, true);
            if (need_gx)
                gx = g[0];
            if (need_gt)
                gt = g[need_gx ? 1 : 0];
        }
        return {need_gx ? gx : Tensor(), need_gt ? gt : Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
    }
};

Tensor cross_entropy_autograd(const Tensor &self, const Tensor &target, const c10::optional<Tensor> &weight,
                              int64_t reduction, int64_t ignore_index, double label_smoothing)
{
    const Tensor *w = defined(weight);
    if (w && w->requires_grad() && at::GradMode::is_enabled()) {
        TORCH_CHECK(at::isFloatingType(target.scalar_type()),
                    "The function 'nll_loss_forward' is not differentiable with respect to argument 'weight'. "
                    "This input cannot have requires_grad True.");
        TORCH_CHECK(false, "nllk::cross_entropy: a weight that requires grad is not supported (PyTorch's "
                    "torch.nn.functional.cross_entropy differentiates it)");
    }
    if (!(at::GradMode::is_enabled() && (self.requires_grad() || target.requires_grad()))) {
        at::AutoDispatchBelowADInplaceOrView guard;
        return cross_entropy_cpu(self, target, weight, reduction, ignore_index, label_smoothing);
    }
    return CrossEntropyFunction::apply(self, target, weight, reduction, ignore_index, label_smoothing);
}

}  // namespace

TORCH_LIBRARY(nllk, m)
{
    m.def("nll_loss(Tensor self, Tensor target, Tensor? weight=None, int reduction=1, int ignore_index=-100) "
          "-> Tensor");
    m.def("nll_loss_forward(Tensor self, Tensor target, Tensor? weight, int reduction, int ignore_index) "
          "-> (Tensor output, Tensor total_weight)");
    m.def("nll_loss_backward(Tensor grad_output, Tensor self, Tensor target, Tensor? weight, int reduction, "
          "int ignore_index, Tensor total_weight) -> Tensor");
    m.def("poisson_nll_loss(Tensor input, Tensor target, bool log_input=True, bool full=False, float eps=1e-08, "
          "int reduction=1) -> Tensor");
    m.def("poisson_nll_loss_backward(Tensor grad_output, Tensor input, Tensor target, bool log_input, bool full, "
          "float eps, int reduction, bool grad_target) -> (Tensor grad_input, Tensor grad_target)");
    m.def("cross_entropy(Tensor self, Tensor target, Tensor? weight=None, int reduction=1, int ignore_index=-100, "
          "float label_smoothing=0.0) -> Tensor");
    m.def("cross_entropy_forward(Tensor self, Tensor target, Tensor? weight, int reduction, int ignore_index, "
          "float label_smoothing) -> (Tensor output, Tensor total_weight, Tensor lse)");
    m.def("cross_entropy_backward(Tensor grad_output, Tensor self, Tensor target, Tensor? weight, int reduction, "
          "int ignore_index, float label_smoothing, Tensor total_weight, Tensor lse, bool grad_target) "
          "-> (Tensor grad_input, Tensor grad_target)");
}

TORCH_LIBRARY_IMPL(nllk, CPU, m)
{
    m.impl("nll_loss", nll_loss_cpu);
    m.impl("nll_loss_forward", nll_loss_forward_cpu);
    m.impl("nll_loss_backward", nll_loss_backward_cpu);
    m.impl("poisson_nll_loss", poisson_nll_loss_cpu);
    m.impl("poisson_nll_loss_backward", poisson_nll_loss_backward_cpu);
    m.impl("cross_entropy", cross_entropy_cpu);
    m.impl("cross_entropy_forward", cross_entropy_forward_cpu);
    m.impl("cross_entropy_backward", cross_entropy_backward_cpu);
}

TORCH_LIBRARY_IMPL(nllk, Autograd, m)
{
    m.impl("nll_loss", nll_loss_autograd);
    m.impl("poisson_nll_loss", poisson_nll_loss_autograd);
    m.impl("nll_loss_forward", torch::autograd::autogradNotImplementedFallback());
    m.impl("nll_loss_backward", torch::autograd::autogradNotImplementedFallback());
    m.impl("poisson_nll_loss_backward", torch::autograd::autogradNotImplementedFallback());
    m.impl("cross_entropy", cross_entropy_autograd);
    m.impl("cross_entropy_forward", torch::autograd::autogradNotImplementedFallback());
    m.impl("cross_entropy_backward", torch::autograd::autogradNotImplementedFallback());
}
