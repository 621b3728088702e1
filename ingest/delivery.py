"""A whole raw root read at once: every current typed frame, the quarantine and the manifest.

Kept out of ``ingest/readers/__init__.py`` so that importing one reader never imports the
others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ingest.device_sessions import (
    build_device_sessions,
    vendor_a_device_sessions,
    vendor_b_device_sessions,
)
from ingest.landing import landing_quarantine, scan_raw
from ingest.quarantine import combine
from ingest.readers.edc import read_edc_table, read_randomisation
from ingest.readers.gravimetry import read_gravimetry
from ingest.readers.vendor_a import earliest_consent, read_vendor_a
from ingest.readers.vendor_b import read_vendor_b
from ingest.sealed import sealed_signature
from study import Study

SessionReader = Callable[[Path, pl.DataFrame], tuple[pl.DataFrame, pl.DataFrame]]
"""Hook for further device-session sources (e.g. bench IBU captures): called with the raw root
and the landing manifest, returns (sessions in ``device_sessions`` columns, quarantine)."""


@dataclass(frozen=True)
class RawTables:
    """Every current typed raw frame of a raw root, with the quarantine and the manifest.

    ``randomisation`` is None unless the sealed list was included (unblinded run)."""

    manifest: pl.DataFrame
    dm: pl.DataFrame
    eligibility: pl.DataFrame
    visits: pl.DataFrame
    hdss: pl.DataFrame
    ae: pl.DataFrame
    disposition: pl.DataFrame
    devices: pl.DataFrame
    randomisation: pl.DataFrame | None
    gravimetry: pl.DataFrame
    gravimetry_duplicates: pl.DataFrame
    vendor_a_sessions: pl.DataFrame
    vendor_b_events: pl.DataFrame
    device_sessions: pl.DataFrame
    quarantine: pl.DataFrame

    def datasets(self) -> dict[str, pl.DataFrame]:
        """Dataset name (its contract's name) -> frame, for every frame present; the
        manifest is ``landing_manifest``."""
        frames = {
            "landing_manifest": self.manifest,
            "dm": self.dm,
            "eligibility": self.eligibility,
            "visits": self.visits,
            "hdss": self.hdss,
            "ae": self.ae,
            "disposition": self.disposition,
            "devices": self.devices,
            "randomisation": self.randomisation,
            "gravimetry": self.gravimetry,
            "vendor_a_sessions": self.vendor_a_sessions,
            "vendor_b_events": self.vendor_b_events,
            "device_sessions": self.device_sessions,
            "quarantine": self.quarantine,
        }
        return {k: v for k, v in frames.items() if v is not None}


def sealed_list_path(include_sealed: Path) -> Path:
    """The sealed ``randomisation.csv``: ``include_sealed`` itself or the file in that folder."""
    path = Path(include_sealed)
    return path / "randomisation.csv" if path.is_dir() else path


def read_delivery(
    raw_root: Path,
    study: Study,
    include_sealed: Path | None = None,
    extra_session_readers: Sequence[SessionReader] = (),
) -> RawTables:
    """Read every current file under ``raw_root`` (``<raw>/<centre>/<delivery>/<file>``).

    ``include_sealed``: the sealed randomisation list (file or its folder) for an unblinded
    run; None (blinded) leaves ``randomisation`` None. ``extra_session_readers`` append further
    device sessions (bench units) to ``device_sessions``."""
    raw_root = Path(raw_root)
    manifest = scan_raw(raw_root, sealed=sealed_signature(study))
    quarantines = [landing_quarantine(manifest)]
    edc: dict[str, pl.DataFrame] = {}
    for table in ("dm", "eligibility", "visits", "hdss", "ae", "disposition", "devices"):
        edc[table], q = read_edc_table(raw_root, manifest, table)
        quarantines.append(q)
    randomisation = None
    if include_sealed is not None:
        randomisation, q = read_randomisation(sealed_list_path(include_sealed))
        quarantines.append(q)
    gravimetry, q, duplicates = read_gravimetry(raw_root, manifest)
    quarantines.append(q)
    vendor_a, q = read_vendor_a(raw_root, manifest, earliest_consent(edc["dm"], edc["devices"]))
    quarantines.append(q)
    vendor_b, q = read_vendor_b(raw_root, manifest)
    quarantines.append(q)
    extra = []
    for reader in extra_session_readers:
        sessions, q = reader(raw_root, manifest)
        extra.append(sessions)
        quarantines.append(q)
    device_sessions = build_device_sessions(
        [vendor_a_device_sessions(vendor_a), vendor_b_device_sessions(vendor_b, study), *extra]
    )
    return RawTables(
        manifest=manifest,
        dm=edc["dm"],
        eligibility=edc["eligibility"],
        visits=edc["visits"],
        hdss=edc["hdss"],
        ae=edc["ae"],
        disposition=edc["disposition"],
        devices=edc["devices"],
        randomisation=randomisation,
        gravimetry=gravimetry,
        gravimetry_duplicates=duplicates,
        vendor_a_sessions=vendor_a,
        vendor_b_events=vendor_b,
        device_sessions=device_sessions,
        quarantine=combine(quarantines),
    )
