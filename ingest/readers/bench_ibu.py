"""Bench IBU-1 captures ``ibu_<NNNNNN>_<unit>_<yyyymmddTHHMMSSZ>.jsonl`` (``ionto capture ibu``).

One JSON object per line: a good frame (``host_ts, unit, boot, seq, type, raw``), a ``GAP``
(``boot, from_seq, to_seq``; ``to_seq`` null when unknowable) or a ``BAD`` frame (``raw``
escaped, ``reason``). Outputs:

- ``bench_ibu_frames``: one row per good frame with lineage and the frame's fields parsed from
  ``raw`` (contract ``bench_ibu_frames``); the same (unit, boot, seq) in two files is kept once
  (the first by file name and line) and the repeat quarantined as ``DUPLICATE_KEY``;
- quarantine rows: ``BAD_FRAME`` per ``BAD`` record, ``FRAME_GAP`` per ``GAP`` record (data
  quality findings: data the unit sent that is lost), ``BAD_JSON``/``TRUNCATED_LINE`` for lines
  that are not records;
- ``device_sessions`` rows, vendor ``IBU``, summarised from the 10 Hz samples like vendor B.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import polars as pl

from data_contracts.contracts import cast_frame, empty_frame, load_contract
from ingest.device_sessions import sample_statistics
from ingest.integrity import plausibility
from ingest.quarantine import combine
from ingest.readers.text import numbered_lines, relative_name
from ingest.source_format import Resolution, Resolved, SourceFormat

DATASET = "bench_ibu_frames"
LANDING_KIND = "bench_ibu"

_RECORD = pl.Struct(
    {
        "host_ts": pl.String,
        "unit": pl.String,
        "boot": pl.String,
        "seq": pl.Int64,
        "type": pl.String,
        "raw": pl.String,
        "reason": pl.String,
        "from_seq": pl.Int64,
        "to_seq": pl.Int64,
    }
)
END_REASONS = {"COMPLETED": "COMPLETED", "STOPPED": "STOPPED_BY_USER", "FAULT": "FAULT"}
INTERRUPTED = "INTERRUPTED"
"""End reason of a session cut by a unit power-cycle (no ``SES END``; bench-protocols.md)."""


def _lines(path: Path, raw_root: Path) -> tuple[pl.DataFrame | None, pl.DataFrame]:
    """Non-blank lines; ``is_last`` marks a last line with no line end (cut off mid-write)."""
    lines, q = numbered_lines(path, raw_root, DATASET)
    if lines is None:
        return None, q
    unterminated = pl.col("is_last") & ~pl.col("file_terminated")
    return lines.with_columns(is_last=unterminated).drop("file_terminated"), q


def _decode(lines: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Decode each line into ``_j``; lines that are not JSON objects go to quarantine."""
    text = pl.col("raw_text").str.strip_chars()
    lines = lines.with_columns(_ok=text.str.starts_with("{") & text.str.ends_with("}"))
    try:
        good = lines.filter("_ok").with_columns(_j=pl.col("raw_text").str.json_decode(_RECORD))
    except pl.exceptions.ComputeError:
        import json

        def ok(line: str) -> bool:
            try:
                return isinstance(json.loads(line), dict)
            except ValueError:
                return False

        flags = [ok(t) for t in lines["raw_text"].to_list()]
        lines = lines.with_columns(_ok=pl.Series(flags, dtype=pl.Boolean))
        good = lines.filter("_ok").with_columns(_j=pl.col("raw_text").str.json_decode(_RECORD))
    bad = lines.filter(~pl.col("_ok"))
    q = bad.select(
        dataset=pl.lit(DATASET),
        source_file="source_file",
        source_line="source_line",
        field=pl.lit(None, dtype=pl.String),
        reason_code=pl.when("is_last").then(pl.lit("TRUNCATED_LINE")).otherwise(pl.lit("BAD_JSON")),
        message=pl.format(
            "{} line {}: not a capture record (a JSON object); {}",
            "source_file",
            "source_line",
            pl.when("is_last")
            .then(pl.lit("the last line was cut off (driver stopped while writing)"))
            .otherwise(pl.lit("the line is kept here unread")),
        ),
        raw_text="raw_text",
    )
    return good.unnest("_j"), q


