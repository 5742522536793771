"""``mixup-theory explain [--data NAME] [--model NAME] [--alpha A]``: every quantity of the analysis on one
small problem, in the order of the argument (teaching; docs/theory.md §0–§5).

Each printed line is ``symbol  value  what it is [section of docs/theory.md]``. Output is deterministic: the
data subsample, the model's initialisation and its brief full-batch training, and the Monte-Carlo
draws all use fixed seeds.
"""
from __future__ import annotations

import math
import warnings
from typing import Callable

import numpy as np

import theory

DATASETS = ("two_moons", "breast_cancer", "digits01")
MODELS = ("logistic", "relu", "tanh")
N_SAMPLES = 60
"""Training points used: small enough that the exact n²-pair Mixup loss takes well under a second."""
HIDDEN = 16
TRAIN_STEPS = 100
TRAIN_LR = 0.03
PGD = {"steps": 20, "restarts": 1}
"""PGD options for the C7 bracket (a lower bound whatever the settings; FGSM start plus one restart)."""
SEED = 0
TRAININGS = ("standard", "mixup")
MIXUP_TRAIN_NODES = 6
"""Gauss–Jacobi nodes in λ for ``--train mixup`` (the exact Mixup objective over all n² pairs)."""
N_MAX = 400
"""Largest ``n`` accepted: the exact Mixup loss, the expansion and the bounds cost O(n²) pairs each
(n = 400 takes about a minute on one core; n = 100000 would take hours)."""
N_MIN = 10
"""Fewest training points accepted (both classes, a test split, a rank estimate)."""
ALPHA_RANGE = (1e-3, 1e3)
"""The α = β that ``explain`` accepts: Mixup's α in practice is 0.1–4; across this range the exact
Mixup objective trains and every quantity shown is computed to its documented accuracy."""
DESCRIPTION = ("Fits a small model to a few points and prints, step by step, every quantity of the analysis (exact "
               "Mixup loss, expansion, robustness chain, regularizer, Rademacher complexity), each line citing its "
               "section of docs/theory.md. Teaching; about half a minute on one core.")
LARGE_RELATIVE_ERROR = 0.10
"""A relative error of L̃_mix above this (the threshold of C3) gets a line of interpretation."""
RADEMACHER_DRAWS = 2000
HOMOTOPY_SCALES = (0.1, 0.05)
SAMPLED_DRAWS = 100


# ----------------------------------------------------------------------------- problem

