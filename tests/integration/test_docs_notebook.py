"""The notebook walkthrough (docs/notebook.md) runs as written, block after block in one
namespace, and the research API's docstring examples run."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_the_notebook_walkthrough_runs() -> None:
    text = (REPO / "docs" / "notebook.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 4
    ns: dict[str, object] = {"__name__": "notebook"}
    for i, code in enumerate(blocks, 1):
        exec(compile(code, f"docs/notebook.md block {i}", "exec"), ns)
    db = ns["DB"]
    assert isinstance(db, Path)
    assert (db / "backtest.png").stat().st_size > 10_000
    pngs = {p.name for p in (db / "plots").iterdir()}
    assert any(n.endswith("-walk_forward.png") for n in pngs), pngs


def test_the_research_api_examples_run() -> None:
    import at_core.research as research

    res = doctest.testmod(research, optionflags=doctest.ELLIPSIS)
    assert res.attempted >= 4 and res.failed == 0
