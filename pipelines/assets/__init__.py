"""Asset groups of the trial pipeline, one module per group."""
