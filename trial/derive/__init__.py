"""Clean + derive: typed raw frames -> analysis-ready (ADaM-style) tables, Dagster-free.

Every rule is read from the study configuration (:class:`study.Study`).
"""

from trial.derive.ae import derive_adae
from trial.derive.analysis_long import build_analysis_long
from trial.derive.gravimetry import latest_papers, paper_rates, region_values
from trial.derive.hdss import derive_adhdss
from trial.derive.schedule import schedule_frame, study_day, visit_days
from trial.derive.sessions import adherence, map_sessions, sessions_started
from trial.derive.subjects import derive_adsl, eligibility_findings
from trial.derive.sweat import derive_adsweat, derive_adsweat_side

__all__ = [
    "adherence",
    "build_analysis_long",
    "derive_adae",
    "derive_adhdss",
    "derive_adsl",
    "derive_adsweat",
    "derive_adsweat_side",
    "eligibility_findings",
    "latest_papers",
    "map_sessions",
    "paper_rates",
    "region_values",
    "schedule_frame",
    "sessions_started",
    "study_day",
    "visit_days",
]