def load_small(name: str, n: int = N_SAMPLES, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)``: ``n`` training points of ``name``, standardized and centered (x̄ = 0, assumption A1)."""
    if name not in DATASETS:
        raise ValueError(f"data must be one of {DATASETS}, got {name!r}")
    from .datasets import load_dataset

    ds = load_dataset(name, n=n, seed=seed, standardize=True, center=True)
    return ds.X_train, ds.y_train


def fit_model(kind: str, X: np.ndarray, y: np.ndarray, *, train: str = "standard", alpha: float = 1.0):
    """The model ``kind`` fitted to ``(X, y)`` deterministically, by ``train``ing in ``TRAININGS``.

    - ``logistic``: L2-regularised logistic regression without intercept (the setting of C4):
      standard = scikit-learn (C = 1, lbfgs); mixup = L-BFGS on the exact Mixup loss plus the same
      penalty ‖θ‖²/(2n);
    - ``relu``: bias-free ReLU MLP d-16-1 (positively homogeneous, the setting of C5);
    - ``tanh``: tanh MLP d-16-1 with biases (smooth, R3 ≠ 0, not homogeneous).
    The nets start from seeded PyTorch default initialisation and take ``TRAIN_STEPS`` full-batch
    Adam steps in float64 on the logistic loss (standard) or on the exact Mixup objective with
    ``Beta(alpha, alpha)`` (mixup: all n² pairs, ``MIXUP_TRAIN_NODES`` Gauss–Jacobi nodes in λ).
    """
    import torch

    import theory

    if kind not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {kind!r}")
    if train not in TRAININGS:
        raise ValueError(f"train must be one of {TRAININGS}, got {train!r}")
    d = X.shape[1]
    Xt, yt = torch.as_tensor(X, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    if kind == "logistic" and train == "standard":
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(C=1.0, fit_intercept=False, max_iter=1000).fit(X, y)
        return theory.linear_model(d, bias=False, weight=clf.coef_)
    if kind == "logistic":
        net = theory.linear_model(d, bias=False, weight=np.zeros((1, d))).requires_grad_(True)
        opt = torch.optim.LBFGS(list(net.parameters()), lr=1, max_iter=200, tolerance_grad=1e-10,
                                tolerance_change=1e-14, line_search_fn="strong_wolfe")
        penalty = lambda: sum((q ** 2).sum() for q in net.parameters()) / (2 * len(y))

        def closure():
            opt.zero_grad()
            loss = _mixup_objective(net, Xt, yt, alpha) + penalty()
            loss.backward()
            return loss

        opt.step(closure)
        return net.requires_grad_(False)
    gen = torch.Generator().manual_seed(SEED)
    if kind == "relu":
        net = theory.relu_mlp(d, [HIDDEN], bias=False, generator=gen)
    else:
        net = theory.smooth_mlp(d, [HIDDEN], activation="tanh", bias=True, generator=gen)
    opt = torch.optim.Adam(net.parameters(), lr=TRAIN_LR)
    for _ in range(TRAIN_STEPS):
        opt.zero_grad()
        if train == "mixup":
            loss = _mixup_objective(net, Xt, yt, alpha)
        else:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(Xt).reshape(-1), yt)
        loss.backward()
        opt.step()
    return net.requires_grad_(False)


def _mixup_objective(net, Xt, yt, alpha: float):
    """Exact Mixup loss (logistic) over all n² ordered pairs, ``MIXUP_TRAIN_NODES`` Gauss–Jacobi nodes
    in λ ~ Beta(α, α); differentiable (theory.mixup_loss is not). One node at a time: O(n² d) memory."""
    import torch

    import theory

    lam, w = theory.MixupLambda(alpha).nodes(MIXUP_TRAIN_NODES)
    n, d = Xt.shape
    total = 0.0
    for lk, wk in zip(lam.tolist(), w.tolist()):
        xm = (lk * Xt[:, None, :] + (1 - lk) * Xt[None, :, :]).reshape(n * n, d)
        ym = (lk * yt[:, None] + (1 - lk) * yt[None, :]).reshape(-1)
        z = net(xm).reshape(-1)
        total = total + wk * (torch.nn.functional.softplus(z) - ym * z).mean()
    return total


# ----------------------------------------------------------------------------- printing

class Printer:
    """Collects ``symbol  value  meaning [section]`` lines (and section headings)."""

    def __init__(self, out: Callable[[str], None] = print):
        self.out = out
        self.values: dict[str, object] = {}

    def section(self, title: str) -> None:
        self.out("")
        self.out(title)
        self.out("-" * len(title))

    def line(self, symbol: str, value, meaning: str, where: str) -> None:
        self.values[symbol] = value
        self.out(f"  {symbol:<30}{_fmt(value):>16}  {meaning} [{where}]")

    def note(self, text: str) -> None:
        self.out(f"  {'':<30}{'':>16}  {text}")

    def interpret(self, text: str) -> None:
        """One line of interpretation where a number contradicts the naive reading."""
        self.out(f"  -> {text}")


def _noise(v: float, floor: float = 1e-12):
    """Rounding-level values shown as ``<1e-12`` so the output does not depend on the last bits."""
    return f"<{floor:g}" if abs(v) < floor else v


def _fmt(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, float) or isinstance(v, np.floating):
        v = float(v)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if v != 0 and (abs(v) < 1e-12):
            return f"{v:.1e}"
        return f"{v:.6g}"
    return str(v)


# ----------------------------------------------------------------------------- the walk-through

def explain(data: str = "two_moons", model: str = "logistic", alpha: float = 1.0, *, n: int = N_SAMPLES,
            train: str = "standard", out: Callable[[str], None] = print,
            progress: Callable[[str], None] | None = None) -> dict:
    """Print every quantity of the analysis for ``model`` fitted to ``n`` points of ``data``
    (``train``: ``"standard"`` or ``"mixup"`` training, see :func:`fit_model`).

    ``progress`` (e.g. a writer to stderr) is told before each slow step; ``out`` gets the
    deterministic report. Returns the printed values by symbol (for tests and notebooks).
    """
    from .claims._common import single_thread

    check_arguments(data, model, alpha, n, train)
    with single_thread():
        return _explain(data, model, alpha, int(n), train, out, progress or (lambda text: None))


def check_arguments(data: str, model: str, alpha: float, n: int, train: str) -> None:
    """``ValueError`` naming the argument, its value and what is allowed, before any work (used by
    :func:`explain` and by the command line)."""
    if data not in DATASETS:
        raise ValueError(f"data must be one of {DATASETS}, got {data!r}")
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    lo, hi = ALPHA_RANGE
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not lo <= alpha <= hi:
        raise ValueError(f"alpha must be a number in [{lo:g}, {hi:g}], got {alpha!r}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not N_MIN <= n <= N_MAX:
        raise ValueError(f"n must be an integer in {N_MIN}..{N_MAX} (the exact Mixup loss sums all n^2 pairs), "
                         f"got {n!r}")
    if train not in TRAININGS:
        raise ValueError(f"train must be one of {TRAININGS}, got {train!r}")
    if data != "two_moons":  # a fixed-size dataset: n must fit in its training split (a cheap load)
        load_small(data, int(n))


TRAINED_BY = {
    ("logistic", "standard"): "scikit-learn logistic regression (C = 1, no intercept) on the plain loss",
    ("logistic", "mixup"): "L-BFGS on the exact Mixup loss (all pairs) + norm(theta)^2/(2n), no intercept",
    ("net", "standard"): f"{TRAIN_STEPS} full-batch Adam steps on the plain logistic loss",
    ("net", "mixup"): f"{TRAIN_STEPS} full-batch Adam steps on the exact Mixup objective (all pairs)",
}


def _explain(data, model, alpha, n, train, out, progress) -> dict:
    import time

    import torch

    theory_mix = theory.MixupLambda(alpha)
    t0 = time.perf_counter()
    steps = iter(["training the model", "the exact Mixup loss (all n^2 pairs)", "the second-order expansion",
                  "the robustness chain and adversarial losses", "the regularizer forms",
                  "Rademacher complexities"])

    def step() -> None:
        progress(f"explain: {next(steps, 'finishing')} ... ({time.perf_counter() - t0:.0f} s so far)")

    X, y = load_small(data, n)
    step()
    net = fit_model(model, X, y, train=train, alpha=alpha)
    p = Printer(out)
    n, d = X.shape
    out(f"mixup-theory explain: data={data} (n={n}, d={d}), model={model}, alpha={alpha:g} (beta = alpha), "
        f"trained by {train} training")
    out("Each line: symbol, value, meaning [section of docs/theory.md, claim id]; symbols are listed in its §8 glossary.")

    # §0 data ------------------------------------------------------------------------------------
    p.section("1. Data (docs/theory.md §0)")
    Sigma = np.cov(X, rowvar=False, bias=True).reshape(d, d)
    evals = np.linalg.eigvalsh(Sigma)
    p.line("n, d", f"{n}, {d}", "training points and input dimension", "§0")
    p.line("class balance mean(y)", float(np.mean(y)), "share of label 1", "§0")
    p.line("max abs(x_bar)", float(np.abs(X.mean(0)).max()), "largest coordinate of the mean input: 0 = centered data (A1)", "§0, §4")
    p.line("tr Sigma_hat", float(np.trace(Sigma)), "total variance of the inputs (centered covariance, 1/n)", "§0")
    p.line("rank Sigma_hat", int(np.linalg.matrix_rank(X - X.mean(0))), "intrinsic dimension seen by the complexity bounds", "§0, §5")
    p.line("lambda_max Sigma_hat", float(evals[-1]), "largest variance direction", "§0")
    p.line("c_x sqrt(d) = min norm x_i", float(np.linalg.norm(X, axis=1).min()), "largest constant allowed by (A3)", "§4.2")

    # §1 mixing ----------------------------------------------------------------------------------
    p.section("2. Mixing distributions D_lambda = Beta(a, a) and its size-biased twin D~ (docs/theory.md §1)")
    mix = theory_mix
    a = alpha
    p.line("m_1 = E_D~[1-lambda]", mix.m(1), "first moment: scales R1 and the robustness radius", "§1")
    p.line("  closed form a/(2a+1)", a / (2 * a + 1), "check of m_1 for alpha = beta", "§1")
    p.line("m_2 = E_D~[(1-lambda)^2]", mix.m(2), "second moment: scales R2 and R3", "§1")
    p.line("m_3 = E_D~[(1-lambda)^3]", mix.m(3), "size of the neglected third-order term", "§1, §3")
    p.line("m_2 - m_1^2", mix.m(2) - mix.m(1) ** 2, "Jensen gap (>= 0) used in the C4 proof", "§1, §4.3")
    p.line("rho_2 = E_D~[((1-l)/l)^2]", mix.rho2(), "paper regularizer's constant: inf unless alpha > 1", "§1, §5.1")
    p.line("E_D[lambda(1-lambda)]", mix.mean_lambda_one_minus_lambda(), "squared loss constant in identity (I)", "§3.1")

    # model ----------------------------------------------------------------------------------------
    from theory import has_bias, is_piecewise_linear

    p.section(f"3. Model: {model}")
    with torch.no_grad():
        f = net(torch.as_tensor(X, dtype=torch.float64)).reshape(-1).numpy()
    how = TRAINED_BY[("logistic" if model == "logistic" else "net", train)]
    p.line("trained by", train, how + (" (--train mixup for a Mixup-trained model)" if train == "standard" else ""), "§2")
    p.line("train accuracy", float(np.mean((f >= 0) == (y == 1))), "share of points on their side of the boundary", "§4.2 (A2)")
    p.line("points outside Theta", int(np.sum((f >= 0) != (y == 1))), "misclassified training points: (A2) needs 0", "§4.2")
    p.line("has biases", has_bias(net), "an intercept breaks f = grad f . x (C5, C6)", "§4.2, §4.4")
    p.line("piecewise linear", is_piecewise_linear(net), "input Hessian 0 a.e., so R3 = 0", "§3.2")

    # §2 pair sum and identity (I) -------------------------------------------------------------------
    from theory import DEFAULT_NODES, mixup_loss_error, mixup_loss_sampled, mixup_loss_unmixed

    mixup_loss, mixup_expansion = theory.mixup_loss, theory.mixup_expansion
    p.section("4. The Mixup loss as a pair sum, and identity (I) (docs/theory.md §2, §3; C1)")
    step()
    L_mix = mixup_loss(net, X, y, alpha)
    fine, err = mixup_loss_error(net, X, y, alpha)
    q = DEFAULT_NODES
    p.line("L_mix (exact)", L_mix, "mean over all n^2 ordered pairs, lambda integrated to rtol (kink-aware for ReLU nets)", "§2.1")
    p.line("quadrature error bound", _noise(err), "a-posteriori bound on the error of L_mix (mixup_loss_error)", "§1, §2.3")
    est = mixup_loss_sampled(net, X, y, alpha, draws=SAMPLED_DRAWS, generator=np.random.default_rng(SEED))
    p.line("L_mix sampled (permutation)", est.mean, f"what training sees: {SAMPLED_DRAWS} passes, +- {est.stderr:.2g} (1 s.e.), unbiased", "§2.4")
    _training_steps(p, net, X, y, alpha, L_mix)
    rhs = mixup_loss_unmixed(net, X, y, alpha, nodes=2 * q)
    p.line("RHS of (I)", rhs, f"(1/n) sum_i E_D~ E_r l(x_i + (1-lambda)(r - x_i), y_i): labels un-mixed ({2 * q} nodes)", "§3.1")
    p.line("abs(L_mix - RHS(I))", _noise(abs(fine - rhs)), f"identity (I), RHS with {2 * q} nodes: 0 up to quadrature error (C1)", "§3.1")

    # §3 expansion ---------------------------------------------------------------------------------
    p.section("5. Second-order expansion (docs/theory.md §3; C2, C3)")
    step()
    e = mixup_expansion(net, X, y, alpha)
    p.line("L_std", e.standard, "standard (un-mixed) training loss", "§0")
    p.line("R1", e.r1, "(m_1/n) sum (h'(f_i) - y_i) grad f_i . (x_bar - x_i): 0-mean data makes it a margin term", "§3.2")
    p.line("R2", e.r2, "(m_2/2n) sum h''(f_i) E_r[(grad f_i . u)^2]: gradient-norm penalty", "§3.2")
    p.line("R3", e.r3, f"(m_2/2n) sum (h'(f_i) - y_i) E_r[u' Hess f_i u] ({e.r3_method})", "§3.2")
    p.line("L~_mix = L_std + R1+R2+R3", e.approx, "the paper's approximate Mixup loss (its Eq. (3))", "§3.2")
    p.line("L_mix - L~_mix", L_mix - e.approx, "remainder: not small in general (m_1 = 1/3 at alpha = 1)", "§3.3, C3")
    rel = abs(L_mix - e.approx) / abs(L_mix)
    p.line("relative error", rel, "how well the expansion tracks the exact loss", "§3.3, C3")
    if rel > LARGE_RELATIVE_ERROR:
        with torch.no_grad():
            logits = net(torch.as_tensor(X, dtype=torch.float64)).reshape(-1).abs().max().item()
        p.interpret(f"large ({rel:.3g} > {LARGE_RELATIVE_ERROR:.2g}): the expansion is in powers of 1-lambda, but "
                    f"m_1 = E[1-lambda] = {theory_mix.m(1):.3g} is not small (it tends to 1/2 as alpha grows), and the "
                    f"neglected terms grow with the logits (max abs f(x_i) = {logits:.3g}); the second-order "
                    "loss is a caricature here, not an approximation (C3, docs/theory.md §7)")
    c = mixup_expansion(net, X, y, alpha, form="carratino")
    p.line("theta_bar", c.theta_bar, "E max(lambda, 1-lambda): mixed inputs and labels average to the data shrunk by it", "§3.4")
    p.line("ERM on shrunk inputs", c.shrunk, "(1/n) sum l(x~_i, y_i), x~_i = x_bar + theta_bar (x_i - x_bar)", "§3.4")
    p.line("label-smoothing term", c.label_smoothing, "labels smoothed to y~_i = y_bar + theta_bar (y_i - y_bar)", "§3.4")
    p.line("Jacobian term", c.jacobian, f"first derivatives of f at x~_i (input-label cross part {c.cross:.3g})", "§3.4")
    p.line("Hessian term", c.r3, f"(G~_i . Hess f at x~_i) over the spread of the mixed points ({c.r3_method})", "§3.4")
    p.line("re-centred expansion", c.approx, "Carratino et al.: the expansion around x~_i (first-order term 0)", "§3.4")
    rel_c = abs(L_mix - c.approx) / abs(L_mix)
    p.line("relative error (re-centred)", rel_c, "the same exact loss, expanded around the mean mixed point", "§3.5")
    if rel > LARGE_RELATIVE_ERROR and rel_c < rel / 2:
        p.interpret(f"the re-centred expansion is {rel / max(rel_c, 1e-300):.2g}x closer: its zeroth-order term already "
                    "holds the shrunk margins and smoothed labels, and only the spread of the mixed points is expanded "
                    "(docs/theory.md §3.5)")
    res = []
    for s in HOMOTOPY_SCALES:
        res.append(mixup_loss_unmixed(net, X, y, alpha, scale=s) - mixup_expansion(net, X, y, alpha, scale=s).approx)
        p.line(f"remainder at s = {s:g}", res[-1], "L_mix(s) - L_std - s R1 - s^2 (R2 + R3) along the homotopy", "§3.2")
    if res[1] != 0:
        p.line("ratio (s halved)", res[0] / res[1], "about 8 when the remainder is O(s^3) (C2); a ReLU kink can spoil it", "§3.2")

    # §4 robustness ---------------------------------------------------------------------------------
    p.section("6. Robustness: Mixup loss vs adversarial loss (docs/theory.md §4; C4, C5, C7, C13)")
    step()
    with warnings.catch_warnings():  # "chain holds outside the assumptions" is explained line by line below
        warnings.simplefilter("ignore", theory.AssumptionWarning)
        robustness_bound, adversarial_loss = theory.robustness_bound, theory.adversarial_loss
        b = robustness_bound(net, X, y, alpha)
        eps = np.asarray(b.eps_i)
        p.line("eps_i min / median / max", f"{eps.min():.4g} / {np.median(eps):.4g} / {eps.max():.4g}",
               "per-point radius m_1 omega_i c_x sqrt(d), omega_i = abs(cos(grad f_i, x_i))", "§4.3")
        p.line("eps_mix = min_i eps_i", b.eps_mix, "the radius the theorem certifies", "§4.3")
        p.line("eps*", b.eps_star, "largest eps with L~_mix >= L~_adv(eps): how loose eps_mix is", "§4.3")
        p.line("L~_mix", b.mixup_approx, "left end of the chain", "§4.3")
        p.line("mean_i L~_adv,i(eps_i)", b.adv_at_eps_i, "middle of the chain (second-order adversarial loss)", "§4.3")
        p.line("L~_adv(eps_mix)", b.adv_at_eps_mix, "right end of the chain", "§4.3")
        p.line("chain holds", bool(b.holds), "L~_mix >= mean L~_adv,i(eps_i) >= L~_adv(eps_mix)", "§4.3, C4/C5")
        for key, what in [("centered", "(A1) centered data"), ("in_theta", "(A2) every point on its side"),
                          ("homogeneous", "f = grad f . x and zero input Hessian (C5)")]:
            p.line(f"assumption {key}", bool(b.assumptions.get(key, False)), what, "§4.2")
        broken = [k for k, v in b.assumptions.items() if not v]
        if broken and b.holds:
            p.interpret(f"assumption {', '.join(broken)} fails, yet the chain holds: the assumptions are sufficient, "
                        "not necessary; the theorem just does not promise it here (C6 shows cases where it breaks)")
        elif broken:
            p.interpret(f"assumption {', '.join(broken)} fails and so does the chain: outside the theorem (C6)")
        if math.isfinite(b.eps_star) and b.eps_star > 0 and b.eps_mix < 0.1 * b.eps_star:
            p.interpret(f"eps_mix is {b.eps_mix / b.eps_star:.2g} of eps*: the certified radius is far below what the "
                        "approximate losses allow (it is set by the worst-aligned point)")
        if b.eps_mix > 0:
            _exact_adversarial(p, net, X, y, b.eps_mix, L_mix, model, adversarial_loss)
        try:
            binf = robustness_bound(net, X, y, alpha, norm=math.inf)
            p.line("l_inf eps_mix", binf.eps_mix, "min_i m_1 abs(grad f_i . x_i) / norm_1(grad f_i) (C13)", "§4.5")
            p.line("l_inf chain holds", bool(binf.holds), "the same chain in l_inf (our extension)", "§4.5, C13")
        except ValueError as exc:
            p.note(f"l_inf chain: n/a ({exc})")

    # §5 regularizer and complexity --------------------------------------------------------------------
    p.section("7. Generalization: the regularizer forms (docs/theory.md §5; C9, C11)")
    step()
    _regularizers(p, net, X, y, alpha, model, L_mix)
    p.section("8. Rademacher complexity (docs/theory.md §5; C10, C11)")
    step()
    _complexity(p, net, X, model)
    return p.values


STEP_BATCH = 8
"""Batch size of the training-step lines (docs/theory.md §2.7)."""
STEP_RTOL = 1e-4
"""Relative target of the step variances printed by ``explain`` (node doubling in λ)."""


def _training_steps(p: Printer, net, X, y, alpha, L_mix) -> None:
    """What one training step's Mixup loss estimates, per pairing scheme (C14, docs/theory.md §2.7)."""
    import warnings

    from theory import AccuracyWarning, estimator_moments

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AccuracyWarning)
        r = estimator_moments(net, X, y, alpha, schemes=("permutation", "flip", "flip-per-sample"),
                              batch_sizes=(STEP_BATCH,), rtol=STEP_RTOL)
    B = STEP_BATCH
    for scheme in ("permutation", "flip"):
        value = float(r.expectation[scheme][0])
        p.line(f"E[step] {scheme}", value, f"batch of {B}, reshuffled epochs: {value / L_mix - 1:+.2%} vs L_mix "
               + ("(self-pairs with probability 1/B)" if scheme == "permutation" else "(never a self-pair)"), "§2.7")
    v_batch, v_example = float(r.variance["flip"][0]), float(r.variance["flip-per-sample"][0])
    p.line("Var[step] flip", v_batch, f"variance of one step's loss, one lambda per batch (B = {B})", "§2.7")
    estimate = " (node-doubling estimate: kinks in lambda)" if any(issubclass(w.category, AccuracyWarning)
                                                                  for w in caught) else ""
    p.line("Var[step] flip-per-sample", v_example,
           f"one lambda per example: {v_example / v_batch:.2f} x the per-batch variance{estimate}", "§2.7")


