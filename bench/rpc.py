"""Request/response round trip through the runtime, against raw paho-mqtt on the same broker.

`python bench/rpc.py [--quick]` starts a dev broker (mosquitto, the project's dev config,
on a free port) and three responder processes:

- `bench`: an edge Node with one trivial async command (`python -m edge.run bench.nodes:node`);
- `benchnagle`: the same node with TCP_NODELAY off (`bench.nodes:nagle`, BENCH_NODELAY=0);
- `benchpaho`: a raw paho-mqtt 2 responder (`python -m bench.paho_responder`).

In this process it calls them in alternating rounds: an edge `Client.call` loop (and the
same with TCP_NODELAY off on the client too) and a raw paho requester (v5 response topic,
correlation data, QoS 1 both ways, TCP_NODELAY, a `threading.Event` per call). The same
payload bytes go both ways. Figures are medians over the rounds, so that the noise of a
shared machine falls on every variant alike. The idle RSS is the `bench` node's, read
from /proc a few seconds after it announced itself online and before any call.

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
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python bench/rpc.py` puts bench/, not the checkout, on the path
    sys.path.insert(0, str(REPO))

import paho.mqtt.client as mqtt  # noqa: E402
import psutil  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402

from bench.catalog import ECHO, ECHO_NAGLE, ECHO_PAHO, FULL_CATALOG, EchoRep, EchoReq  # noqa: E402
from edge import BrokerSettings, Client  # noqa: E402
from edge.broker import DevBroker  # noqa: E402
from edge.message import Incoming  # noqa: E402
from schemas.runtime import NodeStatus  # noqa: E402
from schemas.topics import Command  # noqa: E402

TARGET_RATIO = 1.5
TARGET_P50_MS = 1.0
TARGET_RSS_MB = 40.0


# -- child processes -------------------------------------------------------------------------
def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """SIGTERM the child if this benchmark dies without cleaning up (SIGKILL, say)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclasses.dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


