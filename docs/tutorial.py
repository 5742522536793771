# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # How does Mixup help with robustness and generalization? A hands-on walk-through
#
# This notebook follows the argument of Zhang, Deng, Kawaguchi, Ghorbani and Zou, *How Does Mixup Help
# With Robustness and Generalization?* (ICLR 2021) with code you can run. Every quantity is computed
# exactly (no sampling unless we say so), and every step is checked numerically: a cell that prints a
# number also asserts what the theory says about it. Section numbers (§N) refer to
# [`docs/theory.md`](theory.md), where the derivations are written out; the claim ids C1–C13 are the rows
# of [`paper_checks.md`](../paper_checks.md).
#
# **For a class.** Sections 1–8 explain; three exercises (after sections 5, 6 and 7) come with worked
# solutions. Every solution cell, text and code, carries the tag `solution`; the student edition without
# them is `python docs/student.py` (writes `tutorial_student.ipynb`; `--help` for options). More
# exercises, with solutions, are on the problem sheet (`docs/problems.md`).
# The whole notebook runs in well under a minute on a laptop CPU.
#
# **Running it.** `pip install -e ".[docs]"` brings Jupyter, the kernel and the α slider (ipywidgets);
# then `jupyter lab docs/tutorial.ipynb`. The notebook is paired with the script `docs/tutorial.py`
# (jupytext): edit either and run `jupytext --sync docs/tutorial.py`. The script also runs headless,
# `python docs/tutorial.py`, saving its plots to `tutorial_figures/` (or to `$MIXUP_TUTORIAL_OUT`).

# %%
import math
import os
import sys
import warnings
from pathlib import Path

import matplotlib

IN_NOTEBOOK = "ipykernel" in sys.modules
if not IN_NOTEBOOK:
    matplotlib.use("Agg")  # headless script: plots go to files
import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy import stats
from sklearn.datasets import make_moons
from sklearn.linear_model import LogisticRegression

import theory

torch.set_num_threads(1)  # tiny models: one thread is fastest and leaves the other cores alone
# torch's own deprecation notices (FutureWarning raised inside torch) are not about the analysis
warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.")
plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 150, "axes.grid": True, "grid.alpha": 0.3,
                     "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 8})
OUT = os.environ.get("MIXUP_TUTORIAL_OUT") or (None if IN_NOTEBOOK else "tutorial_figures")
if OUT:
    OUT = Path(OUT)
    OUT.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)


def show(fig, name):
    """Show ``fig`` inline in a notebook; save it as ``OUT/name.png`` when an output folder is set."""
    fig.tight_layout()
    if OUT:
        fig.savefig(OUT / f"{name}.png")
    if IN_NOTEBOOK:
        plt.show()
    else:
        plt.close(fig)


# %% [markdown]
# ## 1. Mixing distributions (§1)
#
# Mixup draws λ ~ D_λ = Beta(α, α) and trains on `λx_i + (1−λ)x_j` with label `λy_i + (1−λ)y_j`.
# After the labels are "un-mixed" (next section) a *size-biased* twin appears,
# `D̃_λ = Beta(α+1, α)`: its density is λ times that of D_λ, renormalised. The reason is the identity
# `E_{Beta(α,β)}[λ g(λ)] = (α/(α+β)) E_{Beta(α+1,β)}[g(λ)]`. Check it by Monte Carlo with g = cos:

# %%
alpha = 1.0
N_MC = 200_000
lam = rng.beta(alpha, alpha, N_MC)
lam_tilde = rng.beta(alpha + 1, alpha, N_MC)
lhs = np.mean(lam * np.cos(lam))
rhs = 0.5 * np.mean(np.cos(lam_tilde))
se = np.std(lam * np.cos(lam)) / math.sqrt(N_MC) + 0.5 * np.std(np.cos(lam_tilde)) / math.sqrt(N_MC)
print(f"E[λ cos λ] = {lhs:.5f},  (α/(α+β)) E_D̃[cos λ] = {rhs:.5f}  (difference {abs(lhs - rhs):.1e}, 1 s.e. {se:.1e})")
assert abs(lhs - rhs) < 5 * se

# %% [markdown]
# The moments `m_k = E_D̃[(1−λ)^k]` drive everything that follows. For α = 1, `m_1 = 1/3`, `m_2 = 1/6`:
# the "small parameter" 1 − λ of the expansion is not small.

