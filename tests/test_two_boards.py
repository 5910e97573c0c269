"""The deployment for real: `deploy/ansible/site.yml` onto two Debian trixie boards booted with
systemd by systemd-nspawn, each in a network namespace of its own, then the system it
deployed, checked from outside (`make deploy-test`; the testbed is `tests/testbed/`).

The tests run in file order on one testbed and build on each other (the first deploys);
their figures go to `.run/testbed/figures.json`, which `python -m tests.testbed.report` prints.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge import inventory
from tests.testbed import lan
from tests.testbed.bed import ANSIBLE, Playbook, Testbed
from tests.testbed.board import Board

pytestmark = pytest.mark.deploy

VENV = "/opt/edge-trader/current/venv"
OPERATOR = "set -a; . /etc/edge-trader/operator.env; set +a; "
FIGURES: dict[str, Any] = {}


DUAL = ANSIBLE / "inventory/dual-board.yml"


def placed() -> dict[str, list[str]]:
    """Each board's node identities, from the inventory (evaluator instances as evaluator_<k>)."""
    out: dict[str, list[str]] = {}
    for p in inventory.placements(DUAL):
        out.setdefault(p.host, []).append(p.ident)
    return out


def unit_names() -> dict[str, list[str]]:
    """Each board's units: one per process (`edge_process_groups` share one), sorted."""
    out: dict[str, list[str]] = {}
    for process, members in inventory.processes(inventory.placements(DUAL)).items():
        out.setdefault(members[0].host, []).append(f"edge-{process}.service")
    return {host: sorted(names) for host, names in out.items()}


@pytest.fixture(scope="module")
def bed() -> Iterator[Testbed]:
    missing = [tool for tool in ("debootstrap", "systemd-nspawn", "ssh", "nsenter") if not shutil.which(tool)]
    if os.geteuid() != 0 or missing:
        pytest.fail(f"the deployment test needs root and {missing or 'its tools'}: run it with `make deploy-test`")
    started = time.monotonic()
    with Testbed() as testbed:
        yield testbed
        FIGURES["timings_s"] = testbed.timings
    FIGURES["total_s"] = round(time.monotonic() - started, 1)
    path = testbed.work.parent / "testbed-figures.json"
    path.write_text(json.dumps(FIGURES, indent=2))


def status(board: Board) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = json.loads(board.sh(OPERATOR + f"{VENV}/bin/edge status --json --wait 3"))
    return out


def wait_online(board: Board, idents: list[str], timeout: float = 120) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    rows: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        rows = status(board)
        if all(rows.get(i, {}).get("state") == "online" for i in idents):
            return rows
        time.sleep(2)
    late = {i: rows.get(i, {}).get("state", "never seen") for i in idents if rows.get(i, {}).get("state") != "online"}
    raise AssertionError(f"not online after {timeout:.0f} s: {late}")


def everyone() -> list[str]:
    return [ident for idents in placed().values() for ident in idents]


# -- the playbook --------------------------------------------------------------------------------


def deploy(bed: Testbed, name: str, *args: str, src: Path | None = None) -> Playbook:
    """`site.yml` run from the controller; its time and recap kept as figures, its output in
    `.run/testbed/<name>.log`; it must succeed."""
    run = bed.playbook(*args) if src is None else bed.playbook(*args, src=src)
    FIGURES[f"{name}_s"] = round(run.seconds, 1)
    FIGURES[f"{name}_recap"] = run.recap
    (bed.work / f"{name}.log").write_text(run.output)
    assert run.rc == 0, run.output[-6000:]
    return run


def test_the_first_run_deploys_both_boards(bed: Testbed) -> None:
    run = deploy(bed, "first_run")
    assert set(run.recap) >= set(placed()), run.recap_text()
    assert all(r["failed"] == 0 and r["unreachable"] == 0 for r in run.recap.values()), run.recap_text()


def test_a_second_run_changes_nothing(bed: Testbed) -> None:
    run = deploy(bed, "second_run")
    assert all(r["changed"] == 0 for r in run.recap.values()), "\n".join(run.changed_tasks())


def test_every_placed_node_is_online_seen_from_the_execution_board(bed: Testbed) -> None:
    rows = wait_online(bed.execution, everyone())
    boards = {ident: rows[ident]["board"] for ident in everyone()}
    for host, idents in placed().items():
        expected = "core" if host == "trader-core" else "execution"
        assert {boards[i] for i in idents} == {expected}, boards


# -- the broker: TLS with verification, no anonymous access ---------------------------------------


