"""Readers of the raw formats of ``specs/site-exports.md``, one module per format.

- :mod:`ingest.readers.edc`: EDC CSV exports and the sealed randomisation list;
- :mod:`ingest.readers.gravimetry`: gravimetry worksheets;
- :mod:`ingest.readers.vendor_a`: vendor-A session summaries;
- :mod:`ingest.readers.vendor_b`: vendor-B event streams.

Each returns typed Polars frames (types from ``data_contracts/<dataset>.odcs.yaml``) carrying
``source_file``/``source_line``, plus a quarantine frame. :func:`ingest.delivery.read_delivery`
reads a whole raw root at once; the per-reader functions stay public so the Dagster layer can
make one asset per dataset.
"""
