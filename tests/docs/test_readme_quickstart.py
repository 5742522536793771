"""README quick start: the snippet runs as written and raises exactly the warnings its comments announce."""
import re
import warnings
from pathlib import Path

import theory

REPO = Path(__file__).resolve().parents[2]


def test_quickstart_snippet_warns_only_as_it_says():
    text = (REPO / "README.md").read_text()
    code = next(b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if "make_moons(200" in b)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(compile(code, "README.md", "exec"), {"__name__": "readme_quickstart"})
    classes = {w.category for w in caught}
    announced = {cls for cls in (theory.AssumptionWarning, theory.ApproximationWarning, theory.AccuracyWarning)
                 if cls.__name__ in code}
    assert classes <= announced, [str(w.message) for w in caught]
    if theory.AssumptionWarning in classes:
        assert "(A2) fails" in code and "in_theta" in str(next(w.message for w in caught))
