"""Printed labels of coded values, from the study configuration's ``labels`` section.

Reports print these, never the codes: ``F`` -> ``Female``, ``HDSS3`` -> ``HDSS 3 (...)``,
``GLY-TAP`` -> ``GLY vs TAP``. A code the configuration does not label prints as itself with
underscores as spaces and only its first letter capitalised (``LOST_TO_FOLLOW_UP`` ->
``Lost to follow up``), so a new code is readable before its label is added.
"""

from __future__ import annotations

import polars as pl

from study import Study


def labels(study: Study, codelist: str) -> dict[str, str]:
    """Code -> label of one codelist (empty when the study labels none)."""
    return dict(study.labels.get(codelist, {}))


def readable(code: str) -> str:
    """An unlabelled code as words: ``LOST_TO_FOLLOW_UP`` -> ``Lost to follow up``."""
    words = code.replace("_", " ").strip()
    return words[:1].upper() + words[1:].lower() if words.isupper() else words


def label(study: Study, codelist: str, code: str | None) -> str:
    """The printed label of ``code`` (empty for null)."""
    if code is None:
        return ""
    return labels(study, codelist).get(str(code)) or readable(str(code))


def label_expr(study: Study, codelist: str, column: str) -> pl.Expr:
    """``column`` replaced by its labels (unlabelled codes as :func:`readable` words)."""
    mapping = labels(study, codelist)
    col = pl.col(column).cast(pl.String)
    fallback = col.str.replace_all("_", " ")
    fallback = (
        pl.when(col == col.str.to_uppercase())
        .then(pl.concat_str(fallback.str.slice(0, 1), fallback.str.slice(1).str.to_lowercase()))
        .otherwise(fallback)
    )
    return col.replace_strict(mapping, default=fallback, return_dtype=pl.String)


def contrast_label(contrast: str) -> str:
    """``GLY-TAP`` -> ``GLY vs TAP`` (arm codes as the study file names them)."""
    left, sep, right = contrast.partition("-")
    return f"{left} vs {right}" if sep else contrast


def arm_label(study: Study, code: str) -> str:
    """``GLY`` -> ``GLY: Glycopyrronium bromide iontophoresis``; ``TOTAL`` -> ``Total``."""
    names = {a.code: a.name for a in study.arms}
    return f"{code}: {names[code]}" if code in names else "Total"
