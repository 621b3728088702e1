"""The per-subject derivations in a one-delivery refresh, with and without the incremental route
(``pipelines/subject_store.py``), back to back on the same tables.

For each trial size the demo study is simulated (seed 301) and its papers, visits and
demographics read by the whole-tree readers. The refresh adds the newest delivery folder's
papers to the rest (the state stored by the previous run). Per derivation (``sweat_papers``
with the superseded papers, then ``adsweat`` on the refreshed papers), CPU seconds of:

- ``whole``: the derivation as the assets ran it before (every subject, no sort, nothing
  stored);
- ``incremental``: :func:`~pipelines.subject_store.derive_by_subject` on the new inputs, its
  store holding the previous run (signatures, the changed subjects computed, stored rows read,
  the output sorted and written);
- ``incremental, no change``: the same inputs once more (what a refresh costs a derivation
  whose subjects a delivery did not touch).

Each figure is the mean of ``--repeat`` rounds (rounds alternate the routes); every result is
checked against the full computation. CPU is user + system time of this process
(``getrusage``).

Usage: ``python benchmarks/per_subject.py [--subjects 300 3000] [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import polars as pl  # noqa: E402
from polars.testing import assert_frame_equal  # noqa: E402

from data_contracts.contracts import use_study  # noqa: E402
from ingest.landing import scan_raw  # noqa: E402
from ingest.readers.edc import read_edc_table  # noqa: E402
from ingest.readers.gravimetry import read_gravimetry  # noqa: E402
from pipelines.assets.analysis_ready import (  # noqa: E402
    adsweat_derivation,
    sweat_papers_derivation,
)
from pipelines.subject_store import SubjectDerivation, derive_by_subject  # noqa: E402
from study import Study, load_study  # noqa: E402
from trial.derive.gravimetry import latest_papers, paper_rates  # noqa: E402
from trial.derive.sweat import derive_adsweat  # noqa: E402
from trial.simulate import simulate_trial  # noqa: E402

SALT = "benchmark"


def cpu_seconds() -> float:
    """User + system CPU of this process, in seconds."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def timed(fn: Callable[[], object]) -> float:
    start = cpu_seconds()
    fn()
    return cpu_seconds() - start


def newest_delivery(gravimetry: pl.DataFrame) -> pl.Expr:
    folder = pl.col("source_file").str.split("/").list.get(1)
    return folder == gravimetry["source_file"].str.split("/").list.get(1).max()


def papers_whole(inputs: Mapping[str, pl.DataFrame], study: Study) -> None:
    """``sweat_papers`` as the asset computed it before the incremental route."""
    latest, _ = latest_papers(inputs["gravimetry"])
    paper_rates(latest, study)


def adsweat_whole(inputs: Mapping[str, pl.DataFrame], study: Study) -> None:
    """``adsweat`` as the asset computed it before the incremental route."""
    derive_adsweat(inputs["sweat_papers"], inputs["visits"], inputs["dm"], study)


def measure(
    name: str,
    derivation: SubjectDerivation,
    before: dict[str, pl.DataFrame],
    after: dict[str, pl.DataFrame],
    whole: Callable[[Mapping[str, pl.DataFrame], Study], None],
    study: Study,
    repeat: int,
) -> None:
    full = derivation.full(after, study)
    costs = {"whole": 0.0, "incremental": 0.0, "incremental, no change": 0.0}
    recomputed = subjects = 0
    for _ in range(repeat):
        store = Path(tempfile.mkdtemp(prefix="per_subject_"))
        derive_by_subject(derivation, before, study, store, SALT)
        costs["whole"] += timed(lambda: whole(after, study))
        start = cpu_seconds()
        refresh = derive_by_subject(derivation, after, study, store, SALT)
        costs["incremental"] += cpu_seconds() - start
        start = cpu_seconds()
        again = derive_by_subject(derivation, after, study, store, SALT)
        costs["incremental, no change"] += cpu_seconds() - start
        for out, frame in full.items():
            assert_frame_equal(refresh.outputs[out], frame)
            assert_frame_equal(again.outputs[out], frame)
        recomputed, subjects = len(refresh.recomputed), refresh.subjects
        shutil.rmtree(store)
    cells = " | ".join(f"{1000 * c / repeat:.1f}" for c in costs.values())
    print(f"| {name} | {subjects} | {recomputed} | {cells} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, nargs="+", default=[300, 3000])
    parser.add_argument("--seed", type=int, default=301)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    study = load_study()
    use_study(study)
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(
        "| derivation | subjects | recomputed | whole ms CPU | incremental ms CPU | "
        "incremental, no change ms CPU |"
    )
    print("|---|---|---|---|---|---|")
    for n in args.subjects:
        work = Path(tempfile.mkdtemp(prefix="per_subject_trial_"))
        raw = work / "raw"
        simulate_trial(study, n, args.seed, raw)
        manifest = scan_raw(raw)
        gravimetry, _, _ = read_gravimetry(raw, manifest)
        visits, _ = read_edc_table(raw, manifest, "visits")
        dm, _ = read_edc_table(raw, manifest, "dm")
        earlier = gravimetry.filter(~newest_delivery(gravimetry))
        measure(
            "sweat_papers",
            sweat_papers_derivation(),
            {"gravimetry": earlier},
            {"gravimetry": gravimetry},
            papers_whole,
            study,
            args.repeat,
        )
        papers = {
            frames: sweat_papers_derivation().full({"gravimetry": g}, study)["sweat_papers"]
            for frames, g in (("before", earlier), ("after", gravimetry))
        }
        measure(
            "adsweat",
            adsweat_derivation(),
            {"sweat_papers": papers["before"], "visits": visits, "dm": dm},
            {"sweat_papers": papers["after"], "visits": visits, "dm": dm},
            adsweat_whole,
            study,
            args.repeat,
        )
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