# %%
for a in (0.2, 1.0, 4.0):
    mix = theory.MixupLambda(a)
    mc = rng.beta(a + 1, a, N_MC)
    print(f"α = {a:>3}: m_1 = {mix.m(1):.4f} (MC {np.mean(1 - mc):.4f}),  m_2 = {mix.m(2):.4f} "
          f"(MC {np.mean((1 - mc) ** 2):.4f}),  ρ₂ = {mix.rho2()}")

fig, axes = plt.subplots(1, 3, figsize=(10, 3), sharey=True)
grid = np.linspace(0.001, 0.999, 400)
for ax, a in zip(axes, (0.2, 1.0, 4.0)):
    ax.plot(grid, stats.beta(a, a).pdf(grid), label=f"D_λ = Beta({a:g}, {a:g})")
    ax.plot(grid, stats.beta(a + 1, a).pdf(grid), "--", label=f"D̃_λ = Beta({a + 1:g}, {a:g})")
    ax.set_title(f"α = {a:g}:  m₁ = {theory.MixupLambda(a).m(1):.3f}")
    ax.set_xlabel("λ (weight of the point itself)")
    ax.set_ylim(0, 4)
    ax.legend(loc="upper center")
axes[0].set_ylabel("density")
fig.suptitle("Mixing law D_λ and its size-biased twin D̃_λ (§1)")
show(fig, "mixing_distributions")

# %% [markdown]
# ## 2. The Mixup loss exactly, and identity (I) (§2, §3.1, claim C1)
#
# `L_mix = (1/n²) Σ_i Σ_j E_λ l(θ, (λx_i + (1−λ)x_j, λy_i + (1−λ)y_j))`. Over a finite sample this is a
# finite sum over pairs, and the λ-expectation is a one-dimensional integral that Gauss–Jacobi
# quadrature computes to machine precision. Here it is by brute force, in a few lines, for a small
# two-moons problem and logistic regression:

# %%
X, y = make_moons(40, noise=0.1, random_state=0)
X = X - X.mean(0)  # centered data (assumption A1 later)
clf = LogisticRegression(C=1.0).fit(X, y)
model = theory.linear_model(2, weight=clf.coef_, intercept=clf.intercept_)

nodes, weights = theory.MixupLambda(alpha).nodes(16)
z = X @ clf.coef_.ravel() + clf.intercept_[0]  # logits; a linear model only needs the n margins
brute = 0.0
for i in range(len(y)):
    for j in range(len(y)):
        zl = nodes * z[i] + (1 - nodes) * z[j]  # logit of the mixed input
        yl = nodes * y[i] + (1 - nodes) * y[j]  # mixed label
        brute += weights @ (np.logaddexp(zl, 0) - yl * zl)  # logistic loss h(f) − y f
brute /= len(y) ** 2
exact = theory.mixup_loss(model, X, y, alpha)
print(f"brute force {brute:.12f}   theory.mixup_loss {exact:.12f}")
assert abs(brute - exact) < 1e-10

# %% [markdown]
# The loss is linear in the label, so a mixed label splits the loss in two. Swapping i ↔ j in the second
# half and size-biasing λ gives identity (I): no mixed labels, each point is pulled towards a random
# other point by `1 − λ`, λ ~ D̃:
#
# `L_mix = (1/n) Σ_i E_{λ~D̃} E_{r~D_X} l(θ, (x_i + (1−λ)(r − x_i), y_i))`.
#
# Training never computes either side exactly: it uses one λ per batch and a random permutation of
# the batch. That estimator is unbiased for the same number (§2.4):

# %%
unmixed = theory.mixup_loss_unmixed(model, X, y, alpha)
sampled = theory.mixup_loss_sampled(model, X, y, alpha, draws=400, generator=np.random.default_rng(1))
print(f"pair sum {exact:.10f}   identity (I) {unmixed:.10f}   sampled {sampled.mean:.4f} ± {sampled.stderr:.4f}")
assert abs(exact - unmixed) < 1e-10
assert abs(sampled.mean - exact) < 5 * sampled.stderr

