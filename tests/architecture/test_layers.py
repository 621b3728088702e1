"""The packages form layers, and every import points down (docs/architecture.md):

    ionto (application) -> pipelines -> {trial, ingest} -> data_contracts -> study

A module may import its own package and any package in a lower layer; ``trial`` and ``ingest``
share a layer and do not import each other. Imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

ALLOWED: dict[str, set[str]] = {
    "study": set(),
    "data_contracts": {"study"},
    "ingest": {"data_contracts", "study"},
    "trial": {"data_contracts", "study"},
    "pipelines": {"trial", "ingest", "data_contracts", "study"},
    "ionto": {"pipelines", "trial", "ingest", "data_contracts", "study"},
}


def project_imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level project package) of every import statement in a module."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"), filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        found += [(node.lineno, n.split(".")[0]) for n in names if n.split(".")[0] in ALLOWED]
    return found


def upward_imports(package: str) -> list[str]:
    problems = []
    for path in sorted((REPO / package).rglob("*.py")):
        for line, target in project_imports(path):
            if target != package and target not in ALLOWED[package]:
                problems.append(f"{path.relative_to(REPO)}:{line} imports {target}")
    return problems


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_no_import_points_up(package: str) -> None:
    assert upward_imports(package) == []


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from pipelines.run import run_pipeline\n", "utf-8")
    assert project_imports(module) == [(2, "pipelines")]
