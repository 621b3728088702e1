"""The sealed list is checked against the study and the data before anything is unblinded:
each kind of wrong list is named, a right one passes, and the error is one line; for each
example study (its centres, arms, strata and baseline visit)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl
import pytest

from study import Study
from trial.derive.unblinding import SealedListError, check_sealed_list, sealed_list_problems

D = dt.date


@dataclass(frozen=True)
class Case:
    """Four subjects of the study's first centre: 1-3 randomised (baseline visit done) and
    treated, screening HDSS 3, 4, 3; 4 a screen failure. ``right``: their right sealed list
    (arms in the study's order, strata from its cut-off)."""

    study: Study

    @property
    def c(self) -> str:
        return self.study.centres[0]

    def s(self, k: int, centre: str | None = None) -> str:
        return f"{centre or self.c}-{k:04d}"

    def stratum(self, hdss: int) -> str:
        return self.study.stratum_levels[hdss]

    @property
    def other_stratum(self) -> str:
        """A stratum other than that of screening HDSS 3."""
        return next(c for c in self.study.stratum_codes if c != self.stratum(3))

    @property
    def arms(self) -> list[str]:
        """Three arms: the study's, the first again when it has two."""
        codes = self.study.arm_codes
        return [*codes, codes[0]][:3]

    @property
    def right(self) -> list[tuple[str, dt.date, str, str]]:
        return [
            (self.s(1), D(2026, 1, 20), self.stratum(3), self.arms[0]),
            (self.s(2), D(2026, 1, 20), self.stratum(4), self.arms[1]),
            (self.s(3), D(2026, 1, 20), self.stratum(3), self.arms[2]),
        ]

    def problems(
        self, rows: list[tuple[str, dt.date, str, str]], held: list[str] | None = None
    ) -> list[str]:
        subjects = [self.s(k) for k in range(1, 5)]
        dm = pl.DataFrame(
            {
                "subject_id": subjects,
                "consent_date": [D(2026, 1, 5)] * 4,
                "hdss_screening": [3, 4, 3, 3],
            }
        )
        visits = pl.DataFrame(
            {
                "subject_id": subjects,
                "visit": [self.study.baseline_visit] * 4,
                "status": ["DONE", "DONE", "DONE", "MISSED"],
            }
        )
        disposition = pl.DataFrame(
            {"subject_id": [self.s(4)], "status": ["WITHDRAWN"], "reason": ["SCREEN_FAILURE"]}
        )
        started = pl.DataFrame(
            {
                "subject_id": subjects[:3],
                "n_sessions": [12, 10, 11],
                "trt_start_date": [D(2026, 1, 20)] * 3,
            }
        )
        return sealed_list_problems(
            sealed(rows),
            dm,
            pl.Series(held or [], dtype=pl.String),
            visits,
            disposition,
            started,
            self.study,
        )


@pytest.fixture
def case(study: Study) -> Case:
    return Case(study)


def sealed(rows: list[tuple[str, dt.date, str, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "subject_id": pl.String,
            "rand_date": pl.Date,
            "stratum": pl.String,
            "arm": pl.String,
        },
        orient="row",
    ).with_columns(source_line=pl.int_range(2, pl.len() + 2, dtype=pl.Int64))


def test_the_right_list_passes(case: Case) -> None:
    assert case.problems(case.right) == []
    check_sealed_list([], "randomisation.csv")


def test_a_list_missing_a_randomised_and_treated_subject(case: Case) -> None:
    assert case.problems(case.right[:2]) == [
        f"{case.s(3)} randomised (baseline visit done) but not in the list"
    ]


@pytest.mark.parametrize("wrong", ["arm", "stratum", "before_consent", "after_first_session"])
def test_each_wrong_row_is_named(wrong: str, case: Case) -> None:
    s3, arm3 = case.s(3), case.arms[2]
    row, expected = {
        "arm": ((s3, D(2026, 1, 20), case.stratum(3), "PLACEBO"), f"arm 'PLACEBO' of {s3}"),
        "stratum": (
            (s3, D(2026, 1, 20), case.other_stratum, arm3),
            f"{s3} (list line 4): stratum {case.other_stratum} but dm.csv says {case.stratum(3)}",
        ),
        "before_consent": ((s3, D(2026, 1, 2), case.stratum(3), arm3), "RAND_BEFORE_CONSENT"),
        "after_first_session": (
            (s3, D(2026, 2, 2), case.stratum(3), arm3),
            "RAND_AFTER_FIRST_SESSION",
        ),
    }[wrong]
    found = case.problems([*case.right[:2], row])
    assert len(found) == 1 and expected in found[0]


def test_unknown_and_twice_listed_subjects(case: Case) -> None:
    stranger = case.s(1, case.study.centres[-1])
    rows = [*case.right, (stranger, D(2026, 1, 20), case.stratum(3), case.arms[0]), case.right[0]]
    found = case.problems(rows)
    assert f"{case.s(1)} listed more than once (lines 2, 6)" in found
    assert f"{stranger} (list line 5) is in no dm.csv" in found
    # A subject whose dm row is quarantined is known (not "in no dm.csv").
    held = case.problems(
        [*case.right, (case.s(9), D(2026, 1, 20), case.stratum(3), case.arms[0])],
        held=[case.s(9)],
    )
    assert held == []


def test_the_error_is_one_line_naming_the_first_problems(case: Case) -> None:
    centre = case.study.centres[-1]
    wrong = [(case.s(i, centre), D(2026, 1, 20), case.stratum(3), case.arms[0]) for i in range(8)]
    found = case.problems(wrong)
    with pytest.raises(SealedListError) as raised:
        check_sealed_list(found, "sealed/randomisation.csv")
    message = str(raised.value)
    assert "\n" not in message
    assert f"({len(found)} problems)" in message and f"{case.s(0, centre)} (list line 2)" in message
    assert f"and {len(found) - 5} more" in message and "Nothing unblinded was written" in message