# %% [markdown]
# ## 3. The second-order expansion and its s³ remainder (§3.2, claims C2, C3)
#
# Taylor-expanding (I) in `t = 1 − λ` gives `L_mix ≈ L_std + R1 + R2 + R3` (the paper's `L̃_mix`):
# R1 is a first-order term, R2 penalises input gradients, R3 involves input Hessians (zero for
# linear and ReLU models). A smooth net (tanh) has all three:

# %%
tanh_net = theory.smooth_mlp(2, [16], generator=torch.Generator().manual_seed(0))
e = theory.mixup_expansion(tanh_net, X, y, alpha)
exact_tanh = theory.mixup_loss(tanh_net, X, y, alpha)
print(e)
print(f"exact L_mix {exact_tanh:.5f}")

# %% [markdown]
# How good is the approximation? Put a scale s in front of the displacement,
# `x_i + s(1−λ)(r − x_i)` (s = 1 is Mixup). Then `L_mix(s) − L_std − s R1 − s²(R2 + R3) = O(s³)`:
# a slope of 3 on a log–log plot. At s = 1 the remainder is whatever it is (claim C3 measures it).

# %%
scales = np.array([0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0])
quadratic = e.standard + scales * e.r1 + scales ** 2 * (e.r2 + e.r3)  # = mixup_expansion(..., scale=s).approx
remainder = np.abs([theory.mixup_loss_unmixed(tanh_net, X, y, alpha, scale=s) for s in scales] - quadratic)
slope = np.polyfit(np.log(scales[:3]), np.log(remainder[:3]), 1)[0]
print(f"log–log slope at small s: {slope:.2f} (expected 3)")
assert abs(slope - 3) < 0.2

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.loglog(scales, remainder, "o-", label="|L_mix(s) − quadratic(s)|")
ax.loglog(scales, remainder[0] * (scales / scales[0]) ** 3, "k:", label="slope 3 (O(s³))")
ax.set_xlabel("scale s of the Mixup displacement (s = 1 is Mixup)")
ax.set_ylabel("remainder of the expansion")
ax.set_title(f"tanh net: the expansion is second order (fitted slope {slope:.2f})")
ax.legend(loc="upper left")
show(fig, "expansion_remainder")

# %% [markdown]
# ## 4. The paper's main model: a bias-free ReLU network (§2.3, §4.4, claims C3, C5)
#
# The paper's robustness theorem is stated for ReLU networks. Without biases such a network is
# *positively homogeneous*: `f(x) = ∇f(x)ᵀx` and `∇²f = 0` wherever it is differentiable, which is what the
# proof needs. We train a 2-16-1 bias-free ReLU net on 60 centered two-moons points for 300 full-batch
# Adam steps (float64, fixed seed; standard training, not Mixup):

# %%
Xr, yr = make_moons(60, noise=0.15, random_state=1)
Xr = Xr - Xr.mean(0)  # (A1)
relu_net = theory.relu_mlp(2, [16], bias=False, generator=torch.Generator().manual_seed(0))
opt = torch.optim.Adam(relu_net.parameters(), lr=0.03)
Xt, yt = torch.as_tensor(Xr), torch.as_tensor(yr, dtype=torch.float64)
for step in range(300):
    opt.zero_grad()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(relu_net(Xt).reshape(-1), yt)
    loss.backward()
    opt.step()
relu_net.requires_grad_(False)
L_std_relu = torch.nn.functional.binary_cross_entropy_with_logits(relu_net(Xt).reshape(-1), yt).item()
acc = float(((relu_net(Xt).reshape(-1) > 0).double() == yt).double().mean())
print(f"training loss {L_std_relu:.4f}, training accuracy {acc:.3f}")

# %% [markdown]
# **Exact Mixup loss.** Along a mixing segment `λx_i + (1−λ)x_j` a ReLU net is piecewise linear in λ, so
# the library finds the kinks and integrates each piece exactly (§2.3). An independent check: the
# training-time estimator (one λ per pass, random partners) agrees within its standard error.

# %%
L_mix_relu = theory.mixup_loss(relu_net, Xr, yr, alpha)
est = theory.mixup_loss_sampled(relu_net, Xr, yr, alpha, draws=300, generator=np.random.default_rng(2))
print(f"exact L_mix {L_mix_relu:.6f}   sampled {est.mean:.4f} ± {est.stderr:.4f}")
assert abs(est.mean - L_mix_relu) < 5 * est.stderr

