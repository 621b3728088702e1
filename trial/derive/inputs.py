"""What the derivations read: the reader's typed raw frames, seen through a protocol.

``ingest.delivery.read_delivery`` returns a ``RawTables``; the derivations only need the
attributes below, so any object carrying them (the reader's dataclass, or a hand-built one in
a test) can be derived. Column names are those of ``specs/site-exports.md`` plus the reader's
lineage columns (``source_file``, ``source_line``) and the derived columns
``docs/architecture.md`` lists.
"""

from __future__ import annotations

from typing import Protocol

import polars as pl


class RawFrames(Protocol):
    """The raw frames a derivation run reads. ``randomisation`` is ``None`` when blinded."""

    @property
    def dm(self) -> pl.DataFrame: ...

    @property
    def eligibility(self) -> pl.DataFrame: ...

    @property
    def visits(self) -> pl.DataFrame: ...

    @property
    def hdss(self) -> pl.DataFrame: ...

    @property
    def ae(self) -> pl.DataFrame: ...

    @property
    def disposition(self) -> pl.DataFrame: ...

    @property
    def devices(self) -> pl.DataFrame: ...

    @property
    def randomisation(self) -> pl.DataFrame | None: ...

    @property
    def gravimetry(self) -> pl.DataFrame: ...

    @property
    def vendor_b_events(self) -> pl.DataFrame: ...

    @property
    def device_sessions(self) -> pl.DataFrame: ...
