"""Write the student edition of the classroom notebook: docs/tutorial.ipynb without its solutions.

    python docs/student.py                       # → tutorial_student.ipynb in the current folder
    python docs/student.py --out DIR/name.ipynb --clear-outputs

Every cell tagged ``solution`` (the worked solutions: their text and their code) is removed; the
remaining cells keep their outputs unless ``--clear-outputs`` is given. The result is validated
against the notebook format (nbformat) before it is written. Exit status 2, with one line on stderr,
for a bad argument or a missing input.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

NOTEBOOK = Path(__file__).resolve().with_name("tutorial.ipynb")
SOLUTION_TAG = "solution"


def student_edition(nb: nbformat.NotebookNode, *, clear_outputs: bool = False) -> nbformat.NotebookNode:
    """A copy of ``nb`` without the cells tagged ``solution`` (and without outputs, if asked)."""
    out = nbformat.from_dict(nb)  # deep copy
    out.cells = [cell for cell in out.cells if SOLUTION_TAG not in cell.get("metadata", {}).get("tags", [])]
    for cell in out.cells:
        if clear_outputs and cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    out.metadata.pop("widgets", None) if clear_outputs else None
    nbformat.validate(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python docs/student.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebook", type=Path, default=NOTEBOOK, help="input notebook (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("tutorial_student.ipynb"),
                        help="output notebook (default: %(default)s)")
    parser.add_argument("--clear-outputs", action="store_true", help="also drop the outputs of the kept cells")
    args = parser.parse_args(argv)
    if not args.notebook.is_file():
        print(f"error: --notebook {args.notebook} does not exist", file=sys.stderr)
        return 2
    if args.out.resolve() == args.notebook.resolve():
        print(f"error: --out {args.out} would overwrite the input notebook", file=sys.stderr)
        return 2
    nb = nbformat.read(args.notebook, as_version=4)
    student = student_edition(nb, clear_outputs=args.clear_outputs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(student, args.out)
    removed = len(nb.cells) - len(student.cells)
    print(f"wrote {args.out}: {len(student.cells)} cells, {removed} solution cells removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