class Children:
    """The responder processes, each in its own session so that a Ctrl-C reaches only us
    and they are stopped in order (nodes first, to say offline, then the broker)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.items: list[Child] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        log = self.log_dir / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, env=env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    preexec_fn=_die_with_parent if sys.platform == "linux" else None)
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
    return {**os.environ, **settings.to_env(), "EDGE_STATE_DIR": str(state_dir), "EDGE_LOG": "WARNING",
            "PYTHONPATH": pythonpath, "PYTHONUNBUFFERED": "1", **extra}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def uss_mb(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).memory_full_info().uss) / 2**20
    except (psutil.Error, AttributeError):
        return None


# -- the raw paho requester ----------------------------------------------------------------------
class PahoRequester:
    """What an application without the runtime would write: paho's network thread, a
    v5 response topic and correlation data, an Event to wait for the reply."""

    def __init__(self, settings: BrokerSettings, request_topic: str, *, nodelay: bool = True) -> None:
        self.request_topic = request_topic
        self.nodelay = nodelay
        self.client_id = f"benchclient-paho-{uuid.uuid4().hex[:8]}"
        self.inbox = f"{settings.root}/inbox/{settings.user}/{self.client_id}/r"
        self._settings = settings
        self._reply = threading.Event()
        self._subscribed = threading.Event()
        self._expected: bytes | None = None
        self._counter = 0
        c = self._paho = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5)
        c.username_pw_set(settings.user, settings.password)
        c.on_socket_open = self._on_socket_open
        c.on_connect = self._on_connect
        c.on_subscribe = lambda *_: self._subscribed.set()
        c.on_message = self._on_message

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        if self.nodelay:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        client.subscribe(self.inbox, qos=1)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if getattr(msg.properties, "CorrelationData", None) == self._expected:
            self._reply.set()

    def connect(self, timeout: float = 10.0) -> None:
        self._paho.connect(self._settings.host, self._settings.port, keepalive=self._settings.keepalive)
        self._paho.loop_start()
        if not self._subscribed.wait(timeout):
            raise RuntimeError("raw paho requester: no SUBACK")

    def close(self) -> None:
        self._paho.disconnect()
        self._paho.loop_stop()

    def call(self, payload: bytes, timeout: float = 5.0) -> None:
        self._counter += 1
        corr = self._counter.to_bytes(8, "big")
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = self.inbox
        props.CorrelationData = corr
        self._reply.clear()
        self._expected = corr
        self._paho.publish(self.request_topic, payload, qos=1, properties=props)
        if not self._reply.wait(timeout):
            raise TimeoutError(f"raw paho: no reply on {self.inbox} within {timeout}s")

    def run(self, payload: bytes, n: int) -> list[float]:
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            self.call(payload)
            out.append(time.perf_counter() - t0)
        return out


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
    def calls_per_s(self) -> float:
        return len(self.samples) / self.wall_s


@dataclasses.dataclass
class Variant:
    label: str
    pids: tuple[int, ...]  # requester (this process), responder, broker: for CPU per call
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
        self.paho: PahoRequester | None = None
        self.statuses: dict[str, NodeStatus] = {}

    # lifecycle
    def close(self) -> None:
        for client in self.clients:
            with contextlib.suppress(BaseException):
                self.loop.run_until_complete(asyncio.wait_for(client.close(), 5))
        if self.paho is not None:
            with contextlib.suppress(BaseException):
                self.paho.close()
        self.children.stop()
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
        state = self.tmp / "state"
        py = sys.executable
        b = self.broker
        self.node = self.children.start("bench", [py, "-m", "edge.run", "bench.nodes:node"],
                                        child_env(b.settings("bench"), state))
        self.children.start("benchnagle", [py, "-m", "edge.run", "bench.nodes:nagle"],
                            child_env(b.settings("benchnagle"), state, BENCH_NODELAY="0"))
        self.children.start("benchpaho", [py, "-m", "bench.paho_responder"],
                            child_env(b.settings("benchpaho"), state, BENCH_TOPIC=b.topics.of(ECHO_PAHO)))

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
        self.paho = PahoRequester(settings, self.broker.topics.of(ECHO_PAHO))
        await asyncio.to_thread(self.paho.connect)

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
        self.start()
        self.loop.run_until_complete(self.connect())
        online_at = self.loop.run_until_complete(self.wait_online(("bench", "benchnagle")))
        if self.statuses["bench"].pid != self.node.proc.pid:
            raise RuntimeError("the bench node's status names another pid")
        # idle RSS: the node online, no call yet
        self.loop.run_until_complete(asyncio.sleep(max(0.0, online_at + a.idle_wait - time.monotonic())))
        idle_rss = rss_mb(self.node.proc.pid)
        idle_uss = uss_mb(self.node.proc.pid)

        request = EchoReq(data="x" * a.payload)
        payload = request.model_dump_json().encode()
        assert self.paho is not None
        paho = self.paho

        def runtime(client: Client, entry: Command, n: int) -> Callable[[], list[float]]:
            return lambda: self.loop.run_until_complete(runtime_calls(client, entry, request, n))

        # warm-up (also waits for the paho responder's subscription)
        deadline = time.monotonic() + 30
        while True:
            try:
                paho.call(payload, timeout=1.0)
                break
            except TimeoutError:
                self.children.check()
                if time.monotonic() > deadline:
                    raise
        paho.run(payload, a.warmup)
        runtime(self.client, ECHO, a.warmup)()
        runtime(self.client_nagle, ECHO_NAGLE, max(3, a.nagle_calls // 4))()

        me, broker = os.getpid(), self.broker.proc.pid if self.broker and self.broker.proc else os.getpid()
        rt = Variant("runtime, TCP_NODELAY", (me, self.node.proc.pid, broker))
        raw = Variant("raw paho, TCP_NODELAY", (me, self.children.pid("benchpaho"), broker))
        nagle = Variant("runtime, no TCP_NODELAY", (me, self.children.pid("benchnagle"), broker))
        print(f"{'round':>5}  {'runtime p50/p99 ms':>19}  {'paho p50/p99 ms':>16}  {'ratio':>5}  "
              f"{'no-nodelay p50 ms':>17}", flush=True)
        for i in range(a.rounds):
            steps = [lambda: rt.measure(runtime(self.client, ECHO, a.calls)),
                     lambda: raw.measure(lambda: paho.run(payload, a.calls))]
            if i % 2:
                steps.reverse()
            for step in steps:
                step()
            if a.nagle_calls:
                nagle.measure(runtime(self.client_nagle, ECHO_NAGLE, a.nagle_calls))
            self.children.check()
            r, p = rt.rounds[-1], raw.rounds[-1]
            nagle_p50 = f"{nagle.rounds[-1].p50_ms:17.2f}" if a.nagle_calls else f"{'-':>17}"
            print(f"{i + 1:>5}  {r.p50_ms:9.3f}/{r.p99_ms:<9.3f}  {p.p50_ms:7.3f}/{p.p99_ms:<8.3f}  "
                  f"{r.p50_ms / p.p50_ms:5.2f}  {nagle_p50}", flush=True)

        loaded_rss = rss_mb(self.node.proc.pid)
        return self.report(rt, raw, nagle, idle_rss, idle_uss, loaded_rss, len(payload))

    def report(self, rt: Variant, raw: Variant, nagle: Variant, idle_rss: float, idle_uss: float | None,
               loaded_rss: float, payload_bytes: int) -> dict[str, Any]:
        a = self.args
        ratio = rt.median("p50_ms") / raw.median("p50_ms")
        speedup = nagle.median("p50_ms") / rt.median("p50_ms") if nagle.rounds else None
        print()
        print(f"mosquitto {self._broker_version()} on 127.0.0.1:{self.broker.port if self.broker else '?'}, "
              f"QoS 1 both ways, request = reply = {payload_bytes} B of JSON, {a.rounds} rounds "
              f"(medians of the per-round figures)")
        print(f"{'':<26} {'':>6} {'':>8} {'':>8} {'':>8}  {'CPU µs per call':^26}")
        print(f"{'variant':<26} {'calls':>6} {'p50 ms':>8} {'p99 ms':>8} {'calls/s':>8}  "
              f"{'caller':>8} {'responder':>9} {'broker':>7}")
        for v in (rt, raw, nagle):
            if v.rounds:
                print(f"{v.label:<26} {v.calls:>6} {v.median('p50_ms'):8.3f} {v.median('p99_ms'):8.3f} "
                      f"{v.median('calls_per_s'):8.0f}  {v.cpu_us(0):8.0f} {v.cpu_us(1):9.0f} {v.cpu_us(2):7.0f}")
        ok = {
            "ratio": ratio <= TARGET_RATIO,
            "p50": rt.median("p50_ms") < TARGET_P50_MS,
            "rss": idle_rss < TARGET_RSS_MB,
        }
        mark = {True: "ok", False: "MISSED"}
        print()
        print(f"runtime/paho p50 ratio    {ratio:8.2f}   target <= {TARGET_RATIO}   {mark[ok['ratio']]}")
        print(f"runtime p50               {rt.median('p50_ms'):8.3f} ms  target < {TARGET_P50_MS} ms   "
              f"{mark[ok['p50']]}")
        print(f"idle node RSS             {idle_rss:8.1f} MB  target < {TARGET_RSS_MB:.0f} MB   {mark[ok['rss']]}"
              + (f"   (USS {idle_uss:.1f} MB)" if idle_uss is not None else ""))
        print(f"node RSS after the calls  {loaded_rss:8.1f} MB")
        if speedup is not None:
            print(f"TCP_NODELAY speedup       {speedup:8.1f}x  (p50 {nagle.median('p50_ms'):.2f} ms without, "
                  f"{rt.median('p50_ms'):.3f} ms with)")
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
            "nodelay_off_p50_ms": r3(nagle.median("p50_ms")) if nagle.rounds else None,
            "idle_node_rss_mb": round(idle_rss, 1),
            "idle_node_uss_mb": None if idle_uss is None else round(idle_uss, 1),
            "node_rss_after_calls_mb": round(loaded_rss, 1),
            "cpu_us_per_call": {v: {"caller": round(x.cpu_us(0)), "responder": round(x.cpu_us(1)),
                                    "broker": round(x.cpu_us(2))}
                                for v, x in (("runtime", rt), ("paho", raw), ("runtime_no_nodelay", nagle))
                                if x.rounds},
            "rpc_p50_pooled_ms": r3(rt.pooled_p(0.5)),
            "rpc_p99_pooled_ms": r3(rt.pooled_p(0.99)),
            "paho_p50_pooled_ms": r3(raw.pooled_p(0.5)),
            "paho_p99_pooled_ms": r3(raw.pooled_p(0.99)),
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    # paho 2.2 logs "Client is not connected" at ERROR when its loop ends after a clean disconnect
    logging.getLogger("paho").setLevel(logging.CRITICAL)

    def terminate(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, terminate)
    tmp = Path(tempfile.mkdtemp(prefix="edge-bench-"))
    tmp.chmod(0o755)  # as root, mosquitto drops to its own user and must reach its folder
    bench = Bench(args, tmp)
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


if __name__ == "__main__":
    sys.exit(main())
