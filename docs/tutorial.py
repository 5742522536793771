# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # How does Mixup help with robustness and generalization? A hands-on walk-through
#
# This notebook follows the argument of Zhang, Deng, Kawaguchi, Ghorbani and Zou (ICLR 2021) with
# code you can run: every quantity is computed exactly (no sampling unless we say so), and every step
# is checked numerically. The analysis is in `docs/theory.md` (section numbers below refer to it); the
# claim ids C1–C13 are the rows of `paper_checks.md`.
#
# Open it in Jupyter with `jupytext --to notebook docs/tutorial.py`, or run it as a script:
# `python docs/tutorial.py` (plots go to `tutorial_figures/` under the current directory, or to
# `$MIXUP_TUTORIAL_OUT`).

# %%
import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed; figures are saved as files
import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy import stats
from sklearn.datasets import make_moons
from sklearn.linear_model import LogisticRegression

import theory
from theory import mixup_loss_sampled, mixup_loss_unmixed

OUT = Path(os.environ.get("MIXUP_TUTORIAL_OUT", "tutorial_figures"))
OUT.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)


def save(fig, name):
    fig.tight_layout()
    fig.savefig(OUT / f"{name}.png", dpi=80)
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

fig, ax = plt.subplots(figsize=(5, 3))
grid = np.linspace(0.001, 0.999, 400)
for a in (0.2, 1.0, 4.0):
    ax.plot(grid, stats.beta(a, a).pdf(grid), label=f"Beta({a:g},{a:g})")
    ax.plot(grid, stats.beta(a + 1, a).pdf(grid), "--", label=f"D̃: Beta({a + 1:g},{a:g})")
ax.set_ylim(0, 4)
ax.set_xlabel("λ")
ax.legend(fontsize=6)
save(fig, "mixing_distributions")

# %% [markdown]
# ## 2. The Mixup loss exactly, and identity (I) (§2, §3, claim C1)
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
# the batch. That estimator is unbiased for the same number:

# %%
unmixed = mixup_loss_unmixed(model, X, y, alpha)
sampled = mixup_loss_sampled(model, X, y, alpha, draws=400, generator=np.random.default_rng(1))
print(f"pair sum {exact:.10f}   identity (I) {unmixed:.10f}   sampled {sampled.mean:.4f} ± {sampled.stderr:.4f}")
assert abs(exact - unmixed) < 1e-10
assert abs(sampled.mean - exact) < 5 * sampled.stderr

# %% [markdown]
# ## 3. The second-order expansion and its s³ remainder (§3, claims C2, C3)
#
# Taylor-expanding (I) in `t = 1 − λ` gives `L_mix ≈ L_std + R1 + R2 + R3` (the paper's `L̃_mix`):
# R1 is a first-order term, R2 penalises input gradients, R3 involves input Hessians (zero for
# linear and ReLU models). A smooth net (tanh) has all three:

# %%
net = theory.smooth_mlp(2, [16], generator=torch.Generator().manual_seed(0))
e = theory.mixup_expansion(net, X, y, alpha)
exact_net = theory.mixup_loss(net, X, y, alpha)
print(f"L_std {e.standard:.5f}  R1 {e.r1:+.5f}  R2 {e.r2:+.5f}  R3 {e.r3:+.5f}  "
      f"L̃_mix {e.approx:.5f}  exact L_mix {exact_net:.5f}")

# %% [markdown]
# How good is the approximation? Put a scale s in front of the displacement,
# `x_i + s(1−λ)(r − x_i)` (s = 1 is Mixup). Then `L_mix(s) − L_std − s R1 − s²(R2 + R3) = O(s³)`:
# a slope of 3 on a log–log plot. At s = 1 the remainder is whatever it is: for logistic regression on
# two moons it ranges from a few % to 20 % of the loss, growing with ‖θ‖ (claim C3 measures it).

# %%
scales = np.array([0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0])
remainder = np.array([abs(mixup_loss_unmixed(net, X, y, alpha, scale=s)
                          - theory.mixup_expansion(net, X, y, alpha, scale=s).approx) for s in scales])
slope = np.polyfit(np.log(scales[:3]), np.log(remainder[:3]), 1)[0]
print(f"log–log slope at small s: {slope:.2f} (expected 3)")
assert abs(slope - 3) < 0.2

