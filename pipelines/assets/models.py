"""Models group: the SAP's section 7, one asset per model. Each returns a ModelResult that the
IO manager writes as tidy Parquet tables under ``OUT/models/``. Blinded runs fit nothing that
needs arms: those results are empty with a note that says so."""

import dagster as dg
import polars as pl

from pipelines.resources import TrialSettings
from trial.models.ancova import fit_ancova
from trial.models.lmm import fit_lmm
from trial.models.mmrm import fit_mmrm
from trial.models.multiplicity import fixed_sequence_from_results
from trial.models.responders import fit_responders
from trial.models.result import ModelResult
from trial.models.tidy import is_blinded, not_fitted_blinded

GROUP = "models"


@dg.asset(group_name=GROUP)
def mmrm_primary(settings: TrialSettings, analysis_long: pl.DataFrame) -> ModelResult:
    """Primary MMRM on the FAS: unstructured covariance (pre-specified fallbacks), REML,
    Satterthwaite df; LS means, contrasts, ratios of geometric means, percent reduction."""
    if is_blinded(analysis_long):
        return not_fitted_blinded("mmrm_primary", n_observations=analysis_long.height)
    return fit_mmrm(analysis_long, settings.study(), name="mmrm_primary")


@dg.asset(group_name=GROUP)
def mmrm_pp(settings: TrialSettings, analysis_long_pp: pl.DataFrame) -> ModelResult:
    """Sensitivity 2: the primary MMRM on the per-protocol set."""
    if is_blinded(analysis_long_pp):
        return not_fitted_blinded("mmrm_pp", n_observations=analysis_long_pp.height)
    return fit_mmrm(analysis_long_pp, settings.study(), name="mmrm_pp")


@dg.asset(group_name=GROUP)
def lmm_random_slope(settings: TrialSettings, analysis_long: pl.DataFrame) -> ModelResult:
    """Sensitivity 1: random intercept and slope on nominal week per subject."""
    return fit_lmm(analysis_long, settings.study())


@dg.asset(group_name=GROUP)
def ancova_primary_visit(settings: TrialSettings, analysis_long: pl.DataFrame) -> ModelResult:
    """Sensitivity 4: complete-case ANCOVA at the primary visit."""
    return fit_ancova(analysis_long, settings.study())


@dg.asset(group_name=GROUP)
def responders(
    settings: TrialSettings, adsl: pl.DataFrame, adhdss: pl.DataFrame, adsweat: pl.DataFrame
) -> ModelResult:
    """HDSS and >= 50 % reduction responders at the primary visit: logistic ORs, CMH by
    centre, responder shares beside the mean percent reduction."""
    return fit_responders(adsl, adhdss, adsweat, settings.study())


@dg.asset(group_name=GROUP)
def fixed_sequence(
    settings: TrialSettings, mmrm_primary: ModelResult, responders: ModelResult
) -> ModelResult:
    """Fixed-sequence testing of the key secondary family, with the decision at each step."""
    return fixed_sequence_from_results(settings.study(), mmrm_primary, responders)
