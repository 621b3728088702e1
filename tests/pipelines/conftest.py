"""A small simulated trial shared by the pipeline tests."""

from __future__ import annotations

import shutil
import zlib
from pathlib import Path

import pytest

from study import load_study
from trial.simulate import simulate_trial

SMALL_TRIAL_SUBJECTS = 36
SMALL_TRIAL_SEED = 11


@pytest.fixture(scope="session")
def small_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Raw tree of a small simulated trial; its sealed list is at ``<raw>_sealed/``."""
    raw = tmp_path_factory.mktemp("small") / "raw"
    simulate_trial(
        load_study(), n_subjects=SMALL_TRIAL_SUBJECTS, seed=SMALL_TRIAL_SEED, raw_dir=raw
    )
    return raw


SECOND_DEVICE = "B-09000"
"""A vendor-B serial in another range of the stable layout than the small trial's own devices
(``crc32(serial) % 128``: 36)."""


@pytest.fixture(scope="session")
def two_device_raw(small_raw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small trial with the telemetry of a second vendor-B device, in another range: the
    trial's own device's files copied under :data:`SECOND_DEVICE`, in every delivery that has
    vendor-B files but the last one (so that delivery touches the first device's range
    only)."""
    raw = tmp_path_factory.mktemp("two_devices") / "raw"
    shutil.copytree(small_raw, raw)
    files = sorted(raw.glob("*/*/ionto-b_*.jsonl"), key=lambda p: (p.parent.name, p.name))
    last = files[-1].parent
    serials = {p.name.split("_")[1] for p in files}
    assert (
        len(serials) == 1
        and zlib.crc32(SECOND_DEVICE.encode()) % 128
        != zlib.crc32(next(iter(serials)).encode()) % 128
    )
    (serial,) = serials
    for path in files:
        if path.parent != last:
            text = path.read_text("utf-8").replace(f'"dev":"{serial}"', f'"dev":"{SECOND_DEVICE}"')
            (path.parent / path.name.replace(serial, SECOND_DEVICE)).write_text(text, "utf-8")
    return raw
