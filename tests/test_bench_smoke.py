"""The benchmark still runs end to end and writes its table.

A smoke run (`python -m bench --quick`: one cold start of each server, one
second of load at 1 and 16 connections) so changes to the service or to
bench/ cannot silently break `make bench`. Nothing here judges a timing:
that is what the full run and bench/results.md are for.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_quick_run_writes_the_table(tmp_path):
    out = tmp_path / "results.md"

    run = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert run.returncode == 0, run.stderr[-4000:]
    table = out.read_text()
    assert table in run.stdout
    assert "- Machine: " in table and "- Python: " in table
    assert "| create_embedded_session | " in table and "| minimal create | " in table
    if shutil.which("wrk"):
        assert "| create | Python: create_embedded_session | 16 |" in table
        assert "| status | Python: session_status | 16 |" in table
        create_row = next(line for line in table.splitlines() if line.startswith("| create | Python: "))
        assert create_row.split("|")[7].strip().endswith(" ms"), "CPU per request is reported in the quick run too"
    else:
        assert "wrk is not installed" in table
