"""README "Your own model and data": the example runs as written (npz file generated on the spot, a
custom CNN class, the robustness chain and the C7 bracket with a finite certified upper bound)."""
import math
import re
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_readme_own_model_and_data_example_runs(tmp_path, monkeypatch, capsys):
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Your own model and data"):]
    code = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    monkeypatch.chdir(tmp_path)
    scope = {"__name__": "readme_example"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        exec(compile(code, "README.md", "exec"), scope)
    assert (tmp_path / "digits01.npz").is_file()
    cmp, bound = scope["cmp"], scope["bound"]
    assert scope["data"].input_shape == (1, 8, 8) and scope["X"].shape == (80, 64)
    assert math.isfinite(cmp.adv_upper) and cmp.undetermined_reason == ""
    assert cmp.adv_lower <= cmp.adv_upper + 1e-12
    assert bound.assumptions["centered"] and bound.assumptions["homogeneous"]
    assert "L_mix =" in capsys.readouterr().out
