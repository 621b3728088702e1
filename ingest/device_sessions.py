"""``device_sessions``: one row per distinct home-device session, all vendors.

Vendor A sessions come summarised by the device (``vendor_a_sessions``); vendor B sessions are
summarised from their events (:func:`summarise_sessions`); bench-unit
(IBU) sessions from their 10 Hz samples; each source format of the registry says how its rows
become sessions (:func:`registry_device_sessions`; the contract is checked, nothing is
coerced).

``session_key``: ``A:<serial>:<session_no>:<start as printed>`` (the counter alone is not a key:
it restarts after a factory reset) and ``B:<dev>:<sid>``. ``start_utc`` is the start as the
device recorded it; ``start_utc_placed`` the reader's placement of a clock-reset session.

Per device, not per subject: a session's row uses only its device's rows (events, export rows,
samples) and the study's tolerance. The pipeline recomputes ``device_sessions`` whole: its
vendor-B sessions come already resolved per range of devices (``ingest/telemetry.py``), vendor
A's are a renaming of rows, and what is left (a cast and a sort, about 7 ms at 300 subjects)
costs less than signatures of its inputs would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from data_contracts.contracts import cast_frame, empty_frame, load_contract
from ingest.source_format import SourceFormat

DATASET = "device_sessions"


def sample_statistics(
    ma: pl.Expr, t_s: pl.Expr, programmed_ma: pl.Expr, tolerance_pct: float
) -> dict[str, pl.Expr]:
    """Aggregations over one session's samples, ``ma`` (current magnitude, mA) and ``t_s``
    (time, s) both in time order: ``mean_ma``; ``charge_mc``, the trapezoid integral of the
    current over time (mA x s = mC; nothing assumed before the first or after the last
    sample); ``within_tolerance_share``, the share of samples within ``tolerance_pct`` % of
    ``programmed_ma``."""
    return {
        "mean_ma": ma.mean(),
        "charge_mc": ((ma + ma.shift(1)) / 2 * t_s.diff()).sum(),
        "within_tolerance_share": (
            (ma - programmed_ma).abs() <= programmed_ma * tolerance_pct / 100.0
        )
        .mean()
        .cast(pl.Float64),
    }


def summarise_sessions(events: pl.DataFrame | pl.LazyFrame, tolerance_pct: float) -> pl.LazyFrame:
    """One row per (``dev``, ``sid``) in ``device_sessions`` columns (lazy).

    - ``start_utc``: the ``start`` event (else the first event); ``end_utc``: the ``end`` event
      (else the last event); ``duration_s`` = end - start in seconds;
    - ``programmed_ma``: ``ma_set`` of the start event; ``mean_ma``: mean sample ``ma``;
    - ``charge_mc``: trapezoid integral of sample ``ma`` over sample time stamps
      (mA x s = mC); no charge is assumed before the first or after the last sample;
    - ``polarity_switches``: number of ``polarity`` events; ``fault_code``: the first fault's
      code; ``end_reason``: the end event's reason;
    - ``within_tolerance_share``: share of samples with |ma - ma_set| <= tolerance_pct % of
      ``ma_set`` (study ``treatment.current_tolerance_pct``);
    - ``n_duplicate_events``: exact duplicate lines dropped (from ``n_duplicates``, if present).
    """
    lf = events.lazy()
    if "n_duplicates" not in lf.collect_schema().names():
        lf = lf.with_columns(n_duplicates=pl.lit(0, dtype=pl.Int64))
    key = ["dev", "sid"]
    ts = pl.col("ts")
    is_start = pl.col("ev") == "start"
    summary = lf.group_by(key).agg(
        start_utc=pl.coalesce(ts.filter(is_start).min(), ts.min()),
        end_utc=pl.coalesce(ts.filter(pl.col("ev") == "end").max(), ts.max()),
        programmed_ma=pl.col("ma_set").filter(is_start).sort_by(ts.filter(is_start)).first(),
        polarity_switches=(pl.col("ev") == "polarity").sum().cast(pl.Int64),
        fault_code=pl.col("code")
        .filter(pl.col("ev") == "fault")
        .sort_by(ts.filter(pl.col("ev") == "fault"))
        .first(),
        end_reason=pl.col("reason")
        .filter(pl.col("ev") == "end")
        .sort_by(ts.filter(pl.col("ev") == "end"))
        .last(),
        n_duplicate_events=pl.col("n_duplicates").sum().cast(pl.Int64),
        source_files=pl.col("source_file").unique().sort(),
    )
    ma = pl.col("ma").sort_by("ts")
    t_s = pl.col("ts").sort().dt.epoch("us").cast(pl.Float64) / 1e6
    samples = (
        lf.filter(pl.col("ev") == "sample")
        .join(summary.select(*key, "programmed_ma"), on=key, how="left")
        .group_by(key)
        .agg(**sample_statistics(ma, t_s, pl.col("programmed_ma"), tolerance_pct))
    )
    return (
        summary.join(samples, on=key, how="left")
        .select(
            device_serial=pl.col("dev"),
            vendor=pl.lit("B"),
            session_key=pl.concat_str(pl.lit("B:"), "dev", pl.lit(":"), "sid"),
            start_utc="start_utc",
            end_utc="end_utc",
            duration_s=(pl.col("end_utc") - pl.col("start_utc")).dt.total_microseconds() / 1e6,
            programmed_ma="programmed_ma",
            mean_ma="mean_ma",
            charge_mc="charge_mc",
            polarity_switches="polarity_switches",
            end_reason="end_reason",
            fault_code="fault_code",
            within_tolerance_share=pl.col("within_tolerance_share").cast(pl.Float64),
            clock_reset=pl.lit(False),
            n_duplicate_events="n_duplicate_events",
            start_utc_placed="start_utc",
            source_files="source_files",
        )
        .sort("device_serial", "start_utc")
    )


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


def build_device_sessions(parts: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """Session frames in ``device_sessions`` columns (one per source format) as one frame,
    sorted by serial, start and key. Each frame is cast strictly to the contract, so a missing
    column or a value of the wrong type raises instead of being coerced."""
    contract = load_contract(DATASET)
    frames = [empty_frame(contract), *(cast_frame(f, contract) for f in parts)]
    return pl.concat(frames, how="vertical").sort(
        "device_serial", "start_utc", "session_key", nulls_last=True
    )


def registry_device_sessions(
    sources: Sequence[SourceFormat], datasets: Mapping[str, pl.DataFrame], tolerance_pct: float
) -> pl.DataFrame:
    """``device_sessions`` from every registered format that makes sessions: each format's
    ``sessions`` applied to its ``session_inputs`` among ``datasets`` (``tolerance_pct``: the
    study's ``treatment.current_tolerance_pct``)."""
    return build_device_sessions(
        [
            s.sessions({name: datasets[name] for name in s.session_inputs}, tolerance_pct)
            for s in sources
            if s.sessions is not None
        ]
    )
