"""What `make deploy-test` measured, read back from `.run/testbed-figures.json` (written by
tests/test_two_boards.py): a table per board, the playbook runs' recaps and times, and as the
last line one JSON object of the figures (`core_rss_mb`, `execution_rss_mb`, `core_peak_mb`,
`execution_peak_mb`, ...)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.testbed import lan

FIGURES = Path(__file__).resolve().parents[2] / ".run/testbed-figures.json"
KEYS = (
    "core_rss_mb", "execution_rss_mb", "core_peak_mb", "execution_peak_mb", "first_run_s", "second_run_s",
    "upgrade_run_s", "rollback_run_s", "core_reboot_to_all_online_s", "total_s",
)  # fmt: skip


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def leftovers() -> list[str]:
    """What a testbed left behind on this machine: there should be nothing."""
    nspawn = subprocess.run(["pgrep", "-f", "systemd-nspawn .*testbed"], capture_output=True, text=True).stdout.split()
    return [f"namespace {ns}" for ns in lan.namespaces()] + [f"nspawn process {pid}" for pid in nspawn]


def main(path: Path = FIGURES) -> int:
    if not path.exists():
        print(f"no figures at {path}: run `make deploy-test` first", file=sys.stderr)
        return 1
    f: dict[str, Any] = json.loads(path.read_text())
    for host, m in f.get("memory", {}).items():
        rows = [("unit", "at rest MB", "peak MB", "MemoryMax MB")]
        for unit in sorted(set(m["rest_mb"]) | set(m["peak_mb"])):
            limit = m["limit_mb"].get(unit)
            rows.append(
                (unit, f"{m['rest_mb'].get(unit, 0):.1f}", f"{m['peak_mb'].get(unit, 0):.1f}", str(limit or "-"))
            )
        rows.append(("all of the board", f"{m['rest_total_mb']:.1f}", f"{m['peak_total_mb']:.1f}", ""))
        verdict = "met" if m["rest_total_mb"] < m["goal_mb"] else "NOT met"
        print(f"\n{host}\n{table(rows)}\nat rest: {m['rest_total_mb']:.1f} MB, goal < {m['goal_mb']} MB: {verdict}")
    for run in ("first_run", "second_run"):
        if f"{run}_recap" in f:
            recap = ", ".join(
                f"{h}: ok={r['ok']} changed={r['changed']} failed={r['failed']}" for h, r in f[f"{run}_recap"].items()
            )
            print(f"\n{run.replace('_', ' ')} of site.yml: {f.get(run + '_s')} s; {recap}")
    if "timings_s" in f:
        print("testbed: " + ", ".join(f"{k} {v} s" for k, v in f["timings_s"].items()))
    left = leftovers()
    print("left behind: " + (", ".join(left) if left else "nothing (namespaces and nspawn processes gone)"))
    print(json.dumps({k: f[k] for k in KEYS if k in f} | {"timings_s": f.get("timings_s", {}), "left_behind": left}))
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
