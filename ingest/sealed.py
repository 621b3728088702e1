"""Recognising the sealed randomisation list wherever it lies in the raw tree, by its bytes.

The sealed list (``randomisation.csv``: ``subject_id``, ``rand_date``, ``stratum``, ``arm``)
goes only to the unblinded statistician. If a copy reaches the raw tree - under its own
name, another name (a vendor-B file name, ``dm.csv``), at the root or in a centre folder - no
reader may open it: a reader would put its lines into the quarantine's ``raw_text``, into
stored partitions and into Dagster's previews, and a blinded run would hold the arms.

:func:`looks_sealed` decides from the first :data:`SNIFF_BYTES` of a file (a copy of the list
is a small file whose first lines show what it is) without keeping any of it:

- **header**: a line whose fields (split at ``,``, ``;``, tab, ``|``, quotes, JSON
  punctuation and spaces; case ignored) name the list's key column and its arm column, or at
  least three of its four columns (CSV in any column order or delimiter, JSON keys);
- **content** (a copy without header): a line with one of the study's arm codes as a whole
  field, together with one of its stratum codes or an ISO date (``C01-0001,2026-02-16,HDSS3,GLY``
  in any order). No other raw format carries an arm code: only the sealed list does.

Column names come from the ``randomisation`` contract; arm and stratum codes from the study
(:meth:`SealedListSignature.from_codes`). Without them (a signature built by
:meth:`SealedListSignature.header_only`) only the header rule applies; the pipeline always
passes the study's codes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from data_contracts.contracts import contract_template
from study import Study

SNIFF_BYTES = 64 * 1024
"""Bytes read from the start of a file to recognise the sealed list (64 KiB: about a
thousand lines of the list)."""

_FIELD_SPLIT = re.compile(r"""[,;\t|{}\[\]:"'\s]+""")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LINEAGE = ("source_file", "source_line")
_KEY_COLUMN = "subject_id"
_ARM_COLUMN = "arm"


@dataclass(frozen=True)
class SealedListSignature:
    """What gives the sealed list away: its column names (lower case), and the study's arm and
    stratum codes (empty sets: header rule only)."""

    columns: frozenset[str]
    arm_codes: frozenset[str]
    stratum_codes: frozenset[str]

    @classmethod
    def from_codes(
        cls, arm_codes: Iterable[str], stratum_codes: Iterable[str]
    ) -> SealedListSignature:
        """The signature of a study whose arms and strata have these codes."""
        return cls(
            columns=_sealed_columns(),
            arm_codes=frozenset(arm_codes),
            stratum_codes=frozenset(stratum_codes),
        )

    @classmethod
    def header_only(cls) -> SealedListSignature:
        """Recognises the list by its header only (no study at hand)."""
        return cls(columns=_sealed_columns(), arm_codes=frozenset(), stratum_codes=frozenset())


def _sealed_columns() -> frozenset[str]:
    contract = contract_template("randomisation")
    return frozenset(c.lower() for c in contract.columns if c not in _LINEAGE)


def _fields(line: str) -> list[str]:
    return [f for f in _FIELD_SPLIT.split(line.strip().lstrip("\ufeff")) if f]


def _is_header(fields: list[str], signature: SealedListSignature) -> bool:
    names = {f.lower() for f in fields} & signature.columns
    return {_KEY_COLUMN, _ARM_COLUMN} <= names or len(names) >= 3


def _is_row(fields: list[str], signature: SealedListSignature) -> bool:
    if not signature.arm_codes or signature.arm_codes.isdisjoint(fields):
        return False
    return not signature.stratum_codes.isdisjoint(fields) or any(_ISO_DATE.match(f) for f in fields)


def looks_sealed(head: bytes, signature: SealedListSignature) -> bool:
    """True if ``head`` (the first bytes of a file) shows a header or a row of the sealed list
    (module docstring). Undecodable bytes are replaced, so any file can be judged. Lines are
    split into fields only where a column name or an arm code occurs at all (most files of a
    landing area are telemetry, judged by two substring searches)."""
    text = head.decode("utf-8", errors="replace")
    lowered = text.lower()
    names = {c for c in signature.columns if c in lowered}
    header_possible = {_KEY_COLUMN, _ARM_COLUMN} <= names or len(names) >= 3
    codes = [c for c in signature.arm_codes if c in text]
    if not header_possible and not codes:
        return False
    for line in text.splitlines():
        header_here = header_possible and any(name in line.lower() for name in names)
        row_here = any(code in line for code in codes)
        if not (header_here or row_here):
            continue
        fields = _fields(line)
        if fields and (_is_header(fields, signature) or _is_row(fields, signature)):
            return True
    return False


def file_looks_sealed(path: Path, signature: SealedListSignature) -> bool:
    """:func:`looks_sealed` on the first :data:`SNIFF_BYTES` of the regular file ``path``."""
    with Path(path).open("rb") as handle:
        return looks_sealed(handle.read(SNIFF_BYTES), signature)


def sealed_signature(study: Study) -> SealedListSignature:
    """The sealed list's signature for ``study``: its arm codes and stratum codes."""
    return SealedListSignature.from_codes(study.arm_codes, study.stratum_levels.values())
