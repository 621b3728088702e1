"""Readers of the raw formats of ``specs/site-exports.md``, one module per format.

- :mod:`ingest.readers.edc`: EDC CSV exports and the sealed randomisation list;
- :mod:`ingest.readers.gravimetry`: gravimetry worksheets;
- :mod:`ingest.readers.vendor_a`: vendor-A session summaries;
- :mod:`ingest.readers.vendor_b`: vendor-B event streams.

Each returns typed Polars frames (types from ``data_contracts/<dataset>.odcs.yaml``) carrying
``source_file``/``source_line``, plus a quarantine frame. ``read_delivery`` (defined in
:mod:`ingest.delivery`, also importable from here) reads a whole raw root at once; the
per-reader functions stay public so the Dagster layer can make one asset per dataset.
"""

from __future__ import annotations

from typing import Any

_DELIVERY_NAMES = ("RawTables", "SessionReader", "read_delivery", "sealed_list_path")


def __getattr__(name: str) -> Any:
    """``ingest.readers.read_delivery`` (and ``RawTables``) without importing every reader on
    ``import ingest.readers``: they live in :mod:`ingest.delivery`, loaded on first use."""
    if name in _DELIVERY_NAMES:
        from ingest import delivery

        return getattr(delivery, name)
    raise AttributeError(f"module 'ingest.readers' has no attribute {name!r}")
