"""Run settings shared by every asset: where the raw deliveries are, where outputs go, which
study configuration applies, and (only for an unblinded run) the sealed randomisation list."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from pipelines.preflight import check_out_outside_raw
from study import Study, load_study


class TrialSettings(dg.ConfigurableResource):
    """``raw_dir``: the delivery tree; ``out_dir``: run outputs; ``study_path``: a study
    configuration file ("" = the bundled ION-301); ``unblind_path``: the sealed randomisation
    list, "" for a blinded run (the default: the list is never read); ``verify``: hash every
    raw file again instead of trusting the stored hashes of files whose size and modification
    time are unchanged (``ionto run --verify``, ``docs/incremental.md``)."""

    raw_dir: str
    out_dir: str
    study_path: str = ""
    unblind_path: str = ""
    verify: bool = False

    @property
    def blinded(self) -> bool:
        return self.unblind_path == ""

    def study(self) -> Study:
        return load_study(self.study_path or None)

    @classmethod
    def from_env(cls) -> TrialSettings:
        """Settings for ``dagster dev``: IONTO_RAW, IONTO_OUT, IONTO_STUDY, IONTO_UNBLIND. An
        output folder inside the raw root stops the code location from loading, with the
        line that says so (:func:`pipelines.preflight.check_out_outside_raw`)."""
        raw_dir = os.environ.get("IONTO_RAW", str(Path("out/demo/raw").resolve()))
        out_dir = os.environ.get("IONTO_OUT", str(Path("out/demo/run").resolve()))
        check_out_outside_raw(Path(raw_dir), Path(out_dir), ("IONTO_RAW", "IONTO_OUT"))
        return cls(
            raw_dir=raw_dir,
            out_dir=out_dir,
            study_path=os.environ.get("IONTO_STUDY", ""),
            unblind_path=os.environ.get("IONTO_UNBLIND", ""),
        )
