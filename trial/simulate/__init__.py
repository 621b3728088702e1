"""Trial simulator: a seeded, complete raw delivery tree with its sealed truth.

Public entry point: :func:`simulate_trial` (returns a :class:`SimulationSummary`). All study
facts (arms, visits, windows, regions, centres, codelists) and every simulation value come
from the study configuration (``simulation:`` section, SAP section 9).

Conventions where the specs leave room (the truth files say the same):

- ``n_subjects`` counts randomised subjects; screen failures come on top.
- Vendor-A exports happen at every done post-baseline visit while a unit is assigned and
  when it is returned (swap, withdrawal, completion); vendor-B units upload at the same
  contacts, and a stream file is delivered with the upload that follows its last event.
- A unit whose backup battery died dates its sessions from ``2000-01-01T00:00:00`` until
  the next clinic export, where the clock is set again (``exported_at`` is then correct).
- Exact duplicate vendor-B lines and the half-written last line are only made with
  ``faults=True``; duplicates are legal and listed in ``delivery_events.json``.
- Paths in ``delivery_events.json`` and ``faults.json`` are relative to the raw root
  (``C02/2026-03-14/dm.csv``), as the readers' ``source_file``.
"""

from trial.simulate.simulator import SimulationSummary, sealed_dir_for, simulate_trial

__all__ = ["SimulationSummary", "sealed_dir_for", "simulate_trial"]
