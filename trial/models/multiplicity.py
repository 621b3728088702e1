"""Fixed-sequence testing of the key secondary family (SAP section 5).

The order, the hypotheses and alpha come from ``endpoints.key_secondary_sequence`` and
``endpoints.alpha`` (two-sided) of the study configuration. Each hypothesis is tested at the
full alpha only if every earlier one was rejected; the first failure stops the sequence.

Where the p-values come from:

- ``endpoint: primary`` - the MMRM's ``contrasts`` table (columns ``visit, contrast,
  p_value``; :func:`trial.models.mmrm.fit_mmrm`) at the primary visit;
- any other endpoint (``hdss_responder``, ``sweat_responder``) - the responder result's
  ``odds_ratios`` table (columns ``endpoint, contrast, p_value``;
  :func:`trial.models.responders.fit_responders`).

A p-value that is not available (model not fitted, e.g. a blinded run) cannot be tested: that
step and all later ones are ``not tested``, and the notes say why.
"""

from __future__ import annotations

import polars as pl

from study import Study
from trial.models.result import ModelResult
from trial.models.tidy import empty_estimates

NAME = "fixed_sequence"
REJECT = "reject"
NOT_REJECTED = "not rejected"
NOT_TESTED = "not tested"

SEQUENCE_SCHEMA = {
    "step": pl.Int64,
    "id": pl.String,
    "endpoint": pl.String,
    "contrast": pl.String,
    "p_value": pl.Float64,
    "alpha": pl.Float64,
    "decision": pl.String,
    "reason": pl.String,
}


def _lookup(frame: pl.DataFrame | None, **keys: str) -> float | None:
    if frame is None or frame.height == 0 or "p_value" not in frame.columns:
        return None
    if any(k not in frame.columns for k in keys):
        return None
    hit = frame.filter(*[pl.col(k) == v for k, v in keys.items()])
    if hit.height > 1:
        raise ValueError(f"more than one p-value for {keys}")
    return None if hit.height == 0 else hit.get_column("p_value").item()


def key_secondary_pvalues(
    study: Study,
    mmrm_contrasts: pl.DataFrame | None,
    responder_odds_ratios: pl.DataFrame | None,
) -> dict[str, float | None]:
    """p-value per hypothesis id of the configured sequence (None where not available)."""
    out: dict[str, float | None] = {}
    for step in study.endpoints.key_secondary_sequence:
        if step.endpoint == "primary":
            p = _lookup(mmrm_contrasts, visit=study.primary_visit, contrast=step.contrast)
        else:
            p = _lookup(responder_odds_ratios, endpoint=step.endpoint, contrast=step.contrast)
        out[step.id] = p
    return out


def fixed_sequence(study: Study, p_values: dict[str, float | None]) -> ModelResult:
    """Decisions of the fixed sequence for given p-values per hypothesis id.

    Returns a result whose table ``fixed_sequence`` has one row per step in the configured
    order: ``step, id, endpoint, contrast, p_value, alpha, decision, reason``.
    """
    alpha = study.alpha
    rows = []
    notes: list[str] = [f"fixed sequence at two-sided alpha {alpha:g}, in the configured order"]
    stopped: str | None = None
    for i, step in enumerate(study.endpoints.key_secondary_sequence, start=1):
        hid = step.id
        p = p_values.get(hid)
        if stopped is not None:
            decision, reason = NOT_TESTED, stopped
        elif p is None:
            decision, reason = NOT_TESTED, f"no p-value available for {hid}"
            stopped = f"{hid} could not be tested"
            notes.append(f"{hid}: no p-value (model not fitted or result missing)")
        elif p <= alpha:
            decision, reason = REJECT, f"p <= {alpha:g}"
        else:
            decision, reason = NOT_REJECTED, f"p > {alpha:g}"
            stopped = f"{hid} was not rejected"
        rows.append(
            {
                "step": i,
                "id": hid,
                "endpoint": step.endpoint,
                "contrast": step.contrast,
                "p_value": p,
                "alpha": alpha,
                "decision": decision,
                "reason": reason,
            }
        )
    table = pl.DataFrame(rows, schema=SEQUENCE_SCHEMA)
    return ModelResult(
        name=NAME,
        estimates=empty_estimates(),
        fit={"n_hypotheses": table.height, "n_rejected": int((table["decision"] == REJECT).sum())},
        tables={"fixed_sequence": table},
        notes=notes,
    )


def fixed_sequence_from_results(
    study: Study, mmrm: ModelResult | None, responders: ModelResult | None
) -> ModelResult:
    """:func:`fixed_sequence` on the p-values of an MMRM result and a responder result."""
    p_values = key_secondary_pvalues(
        study,
        None if mmrm is None else mmrm.tables.get("contrasts"),
        None if responders is None else responders.tables.get("odds_ratios"),
    )
    return fixed_sequence(study, p_values)
