"""A table stored in parts (pipelines/stored_parts.py) and checked part by part
(pipelines/checks.py: check_parts): unchanged parts are neither written nor checked again, a
store interrupted at any moment leaves no content hash a later run would trust, and checking
by parts equals checking the whole table only for row-local contracts."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import yaml
from polars.testing import assert_frame_equal

import pipelines.checks as checks
from data_contracts.contracts import cast_frame, check_frame, is_row_local, load_contract
from ingest.source_format import TableParts
from pipelines.freshness import _content, record_content
from pipelines.stored_parts import parts_folder, scan_stored, store_parts, stored_parts

SCHEMA = pl.Schema({"dev": pl.String, "n": pl.Int64})


def _part(folder: Path, name: str, rows: dict[str, list[object]]) -> Path:
    """A producer's part: written aside and renamed over its name (never in place)."""
    path = folder / name
    aside = folder / f".{name}.writing"
    pl.DataFrame(rows, schema=SCHEMA).write_parquet(aside)
    aside.replace(path)
    return path


def _store(out: Path, paths: list[Path]) -> str:
    digest, files = store_parts(out, "events", TableParts(tuple(paths), SCHEMA))
    record_content(out, "events", digest, files)
    return digest


def _inodes(out: Path) -> list[int]:
    return [p.stat().st_ino for p in sorted(parts_folder(out, "events").iterdir())]


def test_a_refresh_links_unchanged_parts_and_keeps_the_stored_table_whole(
    tmp_path: Path,
) -> None:
    resolved, out = tmp_path / "resolved", tmp_path / "out"
    resolved.mkdir()
    first = [
        _part(resolved, "part-000.parquet", {"dev": ["a", "a"], "n": [1, 2]}),
        _part(resolved, "part-001.parquet", {"dev": ["b"], "n": [3]}),
        _part(resolved, "part-002.parquet", {"dev": ["c"], "n": [4]}),
    ]
    digest = _store(out, first)
    stored = scan_stored(out, "events")
    assert stored is not None
    expected = pl.concat([pl.read_parquet(p) for p in first])
    assert_frame_equal(stored.collect(), expected)
    assert_frame_equal(pl.read_parquet(parts_folder(out, "events")), expected)
    assert _inodes(out) == [p.stat().st_ino for p in first]  # links, not copies
    assert _content(out, "events") == digest

    # The producer recomputes range 1 (a new file renamed over the name) and adds range 3:
    # the stored table keeps the old range 1 until it is stored again.
    changed = _part(resolved, "part-001.parquet", {"dev": ["b", "b"], "n": [3, 5]})
    added = _part(resolved, "part-003.parquet", {"dev": ["d"], "n": [6]})
    assert_frame_equal(stored.collect(), expected)
    before = _inodes(out)
    refreshed = _store(out, [first[0], changed, first[2], added])
    after = _inodes(out)
    assert after[0] == before[0] and after[2] == before[2]  # unchanged parts not rewritten
    assert after[1] != before[1] and len(after) == 4
    table = scan_stored(out, "events")
    assert table is not None
    assert table.collect()["n"].to_list() == [1, 2, 3, 5, 4, 6]
    assert refreshed != digest and _content(out, "events") == refreshed
    # The same parts again: the same content hash (kept by file identity, not recomputed).
    assert _store(out, [first[0], changed, first[2], added]) == refreshed
    digests = stored_parts(out, "events")
    assert digests is not None and len({p.digest for p in digests}) == 4


def test_an_empty_table_and_a_table_stored_whole_before(tmp_path: Path) -> None:
    out = tmp_path / "out"
    whole = out / "tables" / "events.parquet"
    whole.parent.mkdir(parents=True)
    pl.DataFrame({"dev": ["old"], "n": [0]}, schema=SCHEMA).write_parquet(whole)
    _store(out, [])
    assert not whole.exists()
    stored = scan_stored(out, "events")
    assert stored is not None
    assert_frame_equal(stored.collect(), pl.DataFrame(schema=SCHEMA))


@pytest.mark.parametrize("failing_rename", [1, 2])
def test_a_store_killed_at_the_swap_leaves_nothing_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing_rename: int
) -> None:
    """The swap is two renames (old folder aside, new folder in): stopped at either, the
    folder present is whole (the old table, or none) and the asset has no content hash, so a
    later run computes it again; the next store succeeds."""
    resolved, out = tmp_path / "resolved", tmp_path / "out"
    resolved.mkdir()
    old = [_part(resolved, "part-000.parquet", {"dev": ["a"], "n": [1]})]
    _store(out, old)
    new = [old[0], _part(resolved, "part-001.parquet", {"dev": ["b"], "n": [2]})]
    renames = 0
    real_rename = Path.rename

    def rename(self: Path, target: Path) -> Path:
        nonlocal renames
        renames += 1
        if renames == failing_rename:
            raise KeyboardInterrupt("killed")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        _store(out, new)
    monkeypatch.undo()
    assert _content(out, "events") is None
    stored = scan_stored(out, "events")
    if stored is not None:
        assert stored.collect()["n"].to_list() == [1]
    _store(out, new)
    again = scan_stored(out, "events")
    assert again is not None and again.collect()["n"].to_list() == [1, 2]
    assert _content(out, "events") is not None


