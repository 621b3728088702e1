"""Reference-based imputation for continuous longitudinal outcomes (rbmi semantics), Dagster-free.

Public API::

    from trial.rbi import RbiSpec, run_rbi, run_rbi_deltas, RbiInputError

    spec = RbiSpec(subject="USUBJID", visit="AVISIT", group="ARM", reference="PBO",
                   outcome="CHG", covariates=["BASE*AVISIT", "REGION"],
                   analysis_covariates=["BASE", "REGION"], strategy=None,
                   method="condmean-jackknife", n_samples=200, seed=1, alpha=0.05)
    result = run_rbi(data, ice, spec, delta=None)
    result.pooled   # visit, parameter, estimate, se, lci, uci, pvalue, df

Inputs
- ``data``: long table, one row per subject and visit (rows of missed visits absent or with a
  null outcome). Covariates constant within a subject are taken from its other rows.
- ``ice``: ``spec.subject``, ``spec.visit`` (the first visit the ICE affects) and ``strategy``
  (``MAR``, ``JR``, ``CR``, ``CIR``); one row per subject. Subjects not listed, or listed with
  ``MAR``, have their missing values imputed under MAR. ``spec.strategy``, when set, replaces
  every non-MAR strategy (and gives the strategy of an ICE table without that column).
- ``delta``: optional table with a ``delta`` column and any of the subject, group and visit
  columns as keys; the delta is added to imputed values only (tipping point: e.g. rows
  ``group=DRUG, visit=W4, delta=0.3``).

Model: the imputation model is an MMRM ``outcome ~ group * visit + covariates`` with one
unstructured covariance, fitted by REML on rows that are observed and not post-ICE under a
reference-based strategy (post-ICE observed values stay in the analysis; with
``RbiSpec(fit_post_ice=True)`` they are also used in the fit). Analysis: ANCOVA per
visit ``outcome ~ group + analysis_covariates``.

Output ``RbiResult.pooled``: per visit (in visit order), the parameters ``trt_<level>`` (each
non-reference group minus the reference) then ``lsm_<level>`` (every group's LS mean),
with ``estimate, se, lci, uci, pvalue, df`` (df null for the normal-based jackknife and
bootstrap; Barnard-Rubin df for ``bayes-approx``). Also ``samples``, ``imputed``
(conditional-mean imputation of the full data), ``coefficients``, ``covariance``, ``fit``.
``run_rbi_deltas(data, ice, spec, [delta, ...])`` returns one result per delta from one set of
fits; ``fit_rbi(data, ice, spec, reuse=[...])`` gives that set (:class:`RbiFits`; the draws of an
earlier set fitted on the same rows are taken over), whose ``analyse(delta)`` analyses one delta
and whose ``scaled_delta_curve(delta, scales)`` a whole grid of multiples of one delta table by
linearity (conditional mean imputation: the tipping point). Bad input
raises :class:`RbiInputError` with a message that says what to fix; a REML fit of the full data
that does not converge raises ``trial.rbi.reml_fit.ImputationModelError``. The entry points
(``run_rbi``, ``fit_rbi``, ``RbiFits.analyse``, ``RbiFits.scaled_delta_curve``) run BLAS on one
thread (:mod:`trial.rbi.threads`), whatever the process uses.
"""

from trial.rbi.engine import RbiFits, RbiResult, fit_rbi, run_rbi, run_rbi_deltas
from trial.rbi.spec import METHODS, STRATEGIES, RbiInputError, RbiSpec

__all__ = [
    "METHODS",
    "STRATEGIES",
    "RbiFits",
    "RbiInputError",
    "RbiResult",
    "RbiSpec",
    "fit_rbi",
    "run_rbi",
    "run_rbi_deltas",
]
