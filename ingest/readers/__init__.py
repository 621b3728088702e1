"""Readers of the raw formats of ``specs/site-exports.md``, one module per format.

- :mod:`ingest.readers.edc`: EDC CSV exports and the sealed randomisation list;
- :mod:`ingest.readers.gravimetry`: gravimetry worksheets;
- :mod:`ingest.readers.vendor_a`: vendor-A session summaries;
- :mod:`ingest.readers.vendor_b`: vendor-B event streams;
- :mod:`ingest.readers.bench_ibu`, :mod:`ingest.readers.balance`: bench-unit captures.

Each returns typed Polars frames (types from ``data_contracts/<dataset>.odcs.yaml``) carrying
``source_file``/``source_line``, plus a quarantine frame, and defines its registry entry
(:mod:`ingest.registry`), through which the pipeline reads it: one delivery at a time, then
resolved across deliveries (:mod:`ingest.incremental`). Each module's whole-tree function
(``read_vendor_a(raw_root, manifest)`` and the like) reads the current files of a raw root at
once: the independent reference the per-delivery path is tested against.
"""
