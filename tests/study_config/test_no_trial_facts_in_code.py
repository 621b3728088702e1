"""No production module or contract names a fact of one trial: arm, visit, centre, region codes
and study ids live in the study files (``study/studies/*.yaml``) only.

The simulator's defaults (``trial/simulate/``: verbatim AE texts, operator names) and the study
package itself are the allowed exceptions. Docstrings and comments may show examples; every
other string literal of the code is checked, word by word.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from study import EXAMPLE_STUDIES, load_study

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("ionto", "pipelines", "trial", "ingest", "data_contracts")
ALLOWED = ("trial/simulate/",)


def trial_facts() -> set[str]:
    """Codes that belong to one of the example studies (and no other spec)."""
    facts: set[str] = set()
    for name in EXAMPLE_STUDIES:
        s = load_study(name)
        facts |= {s.study_id, *s.arm_codes, *s.centres, *s.visit_codes, *s.stratum_codes}
        facts |= {r.code for r in s.regions} | {r.paramcd for r in s.regions}
    return facts


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    # attribute docstrings: a string expression statement right after an assignment
    for node in ast.walk(tree):
        for field in ("body", "orelse"):
            stmts = getattr(node, field, None)
            for stmt in stmts if isinstance(stmts, list) else []:
                if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                    ids.add(id(stmt.value))
    return ids


def literal_hits(path: Path, facts: set[str]) -> list[str]:
    tree = ast.parse(path.read_text("utf-8"))
    skip = _docstrings(tree)
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            words = set(re.findall(r"[A-Za-z0-9_-]+", node.value))
            found = words & facts
            if found:
                hits.append(f"{path.relative_to(REPO)}:{node.lineno}: {sorted(found)}")
    return hits


def test_no_production_module_names_a_trial_fact() -> None:
    facts = trial_facts()
    hits = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if not rel.startswith(ALLOWED):
                hits.extend(literal_hits(path, facts))
    assert hits == [], "trial facts in code (move them to the study file):\n" + "\n".join(hits)


def test_no_contract_names_a_trial_fact() -> None:
    facts = trial_facts()
    for path in sorted((REPO / "data_contracts").glob("*.odcs.yaml")):
        words = set(re.findall(r"[A-Za-z0-9_-]+", path.read_text("utf-8")))
        assert not words & facts, (path.name, sorted(words & facts))


def test_the_check_finds_a_planted_fact(tmp_path: Path) -> None:
    """The grep can fail: a literal arm code in code is found, the same code in a docstring
    is not."""
    module = tmp_path / "planted.py"
    module.write_text('"""Compares GLY with TAP."""\nREFERENCE = "TAP"\n', "utf-8")
    hits = literal_hits_outside_repo(module, trial_facts())
    assert hits == [(2, ["TAP"])]


def literal_hits_outside_repo(path: Path, facts: set[str]) -> list[tuple[int, list[str]]]:
    tree = ast.parse(path.read_text("utf-8"))
    skip = _docstrings(tree)
    return [
        (node.lineno, sorted(set(re.findall(r"[A-Za-z0-9_-]+", node.value)) & facts))
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in skip
        and set(re.findall(r"[A-Za-z0-9_-]+", node.value)) & facts
    ]
