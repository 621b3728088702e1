"""Model matrices with treatment (dummy) coding, named the way R names them.

The MMRM formula ``chg ~ arm * visit + logbase * visit + centre + stratum`` is expanded into
columns in R's order: ``(Intercept)``, arm dummies, visit dummies, ``logbase``, centre dummies,
stratum dummies, ``arm:visit`` interactions (arm varying fastest), ``visit:logbase``. The levels
come from the study configuration (first level = reference); centre and stratum levels that do
not occur in the data are dropped, as R's ``factor()`` on the data would drop them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from study import Study

REQUIRED_COLUMNS = ("subject", "arm", "centre", "stratum", "visit", "logbase", "chg")


@dataclass(frozen=True)
class MmrmDesign:
    """Row-level model input of the MMRM.

    ``x``: (n_obs, p) fixed-effects matrix; ``y``: response (change in ln rate);
    ``subject``: integer subject index per row (0..n_subjects-1, in ``subjects`` order);
    ``visit``: integer model-visit index per row (0..n_visits-1, in ``visits`` order).
    ``logbase_mean``: mean of ``logbase`` over the analysed rows (the LS-mean covariate value).
    The matrix may be rank deficient (an empty arm x visit cell); the fit checks that.
    """

    x: np.ndarray
    y: np.ndarray
    subject: np.ndarray
    visit: np.ndarray
    terms: list[str]
    subjects: list[str]
    arms: list[str]
    visits: list[str]
    centres: list[str]
    strata: list[str]
    logbase_mean: float

    @property
    def n_obs(self) -> int:
        return int(self.y.shape[0])

    @property
    def n_subjects(self) -> int:
        return len(self.subjects)

    def lsmean_vector(self, arm: str, visit: str) -> np.ndarray:
        """Row L of the LS mean of ``arm`` at ``visit`` (emmeans defaults).

        The model row averaged over the centre x stratum grid with equal weights, ``logbase`` at
        :attr:`logbase_mean`.
        """
        row = np.zeros(len(self.terms))
        index = {t: k for k, t in enumerate(self.terms)}
        row[index["(Intercept)"]] = 1.0
        row[index["logbase"]] = self.logbase_mean
        if arm != self.arms[0]:
            row[index[f"arm{arm}"]] = 1.0
        if visit != self.visits[0]:
            row[index[f"visit{visit}"]] = 1.0
            row[index[f"visit{visit}:logbase"]] = self.logbase_mean
            if arm != self.arms[0]:
                row[index[f"arm{arm}:visit{visit}"]] = 1.0
        for centre in self.centres[1:]:
            row[index[f"centre{centre}"]] = 1.0 / len(self.centres)
        for stratum in self.strata[1:]:
            row[index[f"stratum{stratum}"]] = 1.0 / len(self.strata)
        return row


def _codes(frame: pl.DataFrame, column: str, levels: list[str]) -> np.ndarray:
    """Integer codes of ``column`` in ``levels``; a value outside the levels is an error."""
    values = frame.get_column(column).cast(pl.String)
    unknown = values.filter(~values.is_in(levels) | values.is_null()).unique().to_list()
    if unknown:
        raise ValueError(f"column {column!r} has values {unknown} outside the levels {levels}")
    return values.cast(pl.Enum(levels)).to_physical().to_numpy().astype(np.int64)


def build_mmrm_design(frame: pl.DataFrame, study: Study) -> MmrmDesign:
    """Expand an ``analysis_long`` frame into the MMRM model matrix.

    Rows whose visit is not a model visit of the study are an error, as is any missing
    ``chg``/``logbase`` or a subject observed twice at the same visit: the caller decides what
    the analysis set is, this function never drops rows.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"the MMRM needs columns {missing}; a blinded analysis_long has no 'arm' column"
        )
    for column in ("logbase", "chg"):
        if frame.get_column(column).null_count() or frame.get_column(column).is_nan().any():
            raise ValueError(f"column {column!r} has missing values; drop those rows upstream")
    if frame.select(pl.struct("subject", "visit").is_duplicated().any()).item():
        raise ValueError("a subject has two rows at the same visit")

    arms = study.arm_codes
    visits = study.model_visits
    present_centres = set(frame.get_column("centre").cast(pl.String).unique().to_list())
    present_strata = set(frame.get_column("stratum").cast(pl.String).unique().to_list())
    centres = [c for c in study.centres if c in present_centres]
    strata = [s for s in study.stratum_codes if s in present_strata]

    subjects = sorted(frame.get_column("subject").cast(pl.String).unique().to_list())
    return design_from_codes(
        arm=_codes(frame, "arm", arms),
        visit=_codes(frame, "visit", visits),
        centre=_codes(frame, "centre", centres),
        stratum=_codes(frame, "stratum", strata),
        subject=_codes(frame, "subject", subjects),
        logbase=frame.get_column("logbase").cast(pl.Float64).to_numpy(),
        y=frame.get_column("chg").cast(pl.Float64).to_numpy(),
        levels={
            "arm": arms,
            "visit": visits,
            "centre": centres,
            "stratum": strata,
            "subject": subjects,
        },
    )


def design_from_codes(
    *,
    arm: np.ndarray,
    visit: np.ndarray,
    centre: np.ndarray,
    stratum: np.ndarray,
    subject: np.ndarray,
    logbase: np.ndarray,
    y: np.ndarray,
    levels: dict[str, list[str]],
) -> MmrmDesign:
    """The model matrix from integer level codes (0 = reference level) per row.

    ``levels`` names the levels of ``arm``, ``visit``, ``centre``, ``stratum`` and ``subject``.
    Used directly by simulations, which have codes already.
    """
    arms, visits = levels["arm"], levels["visit"]
    centres, strata = levels["centre"], levels["stratum"]

    def dummies(codes: np.ndarray, n_levels: int) -> np.ndarray:
        return (codes[:, None] == np.arange(1, n_levels)[None, :]).astype(float)

    arm_d = dummies(arm, len(arms))
    visit_d = dummies(visit, len(visits))
    columns = [
        np.ones((len(y), 1)),
        arm_d,
        visit_d,
        logbase[:, None],
        dummies(centre, len(centres)),
        dummies(stratum, len(strata)),
        (visit_d[:, :, None] * arm_d[:, None, :]).reshape(len(y), -1),
        visit_d * logbase[:, None],
    ]
    terms = (
        ["(Intercept)"]
        + [f"arm{a}" for a in arms[1:]]
        + [f"visit{v}" for v in visits[1:]]
        + ["logbase"]
        + [f"centre{c}" for c in centres[1:]]
        + [f"stratum{s}" for s in strata[1:]]
        + [f"arm{a}:visit{v}" for v in visits[1:] for a in arms[1:]]
        + [f"visit{v}:logbase" for v in visits[1:]]
    )
    return MmrmDesign(
        x=np.hstack(columns),
        y=y,
        subject=subject,
        visit=visit,
        terms=terms,
        subjects=levels["subject"],
        arms=arms,
        visits=visits,
        centres=centres,
        strata=strata,
        logbase_mean=float(logbase.mean()),
    )
