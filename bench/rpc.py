"""Request/response round trip through the runtime, against raw paho-mqtt on the same broker.

`python bench/rpc.py [--quick]` starts a dev broker (mosquitto with the project's dev
config, on a free port) and these processes:

- `bench`: an edge Node with one trivial async command (`python -m edge.run bench.nodes:node`);
- `benchnagle`: the same node with TCP_NODELAY off (`bench.nodes:nagle`, MQTT_NODELAY=0);
- a raw paho-mqtt 2 responder and a raw paho requester (`python -m bench.rawpaho ...`),
  processes that never import `edge`.

It then measures, in alternating rounds, an edge `Client.call` loop in this process
against the `bench` node, the raw paho requester against the raw paho responder (v5
response topic and correlation data, QoS 1 both ways, TCP_NODELAY, the same payload
bytes), and `Client.call` with TCP_NODELAY off on both ends against `benchnagle`. The
figures are medians of the per-round figures, so that the noise of a shared machine
falls on every variant alike; the CPU per call of each process comes from
/proc/<pid>/task/*/schedstat. The idle RSS is the `bench` node's VmRSS, read a few
seconds after it announced itself online and before any call.

The last line printed is one JSON object with the figures. Every process and the broker
are stopped on exit, Ctrl-C, SIGTERM or an exception.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import dataclasses
import json
import logging
import math
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python bench/rpc.py` puts bench/, not the checkout, on the path
    sys.path.insert(0, str(REPO))

import psutil  # noqa: E402

from bench.catalog import (  # noqa: E402
    ECHO,
    ECHO_EVT,
    ECHO_EVT_NAGLE,
    ECHO_NAGLE,
    ECHO_PAHO,
    FULL_CATALOG,
    EchoRep,
    EchoReq,
)
from edge import BrokerSettings, Client  # noqa: E402
from edge.broker import DevBroker  # noqa: E402
from edge.message import Incoming  # noqa: E402
from schemas.runtime import NodeStatus  # noqa: E402
from schemas.topics import Command  # noqa: E402

TARGET_RATIO = 1.5
TARGET_P50_MS = 1.0
TARGET_RSS_MB = 36.0  # an idle thin node (39.6 MB before edge/lean.py, deferred models and the lazy catalog)


# -- child processes -------------------------------------------------------------------------
try:
    _prctl: Any = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: nothing to load after fork
except (OSError, AttributeError):
    _prctl = None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """SIGTERM the child if this benchmark dies without cleaning up (SIGKILL, say)."""
    if _prctl is not None:
        _prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclasses.dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


# Started with PR_SET_PDEATHSIG: SIGTERMed when this benchmark dies without cleaning up
# (SIGKILL), it stops the broker (edge.broker starts it in a session of its own) and
# removes the temporary folder. On a normal exit it is SIGKILLed without acting.
WATCHDOG = """
import os, shutil, signal, sys, time
def stop(*_):
    try:
        os.kill(int(sys.argv[1]), signal.SIGTERM)
        for _ in range(50):
            os.kill(int(sys.argv[1]), 0)
            time.sleep(0.1)
    except OSError:
        pass
    time.sleep(1)
    shutil.rmtree(sys.argv[2], ignore_errors=True)
    os._exit(0)
signal.signal(signal.SIGTERM, stop)
while True:
    time.sleep(3600)
