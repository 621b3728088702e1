"""Trial-level rules on vendor-B events (``data_contracts/trial_rules.yaml``), applied by
:func:`ingest.telemetry.resolve_telemetry` to each range of devices.

- :func:`key_findings`: an event naming a key the spec does not (``UNKNOWN_JSON_KEY``) or one
  key twice (``DUPLICATE_JSON_KEY``) is kept and named. Only lines whose count of ``":`` differs
  from their count of read fields are looked at closely (a line as the devices write it never
  does), so the check costs one literal scan per line.
- :func:`backwards_events`: within a session (device, ``sid``) the events in file order (file
  names carry the UTC time of their first event) then line order must have increasing time
  stamps. An event that does not fit between its neighbours (which do fit each other) is out of
  order; any event still earlier than one before it is too. Out-of-order events are
  quarantined (``TIMESTAMP_BACKWARDS``) and never integrated into a session's charge.
"""

from __future__ import annotations

import polars as pl

from ingest.integrity import findings_of, quarantine_of
from ingest.readers.vendor_b import DATASET, FIELDS

_KEY = r'"((?:[^"\\]|\\.)*)"\s*:'
"""A JSON object key followed by its colon (flat objects: vendor-B events nest nothing)."""


def odd_key_count() -> pl.Expr:
    """True for an event (``raw_text``, the typed ``FIELDS``) whose count of ``":`` differs
    from its count of read fields: the only lines :func:`key_findings` looks at (null where
    ``raw_text`` is null). The parsed events keep the text of these lines."""
    read = pl.sum_horizontal(*(pl.col(f).is_not_null().cast(pl.Int32) for f in FIELDS))
    return pl.col("raw_text").str.count_matches('":', literal=True) != read


def key_findings(rows: pl.DataFrame) -> pl.DataFrame:
    """Findings for events (``raw_text``, lineage, the typed ``FIELDS``) with an unknown or a
    duplicated JSON key; ``subject_id`` is null (the device's owner is decided later). Only
    lines with an :func:`odd_key_count` are looked at, so ``raw_text`` may be null on the
    others."""
    suspect = rows.filter(odd_key_count()).with_columns(
        _keys=pl.col("raw_text").str.extract_all(_KEY)
    )
    if suspect.height == 0:
        return findings_of(rows.clear(), DATASET, "UNKNOWN_JSON_KEY", pl.lit(""))
    keys = suspect.with_columns(_keys=pl.col("_keys").list.eval(pl.element().str.extract(_KEY, 1)))
    unknown = keys.with_columns(
        _unknown=pl.col("_keys").list.eval(pl.element().filter(~pl.element().is_in(FIELDS)))
    ).filter(pl.col("_unknown").list.len() > 0)
    doubled = keys.with_columns(
        _doubled=pl.col("_keys").list.eval(pl.element().filter(pl.element().is_duplicated()))
    ).filter(pl.col("_doubled").list.len() > 0)
    return pl.concat(
        [
            findings_of(
                unknown,
                DATASET,
                "UNKNOWN_JSON_KEY",
                pl.format("key(s) {}", pl.col("_unknown").list.unique().list.join(", ")),
            ),
            findings_of(
                doubled,
                DATASET,
                "DUPLICATE_JSON_KEY",
                pl.format(
                    "key(s) {} named twice", pl.col("_doubled").list.unique().list.join(", ")
                ),
            ),
        ]
    )


def backwards_events(events: pl.DataFrame) -> pl.Series:
    """Boolean per row of ``events`` (``dev``, ``sid``, ``ts``, lineage): True for an event out
    of time order within its session (see the module docstring). One sort and shifts on the
    sorted rows (neighbours of another session masked); the residual check (an event still
    earlier than one before it) runs only on the few sessions that keep a decrease."""
    if events.height == 0:
        return pl.Series("_back", [], dtype=pl.Boolean)
    ts = pl.col("ts")
    files = events["source_file"].unique().sort()
    names = files.str.replace(r"^.*/", "").rank("dense").cast(pl.Int64)
    ordered = (
        events.select("dev", "sid", "ts", "source_file", "source_line")
        .with_row_index("_row")
        .with_columns(
            # Numeric keys (sorting and comparing the strings costs several times as much):
            # the session by a 64-bit hash of (dev, sid) (two sessions sharing one is a chance
            # of about n^2 / 2^65); the place in file order by the rank of the file's name
            # (the name carries its first event's time, the folder only the delivery) times
            # 2^32 plus the line (a file has fewer than 2^32 lines).
            _session=pl.struct("dev", "sid").hash(),
            _place=pl.col("source_file").replace_strict(files, names, return_dtype=pl.UInt64)
            * 2**32
            + pl.col("source_line").cast(pl.UInt64),
        )
        # Two single-key sorts, the second stable: by session, then file and line (a third
        # of the time of one sort on three keys).
        .sort("_place")
        .sort("_session", maintain_order=True)
    )

    def near(k: int) -> pl.Expr:
        """The time stamp ``k`` rows away (negative: after) when that row and every row
        between are of the same session, else null."""
        step = 1 if k > 0 else -1
        ok = pl.all_horizontal(
            (pl.col("_session") == pl.col("_session").shift(j)).fill_null(False)
            for j in range(step, k + step, step)
        )
        return pl.when(ok).then(ts.shift(k))

    ordered = ordered.with_columns(_prev=near(1), _next=near(-1), _prev2=near(2), _next2=near(-2))
    prev, nxt, prev2, nxt2 = (pl.col(c) for c in ("_prev", "_next", "_prev2", "_next2"))
    inner = prev.is_not_null() & nxt.is_not_null() & (prev <= nxt) & ((ts < prev) | (ts > nxt))
    first = prev.is_null() & nxt.is_not_null() & (ts > nxt) & (nxt <= nxt2)
    last = nxt.is_null() & prev.is_not_null() & (ts < prev) & (prev2 <= prev)
    flagged = ordered.with_columns(_back=(inner | first | last).fill_null(False))
    rest = flagged.filter(~pl.col("_back"))
    still = rest.filter((ts < near(1)).fill_null(False)).select("dev", "sid").unique()
    back = flagged.select("_row", "_back")
    if still.height:
        session = ["dev", "sid"]
        late = (
            rest.join(still, on=session, how="semi", nulls_equal=True)
            .with_columns(_late=(ts < ts.cum_max().shift(1).over(session)).fill_null(False))
            .filter("_late")
            .select("_row")
        )
        back = back.with_columns(
            _back=pl.col("_back") | pl.col("_row").is_in(late["_row"].implode())
        )
    return pl.Series("_back", [False] * events.height, dtype=pl.Boolean).scatter(
        back["_row"], back["_back"]
    )


def backwards_quarantine(rows: pl.DataFrame) -> pl.DataFrame:
    """Quarantine rows (``TIMESTAMP_BACKWARDS``) for out-of-order events (``raw_text``,
    lineage, ``ev``, ``sid``, ``ts``)."""
    return quarantine_of(
        rows,
        DATASET,
        "ts",
        "TIMESTAMP_BACKWARDS",
        pl.format(
            "{} event of session {} at {}",
            pl.col("ev"),
            pl.col("sid"),
            pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"),
        ),
    )