fig, ax = plt.subplots(figsize=(4, 3))
ax.loglog(scales, remainder, "o-", label="abs(remainder)")
ax.loglog(scales, remainder[0] * (scales / scales[0]) ** 3, "k:", label="slope 3")
ax.set_xlabel("s")
ax.legend()
save(fig, "expansion_remainder")

lin_e = theory.mixup_expansion(model, X, y, alpha)
print(f"logistic regression at s = 1: relative error {abs(lin_e.approx - exact) / exact:.3f}")

# %% [markdown]
# ## 4. Robustness: Mixup loss ≥ adversarial loss (§4, claims C4, C7)
#
# The robustness theorem compares the approximate Mixup loss with the second-order adversarial loss
# `L̃_adv(ε) = L_std + ε (1/n) Σ |h'(f_i) − y_i| ‖∇f_i‖ + (ε²/2)(1/n) Σ h''(f_i) ‖∇f_i‖²`.
# Under (A1) centered data, (A2) every training point on its side of the boundary (no intercept),
# (A3) `‖x_i‖ ≥ c_x √d`, the chain `L̃_mix ≥ mean_i L̃_adv,i(ε_i) ≥ L̃_adv(ε_mix)` holds with
# `ε_mix = m_1 R c_x √d`. Build an instance that satisfies the assumptions by construction:

# %%
Xc = rng.standard_normal((30, 3))
Xc -= Xc.mean(0)  # (A1)
theta = np.array([1.5, -1.0, 0.5])
yc = (Xc @ theta >= 0).astype(int)  # (A2): labels from θ's side
lr_model = theory.linear_model(3, bias=False, weight=theta)
bound = theory.robustness_bound(lr_model, Xc, yc, alpha)
print(f"L̃_mix {bound.mixup_approx:.4f} ≥ mean L̃_adv,i(ε_i) {bound.adv_at_eps_i:.4f} ≥ "
      f"L̃_adv(ε_mix) {bound.adv_at_eps_mix:.4f}: {bound.holds};  assumptions {bound.assumptions}")
print(f"ε_mix = {bound.eps_mix:.2g}, but the chain's last link holds up to ε* = {bound.eps_star:.4f}")
assert bound.holds

# %% [markdown]
# `ε_mix` is set by the worst point (the one closest to the boundary, relative to its norm), so it is
# usually far below `ε*`. For logistic regression both losses are also computable *exactly*
# (claim C7): `L_adv(ε) = (1/n) Σ softplus(−s_i θᵀx_i + ε‖θ‖)`. By Jensen's inequality the exact
# chain `L_mix ≥ L_adv(ε_mix)` also holds under (A1)–(A2):

# %%
eps_grid = np.linspace(0, 1.2 * bound.eps_star, 40)
adv_exact = [theory.adversarial_loss(lr_model, Xc, yc, eps, method="exact") for eps in eps_grid]
adv_approx = [theory.adversarial_loss(lr_model, Xc, yc, eps, method="second_order") for eps in eps_grid]
mix_exact = theory.mixup_loss(lr_model, Xc, yc, alpha)
print(f"exact L_mix {mix_exact:.4f} ≥ exact L_adv(ε_mix) "
      f"{theory.adversarial_loss(lr_model, Xc, yc, bound.eps_mix, method='exact'):.4f}")

fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(eps_grid, adv_exact, label="L_adv(ε) exact")
ax.plot(eps_grid, adv_approx, "--", label="L̃_adv(ε) second order")
ax.axhline(bound.mixup_approx, color="C2", label="L̃_mix")
ax.axhline(mix_exact, color="C3", linestyle=":", label="L_mix exact")
ax.axvline(bound.eps_mix, color="0.5", linestyle="-.", label="ε_mix")
ax.set_xlabel("ε")
ax.legend(fontsize=6)
save(fig, "robustness_chain")

# %% [markdown]
# ## 5. Where it fails: drop an assumption (§4, claim C6)
#
# Shift the same data away from the origin (no longer centered) and keep labels on θ's side. R1 no
# longer has the sign the proof needs, and the chain breaks on many random instances:

# %%
failures = 0
TRIALS = 30
for _ in range(TRIALS):
    Xs = rng.standard_normal((6, 2))
    Xs = Xs - Xs.mean(0) + rng.normal(0, 2, size=2)  # not centered
    th = rng.standard_normal(2)
    ys = (Xs @ th >= 0).astype(int)
    b = theory.robustness_bound(theory.linear_model(2, bias=False, weight=th), Xs, ys, alpha)
    failures += not b.holds
