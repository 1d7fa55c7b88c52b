"""README.md's library example runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_library_example_runs(capsys):
    (example,) = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    namespace = {}
    exec(compile(example, "README.md", "exec"), namespace)
    assert namespace["loss"].shape == () and namespace["model"][0].weight.grad is not None
    assert "Total params" in capsys.readouterr().out