def _exact_adversarial(p: Printer, net, X, y, eps, L_mix, model, adversarial_loss) -> None:
    if model == "logistic":
        exact = adversarial_loss(net, X, y, eps, method="exact")
        p.line("L_adv(eps_mix) (exact)", exact, "closed form softplus(-s_i z_i + eps norm(theta)) (C7)", "§4.7")
        p.line("L_mix - L_adv(eps_mix)", L_mix - exact, "exact-vs-exact margin (>= 0 under A1, A2 by Jensen)", "§4.7, C7")
        return
    lower = adversarial_loss(net, X, y, eps, method="pgd", **PGD)
    p.line("L_adv(eps_mix) >= (PGD)", lower, "attack lower bound of the exact adversarial loss", "§4.7, C7")
    try:
        crown = adversarial_loss(net, X, y, eps, method="certified")
        p.line("L_adv(eps_mix) <= (CROWN)", crown, "linear bound propagation upper bound", "§4.7, C7")
        upper = adversarial_loss(net, X, y, eps, method="certified", bound="alpha-crown")
        p.line("L_adv(eps_mix) <= (alpha-CROWN)", upper, "CROWN with optimised ReLU slopes: never above CROWN", "§4.9, C7")
        verdict = "holds" if L_mix >= upper else "fails" if L_mix < lower else "undecided"
    except ValueError as exc:
        p.note(f"certified bound: n/a ({exc})")
        verdict = "fails" if L_mix < lower else "undecided (no certified bound)"
    p.line("exact L_mix >= L_adv(eps_mix)", verdict, "C7 verdict from the bracket", "§4.7, C7")


