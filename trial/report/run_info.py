"""What a report says about the run that produced it: data cut, blinding, data and code version."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import polars as pl


@dataclass(frozen=True)
class RunInfo:
    """Identity of a run, printed in every report's title block.

    ``data_cut``: ISO date of the data cut; ``blinded``: False only for an explicit unblinded
    run; ``data_version``: hash of the raw manifest (:func:`manifest_version`);
    ``code_version``: :func:`code_version`."""

    data_cut: str
    blinded: bool
    data_version: str
    code_version: str

    @property
    def blinding_label(self) -> str:
        return "BLINDED" if self.blinded else "UNBLINDED"


def manifest_version(manifest: pl.DataFrame | Path | bytes) -> str:
    """``sha256:<first 16 hex digits>`` of the raw manifest: of the landing manifest table's
    ``source_file<TAB>sha256`` lines in file order (row order and other columns do not
    matter), or of a manifest file's bytes. The same raw deliveries give the same version."""
    if isinstance(manifest, pl.DataFrame):
        lines = (
            manifest.select(pl.format("{}\t{}", "source_file", "sha256").alias("line"))
            .sort("line")
            .get_column("line")
            .to_list()
        )
        content = "\n".join(lines).encode("utf-8")
    else:
        content = manifest if isinstance(manifest, bytes) else Path(manifest).read_bytes()
    return "sha256:" + hashlib.sha256(content).hexdigest()[:16]


def run_info_for(
    landing_manifest: pl.DataFrame, *, blinded: bool, data_cut: str | None = None
) -> RunInfo:
    """The run's identity from its landing manifest: data version from the manifest, data cut
    = the latest delivery date unless given, code version of this checkout."""
    cut = data_cut or str(landing_manifest.get_column("delivery_date").max())
    return RunInfo(
        data_cut=cut,
        blinded=blinded,
        data_version=manifest_version(landing_manifest),
        code_version=code_version(),
    )


def code_version(repo: Path | None = None) -> str:
    """``git describe --always --dirty`` of the checkout holding this package, else the installed
    ``ionto`` package version (``ionto <version>``)."""
    where = repo or Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "-C", str(where), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return "git " + out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "ionto " + metadata.version("ionto")
