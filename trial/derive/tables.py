"""All analysis-ready tables from the raw frames in one call (:func:`derive_all`).

The per-table functions stay public (one Dagster asset each); this module only chains them in
dependency order: papers -> ADSWEAT -> sessions -> ADSL -> ADHDSS, ADAE, ADSWEAT_SIDE.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from study import Study
from trial.derive.ae import ae_coding_findings, derive_adae
from trial.derive.findings import gravimetry_findings, stratum_findings
from trial.derive.gravimetry import latest_papers, paper_rates
from trial.derive.hdss import derive_adhdss
from trial.derive.inputs import RawFrames
from trial.derive.sessions import adherence, map_sessions, sessions_started
from trial.derive.subjects import derive_adsl
from trial.derive.sweat import derive_adsweat, derive_adsweat_side


@dataclass(frozen=True)
class AnalysisTables:
    """The analysis-ready tables of one run, plus the derivation's data-quality frames:
    ``sweat_papers`` (per-paper rate and status), ``unmapped_sessions`` (device sessions
    matching no subject) and ``derivation_findings``."""

    adsl: pl.DataFrame
    adsweat: pl.DataFrame
    adsweat_side: pl.DataFrame
    adhdss: pl.DataFrame
    adae: pl.DataFrame
    addev: pl.DataFrame
    sweat_papers: pl.DataFrame
    unmapped_sessions: pl.DataFrame
    derivation_findings: pl.DataFrame

    @property
    def blinded(self) -> bool:
        return "arm" not in self.adsl.columns


def derive_all(raw: RawFrames, study: Study) -> AnalysisTables:
    """Every analysis-ready table from a delivery's raw frames. Unblinded exactly when
    ``raw.randomisation`` is not None."""
    latest, superseded = latest_papers(raw.gravimetry)
    papers = paper_rates(latest, study)
    adsweat = derive_adsweat(papers, raw.visits, raw.dm, study)
    addev, unmapped = map_sessions(
        raw.device_sessions,
        raw.devices,
        raw.visits,
        raw.vendor_b_events,
        study,
    )
    adsl = derive_adsl(
        raw.dm,
        raw.eligibility,
        raw.visits,
        raw.disposition,
        adsweat,
        papers,
        sessions_started(raw.device_sessions, raw.devices, addev),
        adherence(addev, study),
        study,
        randomisation=raw.randomisation,
    )
    adae = derive_adae(raw.ae, adsl, study)
    findings = [gravimetry_findings(papers, superseded, study), ae_coding_findings(adae, study)]
    if raw.randomisation is not None:
        findings.append(stratum_findings(adsl, raw.randomisation))
    return AnalysisTables(
        adsl=adsl,
        adsweat=adsweat,
        adsweat_side=derive_adsweat_side(papers, adsweat, study),
        adhdss=derive_adhdss(raw.hdss, raw.visits, study),
        adae=adae,
        addev=addev,
        sweat_papers=papers,
        unmapped_sessions=unmapped,
        derivation_findings=pl.concat(findings),
    )