def _regularizers(p: Printer, net, X, y, alpha, model, L_mix) -> None:
    if model == "logistic":
        glm_regularizer = theory.glm_regularizer
        S = theory.shrunk_standard_loss(net, X, y, alpha)
        p.line("S = E_D~[L_std(lambda theta)]", S, "standard loss at the shrunk parameter", "§5.1, C9")
        p.line("exact L_mix - S", L_mix - S, "the exact regularization the forms approximate", "§5.1, C9")
        p.line("Reg shrinkage form", glm_regularizer(net, X, alpha, form="shrinkage"),
               "(1/2n) E_D~[(1-l)^2 sum h''(l x_i theta)] theta' Sigma theta: finite for all alpha", "§5.1, C9")
        p.line("Reg paper form", glm_regularizer(net, X, alpha, form="paper"),
               "(1/2n)[sum h''(x_i theta)] rho_2 theta' Sigma theta: inf when alpha <= 1", "§5.1, C9")
        p.line("frozen-scale excess F - L_std", theory.frozen_scale_excess(net, X, y, alpha),
               "exact quantity whose 2nd-order term is the paper form", "§5.1, C9")
        return
    p.note("for a net: Mixup of the last hidden features phi(x) (manifold Mixup, C11), logistic head")
    p.line("L_mix at hidden layer", theory.manifold_mixup_loss(net, X, y, alpha, loss="logistic"),
           "exact Mixup loss of the head on phi(X)", "§5.3, C11")
    p.line("Reg shrinkage form (phi)", theory.manifold_regularizer(net, X, alpha, loss="logistic", form="shrinkage"),
           "shrinkage form in theta_1 on centered features", "§5.3, C11")
    p.line("Reg paper form (phi)", theory.manifold_regularizer(net, X, alpha, loss="logistic", form="paper"),
           "paper form in theta_1: inf when alpha <= 1", "§5.3, C11")


