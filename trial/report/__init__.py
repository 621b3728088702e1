"""Reports and exports: the investigator report, the data-quality report, XPT v5 exports, and
the blinded-output leak scan. Dagster-free; ``pipelines/`` and ``ionto run`` call these."""
