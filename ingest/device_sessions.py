"""``device_sessions``: one row per distinct home-device session, all vendors.

Vendor A sessions come summarised by the device (``vendor_a_sessions``); vendor B sessions are
summarised from their events (:func:`ingest.readers.vendor_b.summarise_sessions`); bench-unit
(IBU) sessions, or any other source, are appended through ``extra`` frames that already have
the ``device_sessions`` columns (the contract is checked, nothing is coerced).

``session_key``: ``A:<serial>:<session_no>:<start as printed>`` (the counter alone is not a key:
it restarts after a factory reset) and ``B:<dev>:<sid>``. ``start_utc`` is the start as the
device recorded it; ``start_utc_placed`` the reader's placement of a clock-reset session.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from data_contracts.contracts import cast_frame, empty_frame, load_contract
from ingest.readers.vendor_b import summarise_sessions
from trial.study import Study

DATASET = "device_sessions"


def vendor_a_device_sessions(vendor_a_sessions: pl.DataFrame) -> pl.DataFrame:
    """Vendor-A sessions in ``device_sessions`` columns (``end_utc`` = start + duration;
    ``within_tolerance_share`` null: vendor A reports no samples)."""
    contract = load_contract(DATASET)
    frame = vendor_a_sessions.select(
        device_serial=pl.col("serial"),
        vendor=pl.lit("A"),
        session_key=pl.concat_str(
            pl.lit("A:"),
            "serial",
            pl.lit(":"),
            pl.col("session_no").cast(pl.String),
            pl.lit(":"),
            "start",
        ),
        start_utc="start_utc",
        end_utc=pl.col("start_utc") + pl.duration(seconds=pl.col("duration_s")),
        duration_s=pl.col("duration_s").cast(pl.Float64),
        programmed_ma="programmed_ma",
        mean_ma="mean_ma",
        charge_mc="charge_mc",
        polarity_switches="polarity_switches",
        end_reason="end_reason",
        fault_code="fault_code",
        within_tolerance_share=pl.lit(None, dtype=pl.Float64),
        clock_reset="clock_reset",
        n_duplicate_events=pl.lit(0, dtype=pl.Int64),
        start_utc_placed="start_utc_placed",
        source_files="source_files",
    )
    return cast_frame(frame, contract)


def vendor_b_device_sessions(vendor_b_events: pl.DataFrame, study: Study) -> pl.DataFrame:
    """Vendor-B sessions summarised from events, tolerance from the study configuration."""
    summary = summarise_sessions(vendor_b_events, study.current_tolerance_pct).collect()
    return cast_frame(summary, load_contract(DATASET))


def build_device_sessions(
    vendor_a_sessions: pl.DataFrame,
    vendor_b_events: pl.DataFrame,
    study: Study,
    extra: Sequence[pl.DataFrame] = (),
) -> pl.DataFrame:
    """All vendors' sessions in one frame, sorted by serial and start.

    ``extra``: further session frames in ``device_sessions`` columns (e.g. the bench IBU
    reader's); each is cast strictly to the contract, so a missing column or a value of the
    wrong type raises instead of being coerced."""
    contract = load_contract(DATASET)
    frames = [
        empty_frame(contract),
        vendor_a_device_sessions(vendor_a_sessions),
        vendor_b_device_sessions(vendor_b_events, study),
        *(cast_frame(f, contract) for f in extra),
    ]
    return pl.concat(frames, how="vertical").sort(
        "device_serial", "start_utc", "session_key", nulls_last=True
    )
