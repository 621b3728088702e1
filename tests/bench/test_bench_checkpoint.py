"""Recovery after a SIGKILL between fsync and checkpoint: the durable lines past the
checkpoint are rolled forward, a torn last line is cut, and the next file is a new one."""

from __future__ import annotations

import json
from pathlib import Path

from ingest.bench.ibu_capture import CHECKPOINT_NAME, IbuCapture
from ingest.bench.jsonl_store import JsonlWriter, save_checkpoint


def _rec(boot: str, seq: int) -> dict[str, object]:
    return {
        "host_ts": "2026-03-14T12:00:00.000+00:00",
        "unit": "IBU-7",
        "boot": boot,
        "seq": seq,
        "type": "SMP",
        "raw": "$SMP...",
    }


def test_roll_forward_past_the_checkpoint(tmp_path: Path) -> None:
    writer = JsonlWriter(tmp_path, "ibu")
    for seq in range(3):
        writer.add(_rec("0000aaaa", seq), "IBU-7")
    writer.sync()
    assert writer.path is not None
    save_checkpoint(
        tmp_path / CHECKPOINT_NAME,
        {
            "version": 1,
            "file": writer.path.name,
            "offset": writer.offset,
            "boots": [{"boot": "0000aaaa", "unit": "IBU-7", "next_seq": 3, "closed": False}],
        },
    )
    # written and fsynced after the checkpoint, then killed: two lines, a new boot, a torn line
    writer.add(_rec("0000aaaa", 3), "IBU-7")
    writer.add(
        {
            "host_ts": "x",
            "unit": "IBU-7",
            "type": "GAP",
            "boot": "0000aaaa",
            "from_seq": 4,
            "to_seq": 9,
        },
        "IBU-7",
    )
    writer.add(_rec("0000bbbb", 0), "IBU-7")
    writer.close()
    with open(writer.path, "a", encoding="utf-8") as handle:
        handle.write('{"host_ts": "2026-03-14T12:00:01')
    capture = IbuCapture("loop://", tmp_path)
    capture._recover()
    a, b = capture._boots["0000aaaa"], capture._boots["0000bbbb"]
    assert (a.next_seq, a.closed) == (10, True)
    assert (b.next_seq, b.closed) == (1, False)
    assert capture._order == ["0000aaaa", "0000bbbb"]
    lines = writer.path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 6 and json.loads(lines[-1])["boot"] == "0000bbbb"
    capture._writer.add(_rec("0000bbbb", 1), "IBU-7")
    capture._writer.close()
    assert capture._writer.path is not None
    assert capture._writer.path.name.startswith("ibu_000002_IBU-7_")
