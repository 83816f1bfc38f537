"""The README names the tests that hold each reliability guarantee: every test it names must
exist, and every guarantee of its Reliability section must name one."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
# `tests/test_x.py::test_name`
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def _reliability_guarantees() -> list[str]:
    """The section's bullets, each as one line (its continuation lines joined)."""
    section = README.split("\n## Reliability\n", 1)[1].split("\n## ", 1)[0]
    return [" ".join(bullet.split())
            for bullet in re.split(r"^- ", section, flags=re.MULTILINE)[1:]]


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_every_test_the_readme_names_exists() -> None:
    references = REFERENCE.findall(README)
    assert len(references) >= 10
    missing = [f"{file}::{name}" for file, name in references
               if not (ROOT / file).is_file() or name not in _test_functions(ROOT / file)]
    assert missing == []


def test_every_reliability_guarantee_names_a_test() -> None:
    guarantees = _reliability_guarantees()
    assert len(guarantees) >= 10
    unnamed = [bullet[:60] for bullet in guarantees if not REFERENCE.search(bullet)]
    assert unnamed == []


def test_every_item_of_issue_11_is_held_by_a_named_test() -> None:
    named = {int(item) for bullet in _reliability_guarantees() if REFERENCE.search(bullet)
             for items in re.findall(r"issue 11 items? ([\d, and]+)", bullet)
             for item in re.findall(r"\d+", items)}
    assert named == set(range(1, 11))
