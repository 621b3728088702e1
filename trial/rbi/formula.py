"""R-style model terms and their treatment-coded model matrix.

A term is a tuple of variable names: ``()`` the intercept, ``("A",)`` a main effect,
``("A", "VISIT")`` an interaction. Coding follows R's rule for factors: a factor in a term uses
treatment contrasts (its first level dropped) when the term without it is also in the model
(the intercept counts), and indicator columns for every level otherwise. Numeric variables enter
as they are (not centred). Columns of an interaction vary the first variable fastest and are
named like R's (``groupB:visitW4``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import polars as pl

from trial.rbi.spec import RbiInputError

Term = tuple[str, ...]


def parse_terms(items: Sequence[str]) -> list[Term]:
    """``["A*VISIT", "B"]`` -> ``[("A",), ("VISIT",), ("A", "VISIT"), ("B",)]``.

    ``*`` crosses its parts (every non-empty subset), ``:`` joins names into one interaction.
    Duplicates are dropped; order is by first appearance.
    """
    terms: list[Term] = []
    for item in items:
        parts = [p.strip() for p in item.split("*")]
        if not item.strip() or any(not p for p in parts):
            raise RbiInputError(f"covariate term {item!r} is empty or malformed (use A, A*B, A:B)")
        groups = [tuple(n.strip() for n in p.split(":")) for p in parts]
        if any(not n for g in groups for n in g):
            raise RbiInputError(f"covariate term {item!r} is malformed (use A, A*B, A:B)")
        for size in range(1, len(groups) + 1):
            for subset in combinations(groups, size):
                names: list[str] = []
                for g in subset:
                    names.extend(n for n in g if n not in names)
                term = tuple(names)
                if not any(set(term) == set(t) for t in terms):
                    terms.append(term)
    return terms


@dataclass(frozen=True)
class ModelFormula:
    """Intercept plus ``terms`` (ordered by interaction order, then first appearance).

    ``levels[name]`` is the level list of a factor (first = reference) or ``None`` for a
    numeric variable.
    """

    terms: list[Term]
    levels: dict[str, list[str] | None]

    @staticmethod
    def build(terms: Sequence[Term], levels: dict[str, list[str] | None]) -> ModelFormula:
        ordered = sorted(dict.fromkeys(terms), key=lambda t: len(t))
        return ModelFormula(ordered, levels)

    def _has(self, names: set[str]) -> bool:
        return not names or any(set(t) == names for t in self.terms)

    def column_names(self) -> list[str]:
        names = ["(Intercept)"]
        for term in self.terms:
            names.extend(self._term_names(term))
        return names

    def _coded_levels(self, term: Term, name: str) -> list[str] | None:
        levels = self.levels[name]
        if levels is None:
            return None
        return levels[1:] if self._has(set(term) - {name}) else levels

    def _term_names(self, term: Term) -> list[str]:
        names = [""]
        for k, var in enumerate(term):
            coded = self._coded_levels(term, var)
            parts = [var] if coded is None else [f"{var}{lev}" for lev in coded]
            sep = "" if k == 0 else ":"
            names = [f"{n}{sep}{p}" for p in parts for n in names]
        return names

    def matrix(self, frame: pl.DataFrame) -> np.ndarray:
        """Model matrix (rows of ``frame``, :meth:`column_names`); factors must be strings."""
        n = frame.height
        blocks = [np.ones((n, 1))]
        for term in self.terms:
            block = np.ones((n, 1))
            for var in term:
                coded = self._coded_levels(term, var)
                if coded is None:
                    cols = frame.get_column(var).cast(pl.Float64).to_numpy()[:, None]
                else:
                    values = frame.get_column(var).cast(pl.String).to_numpy()
                    cols = (values[:, None] == np.array(coded, dtype=object)[None, :]).astype(float)
                # first variable fastest: new columns are the outer block
                block = (cols[:, :, None] * block[:, None, :]).reshape(n, -1)
            blocks.append(block)
        return np.hstack(blocks)