def _complexity(p: Printer, net, X, model) -> None:
    rademacher = theory.rademacher
    if model == "logistic":
        feats = X
        theta = net[0].weight.detach().numpy().reshape(-1)
        label = "x"
    else:
        feats = theory.hidden_features(net, X).numpy()
        theta = net[-1].weight.detach().numpy().reshape(-1)
        label = "phi(x)"
    n = feats.shape[0]
    Sigma0 = feats.T @ feats / n
    c = float(theta @ Sigma0 @ theta)
    p.line(f"c = theta' Sigma0 theta", c, f"this model's size in the data metric (Sigma0 = E[{label} {label}'])", "§5.2")
    ell = rademacher(feats, c, cls="ellipsoid", draws=RADEMACHER_DRAWS, generator=np.random.default_rng(SEED))
    p.line("Rad(ellipsoid theta'S0 theta<=c)", ell.value, f"Monte Carlo over {RADEMACHER_DRAWS} sign vectors, +- {ell.stderr:.2g}", "§5.2, C10")
    p.line("  bound sqrt(c rank / n)", ell.bound, f"rank = {ell.rank}: intrinsic, not ambient, dimension", "§5.2, C10")
    c_ridge = float(theta @ theta)
    rid = rademacher(feats, c_ridge, cls="ridge", draws=RADEMACHER_DRAWS, generator=np.random.default_rng(SEED + 1))
    p.line("Rad(ridge norm(theta)^2<=c')", rid.value, f"same model, ridge class with c' = {c_ridge:.4g}", "§5.2, C10")
    p.line("  bound sqrt(c' tr S0 / n)", rid.bound, "scales with the ambient trace", "§5.2, C10")
    d = feats.shape[1]
    gain = math.sqrt(d / max(ell.rank, 1))
    if rid.value <= ell.value:
        p.interpret(f"ridge below ellipsoid here, the opposite of the paper's message: rank = {ell.rank} of d = {d} "
                    f"leaves the ellipsoid (Mixup) class at most a factor sqrt(d/rank) = {gain:.3g} of dimension "
                    f"advantage, and the two classes have different sizes c = {c:.3g} vs c' = {c_ridge:.3g} "
                    "for the same model; the advantage shows when rank << d (rademacher figure, C10)")
    elif ell.rank >= 0.5 * d:
        p.interpret(f"rank = {ell.rank} of d = {d}: the data fill most directions, so the ellipsoid (Mixup) class has "
                    f"little dimension advantage (sqrt(d/rank) = {gain:.3g}); the paper's message needs rank << d (C10)")
    else:
        p.interpret(f"ridge/ellipsoid = {rid.value / ell.value:.3g} vs sqrt(d/rank) = {gain:.3g}: "
                    "the low-rank data make the Mixup class smaller, the paper's message (C10)")


