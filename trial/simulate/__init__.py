"""Trial simulator: a seeded, complete raw delivery tree with its sealed truth.

Public entry point: :func:`simulate_trial` (returns a :class:`SimulationSummary`).
"""

from trial.simulate.simulator import SimulationSummary, sealed_dir_for, simulate_trial

__all__ = ["SimulationSummary", "sealed_dir_for", "simulate_trial"]
