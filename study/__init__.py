"""The study: the typed model of a trial's configuration file, at the bottom of the layers.

It imports nothing else of the project; every other package may import it.
"""

from study.config import DEFAULT_STUDY, Arm, Region, Study, Visit, load_study

__all__ = ["DEFAULT_STUDY", "Arm", "Region", "Study", "Visit", "load_study"]
