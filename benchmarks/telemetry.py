"""Vendor-B telemetry at trial scale: the pipeline's telemetry step against pandas and a floor.

    uv run --frozen --no-sync python benchmarks/telemetry.py --events 5e6 2e7 5e7

(pandas is left out above ``--pandas-max``, 2e7 events: it holds the whole delivery, about
15 GB at 2e7, and would not fit a 23 GB host at 5e7; the Polars floor above ``--polars-max``,
5e7: its duplicate removal holds every distinct event, 1.5 GB at 5e6 and 11.5 GB at 5e7; the
eager reader above ``--eager-max``.)

For each size it generates (once; cached under ``benchmarks/.cache/``, gitignored) vendor-B
telemetry in the simulator's format (``ionto-b_<serial>_<yyyymmddHHMMSS>.jsonl``, 2 Hz samples,
start / polarity / end / fault events, files rotating every 5000 lines, sessions spanning
files, a half-written last line re-sent whole in the next file, exact duplicate lines and
broken JSON lines), delivered as a trial delivers it: one folder per centre and week
(``C01/2026-03-09/``, the Monday after the week of the file's first event), so sessions span
deliveries. Then it measures these implementations, each in a fresh subprocess:

- ``pipeline``: the pipeline's two telemetry steps (:func:`ingest.telemetry.read_telemetry`:
  each delivery parsed alone as ``delivery_frames`` does, then resolved across deliveries one
  range of devices at a time as ``raw_datasets`` does: read, validate, quarantine, drop
  duplicates, join sessions across files and deliveries, summarise incl. the within-
  tolerance share; distinct events written to Parquet);
- ``pandas``: the same step written straightforwardly with pandas (``read_json(lines=True,
  engine="pyarrow")`` per file, a per-line ``json.loads`` fallback for a file with bad lines,
  ``drop_duplicates``, ``groupby``);
- ``floor_polars``: issue 15's floor, the simplest correct Polars pipeline on clean files of
  the same events (the files with their broken and half-written lines left out, made once
  under ``clean/``): ``scan_ndjson`` with the schema, exact duplicates removed (and counted)
  on the typed rows, the distinct events sunk to Parquet, then the session group-by with the
  pipeline's summaries (:func:`ingest.device_sessions.summarise_sessions`) over them;
  "vs polars" and "cpu vs pl" divide by its wall and CPU time;
- ``floor``: Polars' own ``scan_lines(...).sink_parquet(...)`` of the same files (no
  decoding, validation or summaries): what reading and writing the bytes costs at least
  (the floor before issue 15, kept for reference as "vs lines");
- ``reader_eager`` (small sizes only): the reader as it was, everything in one frame.

Wall time, CPU time (user + system) and peak RSS come from ``os.wait4`` on each child.
The ``--events`` sizes are rounded to whole devices of about 35 twenty-minute sessions
(the shape of a 600-subject trial at 50 M events).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
HZ = 2
SESSION_S = 20 * 60
SESSIONS_PER_DEVICE = 35
ROTATE_LINES = 5000
TOLERANCE_PCT = 10.0
EVENTS_PER_SESSION = SESSION_S * HZ + 3
GENERATOR_VERSION = 2


# -- data ---------------------------------------------------------------------------------
def _device_lines(serial: str, device_no: int, rng: np.random.Generator) -> pl.DataFrame:
    """All event lines of one device in time order (column ``line``)."""
    n_samples = SESSION_S * HZ
    frames = []
    day0 = np.datetime64("2026-03-02T17:00:00.000", "ms")
    for s in range(SESSIONS_PER_DEVICE):
        start = day0 + np.timedelta64(2 * s, "D") + np.timedelta64(int(rng.integers(0, 7200)), "s")
        ma_set = float(rng.choice([8.0, 10.0, 12.0, 15.0]))
        sid = f"{(device_no * 131 + s * 7919) % 65536:04x}"
        t = start + (np.arange(n_samples + 1) * (1000 // HZ)).astype("timedelta64[ms]")
        ma = np.abs(ma_set * (1 + rng.normal(0, 0.06, n_samples)))
        volts = 18 + rng.normal(0, 2, n_samples)
        fault = rng.random() < 0.03
        half = n_samples // 2
        ev = ["start"] + ["sample"] * half + ["polarity"] + ["sample"] * (n_samples - half)
        ev += ["fault", "end"] if fault else ["end"]
        ts = np.concatenate([t[:1], t[1 : half + 1], t[half : half + 1], t[half + 1 :]])
        ts = np.concatenate([ts, np.repeat(t[-1:], 2 if fault else 1)])
        m = np.concatenate(
            [[np.nan], ma[:half], [np.nan], ma[half:], [np.nan] * (len(ev) - 2 - n_samples)]
        )
        v = np.concatenate(
            [[np.nan], volts[:half], [np.nan], volts[half:], [np.nan] * (len(ev) - 2 - n_samples)]
        )
        frames.append(
            pl.DataFrame(
                {"ts": ts, "ev": ev, "ma": m, "v": v},
                schema={
                    "ts": pl.Datetime("ms"),
                    "ev": pl.String,
                    "ma": pl.Float64,
                    "v": pl.Float64,
                },
            ).with_columns(
                sid=pl.lit(sid),
                ma_set=pl.lit(ma_set),
                reason=pl.lit("FAULT" if fault else "COMPLETED"),
                code=pl.lit("E03"),
            )
        )
    kind = pl.col("ev")
    head = pl.concat_str(
        pl.lit('{"ts":"'),
        pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.3f"),
        pl.lit(f'Z","dev":"{serial}","ev":"'),
        kind,
        pl.lit('","sid":"'),
        "sid",
        pl.lit('"'),
    )
    tail = (
        pl.when(kind == "sample")
        .then(
            pl.concat_str(
                pl.lit(',"ma":'),
                pl.col("ma").round(2).cast(pl.String),
                pl.lit(',"v":'),
                pl.col("v").round(1).cast(pl.String),
                pl.lit("}"),
            )
        )
        .when(kind == "start")
        .then(pl.concat_str(pl.lit(',"ma_set":'), pl.col("ma_set").cast(pl.String), pl.lit("}")))
        .when(kind == "fault")
        .then(pl.concat_str(pl.lit(',"code":"'), "code", pl.lit('"}')))
        .when(kind == "end")
        .then(pl.concat_str(pl.lit(',"reason":"'), "reason", pl.lit('"}')))
        .otherwise(pl.lit("}"))
    )
    return pl.concat(frames).select(line=pl.concat_str(head, tail), ts=pl.col("ts"))


def _with_faults(lines: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """Exact duplicate lines (about 1 in 20 000, each right after its original or a few lines
    later) and broken JSON sample lines (about 1 in 200 000)."""
    n = lines.height
    dup_at = rng.choice(n, size=max(1, n // 20_000), replace=False)
    bad_at = rng.choice(n, size=max(1, n // 200_000), replace=False)
    idx = np.arange(n, dtype=np.float64)
    extra = pl.DataFrame({"line": lines["line"].gather(dup_at), "_o": dup_at + 0.5})
    broken = pl.col("line").str.replace(',"v":', ',"v"', literal=True).str.strip_suffix("}")
    out = lines.with_columns(_o=pl.Series(idx)).with_columns(
        line=pl.when(pl.int_range(pl.len()).is_in(pl.Series(bad_at).implode()))
        .then(broken)
        .otherwise(pl.col("line"))
    )
    return pl.concat([out.select("line", "_o"), extra]).sort("_o").select("line")


def _delivery_date(first_event_day: str) -> str:
    """The delivery folder of a file whose first event is on ``first_event_day``: the Monday
    after that day's week."""
    day = np.datetime64(first_event_day, "D")
    monday = day - ((day.astype("datetime64[D]").view("int64") - 4) % 7)  # 1970-01-05: Monday
    return str(monday + 7)