def test_the_execution_board_reaches_the_broker_over_verified_tls_only(bed: Testbed) -> None:
    exe = bed.execution
    env = dict(
        line.split("=", 1)
        for line in exe.sh("cat /etc/edge-trader/operator.env").splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert env["MQTT_PORT"] == "8883" and env["MQTT_CAFILE"], env
    for unit in units(exe):
        shown = exe.sh(f"systemctl show -p Environment {unit}")
        assert "MQTT_PORT=8883" in shown and "MQTT_CAFILE=" in shown, (unit, shown)
    sub = 'mosquitto_sub -h trader-core.local -p 8883 -u operator -P "$MQTT_PASS" -t trader/node/+/status -C 1 -W 10'
    verified = exe.run(["sh", "-c", OPERATOR + sub + " --cafile $MQTT_CAFILE"], check=False)
    assert verified.returncode == 0, verified.stderr
    plain = exe.run(["sh", "-c", OPERATOR + sub], check=False)
    assert plain.returncode != 0, "a plain MQTT connection to the TLS port was accepted"
    # the system's CAs do not know the project's CA: the broker's certificate is not trusted
    untrusted = exe.run(["sh", "-c", OPERATOR + sub + " --capath /etc/ssl/certs"], check=False)
    assert untrusted.returncode != 0, "the broker's certificate verified against the public CAs"
    # the plain port listens on the core board's loopback only
    far = exe.run(["sh", "-c", "mosquitto_sub -h trader-core.local -p 1883 -t '#' -C 1 -W 5"], check=False)
    assert far.returncode != 0


def test_nobody_gets_in_without_a_password(bed: Testbed) -> None:
    core = bed.core
    for argv in (
        "mosquitto_sub -h 127.0.0.1 -p 1883 -t 'trader/#' -C 1 -W 5",
        "mosquitto_sub -h 127.0.0.1 -p 1883 -u operator -P wrong -t 'trader/#' -C 1 -W 5",
        "mosquitto_sub -h trader-core.local -p 8883 --cafile /etc/mosquitto/edge/tls/ca.crt -t 'trader/#' -C 1 -W 5",
    ):
        done = core.run(["sh", "-c", argv], check=False)
        assert done.returncode != 0 and "not authori" in (done.stderr + done.stdout).lower(), (argv, done.stderr)


# -- systemd ---------------------------------------------------------------------------------------


def shown(board: Board, unit: str, properties: str) -> dict[str, str]:
    """`systemctl show -p <properties> <unit>` as a dict."""
    return dict(line.split("=", 1) for line in board.sh(f"systemctl show -p {properties} {unit}").splitlines())


def units(board: Board) -> list[str]:
    out = board.sh("systemctl list-units --all --plain --no-legend 'edge-*.service'")
    return sorted(line.split()[0] for line in out.splitlines() if line.strip())


def test_every_unit_restarts_logs_to_journald_and_has_a_memory_limit(bed: Testbed) -> None:
    for host, board in bed.boards.items():
        found = units(board)
        assert found == unit_names()[host], found
        for unit in found:
            says = shown(board, unit, "MemoryMax,Restart,StandardOutput,StandardError,ActiveState,User")
            assert says["ActiveState"] == "active" and says["Restart"] == "on-failure", (unit, says)
            assert says["StandardOutput"] == "journal" and says["StandardError"] == "journal", (unit, says)
            assert says["User"] == "edge", (unit, says)
            assert says["MemoryMax"].isdigit() and int(says["MemoryMax"]) < 2**40, (unit, says)  # set, not infinity
            journal = board.sh(f"journalctl -u {unit} --no-pager -o cat | head -50")
            assert journal.strip(), f"{unit}: nothing in its journal"


def kill_9_and_back(board: Board, process: str) -> None:
    """kill -9 a unit's main process: systemd restarts it, and every node it hosts is online
    again from the new process."""
    unit = f"edge-{process}.service"
    idents = [p.ident for p in inventory.placements(DUAL) if p.process == process]
    before = shown(board, unit, "MainPID,NRestarts")
    board.sh(f"kill -9 {before['MainPID']}")
    deadline = time.monotonic() + 60
    after = before
    while time.monotonic() < deadline:
        after = shown(board, unit, "MainPID,NRestarts,ActiveState")
        if after["ActiveState"] == "active" and after["MainPID"] not in ("0", before["MainPID"]):
            break
        time.sleep(1)
    assert int(after["NRestarts"]) == int(before["NRestarts"]) + 1, after
    rows = wait_online(board, idents)
    assert {rows[i]["pid"] for i in idents} == {int(after["MainPID"])}, {i: rows[i] for i in idents}


def test_a_node_killed_with_kill_9_is_restarted_by_systemd(bed: Testbed) -> None:
    kill_9_and_back(bed.execution, "trading")


def test_a_process_group_killed_with_kill_9_comes_back_whole(bed: Testbed) -> None:
    """The planner's four nodes share one process (edge_process_groups): killed together,
    restarted together."""
    kill_9_and_back(bed.core, "planner")


def test_the_lan_is_only_inside_its_namespaces(bed: Testbed) -> None:
    host_links = lan.ip("-br", "addr").stdout
    assert lan.SUBNET not in host_links
    assert Path("/run/netns", lan.CONTROLLER_NS).exists()


# -- the system at work across the boards -----------------------------------------------------------


def edge(board: Board, *args: str, timeout: float = 120) -> Any:
    """`edge call ...` as the operator on `board`, its reply as JSON."""
    quoted = " ".join("'" + a.replace("'", "'\\''") + "'" for a in args)
    out = board.sh(OPERATOR + f"{VENV}/bin/edge call {quoted} --timeout {timeout:.0f}", timeout=timeout + 30)
    return json.loads(out)


def wait_plan_done(board: Board, plan_id: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    plan: dict[str, Any] = {}
    while time.monotonic() < deadline:
        plan = next(p for p in edge(board, "planning", "plans", "{}")["plans"] if p["plan_id"] == plan_id)
        if plan["status"] in ("done", "failed", "partly_done"):
            return plan
        time.sleep(2)
    raise AssertionError(f"{plan_id} not done after {timeout:.0f} s: {plan.get('status')}")


def test_a_planning_cycle_runs_across_the_boards(bed: Testbed) -> None:
    """Deposit on the execution board's portfolio, plan on the core board, orders filled by the
    execution board's trading node, the portfolio updated: every hop crosses the LAN."""
    exe = bed.execution
    before = edge(exe, "portfolio", "sync", "{}")
    edge(exe, "portfolio", "deposit", '{"amount": "3000", "currency": "EUR"}', "--msg-id", "testbed-deposit-1")
    result = edge(exe, "coordinator", "cycle", "{}", timeout=300)
    assert result["plan"], result["notes"]
    plan = wait_plan_done(exe, result["plan"]["plan_id"])
    assert plan["status"] == "done", [
        (s["action"]["symbol"], s["order_status"], s["order_note"]) for s in plan["steps"]
    ]
    orders = edge(exe, "trading", "orders", json.dumps({"plan_id": plan["plan_id"]}))["orders"]
    assert orders and {o["status"] for o in orders} == {"filled"}, orders
    after = edge(exe, "portfolio", "sync", "{}")
    assert float(after["positions_base"]) > float(before["positions_base"]), (before, after)
    FIGURES["cycle_plan_steps"] = len(plan["steps"])


def test_a_cut_link_loses_no_command(bed: Testbed) -> None:
    """The execution board's cable pulled for 60 s while a deposit for its portfolio is sent
    from the core board: the broker keeps it for the portfolio's session, the node gets it
    once the link is back, and it is booked exactly once."""
    core, exe = bed.core, bed.execution
    before = edge(core, "portfolio", "sync", "{}")
    lan.cut(exe.port)
    try:
        pending = core.sh(
            OPERATOR + f'nohup {VENV}/bin/edge call portfolio deposit \'{{"amount": "123", "currency": "EUR"}}\' '
            "--msg-id testbed-cut-1 --timeout 240 > /tmp/cut-deposit.json 2>&1 & echo started"
        )
        assert "started" in pending
        time.sleep(60)
    finally:
        lan.restore(exe.port)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not core.sh("cat /tmp/cut-deposit.json", check=False).strip():
        time.sleep(2)
    reply = json.loads(core.sh("cat /tmp/cut-deposit.json"))
    assert reply, reply
    wait_online(core, everyone())
    # the same command again is the same deposit, not a second one
    edge(core, "portfolio", "deposit", '{"amount": "123", "currency": "EUR"}', "--msg-id", "testbed-cut-1")
    after = edge(core, "portfolio", "sync", "{}")
    cash = {c["currency"]: float(c["amount"]) for c in after["cash"]}
    cash_before = {c["currency"]: float(c["amount"]) for c in before["cash"]}
    assert round(cash["EUR"] - cash_before["EUR"], 2) == 123.0, (cash_before, cash)


SAMPLER = "import sys, json; sys.path.insert(0, '/usr/local/lib/testbed'); import sampler; "
GOALS_MB = {"trader-core": 350, "trader-exec": 200}  # the whole system at rest on each board


def at_rest(board: Board, timeout: float = 180) -> tuple[dict[str, int], dict[str, int]]:
    """Each unit's RSS (KB) once the heavy work's children have gone (they leave after their
    idle time), and how many processes each unit has then (one, at rest)."""
    deadline = time.monotonic() + timeout
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = json.loads(board.sh('python3 -c "' + SAMPLER + 'print(json.dumps(sampler.processes()))"'))
        if all(n <= 1 for n in counts.values()):
            break
        time.sleep(5)
    samples = [
        json.loads(board.sh('python3 -c "' + SAMPLER + 'print(json.dumps(sampler.sample()))"')) for _ in range(3)
    ]
    return {unit: sorted(s.get(unit, 0) for s in samples)[1] for unit in samples[0]}, counts


def test_both_boards_go_thin_at_rest_and_peak_inside_their_limits(bed: Testbed) -> None:
    """Measured on the boards: every unit's peak (its children included) under its MemoryMax,
    at rest every unit down to its one process, and each board's total at rest (every unit,
    the broker on core) under its goal: core < 350 MB, execution < 200 MB."""
    report: dict[str, Any] = {}
    short = {"trader-core": "core", "trader-exec": "execution"}
    for host, board in bed.boards.items():
        rest, processes = at_rest(board)
        peaks = json.loads(board.sh("cat /run/testbed-peaks.json"))
        limits = {u: int(board.sh(f"systemctl show -p MemoryMax --value {u}").strip()) for u in units(board)}
        report[host] = {
            "rest_mb": {u: round(kb / 1024, 1) for u, kb in sorted(rest.items())},
            "peak_mb": {u: round(kb / 1024, 1) for u, kb in sorted(peaks["units_kb"].items())},
            "limit_mb": {u: round(b / 2**20) for u, b in limits.items()},
            "rest_total_mb": round(sum(rest.values()) / 1024, 1),
            "peak_total_mb": round(peaks["total_kb"] / 1024, 1),
            "goal_mb": GOALS_MB[host],
            "processes_at_rest": processes,
        }
        FIGURES[f"{short[host]}_rss_mb"] = report[host]["rest_total_mb"]
        FIGURES[f"{short[host]}_peak_mb"] = report[host]["peak_total_mb"]
    FIGURES["memory"] = report
    for host, r in report.items():
        over = {u: (r["peak_mb"][u], mb) for u, mb in r["limit_mb"].items() if r["peak_mb"].get(u, 0) >= mb}
        assert not over, f"{host}: peaks at or over MemoryMax: {over}"
        assert all(n == 1 for n in r["processes_at_rest"].values()), f"{host}: not at rest: {r['processes_at_rest']}"
        assert r["rest_total_mb"] < r["goal_mb"], f"{host}: {r['rest_total_mb']} MB at rest: {r['rest_mb']}"


def test_the_core_board_restarted_everything_returns_by_itself(bed: Testbed) -> None:
    started = time.monotonic()
    bed.core.shutdown()
    bed.core.boot(bed.proxy_socket)
    wait_online(bed.execution, everyone(), timeout=180)
    FIGURES["core_reboot_to_all_online_s"] = round(time.monotonic() - started, 1)


# -- upgrades and going back ------------------------------------------------------------------------

SENDER = """set -eu
. /etc/edge-trader/operator.env
mqtt="-V 5 -h $MQTT_HOST -p $MQTT_PORT -u $MQTT_USER -P $MQTT_PASS"
mosquitto_sub $mqtt -q 1 -t 'trader/reply/portfolio/deposit' -t 'trader/reply/universe/ping' -v > /root/replies.txt &
echo $! > /root/replies.pid
sleep 1
n=0
while [ ! -e /root/stop-sending ]; do
  n=$((n + 1))
  mosquitto_pub $mqtt -q 1 -t trader/cmd/portfolio/deposit -m '{"amount": "1", "currency": "EUR", "note": "upgrade"}' \
    -D publish user-property msg-id "upgrade-$n"
  mosquitto_pub $mqtt -q 1 -t trader/cmd/universe/ping -m "{\\"echo\\": \\"upgrade-$n\\"}"
  echo $n > /root/sent.txt
  sleep 1
done
"""


def release(board: Board) -> str:
    return board.sh("readlink /opt/edge-trader/current").strip().rstrip("/").rsplit("/", 1)[-1]


def newer_checkout(bed: Testbed) -> Path:
    """This checkout with one more commit: a newer release for the boards."""
    src = bed.work / "newer"
    bed.sh_local(["git", "clone", "--quiet", str(Path(__file__).parents[1]), str(src)])
    (src / "edge/__init__.py").write_text((src / "edge/__init__.py").read_text() + "# the testbed's newer commit\n")
    git = ["git", "-C", str(src), "-c", "user.name=testbed", "-c", "user.email=testbed@localhost"]
    bed.sh_local([*git, "commit", "--quiet", "-am", "testbed: a newer commit"])
    return src


def down_intervals(board: Board, since: float) -> dict[str, list[tuple[float, float]]]:
    """When each edge unit was not running, from systemd's own journal lines (Stopping ... Started)."""
    out: dict[str, list[tuple[float, float]]] = {}
    stopping: dict[str, float] = {}
    lines = board.sh(f"journalctl _PID=1 -o short-unix --no-pager --since @{since:.0f}")
    for line in lines.splitlines():
        at, _, text = line.partition(" ")
        words = text.split()
        unit = next((w for w in words if w.startswith("edge-") and w.endswith(".service")), None)
        if unit is None or not at.replace(".", "").isdigit():
            continue
        if "Stopping" in text:
            stopping[unit] = float(at)
        elif "Started" in text and unit in stopping:
            out.setdefault(unit, []).append((stopping.pop(unit), float(at)))
    return out


def test_an_upgrade_restarts_one_node_at_a_time_and_loses_no_command(bed: Testbed) -> None:
    core = bed.core
    first = {host: release(b) for host, b in bed.boards.items()}
    before = edge(core, "portfolio", "sync", "{}")
    core.sh("rm -f /root/stop-sending /root/replies.txt /root/sent.txt")
    (core.root / "root/sender.sh").write_text(SENDER)
    core.sh("nohup sh /root/sender.sh > /root/sender.log 2>&1 &")
    started = time.time()
    try:
        deploy(bed, "upgrade_run", src=newer_checkout(bed))
    finally:
        core.sh("touch /root/stop-sending")
    sent = int(core.sh("sleep 2; cat /root/sent.txt"))
    deadline = time.monotonic() + 120
    replies: list[str] = []
    while time.monotonic() < deadline:
        replies = core.sh("cat /root/replies.txt").splitlines()
        if len(replies) >= 2 * sent:
            break
        time.sleep(2)
    core.sh("kill $(cat /root/replies.pid)", check=False)
    deposits = [r for r in replies if r.startswith("trader/reply/portfolio/deposit")]
    pings = [r for r in replies if r.startswith("trader/reply/universe/ping")]
    assert len(deposits) == sent and len(pings) == sent, (sent, len(deposits), len(pings))
    after = edge(core, "portfolio", "sync", "{}")
    eur = {c["currency"]: float(c["amount"]) for c in after["cash"]}["EUR"]
    eur_before = {c["currency"]: float(c["amount"]) for c in before["cash"]}["EUR"]
    assert round(eur - eur_before, 2) == sent, (eur_before, eur, sent)
    # every node runs the new release, and was down alone
    second = {host: release(b) for host, b in bed.boards.items()}
    assert all(second[h] != first[h] for h in first), (first, second)
    intervals = sorted(
        (start, end, unit) for b in bed.boards.values() for unit, spans in down_intervals(b, started).items()
        for start, end in spans
    )  # fmt: skip
    restarted = {unit for _, _, unit in intervals}
    assert restarted == {u for names in unit_names().values() for u in names}, restarted
    for (_, end, unit), (start, _, other) in itertools.pairwise(intervals):
        assert start >= end, f"{unit} and {other} were down at the same time"
    wait_online(core, everyone())
    FIGURES["upgrade_commands_sent"] = sent
    FIGURES["releases"] = {"first": first, "upgraded": second}


def test_one_variable_puts_the_previous_release_back(bed: Testbed) -> None:
    upgraded = {host: release(b) for host, b in bed.boards.items()}
    deploy(bed, "rollback_run", "-e", "edge_rollback=true")
    back = {host: release(b) for host, b in bed.boards.items()}
    assert back == FIGURES["releases"]["first"] and back != upgraded, (back, upgraded)
    wait_online(bed.execution, everyone())