def _fields(frames: pl.DataFrame) -> pl.DataFrame:
    """Parse the frame text: ``$TYPE,boot,seq,f0,f1,f2,f3*CRC`` -> typed columns."""
    body = pl.col("raw").str.strip_prefix("$").str.replace(r"\*[0-9A-F]{4}$", "")
    tok = body.str.split(",")
    f = [tok.list.get(i, null_on_oob=True) for i in range(3, 7)]
    t = pl.col("type")
    is_smp, is_ses, is_evt = t == "SMP", t == "SES", t == "EVT"
    return frames.with_columns(
        sid=pl.when(is_smp | is_ses | is_evt).then(f[0]),
        event=pl.when(is_ses | is_evt).then(pl.when(is_ses).then(f[1]).otherwise(f[2])),
        t_ms=pl.when(is_smp | is_evt)
        .then(f[1])
        .when(is_ses & (f[1] == "END"))
        .then(f[3])
        .cast(pl.Int64),
        ma=pl.when(is_smp).then(f[2]).cast(pl.Float64),
        v=pl.when(is_smp).then(f[3]).cast(pl.Float64),
        ma_set=pl.when(is_ses & (f[1] == "START")).then(f[2]).cast(pl.Float64),
        duration_s=pl.when(is_ses & (f[1] == "START")).then(f[3]).cast(pl.Int64),
        end_reason=pl.when(is_ses & (f[1] == "END")).then(f[2]),
        fault_code=pl.when(is_evt & (f[2] == "FAULT")).then(f[3]),
        firmware=pl.when(t == "HELLO").then(f[1]),
    )