def generate(events: int, root: Path) -> Path:
    """A vendor-B delivery of about ``events`` events under ``root/raw`` (cached)."""
    raw = root / "raw"
    marker = root / "done.json"
    if marker.exists() and json.loads(marker.read_text()).get("version") == GENERATOR_VERSION:
        return raw
    shutil.rmtree(root, ignore_errors=True)
    raw.mkdir(parents=True)
    n_devices = max(1, round(events / (SESSIONS_PER_DEVICE * EVENTS_PER_SESSION)))
    rng = np.random.default_rng(events)
    total = 0
    for d in range(n_devices):
        serial = f"B-{d + 1:05d}"
        lines = _with_faults(_device_lines(serial, d, rng), rng)["line"]
        centre = raw / f"C{d % 12 + 1:02d}"
        chunks = [lines.slice(i, ROTATE_LINES) for i in range(0, len(lines), ROTATE_LINES)]
        texts = ["\n".join(c.to_list()) + "\n" for c in chunks]
        if len(texts) > 1:  # device unplugged: last line of file 0 cut, resent in file 1
            first_lines = texts[0].rstrip("\n").split("\n")
            cut = first_lines[-1]
            texts[0] = "\n".join([*first_lines[:-1], cut[: len(cut) // 2]])
            texts[1] = cut + "\n" + texts[1]
        for text in texts:
            stamp = text[7:26].replace("-", "").replace(":", "").replace("T", "")
            folder = centre / _delivery_date(text[7:17])
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"ionto-b_{serial}_{stamp}.jsonl").write_text(text)
        total += len(lines)
    marker.write_text(json.dumps({"version": GENERATOR_VERSION, "lines": total}))
    return raw


# -- the implementations, each run in a child process ----------------------------------------
def run_pipeline_step(raw: Path, work: Path) -> dict[str, float]:
    """The pipeline's telemetry steps (per delivery, then by ranges of devices)."""
    from ingest.telemetry import read_telemetry

    deliveries = [
        sorted(folder.glob("*.jsonl")) for folder in sorted(raw.glob("*/*")) if folder.is_dir()
    ]
    telemetry, quarantine = read_telemetry(deliveries, raw, TOLERANCE_PCT, work)
    telemetry.sessions.write_parquet(work / "sessions.parquet")
    return _summary(telemetry.sessions, quarantine.height)


def run_reader_eager(raw: Path, work: Path) -> dict[str, float]:
    """The reader as it is, everything in one frame (the starting point)."""
    from data_contracts.contracts import cast_frame, load_contract
    from ingest.device_sessions import summarise_sessions
    from ingest.readers.vendor_b import read_vendor_b_files

    events, quarantine = read_vendor_b_files(sorted(raw.rglob("*.jsonl")), raw)
    events.write_parquet(work / "events.parquet")
    sessions = summarise_sessions(events, TOLERANCE_PCT).collect()
    sessions = cast_frame(sessions, load_contract("device_sessions"))
    sessions.write_parquet(work / "sessions.parquet")
    return _summary(sessions, quarantine.height)


def _summary(sessions: pl.DataFrame, n_quarantined: int) -> dict[str, float]:
    return {
        "sessions": sessions.height,
        "quarantined": n_quarantined,
        "charge_mc": float(sessions.select(pl.col("charge_mc").sum()).item()),
        "within": float(sessions.select(pl.col("within_tolerance_share").mean()).item()),
    }


def run_pandas(raw: Path, work: Path) -> dict[str, float]:
    """The same step written straightforwardly with pandas and its fastest JSON reader."""
    import pandas as pd

    fields = ["ts", "dev", "ev", "sid", "ma_set", "ma", "v", "code", "reason"]
    frames = []
    bad: list[tuple[str, int]] = []
    for path in sorted(raw.rglob("*.jsonl")):
        src = path.relative_to(raw).as_posix()
        try:
            df = pd.read_json(path, lines=True, engine="pyarrow")
            df["source_line"] = range(1, len(df) + 1)
        except ValueError:  # a bad or half-written line: parse this file line by line
            rows = []
            with path.open(encoding="utf-8") as handle:
                for i, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        obj = json.loads(line)
                    except ValueError:
                        bad.append((src, i))
                        continue
                    obj["source_line"] = i
                    rows.append(obj)
            df = pd.DataFrame(rows)
        df["source_file"] = src
        frames.append(df.reindex(columns=[*fields, "source_file", "source_line"]))
    ev = pd.concat(frames, ignore_index=True)
    ev["ts"] = pd.to_datetime(ev["ts"], format="%Y-%m-%dT%H:%M:%S.%fZ", utc=True, errors="coerce")
    needs = {"start": "ma_set", "sample": "ma", "fault": "code", "end": "reason"}
    ok = ev["ts"].notna() & ev["ev"].isin(["start", "sample", "polarity", "fault", "end"])
    for kind, needed in needs.items():
        ok &= ~((ev["ev"] == kind) & ev[needed].isna())
    ok &= ~(ev["ma"] < 0) & ~(ev["ma_set"] < 0)
    n_quarantined = len(bad) + int((~ok).sum())
    ev = ev[ok].sort_values(["source_file", "source_line"])
    counts = ev.groupby(fields, dropna=False, sort=False)["source_line"].transform("size")
    ev = ev.assign(n_duplicates=counts - 1)
    ev = ev[~ev.duplicated(subset=fields, keep="first")]
    ev.to_parquet(work / "events.parquet")
    key = ["dev", "sid"]
    g = ev.groupby(key)
    starts = ev[ev["ev"] == "start"].groupby(key)
    ends = ev[ev["ev"] == "end"].groupby(key)
    s = pd.DataFrame(
        {
            "start_utc": starts["ts"].min().combine_first(g["ts"].min()),
            "end_utc": ends["ts"].max().combine_first(g["ts"].max()),
            "programmed_ma": starts["ma_set"].first(),
            "polarity_switches": (ev["ev"] == "polarity").groupby([ev["dev"], ev["sid"]]).sum(),
            "end_reason": ends["reason"].last(),
            "n_duplicate_events": g["n_duplicates"].sum(),
        }
    )
    smp = ev[ev["ev"] == "sample"].sort_values([*key, "ts"])
    smp = smp.join(s["programmed_ma"], on=key)
    t = (smp["ts"] - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    same = (smp["dev"] == smp["dev"].shift()) & (smp["sid"] == smp["sid"].shift())
    piece = ((smp["ma"] + smp["ma"].shift()) / 2 * t.diff()).where(same, 0.0)
    smp = smp.assign(
        piece=piece,
        within=(smp["ma"] - smp["programmed_ma"]).abs()
        <= smp["programmed_ma"] * TOLERANCE_PCT / 100,
    )
    gs = smp.groupby(key)
    s = s.join(
        pd.DataFrame(
            {
                "mean_ma": gs["ma"].mean(),
                "charge_mc": gs["piece"].sum(),
                "within": gs["within"].mean(),
            }
        )
    ).reset_index()
    s.to_parquet(work / "sessions.parquet")
    return {
        "sessions": len(s),
        "quarantined": n_quarantined,
        "charge_mc": float(s["charge_mc"].sum()),
        "within": float(s["within"].mean()),
    }


def run_floor(raw: Path, work: Path) -> dict[str, float]:
    """Polars' own scan of the same files straight to Parquet (one String column per line):
    no JSON decoding, validation or summaries (kept for reference). ``scan_ndjson`` cannot
    read these files: it stops at the first half-written line (``ignore_errors`` covers type
    errors, not broken JSON), hence :func:`clean_copy` for :func:`run_floor_polars`."""
    paths = sorted(raw.rglob("*.jsonl"))
    pl.scan_lines(paths, include_file_paths="source_file").sink_parquet(work / "lines.parquet")
    nan = float("nan")
    return {"sessions": nan, "quarantined": nan, "charge_mc": nan, "within": nan}


NDJSON_SCHEMA = {
    "ts": pl.String,
    "dev": pl.String,
    "ev": pl.String,
    "sid": pl.String,
    "ma_set": pl.Float64,
    "ma": pl.Float64,
    "v": pl.Float64,
    "code": pl.String,
    "reason": pl.String,
}


def clean_copy(raw: Path) -> Path:
    """The same files with only their good lines (every line JSON: broken and half-written
    lines left out, exact duplicates kept), under ``clean/`` beside ``raw`` (made once)."""
    clean = raw.parent / "clean"
    marker = raw.parent / "clean.done"
    if marker.exists():
        return clean
    shutil.rmtree(clean, ignore_errors=True)
    for path in sorted(raw.rglob("*.jsonl")):
        good = []
        for line in path.read_text().splitlines():
            try:
                json.loads(line)
            except ValueError:
                continue
            good.append(line)
        target = clean / path.relative_to(raw)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("".join(f"{line}\n" for line in good))
    marker.write_text("")
    return clean


def run_floor_polars(raw: Path, work: Path) -> dict[str, float]:
    """The simplest correct Polars pipeline on clean files of the same events (issue 15's
    floor), two streaming queries:

    1. ``scan_ndjson`` with the schema, the time stamp parsed and the file name dictionary-
       coded (``Categorical``, codes in file order) before the exact duplicates are removed (a
       group-by on every field, counting the copies per line as the pipeline does): on the
       typed rows the process peaks at 1.5 GB at 5 M events and 11.5 GB at 50 M, against
       3.4 GB at 5 M on the raw text (about 38 GB at 50 M, more than this host has); the
       distinct events are sunk to Parquet.
    2. The session group-by with the pipeline's summaries
       (:func:`ingest.device_sessions.summarise_sessions`, which holds the shared
       :func:`~ingest.device_sessions.sample_statistics`) over a scan of those events, sunk to
       Parquet.

    (One ``collect_all`` of both sinks over the same lazy events ran the scan and the
    duplicate removal twice, once per sink.)"""
    from data_contracts.contracts import cast_frame, load_contract
    from ingest.device_sessions import summarise_sessions

    clean = raw.parent / "clean"
    fields = list(NDJSON_SCHEMA)
    events = (
        pl.scan_ndjson(
            sorted(clean.rglob("*.jsonl")), schema=NDJSON_SCHEMA, include_file_paths="source_file"
        )
        .with_columns(
            ts=pl.col("ts").str.to_datetime(
                "%Y-%m-%dT%H:%M:%S%.fZ", time_unit="us", time_zone="UTC"
            ),
            source_file=pl.col("source_file").cast(pl.Categorical),
        )
        .group_by(fields)
        .agg(
            source_file=pl.col("source_file").min(),
            n_duplicates=(pl.len() - 1).cast(pl.Int64),
        )
    )
    events.sink_parquet(work / "events.parquet", engine="streaming")
    sessions = summarise_sessions(pl.scan_parquet(work / "events.parquet"), TOLERANCE_PCT)
    sessions.sink_parquet(work / "sessions.parquet", engine="streaming")
    stored = pl.read_parquet(work / "sessions.parquet")
    return _summary(cast_frame(stored, load_contract("device_sessions")), 0)


METHODS = {
    "pipeline": run_pipeline_step,
    "floor_polars": run_floor_polars,
    "reader_eager": run_reader_eager,
    "pandas": run_pandas,
    "floor": run_floor,
}


# -- measurement ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Measured:
    method: str
    wall_s: float
    cpu_s: float
    peak_mb: float
    result: dict[str, float]
    failed: str = ""


def measure(method: str, raw: Path, work: Path) -> Measured:
    """Run ``method`` in a fresh interpreter; wall time, its CPU time and peak RSS."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    cmd = [sys.executable, __file__, "--child", method, "--raw", str(raw), "--work", str(work)]
    started = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=HERE.parent)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    assert child.stdout is not None
    out = child.stdout.read().decode()
    child.stdout.close()
    shutil.rmtree(work, ignore_errors=True)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:  # e.g. killed for memory: report it, measure the others
        nan = float("nan")
        failed = f"FAILED (exit {code})"
        empty = {"sessions": nan, "quarantined": nan, "charge_mc": nan, "within": nan}
        return Measured(
            method, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, empty, failed
        )
    return Measured(
        method,
        wall,
        usage.ru_utime + usage.ru_stime,
        usage.ru_maxrss / 1024,
        json.loads(out.strip().splitlines()[-1]),
    )


def label(events: float) -> str:
    """Cache name of a size: 5e6 -> '5e6'."""
    mantissa, exponent = f"{events:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=float, nargs="+", default=[5e6, 2e7, 5e7])
    parser.add_argument(
        "--eager-max",
        type=float,
        default=5e6,
        help="run the eager reader (everything in memory) only up to this size",
    )
    parser.add_argument(
        "--pandas-max",
        type=float,
        default=2e7,
        help="run pandas only up to this size (it holds everything: ~15 GB at 2e7 events)",
    )
    parser.add_argument(
        "--polars-max",
        type=float,
        default=5e7,
        help="run the Polars floor only up to this size (it holds every distinct event: "
        "~9 GB at 5e7 events)",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=["pipeline", "pandas", "floor"],
        default=["pipeline", "pandas", "floor"],
        help="implementations to measure (the floor is always measured)",
    )
    parser.add_argument("--child", choices=sorted(METHODS), help=argparse.SUPPRESS)
    parser.add_argument("--raw", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        from data_contracts.contracts import use_study
        from study import load_study

        use_study(load_study())  # the contracts' codelists come from the study
        print(json.dumps(METHODS[args.child](args.raw, args.work)))
        return
    rows = []
    for events in args.events:
        root = CACHE / f"vendor_b_{label(events)}"
        raw = generate(int(events), root)
        lines = json.loads((root / "done.json").read_text())["lines"]
        size_gb = sum(p.stat().st_size for p in raw.rglob("*.jsonl")) / 1e9
        wanted = [m for m in ("pipeline", "pandas") if m in args.methods]
        if events > args.pandas_max:
            wanted = [m for m in wanted if m != "pandas"]
        methods = [*wanted, "floor_polars", "floor"]
        if events > args.polars_max:
            methods.remove("floor_polars")
        else:
            clean_copy(raw)
        if events <= args.eager_max:
            methods.insert(1, "reader_eager")
        results = {m: measure(m, raw, CACHE / "work") for m in methods}
        for m in methods:
            rows.append((lines, size_gb, results[m], results))
            r = results[m]
            print(
                f"  {lines:>11,d} lines {m:<13} {r.wall_s:8.1f} s wall "
                f"{r.cpu_s:8.1f} s cpu {r.peak_mb:8.0f} MB",
                file=sys.stderr,
            )
    print(
        f"{'events':>12} {'GB':>5} {'implementation':<14} {'wall s':>8} {'cpu s':>8} "
        f"{'peak MB':>8} {'vs pandas':>9} {'vs lines':>8} {'vs polars':>9} {'cpu vs pl':>9} "
        f"{'sessions':>8} {'quarant.':>8} {'charge C':>10}"
    )
    for lines, size_gb, r, group in rows:
        pandas = group.get("pandas")
        vs_pandas = (
            f"{pandas.wall_s / r.wall_s:8.2f}x" if pandas and not pandas.failed else f"{'-':>9}"
        )
        polars = group.get("floor_polars")
        vs_polars = (
            f"{r.wall_s / polars.wall_s:8.2f}x {r.cpu_s / polars.cpu_s:8.2f}x"
            if polars and not polars.failed
            else f"{'-':>9} {'-':>9}"
        )
        print(
            f"{lines:>12,d} {size_gb:5.2f} {r.method:<14} {r.wall_s:8.1f} {r.cpu_s:8.1f} "
            f"{r.peak_mb:8.0f} {vs_pandas} "
            f"{r.wall_s / group['floor'].wall_s:7.2f}x "
            f"{vs_polars} "
            f"{r.result['sessions']:8.0f} "
            f"{r.result['quarantined']:8.0f} {r.result['charge_mc'] / 1000:10.1f} {r.failed}"
        )
    print(
        "vs pandas: pandas wall / this wall (> 1 is faster than pandas); vs lines: this wall / "
        "Polars scan_lines->Parquet wall; vs polars / cpu vs pl: this wall / CPU time over the "
        "floor_polars pipeline's (scan_ndjson of the clean files, duplicates removed, sessions "
        "summarised, sunk to Parquet). Peak MB: max RSS of the child process."
    )


if __name__ == "__main__":
    main()
