"""The documentation stands alone: docs/theory.md resolves every reference made to it.

- no tracked file (outside ``.ci/``) points to notes that are not part of the repository;
- every ``docs/theory.md §N`` cited in code, README, paper_checks.md, and every ``[§N]`` printed by
  ``mixup-theory explain``, is a heading of docs/theory.md;
- the core API is documented in docs/theory.md and listed in its glossary (§8), whose explain lines exist;
- relative Markdown links and images in README.md, paper_checks.md and docs/*.md resolve;
- every public name of ``theory`` cites the docs/theory.md section it implements.
"""
import re
import subprocess
from pathlib import Path

import pytest

import theory

ROOT = Path(__file__).resolve().parents[2]
THEORY_MD = ROOT / "docs" / "theory.md"
CORE_API = ("MixupLambda", "mixup_loss", "mixup_loss_error", "mixup_expansion", "adversarial_loss",
            "robustness_bound", "glm_regularizer", "rademacher")
BINARY_SUFFIXES = {".png", ".pdf", ".npz", ".npy", ".pt", ".gz", ".zip"}
# Built from pieces so that this file does not match itself.
OUTSIDE_REFERENCE = re.compile("THE" + r"ORY(\.md| ?§)|" + "CON" + "TRACT|" + r"\.\./" + "shared")
SECTION = r"§\d+(?:\.\d+)*"
CITATION = re.compile(r"docs/theory\.md,?\s*\(?((?:" + SECTION + r")(?:\s*(?:,|–|-|and)\s*" + SECTION + r")*)")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|<img\s[^>]*src=\"([^\"]+)\"")
SMALL_N = 24  # explain runs on a small subsample: a couple of seconds


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files are unknown")
    return [ROOT / p for p in out.decode().split("\0") if p]


def text_of(path: Path) -> str | None:
    if path.suffix in BINARY_SUFFIXES or not path.is_file():
        return None
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None


def headings() -> set[str]:
    found = set()
    for line in THEORY_MD.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            m = re.match(r"#+\s+(" + SECTION + r")\s", line + " ")
            if m:
                found.add(m.group(1))
    return found


def sections_in(text: str) -> set[str]:
    return set(re.findall(SECTION, text))


def test_no_reference_outside_the_repository():
    offenders = []
    for path in tracked_files():
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(".ci/"):
            continue
        text = text_of(path)
        if text is None:
            continue
        for k, line in enumerate(text.splitlines(), 1):
            if OUTSIDE_REFERENCE.search(line):
                offenders.append(f"{rel}:{k}: {line.strip()[:100]}")
    assert not offenders, "references to notes outside the repository:\n" + "\n".join(offenders)


def test_theory_md_has_the_stable_sections():
    assert {f"§{k}" for k in range(9)} <= headings()


def test_every_cited_section_is_a_heading():
    known = headings()
    missing = []
    cited = 0
    for path in tracked_files():
        text = text_of(path)
        if text is None or path == THEORY_MD:
            continue
        for m in CITATION.finditer(text):
            for sec in sections_in(m.group(1)):
                cited += 1
                if sec not in known:
                    missing.append(f"{path.relative_to(ROOT)}: docs/theory.md {sec}")
    assert cited > 50  # the pattern does find the citations
    assert not missing, "cited sections that are not headings of docs/theory.md:\n" + "\n".join(missing)


@pytest.fixture(scope="module")
def explained():
    """``{model: (printed lines, printed symbols)}`` of ``mixup-theory explain`` for a linear model and a ReLU net."""
    from experiments.explain import explain

    out = {}
    for model in ("logistic", "relu"):
        lines = []
        values = explain("two_moons", model, 1.0, n=SMALL_N, out=lines.append)
        out[model] = (lines, {k.strip() for k in values})
    return out


@pytest.mark.parametrize("model", ["logistic", "relu"])
def test_explain_cites_only_existing_sections(explained, model):
    lines, _ = explained[model]
    printed = sections_in("\n".join(lines))
    assert {"§0", "§1", "§2", "§3", "§4", "§5"} <= printed
    assert printed <= headings(), sorted(printed - headings())


def test_glossary_names_lines_that_explain_prints(explained):
    """Every line named in the glossary's last column is a symbol ``mixup-theory explain`` prints."""
    symbols = set().union(*(syms for _, syms in explained.values()))
    glossary = THEORY_MD.read_text(encoding="utf-8").split("## §8", 1)[1]
    named = []
    for row in glossary.splitlines():
        cells = row.split("|")
        if len(cells) >= 5 and cells[1].strip() != "symbol" and not set(cells[3].strip()) <= set("-"):
            named += [s.strip() for s in re.findall(r"`([^`]+)`", cells[3])]
    assert len(named) > 30
    assert set(named) <= symbols, sorted(set(named) - symbols)


def test_core_api_is_documented_and_in_the_glossary():
    text = THEORY_MD.read_text(encoding="utf-8")
    glossary = text.split("## §8", 1)[1]
    for name in CORE_API:
        assert name in theory.__all__
        pattern = re.compile(r"`(?:theory\.)?" + re.escape(name) + r"[`(.]")
        assert pattern.search(text), f"{name} is not documented in docs/theory.md"
        assert pattern.search(glossary), f"{name} is not in the glossary of docs/theory.md"


@pytest.mark.parametrize("doc", ["README.md", "paper_checks.md"] + sorted(
    p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md")))
def test_relative_links_resolve(doc):
    path = ROOT / doc
    text = path.read_text(encoding="utf-8")
    broken = []
    for m in LINK.finditer(text):
        target = m.group(1) or m.group(2)
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # absolute URL or an anchor on the same page
        file_part = target.split("#", 1)[0]
        if not (path.parent / file_part).exists():
            broken.append(target)
    assert not broken, f"{doc}: links that do not resolve: {broken}"


def test_every_public_name_cites_its_section():
    missing = []
    for name in theory.__all__:
        obj = getattr(theory, name)
        if not callable(obj):
            continue  # constants are documented where they are defined
        doc = obj.__doc__ or ""
        if not CITATION.search(doc):
            missing.append(name)
    assert not missing, f"public names whose docstring cites no docs/theory.md section: {missing}"