# %% [markdown]
# **Exact loss against the paper's approximation `L̃_mix` across α.** For a ReLU net R3 = 0, so
# `L̃_mix = L_std + R1 + R2`. The approximation is a Taylor expansion in `1 − λ`, whose mean is
# `m₁ = α/(2α+1)`: small only for small α.

# %%
ALPHAS = (0.1, 0.2, 0.5, 1.0, 2.0, 4.0, 8.0)
relu_rows = []
for a in ALPHAS:
    ex = theory.mixup_loss(relu_net, Xr, yr, a)
    ap = theory.mixup_expansion(relu_net, Xr, yr, a)
    relu_rows.append((a, ex, ap.approx, abs(ap.approx - ex) / ex, ap.m1))
    print(f"α = {a:>4}: m₁ = {ap.m1:.3f}   exact {ex:.4f}   L̃_mix {ap.approx:.4f}   "
          f"relative error {abs(ap.approx - ex) / ex:6.1%}   (R3 = {ap.r3:g})")
assert all(r[3] < 0.1 for r in relu_rows if r[0] <= 0.2)  # small α: the expansion is accurate
assert all(r[3] > 0.1 for r in relu_rows if r[0] >= 1)  # α ≥ 1: it is not

a_, ex_, ap_, rel_, _ = map(np.array, zip(*relu_rows))
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
ax1.semilogx(a_, ex_, "o-", label="exact L_mix")
ax1.semilogx(a_, ap_, "s--", label="L̃_mix = L_std + R1 + R2")
ax1.axhline(L_std_relu, color="0.5", linestyle=":", label="L_std")
ax1.set_xlabel("α")
ax1.set_ylabel("loss")
ax1.set_title("ReLU net: exact Mixup loss vs the paper's approximation")
ax1.legend()
ax2.semilogx(a_, 100 * rel_, "o-", color="C3")
ax2.axhline(10, color="k", linestyle="--", label="10 % threshold (§3.3)")
ax2.set_xlabel("α")
ax2.set_ylabel("relative error of L̃_mix (%)")
ax2.set_title("Accurate only while m₁ = α/(2α+1) is small")
ax2.legend()
show(fig, "relu_approximation")

# %% [markdown]
# **The robustness chain (C5).** Three assumptions (§4.2): (A1) centered data; (A2) every training point
# on its side of the boundary; (A3) every input is long enough, `‖x_i‖ ≥ c_x √d` — the default
# `c_x √d = min_i ‖x_i‖` makes (A3) true. For the net we also need homogeneity, `f_i = ∇f_iᵀx_i` (bias-free
# ReLU). Let `ω_i = |cos(∇f_i, x_i)|` be how well x_i lines up with the gradient and `ω = min_i ω_i`. The
# per-point budgets are `ε_i = m₁ ω_i c_x √d` and the theorem's budget is `ε_mix = min_i ε_i = m₁ ω c_x √d`.
# Then `L̃_mix ≥ mean_i L̃_adv,i(ε_i) ≥ L̃_adv(ε_mix)`: to second order, Mixup's loss dominates an
# adversarial loss with budget ε_mix (§4.3–§4.4, Theorem 3.3). Our trained net misclassifies
# a few training points, so (A2) fails for it; first we relabel by the net's own sign, which makes (A2)
# true by construction, then we look at the real labels.

# %%
f_train = relu_net(Xt).reshape(-1).numpy()
y_side = (f_train >= 0).astype(int)  # (A2) by construction
b_side = theory.robustness_bound(relu_net, Xr, y_side, alpha)
with warnings.catch_warnings():  # the real labels violate (A2) on purpose: the flags are printed below
    warnings.simplefilter("ignore", theory.AssumptionWarning)
    b_real = theory.robustness_bound(relu_net, Xr, yr, alpha)
print("labels = the net's sign:", b_side, sep="\n")
print(f"\nreal labels: assumptions {b_real.assumptions}, chain holds: {b_real.holds}")
assert b_side.holds and b_side.assumptions["homogeneous"] and b_side.assumptions["in_theta"]

# %% [markdown]
# With the real labels `in_theta` is false, yet the chain still holds here: the assumptions are
# *sufficient*, not necessary — misclassified points make their R1 summand negative, and the chain
# survives as long as the other points' margins pay for it. How loose is `ε_mix`? The chain's last
# link holds up to `ε*` (the largest ε with `L̃_mix ≥ L̃_adv(ε)`), and `ε_mix` is set by the worst point:

# %%
eps_grid = np.linspace(0, 1.3 * b_side.eps_star, 30)
adv_curve = [theory.adversarial_loss(relu_net, Xr, y_side, eps, method="second_order") for eps in eps_grid]
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(eps_grid, adv_curve, label="L̃_adv(ε), second-order adversarial loss")
ax.axhline(b_side.mixup_approx, color="C2", label="L̃_mix (α = 1)")
ax.axvline(b_side.eps_mix, color="C1", linestyle="--", label=f"ε_mix = {b_side.eps_mix:.1e} (the theorem)")
ax.axvline(b_side.eps_star, color="C3", linestyle=":", label=f"ε* = {b_side.eps_star:.3f} (where the chain ends)")
ax.set_xlabel("adversarial budget ε (ℓ₂)")
ax.set_ylabel("loss")
ax.set_title("Bias-free ReLU net: Mixup ≥ adversarial loss up to ε*")
ax.legend(loc="lower right")
show(fig, "relu_robustness_chain")
assert b_side.eps_mix <= b_side.eps_star

# %% [markdown]
# ## 5. Logistic regression: exact losses on both sides (§4.3, §4.7, claims C4, C7)
#
# For logistic regression both losses are also computable *exactly*:
# `L_adv(ε) = (1/n) Σ softplus(−s_i θᵀx_i + ε‖θ‖)`. Build an instance that satisfies (A1)–(A3) by
# construction; then the exact chain `L_mix ≥ L_adv(ε_mix)` holds too (C7).

# %%
Xc = rng.standard_normal((30, 3))
Xc -= Xc.mean(0)  # (A1)
theta = np.array([1.5, -1.0, 0.5])
yc = (Xc @ theta >= 0).astype(int)  # (A2): labels from θ's side
lr_model = theory.linear_model(3, bias=False, weight=theta)
bound = theory.robustness_bound(lr_model, Xc, yc, alpha)
print(f"L̃_mix {bound.mixup_approx:.4f} ≥ mean L̃_adv,i(ε_i) {bound.adv_at_eps_i:.4f} ≥ "
      f"L̃_adv(ε_mix) {bound.adv_at_eps_mix:.4f}: {bound.holds}")
assert bound.holds

eps_grid = np.linspace(0, 1.2 * bound.eps_star, 40)
adv_exact = [theory.adversarial_loss(lr_model, Xc, yc, eps, method="exact") for eps in eps_grid]
adv_approx = [theory.adversarial_loss(lr_model, Xc, yc, eps, method="second_order") for eps in eps_grid]
mix_exact = theory.mixup_loss(lr_model, Xc, yc, alpha)
adv_at_mix = theory.adversarial_loss(lr_model, Xc, yc, bound.eps_mix, method="exact")
print(f"exact L_mix {mix_exact:.4f} ≥ exact L_adv(ε_mix) {adv_at_mix:.4f}")
assert mix_exact >= adv_at_mix

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(eps_grid, adv_exact, label="L_adv(ε), exact")
ax.plot(eps_grid, adv_approx, "--", label="L̃_adv(ε), second order")
ax.axhline(bound.mixup_approx, color="C2", label="L̃_mix")
ax.axhline(mix_exact, color="C3", linestyle=":", label="L_mix, exact")
ax.axvline(bound.eps_mix, color="0.4", linestyle="-.", label="ε_mix")
ax.set_xlabel("adversarial budget ε (ℓ₂)")
ax.set_ylabel("loss")
ax.set_title("Logistic regression: Mixup loss vs adversarial loss")
ax.legend(loc="lower right")
show(fig, "robustness_chain")

# %% [markdown]
# ### Exercise 1 — drop centering and find the counterexample (§4.2, §7, claim C6)
#
# The proof uses (A1) to turn R1 into a sum of margins. Shift the data of the cell above away from the
# origin (keep labels on θ's side, no intercept) and search random small instances (n = 6, d = 2) for one
# where the chain `L̃_mix ≥ L̃_adv(ε_mix)` fails. Then find the *smallest* instance you can (n = 2, d = 1)
# and explain in one sentence why the chain must fail on it.
#
# *Hint:* what are R1 and R2 when every mixed point equals the point itself?

