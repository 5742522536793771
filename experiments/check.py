"""``mixup-theory check [--json] [--write] [--only ID ...] [--strict]``: one fast check per claim C1–C14
(docs/theory.md; the table in paper_checks.md).

Prints a table of ``id``, ``status``, ``measured`` and ``command`` (a reproduction that runs on a
CPU), then a closing summary naming every row that is not ``holds``/``expected-fail`` and why.
Statuses:

- ``holds``; ``expected-fail`` (a documented failure, e.g. a counterexample);
- ``fails``: an exact or theorem-level claim is violated — a bug; exit status 1;
- ``not-reproduced``: an empirical claim of the paper (C3, C8, C12) that our experiments contradict
  or cannot confirm; ``measured`` holds the 95 % interval that shows it; exit status 1 only with
  ``--strict``;
- ``skipped``: the code or cached figure data a check needs is missing.

``--write`` rewrites the Status and Measured cells of ``paper_checks.md`` in place and leaves every
other cell as written, so running it twice gives the same file.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .claims import CLAIM_IDS, STATUSES, Result, run_checks

PAPER_CHECKS = Path("paper_checks.md")  # relative to the working directory (the checkout root)
STATUS_COLUMN, MEASURED_COLUMN = "Status", "Measured"
STATUS_BADGE = {"holds": "✅ holds", "fails": "❌ fails", "expected-fail": "⚠️ expected-fail",
                "not-reproduced": "🔍 not-reproduced", "skipped": "⏭️ skipped"}
DESCRIPTION = ("Runs one fast check per claim C1-C14 and prints a table (id, status, measured, how to reproduce) and "
               "a summary naming every row that is not holds/expected-fail. C3, C8 and C12 are judged from the "
               "default-scale data in ./figures/data (scale and seeds named). Exit 1 if a row fails (--strict: also "
               "not-reproduced), 2 for usage errors.")
FLAGGED = ("fails", "not-reproduced", "skipped")
"""Statuses the closing summary names (``holds`` and ``expected-fail`` are as they should be)."""


def register(subparsers) -> None:
    p = subparsers.add_parser("check", help="run every claim check C1-C14 and print the table", description=DESCRIPTION)
    p.add_argument("--json", action="store_true", help="print the results as a JSON list")
    p.add_argument("--write", action="store_true",
                   help="regenerate the Status and Measured columns of paper_checks.md")
    p.add_argument("--only", nargs="+", default=None, metavar="ID",
                   help="claim ids, space- or comma-separated (default: all of C1-C14)")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 also when an empirical claim is not-reproduced (default: only on fails)")
    p.add_argument("--file", default=str(PAPER_CHECKS), help="the claims table to --write (default: %(default)s)")
    p.set_defaults(func=_cmd_check, validate=validate)


def claim_ids(values) -> list[str]:
    """Claim ids from ``--only`` values, each possibly comma-separated (``C1,C4 C7``), case-insensitive."""
    from ._usage import UsageError

    ids = [s.strip().upper() for v in values for s in str(v).split(",") if s.strip()]
    if not ids:
        raise UsageError(f"--only needs at least one claim id among {CLAIM_IDS[0]}..{CLAIM_IDS[-1]}")
    bad = [i for i in ids if i not in CLAIM_IDS]
    if bad:
        raise UsageError(f"--only: unknown claim id {bad[0]!r}; claim ids are {CLAIM_IDS[0]}..{CLAIM_IDS[-1]}")
    return list(dict.fromkeys(ids))


def validate(args) -> None:
    """The one check of ``check``'s arguments (``UsageError`` before any work); ``args.only`` becomes
    the list of claim ids."""
    from ._usage import UsageError, check_output_file

    if args.only is not None:
        args.only = claim_ids(args.only)
    if args.write:
        path = check_output_file(args.file, "--file", must_exist=True)
        try:
            update_markdown(path.read_text(encoding="utf-8"), [])
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--file {args.file}: cannot read it ({exc})") from None
        except ValueError as exc:
            raise UsageError(f"--file {args.file}: {exc}") from None


def _cmd_check(args) -> int:
    t0 = time.perf_counter()
    results = run_checks(args.only)
    seconds = time.perf_counter() - t0
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2, ensure_ascii=False))
    else:
        print(format_table(results))
        print()
        print(closing_summary(results, seconds, strict=args.strict))
    if args.write:
        path = Path(args.file)
        changed = write_table(path, results)
        print(f"{'updated' if changed else 'unchanged'}: {path}", file=sys.stderr if args.json else sys.stdout)
    return exit_status(results, strict=args.strict)


def exit_status(results: list[Result], *, strict: bool = False) -> int:
    """1 when a row expected to hold ``fails`` (with ``strict``: or is ``not-reproduced``), else 0."""
    for r in _rows(results):
        if r.unexpected_failure or (strict and r.status == "not-reproduced"):
            return 1
    return 0


def closing_summary(results: list[Result], seconds: float | None = None, *, strict: bool = False) -> str:
    """Counts per status, then one line per row that is not ``holds``/``expected-fail``, with its reason."""
    rows = list(_rows(results))
    counts = ", ".join(f"{sum(r.status == s for r in rows)} {s}" for s in STATUSES if any(r.status == s for r in rows))
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    lines = [f"{len(results)} claims ({len(rows)} rows) checked{took}: {counts}"]
    flagged = [r for r in rows if r.status in FLAGGED and not (r.status == "fails" and r.expected == "fails")]
    for r in flagged:
        lines.append(f"  {r.id:<18}{r.status:<16}{reason_text(r)}")
        lines.append(f"  {'':<34}reproduce: {reproduce_text(r.command)}")
    from ._warnings import summary

    note = summary([dict(w, id=r.id) for r in results for w in r.warnings], "not expected by the checks")
    if note:
        lines.append(f"  {note} (in {', '.join(r.id for r in results if r.warnings)})")
    code = exit_status(results, strict=strict)
    if any(r.unexpected_failure for r in rows):
        lines.append("exit 1: a claim expected to hold fails (a bug in the code or in our reading of the paper)")
    elif code:
        lines.append("exit 1 (--strict): an empirical claim of the paper was not reproduced")
    elif any(r.status == "not-reproduced" for r in rows):
        lines.append("exit 0: every exact claim holds; not-reproduced rows are findings about the paper's "
                     "experiments at our scale (use --strict to fail on them)")
    else:
        lines.append("exit 0: nothing fails")
    return "\n".join(lines)


def tests_available() -> bool:
    """Whether the test suite sits next to the package (a source checkout), not an installed wheel."""
    return (Path(__file__).resolve().parents[1] / "tests").is_dir()


def reproduce_text(command: str) -> str:
    """A reproduce line that works where ``check`` runs: pytest commands need the source repository's
    tests, which an installed wheel does not ship, and say so there."""
    if command.startswith("python -m pytest") and not tests_available():
        return f"{command}  (in a checkout of the source repository: the tests are not installed with the package)"
    return command


def reason_text(r: Result, limit: int = 240) -> str:
    """The row's ``reason``, else its measured text, cut to ``limit`` characters."""
    text = r.reason or measured_text(r.measured)
    return text if len(text) <= limit else text[:limit - 1] + "…"


