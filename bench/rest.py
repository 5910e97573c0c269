"""Memory at rest: every node process's RSS once the system has run its first planning
cycle and gone idle, summed per board of the two-board placement.

`python bench/rest.py [--settle 90]` starts the whole system as `edge up` does (a fresh
run folder, paper mode, the bundled prices), with every node of the two boards on this
machine in the boards' processes (`deploy/ansible/inventory/dual-board.yml`: the evaluators
1, 2 and 3; the planner's four nodes in one process, the execution board's two evaluators
in another), waits for the scheduler's first planning cycle (60 s after start) to end, then
`--settle` seconds more (past the computing nodes' idle exit), and reads each process's RSS
from a heartbeat of one of its nodes. Beside it, the RSS of each process's children at that
moment (a child still alive at rest is memory the board pays too) and the broker's, which
the core board's sum includes. RSS counts shared pages (libpython, the libraries) in every
process, so the sums overstate what a board uses: they are the figure the targets are set
in (core < 350 MB, execution < 200 MB; `make deploy-test` measures the same on the boards).

The last line is one JSON object: `rss_mb` per process, `children_mb` per process, `boards`
(each board's sum of its processes' RSS, children included, the broker on core),
`broker_mb`, `cycle`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge import Client, inventory  # noqa: E402
from edge.broker import free_port  # noqa: E402
from edge.cli import collect_status  # noqa: E402
from edge.message import Incoming  # noqa: E402
from edge.settings import LocalBroker  # noqa: E402
from schemas import catalog as t  # noqa: E402
from schemas.planning import Cycles  # noqa: E402

DUAL = inventory.INVENTORY_DIR / "dual-board.yml"
TARGETS = {"core": 350.0, "execution": 200.0}


def one_machine(path: Path) -> dict[str, str]:
    """Write an inventory with every node of the two boards on one host, in the boards'
    processes (their `edge_process_groups`); each process's board."""
    placed = inventory.placements(DUAL)
    boards = {p.process: p.board for p in placed}
    nodes = list(dict.fromkeys(p.node for p in placed))
    instances = sorted(p.instance for p in placed if p.node == "evaluator" and p.instance)
    processes = inventory.processes(placed).items()
    groups = {name: [p.ident for p in members] for name, members in processes if len(members) > 1}
    host = {
        "ansible_host": "127.0.0.1",
        "ansible_connection": "local",
        "edge_board": "core",
        "edge_runs_broker": True,
        "edge_nodes": nodes,
        "edge_instances": {"evaluator": instances},
        "edge_process_groups": groups,
    }
    doc = {
        "all": {
            "vars": {"edge_root": "trader", "edge_mode": "paper", "edge_broker_host": "here"},
            "children": {"core": {"hosts": {"here": host}}},
        }
    }
    path.write_text(json.dumps(doc))  # JSON is YAML
    return boards


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def command(pid: int) -> str:
    """A process's command line, shortened to what tells it apart."""
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return "?"
    return " ".join(w for w in words if w)[-60:]


def descendants(pid: int) -> list[int]:
    """A process's children and theirs (each thread lists the children it started)."""
    kids: list[str] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                kids += (task / "children").read_text().split()
    except OSError:
        return []
    return [p for k in map(int, kids) for p in (k, *descendants(k))]


async def wait_for_cycle(run_dir: Path, timeout: float) -> dict[str, Any]:
    """The first cycle the coordinator finished (its retained `cycles`)."""
    broker = LocalBroker.load(run_dir)
    assert broker is not None, "no broker.json: edge up did not start"
    seen: asyncio.Queue[Cycles] = asyncio.Queue()

    def on_cycles(msg: Incoming) -> None:
        seen.put_nowait(Cycles.model_validate_json(msg.payload))

    async with Client(broker.settings(), name="bench-rest") as client:
        await client.subscribe(client.topics.of(t.COORDINATOR_CYCLES), on_cycles)
        deadline = time.monotonic() + timeout
        while True:
            cycles = await asyncio.wait_for(seen.get(), max(0.1, deadline - time.monotonic()))
            if cycles.cycles:
                c = cycles.cycles[-1]
                return {"outcome": c.outcome, "notes": c.notes[:3], "ended": c.ended.isoformat()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--settle", type=float, default=90.0, help="seconds after the first cycle (default 90)")
    ap.add_argument("--keep", action="store_true", help="keep the run folder")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="edge-rest-"))
    boards = one_machine(tmp / "inventory.yml")
    env = {**os.environ, "EDGE_RUN_DIR": str(tmp / "run"), "DASHBOARD_PORT": str(free_port())}
    log = tmp / "up.log"
    up = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "edge"), "up", "--inventory", str(tmp / "inventory.yml"), "--wait", "120"],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        while "  stop" not in log.read_text():  # the banner says when every node is online
            if up.poll() is not None:
                raise SystemExit(f"edge up exited: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        print(log.read_text(), flush=True)
        started = time.monotonic()
        cycle = asyncio.run(wait_for_cycle(tmp / "run", timeout=300))
        print(f"first cycle ended {time.monotonic() - started:.0f} s after online: {cycle}", flush=True)
        time.sleep(args.settle)
        broker = LocalBroker.load(tmp / "run")
        assert broker is not None
        rows = asyncio.run(collect_status(broker.settings(), wait=6.0))
        broker_mb = round(rss_mb(broker.pid), 1)
        process_of = {p.ident: p.process for p in inventory.placements(tmp / "inventory.yml")}
        rss, children, kids = {}, {}, {}
        for ident, row in rows.items():  # the nodes of one process report its RSS: counted once
            name = process_of.get(ident, ident)
            beat = row["heartbeat"] or {}
            rss[name] = round(float(beat.get("rss_mb", 0.0)), 1)
            pids = descendants(row["pid"]) if row["pid"] else []
            children[name] = round(sum(rss_mb(k) for k in pids), 1)
            kids[name] = [command(k) for k in pids]
    finally:
        os.killpg(up.pid, signal.SIGINT)
        up.wait(60)
    sums = {
        b: round(sum(rss[n] + children[n] for n in rss if boards.get(n) == b) + (broker_mb if b == "core" else 0), 1)
        for b in sorted(set(boards.values()))
    }
    print(f"\n{'process':<14} {'board':<10} {'RSS MB':>8} {'children MB':>12}")
    for name in sorted(rss, key=lambda n: (boards.get(n, ""), n)):
        row = f"{name:<14} {boards.get(name, '?'):<10} {rss[name]:>8.1f} {children[name]:>12.1f}"
        print(f"{row}  {'; '.join(kids[name])}")
    for b, total in sums.items():
        print(f"{b} board: {total:.1f} MB (target < {TARGETS.get(b, 0):.0f})")
    print(f"broker (mosquitto, in the core board's sum): {broker_mb:.1f} MB")
    print(json.dumps({"rss_mb": rss, "children_mb": children, "boards": sums, "broker_mb": broker_mb, "cycle": cycle}))
    if not args.keep:
        subprocess.run(["rm", "-rf", str(tmp)], check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