# %% [markdown] tags=["solution"]
# **Solution.** A random search finds failures quickly:

# %% tags=["solution"]
failures, first = 0, None
TRIALS = 30
for _ in range(TRIALS):
    Xs = rng.standard_normal((6, 2))
    Xs = Xs - Xs.mean(0) + rng.normal(0, 2, size=2)  # not centered
    th = rng.standard_normal(2)
    ys = (Xs @ th >= 0).astype(int)
    with warnings.catch_warnings():  # non-centered by construction: the theorem does not cover these
        warnings.simplefilter("ignore", theory.AssumptionWarning)
        b = theory.robustness_bound(theory.linear_model(2, bias=False, weight=th), Xs, ys, alpha)
    failures += not b.holds
    first = first or (None if b.holds else (b.mixup_approx, b.adv_at_eps_mix))
print(f"non-centered data: the chain fails on {failures}/{TRIALS} random instances; first: "
      f"L̃_mix {first[0]:.4f} < L̃_adv(ε_mix) {first[1]:.4f}")
assert failures > 0

# %% [markdown] tags=["solution"]
# The minimal counterexample (stored in the repository as `experiments/data/c6_non_centered.json`): two
# copies of x = 1/4, θ = 1/2, both labels 1. Every mixed point equals x, so Mixup changes nothing:
# R1 = R2 = 0 and `L̃_mix = L_std`. But x̄ = 1/4 ≠ 0 and ‖x‖ > 0, so `ε_mix = m₁ · 1/4 > 0` and the
# adversarial loss at that budget is strictly larger. *Mixup cannot regularize when there is nothing to
# mix with; the theorem's ε_mix does not see that.*

# %% tags=["solution"]
x_min = np.array([[0.25], [0.25]])
b_min = theory.robustness_bound(theory.linear_model(1, bias=False, weight=[[0.5]]), x_min, [1, 1], 1.0)
print(f"assumptions {b_min.assumptions}")
print(f"L̃_mix = {b_min.mixup_approx:.4f} < L̃_adv(ε_mix = {b_min.eps_mix:.4f}) = {b_min.adv_at_eps_mix:.4f}")
assert not b_min.holds and not b_min.assumptions["centered"]

# %% [markdown]
# ## 6. Generalization: the regularizer, and ρ₂ (§5.1, claim C9)
#
# For a GLM `ℓ = h(θᵀx) − yθᵀx` on centered data the paper's regularizer (Lemma 4.1) is `(1/2n)[Σ h''(x_iᵀθ)] ρ₂ θᵀΣ̂θ` with
# `ρ₂ = E_D̃[((1−λ)/λ)²]`. Without rescaling θ one gets the *shrinkage form*
# `(1/2n) E_D̃[(1−λ)² Σ h''(λ x_iᵀθ)] θᵀΣ̂θ`. Compare both with the exact excess `L_mix − E_D̃[L_std(λθ)]`:

# %%
lr_moons = theory.linear_model(2, bias=False, weight=LogisticRegression(C=1.0, fit_intercept=False).fit(X, y).coef_)
for a in (0.5, 1.0, 4.0):
    exact_excess = theory.mixup_loss(lr_moons, X, y, a) - theory.shrunk_standard_loss(lr_moons, X, y, a)
    shrink = theory.glm_regularizer(lr_moons, X, a, form="shrinkage")
    paper = theory.glm_regularizer(lr_moons, X, a, form="paper")
    print(f"α = {a}: exact excess {exact_excess:.4f}   shrinkage form {shrink:.4f}   paper form {paper:.4f}")

# %% [markdown]
# ### Exercise 2 — where does the paper's regularizer diverge?
#
# The paper form printed `inf` for α = 0.5 and 1. (a) For which α is ρ₂ finite? Estimate ρ₂ with
# quadrature rules of growing size (`theory.MixupLambda(a).nodes(q, tilde=True)`) for a few α and watch
# which estimates settle. (b) Prove your answer from the density of D̃ near λ = 0. (c) Is the divergence
# a property of Mixup or of the approximation?

# %% [markdown] tags=["solution"]
# **Solution.** (a) The estimates keep growing with the number of nodes for α ≤ 1 and settle for α > 1:

