"""Runs on a test board (as `testbed-sampler.service`, from boot): every half second, the
resident memory of each edge unit (every process in its cgroup, children included) and of the
board's edge units together, keeping the highest seen in /run/testbed-peaks.json. The host's
cgroup v1 gives the board no memory controller, so there is no `memory.peak` to read.

Only the standard library: it runs on the board's own python3 before the project is there.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

CGROUPS = Path("/sys/fs/cgroup/system.slice")
OUT = Path("/run/testbed-peaks.json")
UNITS = ("edge-", "mosquitto.service")


def rss_kb(pid: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def sample() -> dict[str, int]:
    """KB per unit now."""
    out = {}
    for group in CGROUPS.glob("*.service"):
        if group.name.startswith(UNITS):
            try:
                pids = (group / "cgroup.procs").read_text().split()
            except OSError:
                continue
            out[group.name] = sum(rss_kb(p) for p in pids)
    return out


def processes() -> dict[str, int]:
    """How many processes each edge unit has now (a node at rest has one)."""
    return {g.name: len((g / "cgroup.procs").read_text().split()) for g in CGROUPS.glob("edge-*.service")}


def main() -> None:
    peaks: dict[str, int] = {}
    total = 0
    while True:
        now = sample()
        for unit, kb in now.items():
            peaks[unit] = max(peaks.get(unit, 0), kb)
        total = max(total, sum(now.values()))
        tmp = OUT.with_suffix(".tmp")
        tmp.write_text(json.dumps({"units_kb": peaks, "total_kb": total, "at": time.time()}))
        os.replace(tmp, OUT)
        time.sleep(0.5)


if __name__ == "__main__":
    main()
