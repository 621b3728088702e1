"""The study sections typed outside the study package, checked when the definitions are built.

``intercurrent_events`` and ``estimands`` are read by :mod:`trial.estimands.config`; a mistake
there must stop a run as early as any other study mistake: before a raw file is read, as one
:class:`study.StudyError` line naming the section.
"""

from __future__ import annotations

from study import Study, StudyError
from trial.estimands.config import estimands_config


def check_amendment_sections(study: Study) -> None:
    """Read the ICE rules and estimands of ``study``; a problem raises :class:`StudyError`."""
    try:
        estimands_config(study)
    except KeyError as exc:
        raise StudyError(study.source, "estimands", f"a required key is missing: {exc}") from None
    except (ValueError, TypeError) as exc:
        text = str(exc).removeprefix(f"{study.source}: ")
        raise StudyError(study.source, "estimands", text) from None
