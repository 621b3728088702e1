"""Per-subject derivations recomputed in proportion (``pipelines/subject_store.py``): a refresh
recomputes only the subjects whose rows changed, and its tables equal a full computation
(row order and dtypes included), for each example study's simulated trial."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import pipelines.subject_store as subject_store
from data_contracts.contracts import use_study
from ingest.landing import scan_raw
from ingest.readers.edc import read_edc_table
from ingest.readers.gravimetry import read_gravimetry
from pipelines import freshness
from pipelines.assets.analysis_ready import (
    adsweat,
    adsweat_derivation,
    sweat_papers,
    sweat_papers_derivation,
)
from pipelines.subject_store import SubjectDerivation, derive_by_subject
from study import EXAMPLE_STUDIES, Study, load_study
from trial.simulate import simulate_trial

SALT = "code v1\nstudy v1"


@dataclass(frozen=True)
class Trial:
    study: Study
    gravimetry: pl.DataFrame
    visits: pl.DataFrame
    dm: pl.DataFrame


@pytest.fixture(scope="module", params=EXAMPLE_STUDIES, ids=list(EXAMPLE_STUDIES))
def trial(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Trial:
    """A simulated trial of the study (24 subjects), its papers, visits and demographics."""
    study = load_study(request.param)
    use_study(study)
    raw = tmp_path_factory.mktemp(request.param) / "raw"
    simulate_trial(study, 24, 5, raw)
    manifest = scan_raw(raw)
    gravimetry, _, _ = read_gravimetry(raw, manifest)
    visits, _ = read_edc_table(raw, manifest, "visits")
    dm, _ = read_edc_table(raw, manifest, "dm")
    return Trial(study, gravimetry, visits, dm)


@pytest.fixture(autouse=True)
def _contracts_for_the_trial(trial: Trial) -> None:
    use_study(trial.study)


def _refresh(
    derivation: SubjectDerivation,
    inputs: dict[str, pl.DataFrame],
    trial: Trial,
    store: Path,
    salt: str = SALT,
) -> subject_store.SubjectRefresh:
    """A refresh into ``store``, checked against the full computation on the same inputs."""
    refresh = derive_by_subject(derivation, inputs, trial.study, store, salt)
    full = derivation.full(inputs, trial.study)
    assert set(refresh.outputs) == set(full)
    for name, frame in full.items():
        assert_frame_equal(refresh.outputs[name], frame)
    return refresh


def _last_delivery(gravimetry: pl.DataFrame) -> pl.Expr:
    """Rows of the newest delivery folder (``<centre>/<date>/<file>``)."""
    folder = pl.col("source_file").str.split("/").list.get(1)
    return folder == gravimetry["source_file"].str.split("/").list.get(1).max()


def test_a_new_delivery_recomputes_only_its_subjects(trial: Trial, tmp_path: Path) -> None:
    """Papers without the newest delivery, then with it: only the subjects with papers in it
    are computed again, and the tables equal a full computation."""
    newest = _last_delivery(trial.gravimetry)
    earlier = trial.gravimetry.filter(~newest)
    touched = set(trial.gravimetry.filter(newest)["subject_id"])
    assert 0 < len(touched) < trial.gravimetry["subject_id"].n_unique()

    first = _refresh(sweat_papers_derivation(), {"gravimetry": earlier}, trial, tmp_path)
    assert set(first.recomputed) == set(earlier["subject_id"])
    second = _refresh(sweat_papers_derivation(), {"gravimetry": trial.gravimetry}, trial, tmp_path)
    assert set(second.recomputed) == touched
    assert second.dropped == ()
    assert second.metadata()["subjects_reused"] == second.subjects - len(touched)

    unchanged = _refresh(
        sweat_papers_derivation(), {"gravimetry": trial.gravimetry}, trial, tmp_path
    )
    assert unchanged.recomputed == () and unchanged.dropped == ()


def test_new_changed_and_gone_subjects(trial: Trial, tmp_path: Path) -> None:
    """Region values: a subject new since the last run, one whose paper changed and one no
    longer in any input are computed, computed again and dropped; nobody else is."""
    papers = sweat_papers_derivation().full({"gravimetry": trial.gravimetry}, trial.study)[
        "sweat_papers"
    ]
    subjects = sorted(set(papers["subject_id"]))
    new, changed, gone = subjects[0], subjects[1], subjects[2]

    def inputs(papers: pl.DataFrame, *without: str) -> dict[str, pl.DataFrame]:
        keep = ~pl.col("subject_id").is_in(list(without))
        return {
            "sweat_papers": papers.filter(keep),
            "visits": trial.visits.filter(keep),
            "dm": trial.dm.filter(keep),
        }

    first = _refresh(adsweat_derivation(), inputs(papers, new), trial, tmp_path)
    assert new not in first.recomputed and gone in first.recomputed
    heavier = papers.with_columns(
        sweat_rate_mg_min=pl.when(
            (pl.col("subject_id") == changed) & pl.col("sweat_rate_mg_min").is_not_null()
        )
        .then(pl.col("sweat_rate_mg_min") * 2)
        .otherwise(pl.col("sweat_rate_mg_min"))
    )
    second = _refresh(adsweat_derivation(), inputs(heavier, gone), trial, tmp_path)
    assert set(second.recomputed) == {new, changed}
    assert second.dropped == (gone,)
    assert gone not in set(second.outputs["adsweat"]["subject_id"])


def test_a_code_or_study_change_recomputes_every_subject(trial: Trial, tmp_path: Path) -> None:
    """Another salt (the asset's code version or the study file changed) leaves nothing to
    reuse; another input schema neither."""
    inputs = {"gravimetry": trial.gravimetry}
    everyone = set(trial.gravimetry["subject_id"])
    _refresh(sweat_papers_derivation(), inputs, trial, tmp_path)
    assert _refresh(sweat_papers_derivation(), inputs, trial, tmp_path).recomputed == ()
    assert (
        set(_refresh(sweat_papers_derivation(), inputs, trial, tmp_path, "code v2").recomputed)
        == everyone
    )
    wider = {"gravimetry": trial.gravimetry.with_columns(pl.lit(1).alias("extra"))}
    assert (
        set(_refresh(sweat_papers_derivation(), wider, trial, tmp_path, "code v2").recomputed)
        == everyone
    )


def test_a_killed_refresh_leaves_its_subjects_to_be_computed_again(
    trial: Trial, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refresh killed after writing the papers but before the superseded rows and the index:
    the next one computes that delivery's subjects again, and its tables are whole (the
    superseded rows of a subject are neither lost nor counted twice), even when its inputs
    are again those of the run before (the stored papers of the killed run are not theirs)."""
    newest = _last_delivery(trial.gravimetry)
    touched = set(trial.gravimetry.filter(newest)["subject_id"])
    earlier = {"gravimetry": trial.gravimetry.filter(~newest)}
    _refresh(sweat_papers_derivation(), earlier, trial, tmp_path)

    write = subject_store._write_whole

    def killed(frame: pl.DataFrame, path: Path) -> None:
        if path.name.startswith("superseded"):
            raise KeyboardInterrupt
        write(frame, path)

    monkeypatch.setattr(subject_store, "_write_whole", killed)
    with pytest.raises(KeyboardInterrupt):
        derive_by_subject(
            sweat_papers_derivation(), {"gravimetry": trial.gravimetry}, trial.study, tmp_path, SALT
        )
    monkeypatch.setattr(subject_store, "_write_whole", write)
    back = _refresh(sweat_papers_derivation(), earlier, trial, tmp_path)
    assert set(back.recomputed) == touched & set(earlier["gravimetry"]["subject_id"])
    again = _refresh(sweat_papers_derivation(), {"gravimetry": trial.gravimetry}, trial, tmp_path)
    assert set(again.recomputed) == touched


def test_a_row_without_a_subject_is_an_error(trial: Trial, tmp_path: Path) -> None:
    orphan = trial.gravimetry.head(1).with_columns(subject_id=pl.lit(None, dtype=pl.String))
    with pytest.raises(ValueError, match="gravimetry: 1 rows without subject_id"):
        derive_by_subject(
            sweat_papers_derivation(),
            {"gravimetry": pl.concat([trial.gravimetry, orphan])},
            trial.study,
            tmp_path,
            SALT,
        )


@pytest.mark.parametrize(
    ("asset", "module"),
    [(sweat_papers, "trial.derive.gravimetry"), (adsweat, "trial.derive.sweat")],
)
def test_the_code_version_reaches_the_derivation(asset: dg.AssetsDefinition, module: str) -> None:
    """Editing the derivation's module changes the asset's code version, which is in the salt:
    the asset is recomputed, every subject of it."""
    modules: set[str] = set()
    freshness._reached(asset.op.compute_fn.decorated_fn, modules, {})
    assert module in freshness.module_closure(modules)
