// A libtorch program using nllk's operators (nllk_torch.h): forward, backward, double backward and an error,
// each checked against ATen's own nll_loss / poisson_nll_loss. Exit status 0 when all agree (ctest test_torch_cpp).
#include <torch/torch.h>

#include <cstdio>

#include "nllk_torch.h"

static int failures = 0;

static void expect_close(const char *what, const at::Tensor &a, const at::Tensor &b)
{
    const bool ok = a.sizes() == b.sizes() && at::allclose(a, b, 1e-12, 1e-12);
    std::printf("%-44s %s\n", what, ok ? "ok" : "MISMATCH");
    if (!ok)
        failures++;
}

int main()
{
    torch::manual_seed(0);
    const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
    // NLL, (N, C, d) with a weight and an ignored target, every reduction: values and gradients
    const at::Tensor logits = torch::randn({4, 5, 3}, f64);
    const at::Tensor target = torch::randint(0, 5, {4, 3}, torch::kLong).index_put_({0, 0}, -100);
    const at::Tensor weight = torch::rand({5}, f64) + 0.5;
    for (int64_t red : {at::Reduction::None, at::Reduction::Mean, at::Reduction::Sum}) {
        at::Tensor x1 = logits.clone().requires_grad_(true), x2 = logits.clone().requires_grad_(true);
        at::Tensor a = nllk_torch::nll_loss(x1, target, weight, red);
        at::Tensor b = torch::nll_loss_nd(x2, target, weight, red, -100);
        expect_close("nll_loss value", a, b);
        a.sum().backward();
        b.sum().backward();
        expect_close("nll_loss grad", x1.grad(), x2.grad());
    }
    // Poisson with broadcasting, gradient w.r.t. input and target, and a double backward
    const at::Tensor x0 = torch::randn({3, 4}, f64), t0 = torch::rand({4}, f64) * 3;
    for (bool full : {false, true}) {
        at::Tensor x1 = x0.clone().requires_grad_(true), t1 = t0.clone().requires_grad_(true);
        at::Tensor x2 = x0.clone().requires_grad_(true), t2 = t0.clone().requires_grad_(true);
        at::Tensor a = nllk_torch::poisson_nll_loss(x1, t1, true, full, 1e-8, at::Reduction::Mean);
        at::Tensor b = torch::poisson_nll_loss(x2, t2, true, full, 1e-8, at::Reduction::Mean);
        expect_close("poisson_nll_loss value", a, b);
        auto ga = torch::autograd::grad({a}, {x1, t1}, {}, true, true);
        auto gb = torch::autograd::grad({b}, {x2, t2}, {}, true, true);
        expect_close("poisson_nll_loss grad input", ga[0], gb[0]);
        expect_close("poisson_nll_loss grad target", ga[1], gb[1]);
        at::Tensor pa = torch::autograd::grad({ga[0].pow(2).sum()}, {x1})[0];
        at::Tensor pb = torch::autograd::grad({gb[0].pow(2).sum()}, {x2})[0];
        expect_close("poisson_nll_loss double backward", pa, pb);
    }
    // cross-entropy with class indices (weight, ignore_index, label smoothing) and with probabilities
    for (bool prob : {false, true}) {
        const at::Tensor x0c = torch::randn({6, 5}, f64);
        const at::Tensor tc = prob ? torch::rand({6, 5}, f64).softmax(1) : torch::randint(0, 5, {6}, torch::kLong);
        at::Tensor x1 = x0c.clone().requires_grad_(true), x2 = x0c.clone().requires_grad_(true);
        at::Tensor a = nllk_torch::cross_entropy(x1, tc, weight, at::Reduction::Mean, prob ? -100 : 2, 0.1);
        at::Tensor b = torch::cross_entropy_loss(x2, tc, weight, at::Reduction::Mean, prob ? -100 : 2, 0.1);
        expect_close("cross_entropy value", a, b);
        a.backward();
        b.backward();
        expect_close("cross_entropy grad", x1.grad(), x2.grad());
    }
    // an in-place change after the forward is detected by autograd's version check
    {
        at::Tensor x = x0.clone().requires_grad_(true), y = x * 1;
        at::Tensor l = nllk_torch::poisson_nll_loss(y, t0.expand({3, 4}));
        y.add_(10);
        bool raised = false;
        try {
            l.backward();
        } catch (const c10::Error &e) {
            raised = std::string(e.what()).find("inplace operation") != std::string::npos;
        }
        std::printf("%-44s %s\n", "in-place change detected", raised ? "ok" : "MISSING");
        failures += !raised;
    }
    // a target out of range is an error, not a read out of bounds
    {
        bool raised = false;
        try {
            nllk_torch::nll_loss(torch::randn({2, 3}, f64), torch::tensor({0, 3}, torch::kLong));
        } catch (const c10::IndexError &) {
            raised = true;
        }
        std::printf("%-44s %s\n", "target out of range -> c10::IndexError", raised ? "ok" : "MISSING");
        failures += !raised;
    }
    std::printf("%d failure(s)\n", failures);
    return failures ? 1 : 0;
}
