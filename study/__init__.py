"""The study: the typed model of a trial's configuration file, at the bottom of the layers.

It imports nothing else of the project; every other package may import it.
"""

from study.config import (
    CODELIST_NAMES,
    DEFAULT_STUDY,
    EXAMPLE_STUDIES,
    Arm,
    Region,
    Study,
    StudyError,
    Visit,
    example_study_path,
    load_study,
    parse_study,
    study_file,
)
from study.estimands import (
    Check,
    DiscontinuationIce,
    Estimand,
    Estimands,
    IceHandling,
    RescueIce,
    TippingPoint,
)

__all__ = [
    "CODELIST_NAMES",
    "DEFAULT_STUDY",
    "EXAMPLE_STUDIES",
    "Arm",
    "Check",
    "DiscontinuationIce",
    "Estimand",
    "Estimands",
    "IceHandling",
    "Region",
    "RescueIce",
    "Study",
    "StudyError",
    "TippingPoint",
    "Visit",
    "example_study_path",
    "load_study",
    "parse_study",
    "study_file",
]