"""


class Children:
    """The responder processes, each in its own session so that a Ctrl-C reaches only us
    and they are stopped in order (nodes first, to say offline, then the broker)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.items: list[Child] = []

    def start(self, name: str, argv: list[str], env: dict[str, str], *, pipes: bool = False) -> Child:
        """Start a child, its output in `<name>.log` (with `pipes`, only its stderr: it is
        then driven over its stdin and stdout)."""
        log = self.log_dir / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                argv,
                env=env,
                cwd=REPO,
                stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipes else out,
                stderr=out if pipes else subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if _prctl is not None else None,
            )
        child = Child(name, proc, log)
        self.items.append(child)
        return child

    def pid(self, name: str) -> int:
        return next(c.proc.pid for c in self.items if c.name == name)

    def check(self) -> None:
        for child in self.items:
            if child.proc.poll() is not None:
                raise RuntimeError(f"{child.name} exited ({child.proc.returncode}):\n{child.tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        for child in self.items:
            for pipe in (child.proc.stdin, child.proc.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
            if child.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self.items:
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()
        self.items.clear()


def child_env(settings: BrokerSettings, state_dir: Path, **extra: str) -> dict[str, str]:
    pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {
        **os.environ,
        **settings.to_env(),
        "EDGE_STATE_DIR": str(state_dir),
        "EDGE_LOG": "WARNING",
        "PYTHONPATH": pythonpath,
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def uss_pss_mb(pid: int) -> tuple[float | None, float | None]:
    """Memory only this process uses (USS) and its share of shared pages (PSS), in MB."""
    try:
        info = psutil.Process(pid).memory_full_info()
    except psutil.Error:
        return None, None
    uss, pss = getattr(info, "uss", None), getattr(info, "pss", None)
    return (None if uss is None else uss / 2**20), (None if pss is None else pss / 2**20)


# -- the raw paho requester (a process of its own, see bench/rawpaho.py) ---------------------------
class RawPahoRequester:
    """Drives `python -m bench.rawpaho requester` over its stdin and stdout."""

    def __init__(self, child: Child) -> None:
        self.child = child
        self._read(30.0)  # {"ready": true} once connected and subscribed

    def _read(self, timeout: float) -> dict[str, Any]:
        out = self.child.proc.stdout
        assert out is not None
        ready, _, _ = select.select([out], [], [], timeout)
        line = out.readline() if ready else b""
        if not line:
            raise RuntimeError(f"the raw paho requester did not answer within {timeout}s:\n{self.child.tail()}")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"raw paho requester: {answer['error']}")
        return answer

    def _ask(self, command: str, timeout: float) -> dict[str, Any]:
        stdin = self.child.proc.stdin
        assert stdin is not None
        stdin.write(f"{command}\n".encode())
        stdin.flush()
        return self._read(timeout)

    def wait_responder(self) -> None:
        self._ask("wait", 40.0)

    def run(self, n: int) -> list[float]:
        return [float(x) for x in self._ask(f"run {n}", 30.0 + n * 0.1)["samples"]]


# -- the runtime requester ----------------------------------------------------------------------
async def runtime_calls(client: Client, entry: Command, request: EchoReq, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        reply = await client.call(entry, request, timeout=5.0)
        out.append(time.perf_counter() - t0)
        if not isinstance(reply, EchoRep) or reply.data != request.data:
            raise RuntimeError(f"unexpected reply {reply!r}")
    return out


# -- statistics ---------------------------------------------------------------------------------
def pct(samples: list[float], q: float) -> float:
    data = sorted(samples)
    return data[max(0, min(len(data) - 1, math.ceil(q * len(data)) - 1))]


def cpu_s(pid: int) -> float:
    """CPU seconds of a process, all its live threads (schedstat: nanoseconds, not clock ticks)."""
    if pid == os.getpid():
        return time.process_time()
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                total += int((task / "schedstat").read_text().split()[0])
        return total / 1e9
    except OSError:
        t = psutil.Process(pid).cpu_times()
        return float(t.user + t.system)


@dataclasses.dataclass
class Round:
    samples: list[float]
    wall_s: float
    cpu_us: tuple[float, ...] = ()  # CPU per call: requester, responder, broker

    @property
    def p50_ms(self) -> float:
        return pct(self.samples, 0.5) * 1000

    @property
    def p99_ms(self) -> float:
        return pct(self.samples, 0.99) * 1000

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.samples) * 1000

    @property
    def stalls(self) -> int:
        """Calls slower than 20 ms: a Nagle / delayed-ACK stall is 40 ms on Linux."""
        return sum(x > 0.020 for x in self.samples)

    @property
    def calls_per_s(self) -> float:
        return len(self.samples) / self.wall_s


@dataclasses.dataclass
class Variant:
    label: str
    pids: tuple[int, ...]  # requester, responder, broker: for the CPU per call
    rounds: list[Round] = dataclasses.field(default_factory=list)

    def measure(self, fn: Callable[[], list[float]]) -> Round:
        cpu0 = [cpu_s(pid) for pid in self.pids]
        t0 = time.perf_counter()
        samples = fn()
        wall = time.perf_counter() - t0
        cpu = tuple((cpu_s(pid) - c0) / len(samples) * 1e6 for pid, c0 in zip(self.pids, cpu0, strict=True))
        r = Round(samples, wall, cpu)
        self.rounds.append(r)
        return r

    def cpu_us(self, i: int) -> float:
        return statistics.median(r.cpu_us[i] for r in self.rounds)

    def median(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.rounds)

    @property
    def calls(self) -> int:
        return sum(len(r.samples) for r in self.rounds)

    def pooled_p(self, q: float) -> float:
        return pct([s for r in self.rounds for s in r.samples], q) * 1000


# -- the run ------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a fast run: 3 rounds of 100 calls")
    p.add_argument("--rounds", type=int, help="alternating rounds (default 5, quick 3)")
    p.add_argument("--calls", type=int, help="calls per round and variant (default 400, quick 100)")
    p.add_argument("--nagle-calls", type=int, help="calls per round without TCP_NODELAY (default 40, quick 15)")
    p.add_argument("--warmup", type=int, help="warm-up calls per variant (default 200, quick 50)")
    p.add_argument("--payload", type=int, default=64, help="characters of data in the request (default 64)")
    p.add_argument("--idle-wait", type=float, help="seconds after online before reading the RSS (default 5, quick 3)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (logs) for inspection")
    a = p.parse_args(argv)
    a.rounds = a.rounds or (3 if a.quick else 5)
    a.calls = a.calls or (100 if a.quick else 400)
    a.nagle_calls = a.nagle_calls if a.nagle_calls is not None else (15 if a.quick else 40)
    a.warmup = a.warmup if a.warmup is not None else (50 if a.quick else 200)
    a.idle_wait = a.idle_wait if a.idle_wait is not None else (3.0 if a.quick else 5.0)
    return a


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.broker: DevBroker | None = None
        self.children = Children(tmp)
        self.loop = asyncio.new_event_loop()
        self.clients: list[Client] = []
        self.paho: RawPahoRequester | None = None
        self.reply_qos = 1
        self.watchdog: subprocess.Popen[bytes] | None = None
        self.statuses: dict[str, NodeStatus] = {}

    # lifecycle
    def close(self) -> None:
        for client in self.clients:
            with contextlib.suppress(BaseException):
                self.loop.run_until_complete(asyncio.wait_for(client.close(), 5))
        self.children.stop()
        if self.watchdog is not None:  # not needed any more: stopped without letting it act
            self.watchdog.kill()
            self.watchdog.wait()
        if self.broker is not None:
            data_dir = self.broker.data_dir
            self.broker.stop()
            # as root the broker's files may live in /tmp/edge-mosquitto-*, outside our folder
            outside = data_dir is not None and self.tmp not in data_dir.parents
            if outside and data_dir.name.startswith("edge-mosquitto-"):
                shutil.rmtree(data_dir, ignore_errors=True)
        with contextlib.suppress(BaseException):
            self.loop.close()

    def start(self) -> None:
        self.broker = DevBroker(self.tmp / "run", catalog=FULL_CATALOG).start()
        assert self.broker.proc is not None
        self.watchdog = subprocess.Popen(
            [sys.executable, "-c", WATCHDOG, str(self.broker.proc.pid), str(self.tmp)],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent if _prctl is not None else None,
        )
        state = self.tmp / "state"
        py = sys.executable
        b = self.broker
        self.node = self.children.start(
            "bench", [py, "-m", "edge.run", "bench.nodes:node"], child_env(b.settings("bench"), state)
        )
        self.children.start(
            "benchnagle",
            [py, "-m", "edge.run", "bench.nodes:nagle"],
            child_env(b.settings("benchnagle"), state, MQTT_NODELAY="0"),
        )
        self.children.start(
            "benchpaho",
            [py, "-m", "bench.rawpaho", "responder"],
            child_env(b.settings("benchpaho"), state, BENCH_TOPIC=b.topics.of(ECHO_PAHO)),
        )

    def start_raw_requester(self, payload: bytes, inbox_qos: int) -> None:
        assert self.broker is not None
        b = self.broker
        self.paho_requester = self.children.start(
            "benchclient-paho",
            [sys.executable, "-m", "bench.rawpaho", "requester"],
            child_env(
                b.settings("benchclient"),
                self.tmp / "state",
                BENCH_TOPIC=b.topics.of(ECHO_PAHO),
                BENCH_PAYLOAD=payload.decode(),
                BENCH_INBOX_QOS=str(inbox_qos),
            ),
            pipes=True,
        )
        self.paho = RawPahoRequester(self.paho_requester)

    def _on_status(self, msg: Incoming) -> None:
        with contextlib.suppress(ValueError):
            status = NodeStatus.model_validate_json(msg.payload)
            self.statuses[status.node] = status

    async def connect(self) -> None:
        assert self.broker is not None
        settings = self.broker.settings("benchclient")
        self.client = Client(settings, name="benchclient")
        self.clients.append(self.client)
        await self.client.connect()
        await self.client.subscribe(self.client.topics.node_filter("status"), self._on_status)
        self.client_nagle = Client(dataclasses.replace(settings, nodelay=False), name="benchclient")
        self.clients.append(self.client_nagle)
        await self.client_nagle.connect()

    async def wait_online(self, names: tuple[str, ...], timeout: float = 60.0) -> float:
        deadline = time.monotonic() + timeout
        while not all(n in self.statuses and self.statuses[n].state == "online" for n in names):
            self.children.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"nodes not online within {timeout}s: {names}")
            await asyncio.sleep(0.05)
        return time.monotonic()

    def run(self) -> dict[str, Any]:
        a = self.args
        request = EchoReq(data="x" * a.payload)
        payload = request.model_dump_json().encode()
        self.start()
        self.loop.run_until_complete(self.connect())
        online_at = self.loop.run_until_complete(self.wait_online(("bench", "benchnagle")))
        if self.statuses["bench"].pid != self.node.proc.pid:
            raise RuntimeError("the bench node's status names another pid")
        # idle RSS: the node online, no call yet
        self.loop.run_until_complete(asyncio.sleep(max(0.0, online_at + a.idle_wait - time.monotonic())))
        idle_rss = rss_mb(self.node.proc.pid)
        idle_uss, idle_pss = uss_pss_mb(self.node.proc.pid)

        # the QoS the runtime's replies arrive with (its inbox subscription's): the baseline uses the same
        probe = self.loop.run_until_complete(self.client.request(self.client.topics.of(ECHO), request))
        self.reply_qos = probe.qos
        self.start_raw_requester(payload, probe.qos)

        assert self.paho is not None
        paho = self.paho

        def runtime(client: Client, entry: Command, n: int) -> Callable[[], list[float]]:
            return lambda: self.loop.run_until_complete(runtime_calls(client, entry, request, n))

        # warm-up (also waits for the raw paho responder's subscription)
        paho.wait_responder()
        paho.run(a.warmup)
        runtime(self.client, ECHO, a.warmup)()
        runtime(self.client_nagle, ECHO_NAGLE, max(3, a.nagle_calls // 4))()

        me, broker = os.getpid(), self.broker.proc.pid if self.broker and self.broker.proc else os.getpid()
        rt = Variant("runtime, TCP_NODELAY", (me, self.node.proc.pid, broker))
        raw = Variant("raw paho, TCP_NODELAY", (self.paho_requester.proc.pid, self.children.pid("benchpaho"), broker))
        nagle = Variant("runtime, no TCP_NODELAY", (me, self.children.pid("benchnagle"), broker))
        print(
            f"{'round':>5}  {'runtime p50/p99 ms':>19}  {'paho p50/p99 ms':>16}  {'ratio':>5}  "
            f"{'no-nodelay p50 ms':>17}",
            flush=True,
        )
        for i in range(a.rounds):
            steps = [
                lambda: rt.measure(runtime(self.client, ECHO, a.calls)),
                lambda: raw.measure(lambda: paho.run(a.calls)),
            ]
            if i % 2:
                steps.reverse()
            for step in steps:
                step()
            if a.nagle_calls:
                nagle.measure(runtime(self.client_nagle, ECHO_NAGLE, a.nagle_calls))
            self.children.check()
            r, p = rt.rounds[-1], raw.rounds[-1]
            nagle_p50 = f"{nagle.rounds[-1].p50_ms:17.2f}" if a.nagle_calls else f"{'-':>17}"
            print(
                f"{i + 1:>5}  {r.p50_ms:9.3f}/{r.p99_ms:<9.3f}  {p.p50_ms:7.3f}/{p.p99_ms:<8.3f}  "
                f"{r.p50_ms / p.p50_ms:5.2f}  {nagle_p50}",
                flush=True,
            )

        # a handler that publishes an event, then replies: two writes per message
        evt = Variant("runtime, event+reply", (me, self.node.proc.pid, broker))
        evt_nagle = Variant("event+reply, no NODELAY", (me, self.children.pid("benchnagle"), broker))
        if a.nagle_calls:
            runtime(self.client, ECHO_EVT, 10)()
            for _ in range(max(1, a.rounds // 2)):
                evt.measure(runtime(self.client, ECHO_EVT, a.nagle_calls))
                evt_nagle.measure(runtime(self.client_nagle, ECHO_EVT_NAGLE, a.nagle_calls))

        loaded_rss = rss_mb(self.node.proc.pid)
        return self.report(rt, raw, nagle, (idle_rss, idle_uss, idle_pss), loaded_rss, len(payload), (evt, evt_nagle))

    def report(
        self,
        rt: Variant,
        raw: Variant,
        nagle: Variant,
        idle: tuple[float, float | None, float | None],
        loaded_rss: float,
        payload_bytes: int,
        event_pair: tuple[Variant, Variant],
    ) -> dict[str, Any]:
        a = self.args
        idle_rss, idle_uss, idle_pss = idle
        ratio = rt.median("p50_ms") / raw.median("p50_ms")
        speedup = nagle.median("p50_ms") / rt.median("p50_ms") if nagle.rounds else None
        speedup_mean = nagle.median("mean_ms") / rt.median("mean_ms") if nagle.rounds else None
        print()
        print(
            f"mosquitto {self._broker_version()} on 127.0.0.1:{self.broker.port if self.broker else '?'}; "
            f"request = reply = {payload_bytes} B of JSON; requests QoS 1, replies delivered at QoS "
            f"{self.reply_qos} (the runtime's inbox subscription; the raw paho inbox uses the same)"
        )
        print(f"{a.rounds} rounds, medians of the per-round figures; CPU from /proc/<pid>/task/*/schedstat")
        print()
        print(f"{'':<24} {'':>6} {'':>7} {'':>7} {'':>7} {'':>7}  {'CPU µs per call':^25}")
        print(
            f"{'variant':<24} {'calls':>6} {'p50 ms':>7} {'p99 ms':>7} {'mean ms':>7} {'calls/s':>7}  "
            f"{'caller':>7} {'responder':>9} {'broker':>6}"
        )
        evt, evt_nagle = event_pair
        for v in (rt, raw, nagle, evt, evt_nagle):
            if v.rounds:
                print(
                    f"{v.label:<24} {v.calls:>6} {v.median('p50_ms'):7.3f} {v.median('p99_ms'):7.3f} "
                    f"{v.median('mean_ms'):7.3f} {v.median('calls_per_s'):7.0f}  "
                    f"{v.cpu_us(0):7.0f} {v.cpu_us(1):9.0f} {v.cpu_us(2):6.0f}"
                )
        ok = {
            "ratio": ratio <= TARGET_RATIO,
            "p50": rt.median("p50_ms") < TARGET_P50_MS,
            "rss": idle_rss < TARGET_RSS_MB,
        }
        mark = {True: "ok", False: "MISSED"}
        print()
        print(f"runtime/paho p50 ratio   {ratio:8.2f}     target <= {TARGET_RATIO:<5}  {mark[ok['ratio']]}")
        print(f"runtime p50              {rt.median('p50_ms'):8.3f} ms  target < {TARGET_P50_MS} ms  {mark[ok['p50']]}")
        print(
            f"idle node RSS            {idle_rss:8.1f} MB  target < {TARGET_RSS_MB:.0f} MB  {mark[ok['rss']]}"
            + (f"   (USS {idle_uss:.1f} MB, PSS {idle_pss:.1f} MB)" if idle_uss and idle_pss else "")
        )
        print(f"node RSS after the calls {loaded_rss:8.1f} MB")
        stalls = sum(r.stalls for r in nagle.rounds)
        if speedup is not None and speedup_mean is not None:
            print(
                f"TCP_NODELAY speedup      {speedup:8.2f}x    p50 without / with "
                f"({nagle.median('p50_ms'):.2f} / {rt.median('p50_ms'):.3f} ms); by the mean {speedup_mean:.2f}x; "
                f"{stalls} of {nagle.calls} calls without it took > 20 ms"
            )
        evt_speedup = evt_nagle.median("p50_ms") / evt.median("p50_ms") if evt.rounds else None
        if evt_speedup is not None:
            print(
                f"  with an event first    {evt_speedup:8.2f}x    p50 without / with "
                f"({evt_nagle.median('p50_ms'):.2f} / {evt.median('p50_ms'):.3f} ms): two writes per message"
            )
        r3 = lambda x: None if x is None else round(x, 3)  # noqa: E731
        return {
            "rpc_ratio_vs_paho": r3(ratio),
            "rpc_p50_ms": r3(rt.median("p50_ms")),
            "rpc_p99_ms": r3(rt.median("p99_ms")),
            "calls_per_s": round(rt.median("calls_per_s"), 1),
            "paho_p50_ms": r3(raw.median("p50_ms")),
            "paho_p99_ms": r3(raw.median("p99_ms")),
            "paho_calls_per_s": round(raw.median("calls_per_s"), 1),
            "nodelay_speedup": r3(speedup),
            "nodelay_speedup_mean": r3(speedup_mean),
            "nodelay_off_p50_ms": r3(nagle.median("p50_ms")) if nagle.rounds else None,
            "nodelay_off_p99_ms": r3(nagle.median("p99_ms")) if nagle.rounds else None,
            "nodelay_off_stalls": f"{stalls}/{nagle.calls}",
            "nodelay_speedup_event_then_reply": r3(evt_speedup),
            "event_then_reply_p50_ms": r3(evt.median("p50_ms")) if evt.rounds else None,
            "event_then_reply_no_nodelay_p50_ms": r3(evt_nagle.median("p50_ms")) if evt_nagle.rounds else None,
            "idle_node_rss_mb": round(idle_rss, 1),
            "idle_node_uss_mb": None if idle_uss is None else round(idle_uss, 1),
            "idle_node_pss_mb": None if idle_pss is None else round(idle_pss, 1),
            "node_rss_after_calls_mb": round(loaded_rss, 1),
            "cpu_us_per_call": {
                v: {"caller": round(x.cpu_us(0)), "responder": round(x.cpu_us(1)), "broker": round(x.cpu_us(2))}
                for v, x in (("runtime", rt), ("paho", raw), ("runtime_no_nodelay", nagle))
                if x.rounds
            },
            "rpc_mean_ms": r3(rt.median("mean_ms")),
            "paho_mean_ms": r3(raw.median("mean_ms")),
            "rpc_p50_pooled_ms": r3(rt.pooled_p(0.5)),
            "rpc_p99_pooled_ms": r3(rt.pooled_p(0.99)),
            "paho_p50_pooled_ms": r3(raw.pooled_p(0.5)),
            "paho_p99_pooled_ms": r3(raw.pooled_p(0.99)),
            "reply_qos": self.reply_qos,
            "calls": rt.calls,
            "rounds": a.rounds,
            "payload_bytes": payload_bytes,
            "quick": a.quick,
            "targets_met": ok,
        }

    @staticmethod
    def _broker_version() -> str:
        with contextlib.suppress(Exception):
            out = subprocess.run(["/usr/sbin/mosquitto", "-h"], capture_output=True, text=True, timeout=5).stdout
            return out.split("version", 1)[1].split()[0]
        return "?"


def run_cleanly(args: argparse.Namespace, make: Callable[[Path], Any], prefix: str) -> int:
    """Run `make(tmp).run()` in a fresh folder and print its figures as the last line; the
    bench's `close()` stops every process and the broker on exit, Ctrl-C, SIGTERM or an error."""
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    # paho 2.2 logs "Client is not connected" at ERROR when its loop ends after a clean disconnect
    logging.getLogger("paho").setLevel(logging.CRITICAL)

    def terminate(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, terminate)
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    tmp.chmod(0o755)  # as root, mosquitto drops to its own user and must reach its folder
    bench = make(tmp)
    result: dict[str, Any] | None = None
    try:
        result = bench.run()
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            bench.close()
        finally:
            if args.keep:
                print(f"logs kept in {tmp}", file=sys.stderr)
            else:
                shutil.rmtree(tmp, ignore_errors=True)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if result is None:
        return 130
    print(json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_cleanly(args, lambda tmp: Bench(args, tmp), "edge-bench-")


if __name__ == "__main__":
    sys.exit(main())
