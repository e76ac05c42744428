"""Every Python example in docs/api.md runs as written (each in a fresh namespace, in an
empty working folder, on the data that ships with pmtoolkit). A block whose first line is
``# slow`` trains a model for real and runs only with the slow tests."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

API = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def examples() -> list[tuple[str, str]]:
    """``(section heading, code)`` of every ```python block of docs/api.md, in order."""
    out, heading = [], ""
    for part in re.split(r"^(## .+|```python\n(?:.*\n)*?```)$", API.read_text(), flags=re.M):
        if part.startswith("## "):
            heading = part[3:].strip()
        elif part.startswith("```python"):
            out.append((heading, part.removeprefix("```python\n").removesuffix("```")))
    return out


def test_every_domain_has_an_example():
    headings = [h for h, _ in examples()]
    assert headings == ["Molecules", "Property prediction", "Drug–target interaction",
                        "De novo design", "Variants and genomics", "Gene expression", "Imaging",
                        "Electronic health records", "Drug response", "Multimodal fusion",
                        "Pipelines"]


@pytest.mark.parametrize("heading, code", [
    pytest.param(h, c, id=h, marks=[pytest.mark.slow] if c.startswith("# slow") else [])
    for h, c in examples()])
def test_example_runs(heading, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"docs/api.md ({heading})", "exec"), {"__name__": "__main__"})
