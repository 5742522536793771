"""Sphinx extension of the mixup-theory site: pages generated from the code and the data.

- ``_generated/api.rst``: one autosummary entry per name in ``theory.__all__``, in the groups that
  the comments of ``__all__`` in ``theory/__init__.py`` open. A name added to ``__all__`` appears
  without editing any page; a name outside every group lands in "Other".
- ``_generated/gallery.md``: every figure ``figures/NAME.png`` with its title and claims, the verdict
  stored in ``figures/data/NAME.json`` (when the figure judges one) and the status of each of its
  claims in ``paper_checks.md`` (written by ``mixup-theory check --write``). No number is copied by hand.
- ``_generated/checks.md``: ``paper_checks.md`` (the table of claims and their statuses) as a page;
  the Markdown pages' links to ``../paper_checks.md`` are pointed at it while the site is read.
- MathJax 3 from the ``django-static-mathjax`` wheel, copied into ``_static/mathjax`` of the build, so
  the site renders formulas offline.

Both pages are written on ``config-inited``, before autosummary and the source scan run.
"""
from __future__ import annotations

import importlib.util
import io
import json
import re
import shutil
import tokenize
from pathlib import Path

from sphinx.errors import ExtensionError

DOCS = Path(__file__).resolve().parents[1]
ROOT = DOCS.parent
GENERATED = DOCS / "_generated"
FIGURES = ROOT / "figures"
STATUS_COLUMN = 6  # | ID | statement | reading | tests | figure | command | Status | Measured |
MATHJAX_PARTS = ("tex-chtml.js", "output/chtml/fonts/woff-v2", "input/tex/extensions", "a11y", "ui",
                 "sre")


# --- API reference ---------------------------------------------------------------------------
def api_groups(init_source: str, names: list[str]) -> list[tuple[str, list[str]]]:
    """Groups of ``__all__``: each ``# comment`` inside the list opens a group of the names after it."""
    tokens = list(tokenize.generate_tokens(io.StringIO(init_source).readline))
    groups: list[tuple[str, list[str]]] = []
    inside = False
    for k, tok in enumerate(tokens):
        if not inside:
            inside = (tok.type == tokenize.NAME and tok.string == "__all__"
                      and tokens[k + 1].string == "=" and tokens[k + 2].string == "[")
            continue
        if tok.type == tokenize.OP and tok.string == "]":
            break
        if tok.type == tokenize.COMMENT:
            groups.append((tok.string.lstrip("# ").strip(), []))
        elif tok.type == tokenize.STRING:
            if not groups:
                groups.append(("Public names", []))
            groups[-1][1].append(eval(tok.string))  # a string literal of __all__
    listed = {n for _, g in groups for n in g}
    rest = [n for n in names if n not in listed]
    if rest:
        groups.append(("Other", rest))
    return [(title, [n for n in g if n in names]) for title, g in groups if g]


def api_page() -> str:
    import theory

    groups = api_groups((ROOT / "theory" / "__init__.py").read_text(encoding="utf-8"), list(theory.__all__))
    out = ["API reference", "=============", "",
           ".. currentmodule:: theory", "",
           "Every public name of ``theory`` (``from theory import NAME``), generated from ``theory.__all__``;",
           "the groups and their section numbers follow ``theory/__init__.py``. Section numbers (§N) refer to",
           ":doc:`the theory page <../theory>`; claim ids (C1–C14) to :doc:`../lecture` and :doc:`checks`.",
           "Warnings are typed: filter them by class (``warnings.simplefilter('ignore', theory.ApproximationWarning)``).",
           ""]
    for title, group in groups:
        heading = title[0].upper() + title[1:]
        out += [heading, "-" * len(heading), "", ".. autosummary::", "   :toctree: api", ""]
        out += [f"   {name}" for name in group]
        out.append("")
    out += ["Hypothesis strategies", "---------------------", "",
            ".. currentmodule:: theory.strategies", "",
            "``theory.strategies`` is the one public submodule: hypothesis strategies of chain instances",
            "(see :doc:`../own_bound`).", "",
            ".. autosummary::", "   :toctree: api", "",
            "   instances", "   load_instance", ""]
    return "\n".join(out)


