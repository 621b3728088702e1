"""Per-subject derivations kept between runs: each subject's output rows under
``OUT/.resolved/<derivation>/`` with the signature of the input rows they came from, so that a
refresh recomputes only the subjects a delivery touched (``docs/incremental.md``).

A derivation qualifies (:class:`SubjectDerivation`) when one subject's output rows depend only
on that subject's input rows, the study and the code: no value is taken across subjects. Which
of the pipeline's derivations do, and why the others do not, is said where they are declared
(:mod:`pipelines.assets.analysis_ready`).

- **Signature of a subject**: per input, the Polars row hash of each of the subject's rows (every
  column; the input's position in the derivation is the hash seed), in their order in the
  input, hashed as one list; a 64-bit hash. The order is kept because the derivations here
  depend on it (the tie-break of two rows of one paper; floating-point sums of a region's
  sides). A subject that appears in any input is current; its output may have no rows.
- **Salt**: the caller's (the asset's code version and the study file's digest) with the
  inputs' schemas and the Polars version (row hashes are stable only within one version). A
  stored state of another salt is not used: every subject is recomputed.
- **Refresh**: subjects whose signature differs from the stored one (changed or new) are
  computed in one call of the derivation on their rows; subjects no longer in any input are
  dropped; the others' rows are read back. Stored and new rows are put together and sorted
  (stably) by each output's ``order`` columns, then the subject; the full computation
  (:meth:`SubjectDerivation.full`) is sorted the same way, so both give the same frame, row
  order and dtypes included. Every output is handled alike, findings such as the superseded
  papers included: a subject's rows of every output are replaced together.
- **Crash safety** (as the telemetry ranges, :mod:`ingest.telemetry`): ``subjects.json``
  names only subjects whose rows are stored. Subjects to recompute or gone are removed from it
  before anything else is written; every file is written aside and renamed; the new
  signatures are listed last. A run killed on the way leaves its subjects unlisted, so they
  are computed again; stored rows of unlisted subjects are never read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipelines.write_whole import written_whole
from study import Study

INDEX = "subjects.json"

Compute = Callable[[Mapping[str, pl.DataFrame], Study], Mapping[str, pl.DataFrame]]


@dataclass(frozen=True)
class SubjectDerivation:
    """A derivation computed per subject: ``compute`` maps its ``inputs`` (frames by name,
    each with the ``key`` column) and the study to its outputs (frames by name, each with the
    ``key`` column, a String); ``order`` gives, per output, the columns its rows are sorted by (the
    subject is appended as the last sort column). ``name`` is the folder of its stored rows."""

    name: str
    inputs: tuple[str, ...]
    order: Mapping[str, tuple[str, ...]]
    compute: Compute
    key: str = "subject_id"

    def sort(self, output: str, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` in the output's order (stable: rows equal in every sort column keep the
        order the derivation gave them)."""
        columns = list(self.order[output])
        if self.key not in columns:
            columns.append(self.key)
        return frame.sort(columns, maintain_order=True)

    def full(self, inputs: Mapping[str, pl.DataFrame], study: Study) -> dict[str, pl.DataFrame]:
        """Every subject computed at once: what :func:`derive_by_subject` must equal."""
        out = self.compute(inputs, study)
        return {name: self.sort(name, out[name]) for name in self.order}


@dataclass(frozen=True)
class SubjectRefresh:
    """A refresh's outputs (frames by name) and what it did: the current subjects, those
    computed (changed or new; all of them when the salt changed) and those dropped (in no
    input any more)."""

    outputs: dict[str, pl.DataFrame]
    subjects: int
    recomputed: tuple[str, ...]
    dropped: tuple[str, ...]

    def metadata(self) -> dict[str, int]:
        """Counts for the asset's metadata (``RunReport.metadata``, the Dagster UI)."""
        return {
            "subjects": self.subjects,
            "subjects_recomputed": len(self.recomputed),
            "subjects_reused": self.subjects - len(self.recomputed),
            "subjects_dropped": len(self.dropped),
        }


def subject_signatures(inputs: Mapping[str, pl.DataFrame], key: str) -> dict[str, int]:
    """Subject -> 64-bit signature of its rows in every input (module docstring). A row
    without a subject cannot be placed: it is an error naming the input."""
    hashed = []
    for seed, name in enumerate(sorted(inputs)):
        frame = inputs[name]
        missing = frame[key].null_count()
        if missing:
            raise ValueError(
                f"{name}: {missing} rows without {key}: a per-subject derivation cannot place them"
            )
        hashed.append(frame.select(pl.col(key), _row=frame.hash_rows(seed=seed)))
    if not hashed:
        return {}
    signatures = (
        pl.concat(hashed).group_by(key).agg(pl.col("_row")).select(key, pl.col("_row").hash())
    )
    return dict(zip(signatures[key].to_list(), signatures["_row"].to_list(), strict=True))


