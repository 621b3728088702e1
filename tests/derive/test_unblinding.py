"""The sealed list is checked against the study and the data before anything is unblinded:
each kind of wrong list is named, a right one passes, and the error is one line."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from study import load_study
from trial.derive.unblinding import SealedListError, check_sealed_list, sealed_list_problems

D = dt.date
STUDY = load_study()

DM = pl.DataFrame(
    {
        "subject_id": ["C01-0001", "C01-0002", "C01-0003", "C01-0004"],
        "consent_date": [D(2026, 1, 5)] * 4,
        "hdss_screening": [3, 4, 3, 3],
    }
)
VISITS = pl.DataFrame(
    {
        "subject_id": ["C01-0001", "C01-0002", "C01-0003", "C01-0004"],
        "visit": [STUDY.baseline_visit] * 4,
        "status": ["DONE", "DONE", "DONE", "MISSED"],
    }
)
DISPOSITION = pl.DataFrame(
    {"subject_id": ["C01-0004"], "status": ["WITHDRAWN"], "reason": ["SCREEN_FAILURE"]}
)
STARTED = pl.DataFrame(
    {
        "subject_id": ["C01-0001", "C01-0002", "C01-0003"],
        "n_sessions": [12, 10, 11],
        "trt_start_date": [D(2026, 1, 20)] * 3,
    }
)
ARMS = STUDY.arm_codes


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


RIGHT = [
    ("C01-0001", D(2026, 1, 20), "HDSS3", ARMS[0]),
    ("C01-0002", D(2026, 1, 20), "HDSS4", ARMS[1]),
    ("C01-0003", D(2026, 1, 20), "HDSS3", ARMS[2]),
]


def problems(rows: list[tuple[str, dt.date, str, str]], held: list[str] | None = None) -> list[str]:
    return sealed_list_problems(
        sealed(rows),
        DM,
        pl.Series(held or [], dtype=pl.String),
        VISITS,
        DISPOSITION,
        STARTED,
        STUDY,
    )


def test_the_right_list_passes() -> None:
    assert problems(RIGHT) == []
    check_sealed_list([], "randomisation.csv")


def test_a_list_missing_a_randomised_and_treated_subject() -> None:
    assert problems(RIGHT[:2]) == ["C01-0003 randomised (baseline visit done) but not in the list"]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            ("C01-0003", D(2026, 1, 20), "HDSS3", "PLACEBO"),
            "arm 'PLACEBO' of C01-0003 (list line 4)",
        ),
        (
            ("C01-0003", D(2026, 1, 20), "HDSS4", ARMS[2]),
            "C01-0003 (list line 4): stratum HDSS4 but dm.csv says HDSS3",
        ),
        (("C01-0003", D(2026, 1, 2), "HDSS3", ARMS[2]), "RAND_BEFORE_CONSENT"),
        (("C01-0003", D(2026, 2, 2), "HDSS3", ARMS[2]), "RAND_AFTER_FIRST_SESSION"),
    ],
)
def test_each_wrong_row_is_named(row: tuple[str, dt.date, str, str], expected: str) -> None:
    found = problems([*RIGHT[:2], row])
    assert len(found) == 1 and expected in found[0]


def test_unknown_and_twice_listed_subjects() -> None:
    found = problems([*RIGHT, ("C09-0001", D(2026, 1, 20), "HDSS3", ARMS[0]), RIGHT[0]])
    assert "C01-0001 listed more than once (lines 2, 6)" in found
    assert "C09-0001 (list line 5) is in no dm.csv" in found
    # A subject whose dm row is quarantined is known (not "in no dm.csv").
    held = problems([*RIGHT, ("C01-0009", D(2026, 1, 20), "HDSS3", ARMS[0])], held=["C01-0009"])
    assert held == []


def test_the_error_is_one_line_naming_the_first_problems() -> None:
    wrong = [(f"C07-{i:04d}", D(2026, 1, 20), "HDSS3", ARMS[0]) for i in range(8)]
    found = problems(wrong)
    with pytest.raises(SealedListError) as raised:
        check_sealed_list(found, "sealed/randomisation.csv")
    message = str(raised.value)
    assert "\n" not in message
    assert f"({len(found)} problems)" in message and "C07-0000 (list line 2)" in message
    assert f"and {len(found) - 5} more" in message and "Nothing unblinded was written" in message
