"""One plotting style for every figure (Agg backend only: figures are files, never windows)."""
from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=True)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..cache import atomic_write_bytes  # noqa: E402

RC = {
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 7.5,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.6,
    "lines.markersize": 4,
    "legend.frameon": False,
    "pdf.fonttype": 42,
}
plt.rcParams.update(RC)

# Colours: the two training methods keep theirs in every figure; quantities use a fixed cycle.
METHOD_COLORS = {"standard": "#4C72B0", "mixup": "#DD8452", "manifold": "#55A868"}
METHOD_LABELS = {"standard": "standard (ERM)", "mixup": "Mixup", "manifold": "Manifold Mixup"}
PALETTE = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]
PANEL_SIZE = (3.6, 2.9)


def subplots(nrows: int = 1, ncols: int = 1, **kwargs):
    """``(fig, axes)`` with panels of ``PANEL_SIZE``; ``axes`` is always a flat array."""
    size = (PANEL_SIZE[0] * ncols, PANEL_SIZE[1] * nrows + 0.45)
    fig, axes = plt.subplots(nrows, ncols, figsize=size, squeeze=False, **kwargs)
    return fig, axes.ravel()


def suptitle(fig, claims: str, text: str, verdict: str | None = None) -> None:
    """Figure title starting with the claim id(s), e.g. ``"C3 — exact vs approximate Mixup loss"``,
    and, when given, a second line stating the claim's verdict (so the PNG says what it shows)."""
    title = f"{claims} — {text}"
    if verdict:
        title += f"\n{verdict}"
    fig.suptitle(title, fontsize=10, fontweight="bold")


VERDICT_WORDS = {"supported": "reproduced", "contradicted": "NOT reproduced (contradicted)",
                 "inconclusive": "NOT reproduced (inconclusive)"}


def verdict_line(claim: str, decision: str, detail: str = "") -> str:
    """``'Verdict (C8): NOT reproduced (inconclusive) — supported 2/12, …'`` for a figure title."""
    return f"Verdict ({claim}): {VERDICT_WORDS.get(decision, decision)}" + (f" — {detail}" if detail else "")


def ci_band(ax, x, mean, low, high, *, color, label, marker="o", linestyle="-"):
    """Mean line with a shaded 95 % confidence band ``[low, high]`` (infinite ends are clipped to the mean)."""
    x, mean, low, high = (np.asarray(v, dtype=float) for v in (x, mean, low, high))
    low = np.where(np.isfinite(low), low, mean)
    high = np.where(np.isfinite(high), high, mean)
    ax.plot(x, mean, color=color, label=label, marker=marker, linestyle=linestyle)
    ax.fill_between(x, low, high, color=color, alpha=0.2, linewidth=0)


def decision_color(decision: str) -> str:
    return {"supported": "#2E7D32", "contradicted": "#C62828"}.get(decision, "#757575")


def band(ax, x, mean, sd, *, color, label, marker="o", linestyle="-"):
    """Mean line with a mean ± sd band (sd = 0 band is invisible, not omitted)."""
    x, mean, sd = (np.asarray(v, dtype=float) for v in (x, mean, sd))
    ax.plot(x, mean, color=color, label=label, marker=marker, linestyle=linestyle)
    ax.fill_between(x, mean - sd, mean + sd, color=color, alpha=0.2, linewidth=0)


def method_style(method: str) -> dict:
    return {"color": METHOD_COLORS.get(method, PALETTE[-1]), "label": METHOD_LABELS.get(method, method)}


def save(fig, png: str | Path, pdf: str | Path) -> None:
    """Writes PNG and PDF atomically and closes the figure."""
    if not getattr(fig, "_mixup_layout_done", False):
        fig.tight_layout()
    for path, fmt in ((png, "png"), (pdf, "pdf")):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, bbox_inches="tight", metadata=_metadata(fmt))
        atomic_write_bytes(path, buf.getvalue())
    plt.close(fig)


def _metadata(fmt: str) -> dict:
    # Fixed metadata keeps the PDF/PNG bytes reproducible between runs.
    if fmt == "pdf":
        return {"CreationDate": None, "Creator": "mixup-theory", "Producer": "matplotlib"}
    return {"Software": "mixup-theory (matplotlib)"}


def log_ticks(ax, values, axis: str = "x") -> None:
    """Log scale with plain-number ticks at ``values`` (no minor tick labels)."""
    from matplotlib.ticker import FixedLocator, NullLocator

    values = sorted({float(v) for v in values})
    getattr(ax, f"set_{axis}scale")("log")
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(FixedLocator(values))
    target.set_minor_locator(NullLocator())
    getattr(ax, f"set_{axis}ticklabels")([f"{v:g}" for v in values])


def integer_x(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def figure_legend(fig, axes, ncol: int = 3, title: str | None = None) -> None:
    """One legend for the whole figure, below the panels (labels from ``axes``, each label once)."""
    handles, labels = [], []
    for ax in (axes if isinstance(axes, (list, tuple)) else [axes]):
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    legend = fig.legend(handles, labels, loc="lower center", ncol=ncol, bbox_to_anchor=(0.5, 0.0), title=title,
                        title_fontsize=7.5)
    box = legend.get_window_extent(fig.canvas.get_renderer())
    fig.tight_layout(rect=(0, box.height / fig.bbox.height + 0.01, 1, 1))
    fig._mixup_layout_done = True


def plain_log_labels(ax, axis: str = "y", subs=(1.0, 2.0, 5.0)) -> None:
    """Plain numbers (0.1, 0.2, …) instead of 10^k notation on a log axis."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(LogLocator(base=10, subs=subs))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(NullFormatter())