# ----------------------------------------------------------------------------- CLI

def register(subparsers) -> None:
    p = subparsers.add_parser("explain", help="print every quantity of the analysis on one small problem",
                              description=DESCRIPTION)
    p.add_argument("--data", default="two_moons", choices=DATASETS, help="the dataset (default %(default)s)")
    p.add_argument("--model", default="logistic", choices=MODELS,
                   help="logistic regression, a bias-free ReLU MLP or a tanh MLP (default %(default)s)")
    p.add_argument("--alpha", type=float, default=1.0,
                   help="Mixup's Beta(alpha, alpha) parameter, in [%g, %g] (default %%(default)s)" % ALPHA_RANGE)
    p.add_argument("--n", type=int, default=N_SAMPLES,
                   help=f"training points, {N_MIN} to {N_MAX} (all n^2 pairs are summed; default %(default)s)")
    p.add_argument("--train", default="standard", choices=TRAININGS,
                   help="how the model is trained: plain loss (standard) or exact Mixup objective (mixup)")
    p.set_defaults(func=_cmd_explain, validate=validate)


def validate(args) -> None:
    """The one check of ``explain``'s arguments (``UsageError`` before any work, training included)."""
    from ._usage import UsageError

    try:
        check_arguments(args.data, args.model, args.alpha, args.n, args.train)
    except ValueError as exc:
        flag = "--" + str(exc).split(" ", 1)[0]
        raise UsageError(f"{flag}: {exc}" if flag in ("--data", "--model", "--alpha", "--n", "--train")
                         else f"--n {args.n} with --data {args.data}: {exc}") from None


def _cmd_explain(args) -> int:
    import sys

    explain(args.data, args.model, args.alpha, n=args.n, train=args.train,
            progress=lambda text: print(text, file=sys.stderr, flush=True))
    return 0


__all__ = ["DATASETS", "MODELS", "N_MAX", "TRAININGS", "explain", "fit_model", "load_small", "register"]