def read_bench_ibu_files(paths: list[Path], raw_root: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Capture files (in path order: centre, delivery date, then name = write order) ->
    (typed frames, quarantine)."""
    contract = load_contract(DATASET)
    parts: list[pl.DataFrame] = []
    quarantines: list[pl.DataFrame] = []
    for path in sorted(paths, key=lambda p: relative_name(Path(p), Path(raw_root))):
        lines, q = _lines(Path(path), Path(raw_root))
        quarantines.append(q)
        if lines is not None and lines.height:
            records, q_json = _decode(lines)
            quarantines.append(q_json)
            parts.append(records)
    if not parts:
        return empty_frame(contract), combine(quarantines)
    records = pl.concat(parts, how="vertical")
    kind = pl.col("type")
    findings = records.filter(kind.is_in(["BAD", "GAP"])).select(
        dataset=pl.lit(DATASET),
        source_file="source_file",
        source_line="source_line",
        field=pl.when(kind == "BAD").then(pl.lit("raw")).otherwise(pl.lit("seq")),
        reason_code=pl.when(kind == "BAD").then(pl.lit("BAD_FRAME")).otherwise(pl.lit("FRAME_GAP")),
        message=pl.when(kind == "BAD")
        .then(
            pl.format(
                "{} line {}: unit {} sent a bad frame ({}); kept unparsed",
                "source_file",
                "source_line",
                pl.col("unit").fill_null("?"),
                "reason",
            )
        )
        .otherwise(
            pl.format(
                "{} line {}: unit {} boot {}: frames {} to {} were lost (not recoverable)",
                "source_file",
                "source_line",
                pl.col("unit").fill_null("?"),
                "boot",
                "from_seq",
                pl.col("to_seq").cast(pl.String).fill_null("an unknown last seq"),
            )
        ),
        raw_text="raw_text",
    )
    frames = records.filter(~kind.is_in(["BAD", "GAP"]))
    dup = ~pl.struct("unit", "boot", "seq").is_first_distinct()
    q_dup = frames.filter(dup).select(
        dataset=pl.lit(DATASET),
        source_file="source_file",
        source_line="source_line",
        field=pl.lit("seq"),
        reason_code=pl.lit("DUPLICATE_KEY"),
        message=pl.format(
            "{} line {}: frame {} of boot {} (unit {}) was already read from an earlier line or "
            "file; this copy is not used",
            "source_file",
            "source_line",
            "seq",
            "boot",
            "unit",
        ),
        raw_text="raw_text",
    )
    frames = _fields(frames.filter(~dup)).with_columns(
        host_ts=pl.col("host_ts").str.to_datetime(time_zone="UTC", time_unit="us")
    )
    typed = cast_frame(frames.select(contract.columns), contract)
    return typed, combine([*quarantines, findings, q_dup])


def resolve_bench_ibu(resolution: Resolution) -> Resolved:
    """Every current capture file, read across delivery folders (a driver restarted into a
    new date folder fetches again frames an earlier folder holds: only a read across folders
    finds those repeats) -> ``bench_ibu_frames`` with plausible numbers, and the quarantine."""
    paths = resolution.current_paths(LANDING_KIND)
    if not paths:
        return Resolved({DATASET: empty_frame(load_contract(DATASET))})
    frames, q_read = read_bench_ibu_files(paths, resolution.raw_root)
    frames, q_values = plausibility(frames, DATASET, raw_root=resolution.raw_root)
    return Resolved({DATASET: frames}, combine([q_read, q_values]))


def ibu_device_sessions(frames: pl.DataFrame, tolerance_pct: float) -> pl.DataFrame:
    """One ``device_sessions`` row per (unit, boot, sid), vendor ``IBU``.

    - ``start_utc``: the unit has no clock, so the start is estimated from host receipt times
      as the earliest ``host_ts - t_ms`` over the session's frames (the least delayed frame;
      frames fetched again by ``RESEND`` arrive late and do not move it);
      ``end_utc`` = start + final ``t_ms``;
    - ``duration_s``: the ``END`` frame's ``t_ms`` / 1000, else the last sample's (interrupted);
    - ``programmed_ma``: ``ma_set`` of ``SES START``; ``mean_ma``: mean of ``|ma|``;
    - ``charge_mc``: trapezoid integral of ``|ma|`` over ``t_ms`` (mA x s = mC);
    - ``polarity_switches``: ``EVT POLARITY`` count; ``fault_code``: the first ``EVT FAULT``;
    - ``end_reason``: ``COMPLETED``, ``STOPPED_BY_USER`` (unit ``STOPPED``), ``FAULT``, or
      ``INTERRUPTED`` when no ``END`` was captured (a power-cycle cut the session);
    - ``within_tolerance_share``: share of samples with ``| |ma| - ma_set | <= tolerance_pct``
      % of ``ma_set`` (study ``treatment.current_tolerance_pct``).
    """
    contract = load_contract("device_sessions")
    key = ["unit", "boot", "sid"]
    lf = frames.lazy().filter(pl.col("sid").is_not_null())
    is_smp = pl.col("type") == "SMP"
    info = lf.group_by(key).agg(
        start_utc=(pl.col("host_ts") - pl.duration(milliseconds=pl.col("t_ms").fill_null(0))).min(),
        end_ms=pl.col("t_ms").filter(pl.col("event") == "END").max(),
        last_ms=pl.col("t_ms").filter(is_smp).max(),
        programmed_ma=pl.col("ma_set").drop_nulls().first(),
        polarity_switches=(pl.col("event") == "POLARITY").sum().cast(pl.Int64),
        fault_code=pl.col("fault_code").drop_nulls().first(),
        end_reason=pl.col("end_reason").drop_nulls().last(),
        source_files=pl.col("source_file").unique().sort(),
    )
    ma = pl.col("ma").abs()
    t_s = pl.col("t_ms") / 1000.0
    stats = (
        lf.filter(is_smp)
        .join(info.select(*key, "programmed_ma"), on=key, how="left", nulls_equal=True)
        .sort([*key, "t_ms"], nulls_last=True)
        .group_by(key)
        .agg(**sample_statistics(ma, t_s, pl.col("programmed_ma"), tolerance_pct))
    )
    final_ms = pl.coalesce("end_ms", "last_ms", pl.lit(0))
    sessions = (
        info.join(stats, on=key, how="left", nulls_equal=True)
        .select(
            device_serial=pl.col("unit").fill_null("unknown"),
            vendor=pl.lit("IBU"),
            session_key=pl.concat_str(
                pl.lit("IBU:"),
                pl.col("unit").fill_null("unknown"),
                pl.lit(":"),
                "boot",
                pl.lit(":"),
                "sid",
            ),
            start_utc="start_utc",
            end_utc=pl.col("start_utc") + pl.duration(milliseconds=final_ms),
            duration_s=final_ms.cast(pl.Float64) / 1000.0,
            programmed_ma="programmed_ma",
            mean_ma="mean_ma",
            charge_mc="charge_mc",
            polarity_switches="polarity_switches",
            end_reason=pl.col("end_reason")
            .replace_strict(END_REASONS, default=None)
            .fill_null(pl.lit(INTERRUPTED)),
            fault_code="fault_code",
            within_tolerance_share="within_tolerance_share",
            clock_reset=pl.lit(False),
            n_duplicate_events=pl.lit(0, dtype=pl.Int64),
            start_utc_placed="start_utc",
            source_files="source_files",
        )
        .sort("device_serial", "start_utc", "session_key")
        .collect()
    )
    return cast_frame(sessions, contract)


def _device_sessions(datasets: Mapping[str, pl.DataFrame], tolerance_pct: float) -> pl.DataFrame:
    return ibu_device_sessions(datasets[DATASET], tolerance_pct)


SOURCE = SourceFormat(
    kind=LANDING_KIND,
    pattern=r"^(bench_)?ibu[_-].*\.jsonl$",
    datasets=(DATASET,),
    resolve=resolve_bench_ibu,
    sessions=_device_sessions,
    session_inputs=(DATASET,),
)
"""Registry entry: captures read across delivery folders; sessions from the 10 Hz samples."""