# %% tags=["solution"]
for a in (0.5, 1.0, 1.5, 2.0, 4.0):
    est = []
    for q in (8, 32, 128, 512):
        lam_q, w_q = theory.MixupLambda(a).nodes(q, tilde=True)
        est.append(float(w_q @ ((1 - lam_q) / lam_q) ** 2))
    print(f"α = {a}: quadrature estimates with 8/32/128/512 nodes {np.round(est, 2)};  closed form ρ₂ = "
          f"{theory.MixupLambda(a).rho2():.4g}")
assert math.isinf(theory.MixupLambda(1.0).rho2()) and math.isfinite(theory.MixupLambda(1.01).rho2())

alphas_fine = np.linspace(1.02, 6, 200)
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.semilogy(alphas_fine, [theory.MixupLambda(a).rho2() for a in alphas_fine])
ax.axvspan(0, 1, color="C3", alpha=0.15, label="α ≤ 1: ρ₂ = ∞ (the usual Mixup range)")
ax.set_xlim(0, 6)
ax.set_xlabel("α")
ax.set_ylabel("ρ₂ = E_D̃[((1−λ)/λ)²]")
ax.set_title("The paper's regularizer constant ρ₂ blows up as α → 1⁺")
ax.legend()
show(fig, "rho2")

# %% [markdown] tags=["solution"]
# (b) For α = β, D̃ = Beta(α+1, α) has density ∝ λ^α (1−λ)^(α−1), so near λ = 0 the integrand
# `((1−λ)/λ)²` times the density behaves like `λ^(α−2)`, and `∫₀ λ^(α−2) dλ` converges iff α − 2 > −1, i.e.
# **α > 1** (§1). (c) It is the approximation: the paper's form expands to second order in the
# unbounded `τ = (1−λ)/λ`. The exact excess and the shrinkage form (table above) are finite for every α.

# %% [markdown]
# ## 7. Rademacher complexity: intrinsic, not ambient, dimension (§5.2, claim C10)
#
# The class that Mixup's regularizer controls is an ellipsoid `{θ : θᵀΣ̂₀θ ≤ c}`. Its Rademacher
# complexity is `√(c/n) E‖Pξ‖ ≤ √(c·rank/n)` (ξ: the random signs, P: the projector onto the span of the
# data): it depends on the rank of the data, not on d. A ridge
# ball `{‖θ‖² ≤ c}` grows with the trace, i.e. with d. On data of rank 3 embedded in growing d:

# %%
n, r, c = 100, 3, 1.0
dims = (3, 10, 30, 100)
ell_vals, ridge_vals = [], []
for d in dims:
    Q, _ = np.linalg.qr(rng.standard_normal((d, r)))
    Xd = rng.standard_normal((n, r)) @ (math.sqrt(d / r) * Q).T
    ell = theory.rademacher(Xd, c, cls="ellipsoid", draws=500, generator=np.random.default_rng(2))
    rid = theory.rademacher(Xd, c, cls="ridge", draws=500, generator=np.random.default_rng(3))
    ell_vals.append(ell.value)
    ridge_vals.append(rid.value)
    print(f"d = {d:>3}: ellipsoid {ell.value:.3f} (bound {ell.bound:.3f})   ridge {rid.value:.3f} (bound {rid.bound:.3f})")
    assert ell.value <= ell.bound + 4 * ell.stderr

fig, ax = plt.subplots(figsize=(5.5, 3.5))
ax.loglog(dims, ell_vals, "o-", label="ellipsoid θᵀΣ̂₀θ ≤ c (Mixup's class)")
ax.loglog(dims, ridge_vals, "s-", label="ridge ball ‖θ‖² ≤ c")
ax.set_xlabel("ambient dimension d (data of rank 3)")
ax.set_ylabel("Rademacher complexity (n = 100)")
ax.set_title("Mixup's class does not grow with d; the ridge ball does")
ax.legend(loc="upper left")
show(fig, "rademacher")

# %% [markdown]
# ### Exercise 3 — what does α do?
#
# (a) Mixup's strength is set by `m₁ = E_D̃[1−λ]`. Derive `m₁(α)` for α = β, check it by Monte Carlo, and
# find its limits as α → 0 and α → ∞. (b) Using the ReLU net of section 4 (labels = its sign), compute
# `ε_mix` and `ε*` for α ∈ {0.1, 0.5, 1, 4}. (c) Which α would you choose if you wanted the paper's
# approximation to be trustworthy (relative error below 10 %), and what does that cost in robustness?