# ----------------------------------------------------------------------------- text forms

def measured_text(measured, *, cell: bool = False) -> str:
    """``measured`` as one line: ``key: value; key: {k: v, ...}`` (``cell``: pipes escaped for markdown)."""
    def one(v):
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k}: {one(x)}" for k, x in v.items()) + "}"
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(one(x) for x in v) + "]"
        return str(v)

    text = "; ".join(f"{k}: {one(v)}" for k, v in measured.items()) if isinstance(measured, dict) else str(measured)
    text = text.replace("\n", " ")
    return text.replace("|", "&#124;") if cell else text


def _rows(results: list[Result]):
    for r in results:
        yield r
        yield from r.subchecks


def format_table(results: list[Result]) -> str:
    lines = [f"{'id':<22}{'status':<17}measured", "-" * 100]
    for r in _rows(results):
        status = r.status + (" (!)" if r.unexpected_failure else "")
        lines.append(f"{r.id:<22}{status:<17}{measured_text(r.measured)}")
        if r.label:
            lines.append(f"{'':<22}{'':<17}{r.status} means: {r.label}")
        lines.append(f"{'':<22}{'':<17}reproduce: {reproduce_text(r.command)}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- paper_checks.md

def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def update_markdown(text: str, results: list[Result]) -> str:
    """``text`` with the Status and Measured cells of each result's row replaced.

    Rows are table lines whose first cell is a result id (``C4``, ``C6/c6_shifted``, ...). Rows for
    results not yet in the table are appended to its end; all other text is kept byte for byte.
    """
    by_id = {r.id: r for r in _rows(results)}
    lines = text.split("\n")
    header = next((k for k, ln in enumerate(lines) if ln.startswith("|") and STATUS_COLUMN in _cells(ln)
                   and MEASURED_COLUMN in _cells(ln)), None)
    if header is None:
        raise ValueError(f"no table with {STATUS_COLUMN!r} and {MEASURED_COLUMN!r} columns found")
    names = _cells(lines[header])
    si, mi = names.index(STATUS_COLUMN), names.index(MEASURED_COLUMN)
    seen, last = set(), header + 1
    for k in range(header + 2, len(lines)):
        if not lines[k].startswith("|"):
            break
        last = k
        cells = _cells(lines[k])
        rid = cells[0].strip("*` ")
        if rid in by_id and len(cells) == len(names):
            r = by_id[rid]
            cells[si] = STATUS_BADGE[r.status] + (f" ({r.label})" if r.label else "")
            cells[mi] = measured_text(r.measured, cell=True)
            lines[k] = "| " + " | ".join(cells) + " |"
            seen.add(rid)
    new = []
    for rid, r in by_id.items():
        if rid not in seen:
            cells = [""] * len(names)
            cells[0], cells[si] = rid, STATUS_BADGE[r.status] + (f" ({r.label})" if r.label else "")
            cells[mi] = measured_text(r.measured, cell=True)
            if "Command" in names:
                cells[names.index("Command")] = f"`{r.command}`"
            new.append("| " + " | ".join(cells) + " |")
    lines[last + 1:last + 1] = new
    return "\n".join(lines)


def write_table(path: Path, results: list[Result]) -> bool:
    """Rewrite the Status and Measured cells of ``path``; True when the file changed."""
    old = path.read_text(encoding="utf-8")
    new = update_markdown(old, results)
    if new != old:
        path.write_text(new, encoding="utf-8")
    return new != old


__all__ = ["CLAIM_IDS", "FLAGGED", "STATUS_BADGE", "closing_summary", "exit_status", "format_table", "measured_text", "register", "update_markdown", "write_table"]