def _salt(salt: str, inputs: Mapping[str, pl.DataFrame]) -> str:
    schemas = [f"{name}\t{inputs[name].schema}" for name in sorted(inputs)]
    text = "\n".join([salt, f"polars {pl.__version__}", *schemas])
    return hashlib.sha256(text.encode()).hexdigest()


def _read_index(store: Path, salt: str) -> dict[str, int]:
    """Stored subjects and signatures, empty when none are stored under ``salt``."""
    path = store / INDEX
    if not path.is_file():
        return {}
    index = json.loads(path.read_text("utf-8"))
    if index["salt"] != salt:
        return {}
    return {str(k): int(v) for k, v in index["subjects"].items()}


def _write_index(store: Path, salt: str, subjects: Mapping[str, int]) -> None:
    """Written aside and renamed: the index is whole, and names only stored subjects."""
    body = {"salt": salt, "subjects": dict(sorted(subjects.items()))}
    with written_whole(store / INDEX) as aside:
        aside.write_text(json.dumps(body), "utf-8")


def _rows(store: Path, output: str) -> Path:
    """Stored rows of ``output``: Arrow IPC, uncompressed (written and read in about a quarter
    of Parquet's time at these sizes; the tables themselves are Parquet under ``tables/``)."""
    return store / f"{output}.arrow"


def _write_whole(frame: pl.DataFrame, path: Path) -> None:
    """Written aside and renamed: a file at ``path`` is always whole."""
    with written_whole(path) as aside:
        frame.write_ipc(aside, compression="uncompressed")


def derive_by_subject(
    derivation: SubjectDerivation,
    inputs: Mapping[str, pl.DataFrame],
    study: Study,
    store_root: Path,
    salt: str,
) -> SubjectRefresh:
    """``derivation`` on ``inputs``, recomputing only the subjects whose rows changed since the
    rows stored under ``store_root/<derivation.name>`` (``salt``: the code version and the
    study; module docstring). Equal to :meth:`SubjectDerivation.full` on the same inputs."""
    store = Path(store_root) / derivation.name
    store.mkdir(parents=True, exist_ok=True)
    key = derivation.key
    frames = {name: inputs[name] for name in derivation.inputs}
    salt = _salt(salt, frames)
    current = subject_signatures(frames, key)
    stored = _read_index(store, salt)
    if not all(_rows(store, name).is_file() for name in derivation.order):
        stored = {}
    kept = {s: sig for s, sig in stored.items() if current.get(s) == sig}
    todo = sorted(s for s in current if s not in kept)
    dropped = tuple(sorted(s for s in stored if s not in current))
    listed = pl.Series(key, list(kept), dtype=pl.String).implode()
    if not todo and not dropped and kept:
        # Nothing to compute: the stored rows (of listed subjects only) are the output.
        outputs = {
            name: pl.read_ipc(_rows(store, name)).filter(pl.col(key).is_in(listed))
            for name in derivation.order
        }
        return SubjectRefresh(outputs, len(current), (), ())
    # Subjects to recompute or gone are forgotten first: a run killed from here on leaves
    # them to be computed again, never rows that their signature does not describe.
    _write_index(store, salt, kept)
    changed = pl.Series(key, todo, dtype=pl.String)
    new = derivation.compute(
        {name: f.filter(pl.col(key).is_in(changed.implode())) for name, f in frames.items()},
        study,
    )
    outputs = {}
    for name in derivation.order:
        frame = new[name]
        strays = frame.filter(~pl.col(key).is_in(changed.implode())).height
        if strays:
            raise ValueError(
                f"{derivation.name}: {strays} rows of {name} belong to subjects not computed: "
                "the derivation is not per subject"
            )
        if kept:
            earlier = pl.read_ipc(_rows(store, name)).filter(pl.col(key).is_in(listed))
            frame = pl.concat([earlier, frame], how="vertical")
        frame = derivation.sort(name, frame)
        _write_whole(frame, _rows(store, name))
        outputs[name] = frame
    _write_index(store, salt, {**kept, **{s: current[s] for s in todo}})
    return SubjectRefresh(outputs, len(current), tuple(todo), dropped)