print(f"non-centered data: the chain fails on {failures}/{TRIALS} random instances")
assert failures > 0

# %% [markdown]
# ## 6. Generalization: the regularizer and ρ₂ = ∞ for α ≤ 1 (§5, claim C9)
#
# For a GLM on centered data the paper's regularizer is `(1/2n)[Σ A''(x_iᵀθ)] ρ₂ θᵀΣ̂θ` with
# `ρ₂ = E_D̃[((1−λ)/λ)²]`. D̃ has density ∝ λ^α near 0, so `E[λ^-2]` is finite only for α > 1:
# for the usual α ≤ 1 the paper's form is infinite. Quadrature makes the divergence visible: the
# estimate keeps growing with the number of nodes at α = 1, and settles at α = 2 (ρ₂ = 3):

# %%
for a in (1.0, 2.0):
    est = []
    for q in (8, 32, 128):
        lam_q, w_q = theory.MixupLambda(a).nodes(q, tilde=True)
        est.append(float(w_q @ ((1 - lam_q) / lam_q) ** 2))
    print(f"α = {a}: quadrature estimates of ρ₂ with 8/32/128 nodes: {np.round(est, 3)}; closed form {theory.MixupLambda(a).rho2()}")

# %% [markdown]
# Without rescaling θ one gets the *shrinkage form* `(1/2n) E_D̃[(1−λ)² Σ A''(λ x_iᵀθ)] θᵀΣ̂θ`, finite
# for every α, and it tracks the exact excess `L_mix − E_D̃[L_std(λθ)]`:

# %%
from theory import shrunk_standard_loss

lr_moons = theory.linear_model(2, bias=False, weight=LogisticRegression(C=1.0, fit_intercept=False).fit(X, y).coef_)
for a in (0.5, 1.0, 4.0):
    exact_excess = theory.mixup_loss(lr_moons, X, y, a) - shrunk_standard_loss(lr_moons, X, y, a)
    shrink = theory.glm_regularizer(lr_moons, X, a, form="shrinkage")
    paper = theory.glm_regularizer(lr_moons, X, a, form="paper")
    print(f"α = {a}: exact excess {exact_excess:.4f}   shrinkage form {shrink:.4f}   paper form {paper:.4f}")

# %% [markdown]
# ## 7. Rademacher complexity: intrinsic, not ambient, dimension (§5, claim C10)
#
# The class that Mixup's regularizer controls is an ellipsoid `{θ : θᵀΣ̂₀θ ≤ c}`. Its Rademacher
# complexity is `√(c/n) E‖Pσ‖ ≤ √(c·rank/n)`: it depends on the rank of the data, not on d. A ridge
# ball `{‖θ‖² ≤ c}` grows with the trace, i.e. with d. On data of rank 3 embedded in growing d:

# %%
n, r, c = 100, 3, 1.0
dims = (3, 10, 30, 100)
ell_vals, ridge_vals = [], []
for d in dims:
    Q, _ = np.linalg.qr(rng.standard_normal((d, r)))
    Xr = rng.standard_normal((n, r)) @ (math.sqrt(d / r) * Q).T
    ell = theory.rademacher(Xr, c, cls="ellipsoid", draws=500, generator=np.random.default_rng(2))
    rid = theory.rademacher(Xr, c, cls="ridge", draws=500, generator=np.random.default_rng(3))
    ell_vals.append(ell.value)
    ridge_vals.append(rid.value)
    print(f"d = {d:>3}: ellipsoid {ell.value:.3f} (bound {ell.bound:.3f})   ridge {rid.value:.3f} (bound {rid.bound:.3f})")
    assert ell.value <= ell.bound + 4 * ell.stderr

fig, ax = plt.subplots(figsize=(4, 3))
ax.loglog(dims, ell_vals, "o-", label="ellipsoid θᵀΣ̂₀θ ≤ c")
ax.loglog(dims, ridge_vals, "s-", label="ridge ‖θ‖² ≤ c")
ax.set_xlabel("ambient dimension d (rank 3)")
ax.legend(fontsize=7)
save(fig, "rademacher")

# %% [markdown]
# ## Where next
#
# - `mixup-theory explain --data breast_cancer --model relu` prints every quantity above for one
#   problem, with the section each comes from.
# - `mixup-theory check` runs one fast check per claim; `paper_checks.md` is the table of claims, our
#   readings, tests, figures and status.
# - `mixup-theory figures` regenerates the full-size figures.