# %% [markdown] tags=["solution"]
# **Solution.** (a) For D̃ = Beta(α+1, α), `E[1−λ] = α/(2α+1)`: 0 as α → 0 (D_λ concentrates on
# λ ∈ {0, 1}, Mixup becomes standard training) and 1/2 as α → ∞ (λ ≈ 1/2, maximal mixing).

# %% tags=["solution"]
for a in (0.1, 1.0, 10.0):
    mc = rng.beta(a + 1, a, N_MC)
    print(f"α = {a:>4}: m₁ = {theory.MixupLambda(a).m(1):.4f}  α/(2α+1) = {a / (2 * a + 1):.4f}  "
          f"MC {np.mean(1 - mc):.4f} ± {np.std(mc) / math.sqrt(N_MC):.4f}")
    assert abs(theory.MixupLambda(a).m(1) - a / (2 * a + 1)) < 1e-12

# %% [markdown] tags=["solution"]
# (b) `ε_mix = m₁ ω c_x √d` is proportional to m₁, and `ε*` grows with α as well:

# %% tags=["solution"]
for a in (0.1, 0.5, 1.0, 4.0):
    b = theory.robustness_bound(relu_net, Xr, y_side, a)
    rel = next((row[3] for row in relu_rows if row[0] == a), None)
    rel = rel if rel is not None else abs(theory.mixup_expansion(relu_net, Xr, yr, a).approx
                                          - theory.mixup_loss(relu_net, Xr, yr, a)) / theory.mixup_loss(relu_net, Xr, yr, a)
    print(f"α = {a:>3}: m₁ = {b.m1:.3f}  ε_mix = {b.eps_mix:.2e}  ε* = {b.eps_star:.3f}  chain holds: {b.holds}  "
          f"(approximation error {rel:.1%})")

# %% [markdown] tags=["solution"]
# `ε_mix` is tiny at every α because one training point sits almost on the decision boundary
# (`eps_i.min()`); the per-point radii `eps_i` and `eps_sharp` of the bound object are far larger.
#
# (c) Small α (0.1–0.2 here) keeps the approximation within 10 %, but then m₁ and ε* are small: the
# guarantee is accurate about a weak effect. From α = 1 on, the budget is larger, but it is a statement
# about `L̃_mix`, which is off by more than 10 % — the regime where the theorem says most is the one where
# its approximation is least reliable (§3.3, §7).

# %% [markdown]
# ## 8. Explore α yourself
#
# Move the slider to see the mixing law, `m₁`, `m₂` and ρ₂ change (needs `ipywidgets`, part of the `docs`
# extra; without it, or outside a notebook, you get the static panel at α = 1).

# %%
def alpha_panel(alpha=1.0):
    mix = theory.MixupLambda(alpha)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(grid, stats.beta(alpha, alpha).pdf(grid), label="D_λ = Beta(α, α)")
    ax.plot(grid, stats.beta(alpha + 1, alpha).pdf(grid), "--", label="D̃_λ = Beta(α+1, α)")
    ax.set_ylim(0, 5)
    ax.set_xlabel("λ")
    ax.set_ylabel("density")
    ax.set_title(f"α = {alpha:.2f}: m₁ = {mix.m(1):.3f}, m₂ = {mix.m(2):.3f}, ρ₂ = {mix.rho2():.3g}")
    ax.legend(loc="upper center")
    show(fig, "alpha_panel")


try:
    import ipywidgets as widgets
except ImportError:
    widgets = None
if widgets is not None and IN_NOTEBOOK:
    widgets.interact(alpha_panel, alpha=widgets.FloatLogSlider(value=1.0, base=10, min=-1.3, max=1.3, step=0.02,
                                                               description="α", continuous_update=False))
else:
    print("(no slider: ipywidgets is not installed or this is not a notebook; static panel at α = 1)")
    alpha_panel(1.0)

# %% [markdown]
# ## Where next
#
# - `mixup-theory explain --data breast_cancer --model relu` prints every quantity above for one
#   problem, with the section each comes from.
# - `mixup-theory check` runs one fast check per claim; `paper_checks.md` is the table of claims, our
#   readings, tests, figures and verdicts.
# - `mixup-theory figures` regenerates the full-size figures; `docs/theory.md` has every derivation.