def _events(rows: list[tuple[str, str | None, float]]) -> pl.DataFrame:
    c = load_contract("vendor_b_events")
    blank = {k: None for k in c.columns}
    frame = [{**blank, "ev": ev, "dev": dev, "ma": ma} for ev, dev, ma in rows]
    return cast_frame(pl.DataFrame(frame, schema=c.schema, strict=False), c)


def test_checking_by_parts_equals_the_whole_table_and_checks_only_new_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The telemetry contract is row-local: its results on the parts, added up, are its
    results on the whole table; a part whose results are kept is not checked again."""
    c = load_contract("vendor_b_events")
    assert is_row_local(c)
    frames = [
        _events([("sample", "B-1", 10.0), ("pause", "B-1", 10.0)]),
        _events([("sample", None, 10.0), ("sample", "B-2", -1.0)]),
        _events([("stop", "B-3", 10.0), ("sample", "B-3", 10.0)]),
    ]
    out = tmp_path / "out"
    paths = []
    for number, frame in enumerate(frames):
        path = tmp_path / f"part-{number}.parquet"
        frame.write_parquet(path)
        paths.append(path)
    _store(out, paths)
    parts = stored_parts(out, "events")
    assert parts is not None
    kept = out / checks.CHECKS / "events.json"
    whole = check_frame(pl.concat(frames), c)
    assert checks.check_parts(parts, c, [], kept) == whole
    failing = {r.name: r.n_failing for r in whole}
    assert (failing["validValues:ev"], failing["required:dev"], failing["range:ma"]) == (2, 1, 1)

    checked: list[int] = []
    real = checks.check_lazy

    def counting(frame: pl.LazyFrame, contract: object, batch_rows: int) -> object:
        checked.append(frame.select(pl.len()).collect().item())
        return real(frame, contract, batch_rows)  # type: ignore[arg-type]

    monkeypatch.setattr(checks, "check_lazy", counting)
    assert checks.check_parts(parts, c, [], kept) == whole
    assert checked == []  # every part's results were kept
    fixed = tmp_path / "part-1-fixed.parquet"
    _events([("sample", "B-2", 1.0)]).write_parquet(fixed)
    _store(out, [paths[0], fixed, paths[2]])
    refreshed = stored_parts(out, "events")
    assert refreshed is not None
    results = checks.check_parts(refreshed, c, [], kept)
    assert checked == [1]  # only the new part
    assert results == check_frame(pl.concat([frames[0], pl.read_parquet(fixed), frames[2]]), c)


TOY_CONTRACT = {
    "apiVersion": "v3.1.0",
    "kind": "DataContract",
    "id": "toy",
    "version": "1.0.0",
    "status": "active",
    "name": "toy",
    "schema": [
        {
            "name": "toy",
            "physicalType": "table",
            "properties": [
                {"name": "dev", "logicalType": "string", "physicalType": "String"},
                {"name": "n", "logicalType": "integer", "physicalType": "Int64", "unique": True},
            ],
        }
    ],
}


def test_a_contract_with_rules_across_rows_is_checked_whole(tmp_path: Path) -> None:
    """A unique column may fail between two parts that each pass: check_parts refuses such a
    contract, and the check then reads the table whole and finds the duplicate."""
    path = tmp_path / "toy.odcs.yaml"
    path.write_text(yaml.safe_dump(TOY_CONTRACT), "utf-8")
    contract = load_contract(path)
    assert not is_row_local(contract)
    out, resolved = tmp_path / "out", tmp_path / "resolved"
    resolved.mkdir()
    _store(
        out,
        [
            _part(resolved, "part-0.parquet", {"dev": ["a"], "n": [1]}),
            _part(resolved, "part-1.parquet", {"dev": ["b"], "n": [1]}),
        ],
    )
    parts = stored_parts(out, "events")
    assert parts is not None
    kept = out / checks.CHECKS / "events.json"
    with pytest.raises(ValueError, match="look across rows"):
        checks.check_parts(parts, contract, [], kept)
    assert all(r.passed for p in parts for r in check_frame(pl.read_parquet(p.path), contract))
    stored = scan_stored(out, "events")
    assert stored is not None
    result = checks.contract_check_result(stored, path, False, parts=parts, kept=kept)
    assert not result.passed and result.metadata["failed_rules"].value == 1
    assert not kept.exists()