# --- gallery ---------------------------------------------------------------------------------
def claim_statuses() -> dict[str, str]:
    """``{claim id: status}`` from the table of paper_checks.md."""
    statuses = {}
    for line in (ROOT / "paper_checks.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) > STATUS_COLUMN and re.fullmatch(r"C\d+(/\S+)?", cells[0]):
            statuses[cells[0]] = re.sub(r"^\W+", "", cells[STATUS_COLUMN])  # "✅ holds" → "holds"
    return statuses


def claim_ids(field: str) -> list[str]:
    """``"C2/C3"`` or ``"C4/C5/C7"`` → ``["C2", "C3"]``, ``["C4", "C5", "C7"]``."""
    return re.findall(r"C\d+", field)


def gallery_page() -> str:
    from experiments.figures.style import VERDICT_WORDS as words
    statuses = claim_statuses()
    out = ["# Gallery of the figures", "",
           "Every figure of `mixup-theory figures` (default scale), with the claim it tests and its verdict.",
           "The verdicts and statuses below are read at build time from `figures/data/NAME.json` (written by",
           "the figure) and from the status column of `paper_checks.md` (written by `mixup-theory check",
           "--write`); rebuild the site after regenerating either. Each figure's data file also records its",
           "configuration, seeds, library versions, device and run time.", ""]
    pngs = sorted(FIGURES.glob("*.png"))
    if not pngs:
        raise ExtensionError(f"no figures found in {FIGURES}")
    for png in pngs:
        data_file = FIGURES / "data" / f"{png.stem}.json"
        if not data_file.is_file():
            raise ExtensionError(f"figure {png.name} has no data file {data_file}")
        data = json.loads(data_file.read_text(encoding="utf-8"))
        summary = data.get("summary", {})
        claims = claim_ids(str(data.get("claims", "")))
        out += [f"## `{png.stem}`", "", f"*{data.get('title', png.stem)}*", "",
                f"![{png.stem}](../../figures/{png.name})", ""]
        out.append(f"- **Claims:** {', '.join(claims) or '—'} (see [the lecture path](../lecture.md) and "
                   f"[the theory](../theory.md))")
        if "verdict" in summary:
            verdict = words.get(summary["verdict"], summary["verdict"])
            tally = f" ({summary['tally']})" if summary.get("tally") else ""
            out.append(f"- **Verdict of the figure:** {verdict}{tally}")
        for claim in claims:
            if claim in statuses:
                out.append(f"- **Status of {claim}** (`mixup-theory check`): `{statuses[claim]}`")
        seeds = summary.get("seeds", data.get("seed"))
        out.append(f"- **Provenance:** scale `{data.get('scale', '?')}`, seeds {seeds}, device "
                   f"{', '.join(map(str, data.get('device', []))) if isinstance(data.get('device'), list) else data.get('device')}, "
                   f"{float(data.get('seconds', float('nan'))):.0f} s; data: `figures/data/{png.stem}.csv`, "
                   f"`figures/data/{png.stem}.json`")
        out.append("")
    return "\n".join(out)


# --- paper_checks.md as a page --------------------------------------------------------------
IMG = re.compile(r'<img src="figures/([^"]+)"[^>]*>')
OUTSIDE_LINKS = {"../paper_checks.md": "_generated/checks.md"}  # docs/*.md → the page made from it


def checks_page() -> str:
    """``paper_checks.md`` with its links made relative to ``docs/_generated/``."""
    text = (ROOT / "paper_checks.md").read_text(encoding="utf-8")
    text = text.replace("](docs/", "](../")
    return IMG.sub(lambda m: f"![{m.group(1)}](../../figures/{m.group(1)}){{width=200px}}", text)


def redirect_outside_links(app, docname, source) -> None:
    """Links from docs/ to ``../paper_checks.md`` point to the site's copy of that page."""
    for old, new in OUTSIDE_LINKS.items():
        source[0] = source[0].replace(f"]({old})", f"]({new})")


# --- MathJax ---------------------------------------------------------------------------------
def mathjax_source() -> Path:
    spec = importlib.util.find_spec("mathjax")
    if spec is None or spec.origin is None:
        raise ExtensionError("MathJax is not installed: pip install -e \".[docs]\" (package django-static-mathjax)")
    source = Path(spec.origin).parent / "static" / "mathjax" / "es5"
    if not (source / "tex-chtml.js").is_file():
        raise ExtensionError(f"no MathJax 3 es5/tex-chtml.js under {source}")
    return source


def copy_mathjax(app) -> None:
    if app.builder.format != "html":
        return
    source, target = mathjax_source(), Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        src, dst = source / part, target / part
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        elif src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)


def write_generated(app, config) -> None:
    GENERATED.mkdir(exist_ok=True)
    for name, text in (("api.rst", api_page()), ("gallery.md", gallery_page()), ("checks.md", checks_page())):
        path = GENERATED / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:  # unchanged: no rebuild
            path.write_text(text, encoding="utf-8")


def setup(app):
    app.connect("config-inited", write_generated)
    app.connect("builder-inited", copy_mathjax)
    app.connect("source-read", redirect_outside_links)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
