"""Models group: the SAP's section 7, one asset per model, named as the model result it holds.
Each returns a ModelResult that the IO manager writes as tidy Parquet tables under
``OUT/models/<name>_*.parquet``. Blinded runs fit nothing that needs arms: those results are
empty with a note that says so; safety and device summaries are then pooled."""

import dagster as dg
import polars as pl

from pipelines.asset_step import pipeline_asset
from pipelines.resources import TrialSettings
from trial.models.ancova import fit_ancova
from trial.models.device import device_summary
from trial.models.lmm import fit_lmm
from trial.models.mmrm import fit_mmrm
from trial.models.multiplicity import fixed_sequence_from_results
from trial.models.responders import fit_responders
from trial.models.result import ModelResult
from trial.models.safety import safety_summary
from trial.models.secondary import fit_durability, fit_plantar
from trial.models.sides import fit_sides, sides_long
from trial.models.subgroups import subgroup_effects
from trial.models.tidy import is_blinded, not_fitted_blinded

GROUP = "models"


def _mmrm(name: str, frame: pl.DataFrame, settings: TrialSettings) -> ModelResult:
    if is_blinded(frame):
        return not_fitted_blinded(name, n_observations=frame.height)
    return fit_mmrm(frame, settings.study(), name=name)


@pipeline_asset(dg.asset, group_name=GROUP)
def mmrm_primary(settings: TrialSettings, analysis_long: pl.DataFrame) -> ModelResult:
    """Primary MMRM on the FAS: unstructured covariance (pre-specified fallbacks), REML,
    Satterthwaite df; LS means, contrasts, ratios of geometric means, percent reduction."""
    return _mmrm("mmrm_primary", analysis_long, settings)


@pipeline_asset(dg.asset, group_name=GROUP)
def mmrm_pp(settings: TrialSettings, analysis_long_pp: pl.DataFrame) -> ModelResult:
    """Sensitivity 2: the primary MMRM on the per-protocol set."""
    return _mmrm("mmrm_pp", analysis_long_pp, settings)


@pipeline_asset(dg.asset, group_name=GROUP)
def lmm_sensitivity1(settings: TrialSettings, analysis_long: pl.DataFrame) -> ModelResult:
    """Sensitivity 1: random intercept and slope on nominal week per subject."""
    return fit_lmm(analysis_long, settings.study())


@pipeline_asset(dg.asset, group_name=GROUP)
def sides_sensitivity3(
    settings: TrialSettings, adsweat_side: pl.DataFrame, adsl: pl.DataFrame
) -> ModelResult:
    """Sensitivity 3: sides as separate observations, random intercepts for subject and for
    side within subject."""
    study = settings.study()
    return fit_sides(sides_long(adsweat_side, adsl, study), study)


@pipeline_asset(dg.asset, group_name=GROUP)
def ancova_sensitivity4(settings: TrialSettings, analysis_long: pl.DataFrame) -> ModelResult:
    """Sensitivity 4: complete-case ANCOVA at the primary visit."""
    return fit_ancova(analysis_long, settings.study())


@pipeline_asset(dg.asset, group_name=GROUP)
def responders(
    settings: TrialSettings, adsl: pl.DataFrame, adhdss: pl.DataFrame, adsweat: pl.DataFrame
) -> ModelResult:
    """HDSS and >= 50 % reduction responders at the primary visit: logistic ORs, CMH by
    centre, responder shares beside the mean percent reduction."""
    return fit_responders(adsl, adhdss, adsweat, settings.study())


@pipeline_asset(dg.asset, group_name=GROUP)
def fixed_sequence(
    settings: TrialSettings, mmrm_primary: ModelResult, responders: ModelResult
) -> ModelResult:
    """Fixed-sequence testing of the key secondary family, with the decision at each step.
    Blinded: not run (its hypotheses are named by arm contrasts, and there are no p-values)."""
    if settings.blinded:
        return not_fitted_blinded("fixed_sequence")
    return fixed_sequence_from_results(settings.study(), mmrm_primary, responders)


@pipeline_asset(dg.asset, group_name=GROUP)
def subgroups(
    settings: TrialSettings, analysis_long: pl.DataFrame, adsl: pl.DataFrame
) -> ModelResult:
    """Treatment effect at the primary visit per subgroup level, with interaction p-values
    (the forest plot's numbers)."""
    return subgroup_effects(analysis_long, adsl, settings.study())


@pipeline_asset(dg.asset, group_name=GROUP)
def plantar(settings: TrialSettings, adsweat: pl.DataFrame, adsl: pl.DataFrame) -> ModelResult:
    """Plantar sweat rate in subjects with plantar involvement, at the primary visit."""
    return fit_plantar(adsweat, adsl, settings.study())


@pipeline_asset(dg.asset, group_name=GROUP)
def durability(settings: TrialSettings, adsweat: pl.DataFrame, adsl: pl.DataFrame) -> ModelResult:
    """Durability after treatment stops: ratio of the last follow-up to end of treatment."""
    return fit_durability(adsweat, adsl, settings.study())


@pipeline_asset(dg.asset, group_name=GROUP)
def safety(settings: TrialSettings, adae: pl.DataFrame, adsl: pl.DataFrame) -> ModelResult:
    """Subjects with each adverse-event term by arm, severity and relatedness; serious events."""
    return safety_summary(adae, adsl, settings.study())


@pipeline_asset(dg.asset, group_name=GROUP)
def device(settings: TrialSettings, addev: pl.DataFrame, adsl: pl.DataFrame) -> ModelResult:
    """Device adherence and delivered dose by arm: sessions completed / planned, charge,
    time within tolerance of the prescribed current, aborted sessions and fault codes."""
    return device_summary(addev, adsl, settings.study())
