"""Running a benchmark of `bench/` as a user would, for the smoke tests that keep each one
from rotting: its last line of output is one JSON object of figures."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from edge.settings import REPO_ROOT


def run_benchmark(script: str, *args: str, timeout: float) -> dict[str, Any]:
    """The figures `bench/<script>` prints last; its exit code must be 0 (else its output's end)."""
    out = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])
