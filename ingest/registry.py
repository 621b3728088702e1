"""The registry of raw source formats: one line per format, in resolution order.

Each entry (:class:`~ingest.source_format.SourceFormat`) lives in its reader's module and says
everything the pipeline needs of the format: file pattern, reader, contracts, resolution and
how its rows become device sessions or papers. Landing (:mod:`ingest.landing`), incremental
reading (:mod:`ingest.incremental`), the raw assets and the device sessions iterate over
:data:`SOURCES`; a new format (a third device vendor, another EDC export) is its module plus
one line here.

Order matters twice: a file takes the kind of the first pattern it matches, and a format is
resolved after those it ``needs`` (the vendor-A clock test needs ``dm`` and ``devices``) and
after every format that makes papers (bench weighings before the worksheets they join).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from data_contracts.contracts import (
    CONTRACT_DIR,
    CONTRACT_SUFFIX,
    EDC_TABLES,
    contract_path,
    contract_template,
)
from ingest import telemetry
from ingest.readers import balance, bench_ibu, gravimetry, vendor_a
from ingest.readers.edc import SEALED_LIST, edc_source
from ingest.source_format import SourceFormat, check_registry

CAPTURE_STATE = SourceFormat(
    kind="capture_state", pattern=r"^capture-(ibu|balance)\.checkpoint\.json(\.tmp)?$"
)
"""The bench capture driver's own checkpoint (``ingest.bench``): landed with the captures,
never read as data."""

SOURCES: tuple[SourceFormat, ...] = check_registry(
    (
        *(edc_source(table) for table in EDC_TABLES),
        SEALED_LIST,
        balance.SOURCE,
        gravimetry.SOURCE,
        vendor_a.SOURCE,
        telemetry.SOURCE,
        bench_ibu.SOURCE,
        CAPTURE_STATE,
    )
)
"""Every raw source format the pipeline reads (or knows and deliberately leaves unread)."""


def edc_tables(sources: Sequence[SourceFormat] = SOURCES) -> tuple[str, ...]:
    """The EDC exports a centre delivers (``randomisation`` is sealed: not one of them)."""
    return tuple(s.kind for s in sources if s.edc)


def raw_dataset_names(sources: Sequence[SourceFormat] = SOURCES) -> tuple[str, ...]:
    """Every dataset the formats yield, in registry order (the raw assets, with ``quarantine``)."""
    return tuple(name for s in sources for name in s.datasets)


def delivery_kinds(sources: Sequence[SourceFormat] = SOURCES) -> tuple[str, ...]:
    """Kinds read per delivery: the frames of a stored delivery besides its ``quarantine``."""
    return tuple(s.kind for s in sources if s.read is not None)


def session_inputs(sources: Sequence[SourceFormat] = SOURCES) -> tuple[str, ...]:
    """The datasets ``device_sessions`` is made from."""
    return tuple(name for s in sources for name in s.session_inputs)


def contract_files(sources: Sequence[SourceFormat] = SOURCES) -> tuple[Path, ...]:
    """The contract files the formats name outside ``data_contracts/`` (a format's own
    contract, e.g. a new vendor's kept beside its module), once each in registry order: a run
    writes them, resolved, to ``OUT/contracts/`` with the others."""
    named = (s.contract(dataset) for s in sources for dataset in s.datasets)
    files = (Path(c).resolve() for c in named if str(c).endswith(CONTRACT_SUFFIX))
    return tuple(dict.fromkeys(f for f in files if f.parent != CONTRACT_DIR.resolve()))


SUBJECT_REGISTER = "dm"
"""The dataset that registers subjects (the subject rules judge the others against it)."""


def _names_subjects(source: SourceFormat, dataset: str) -> bool:
    """Whether ``dataset``'s contract has a ``subject_id`` column (False without a contract)."""
    contract = source.contract(dataset)
    if not str(contract).endswith(CONTRACT_SUFFIX) and not contract_path(str(contract)).is_file():
        return False
    return "subject_id" in contract_template(contract).columns


def subject_datasets(sources: Sequence[SourceFormat] = SOURCES) -> tuple[str, ...]:
    """The datasets whose rows name a subject (their contract has ``subject_id``), in registry
    order, which the trial-level subject rules judge: every one but the register itself and
    those of formats that make papers (their rows are judged as the ``gravimetry`` papers
    they become). A new format with subject rows needs no edit elsewhere."""
    return tuple(
        dataset
        for s in sources
        if s.papers is None
        for dataset in s.datasets
        if dataset != SUBJECT_REGISTER and _names_subjects(s, dataset)
    )
