"""``ionto capture`` runs on a clinic PC: the command line itself must not load Dagster or the
analysis stack, only the subcommand that needs them does."""

from __future__ import annotations

import subprocess
import sys


def test_the_command_line_loads_neither_dagster_nor_polars() -> None:
    code = (
        "import sys, ionto.cli; ionto.cli.build_parser(); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'dagster', 'polars', 'scipy'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
