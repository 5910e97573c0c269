"""The `edge` command: start a board, look at it, talk to it.

    edge up [--inventory FILE] [--board NAME]    start the broker and a board's nodes
    edge status [--json]                          nodes, their state and health
    edge call NODE VERB 'JSON' [--msg-id ID]      request/response, prints the reply
    edge watch [PATTERN]                          live messages, pretty-printed
    edge env [--as NODE]                          MQTT_* shell assignments for the dev broker
    edge schema --jsonschema DIR --asyncapi FILE  generated message documentation
    edge acl | edge users                         the broker's ACL and users, for deployment

Without --host the CLI uses the broker that `make up` started from this checkout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from schemas.catalog import CATALOG
from schemas.topics import Topics

from .settings import BrokerSettings, LocalBroker

EXIT_REJECTED = 1
EXIT_TIMEOUT = 2
EXIT_NO_BROKER = 3


def _connection_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("broker (default: the one `make up` started here, else MQTT_* variables)")
    g.add_argument("--host")
    g.add_argument("--port", type=int)
    g.add_argument("--user", help="broker user (default: operator)")
    g.add_argument("--password", help="default: MQTT_PASS, or the local broker's")
    g.add_argument("--cafile", help="CA certificate: connect with TLS")
    g.add_argument("--root", help="topic root (default: trader)")


def resolve_settings(args: argparse.Namespace) -> BrokerSettings:
    user = args.user or None
    local = LocalBroker.load()
    if args.host is None and args.port is None and "MQTT_HOST" not in os.environ and local is not None:
        settings = local.settings(user or "operator")
    elif args.host is None and args.port is None and "MQTT_HOST" not in os.environ:
        raise SystemExit(
            _fail(
                EXIT_NO_BROKER,
                "no broker found: start one with `make up`, or pass --host/--port/--user (or set MQTT_HOST)",
            )
        )
    else:
        env = BrokerSettings.from_env()
        settings = BrokerSettings(
            host=args.host or env.host,
            port=args.port or env.port,
            user=user or env.user or "operator",
            password=args.password or env.password,
            cafile=args.cafile or env.cafile,
            root=env.root,
        )
    if args.password:
        settings = settings.as_user(settings.user or "operator", args.password)
    if args.root:
        settings = BrokerSettings(**{**settings.__dict__, "root": args.root})
    if args.cafile:
        settings = BrokerSettings(**{**settings.__dict__, "cafile": args.cafile})
    return settings


def _fail(code: int, message: str) -> int:
    print(f"edge: {message}", file=sys.stderr)
    return code


# -- status -------------------------------------------------------------------------------------
async def collect_status(settings: BrokerSettings, wait: float) -> dict[str, dict[str, Any]]:
    """Retained statuses plus the heartbeats seen within `wait` seconds, keyed by node."""
    from schemas.runtime import Heartbeat, NodeStatus

    from .client import Client

    topics = Topics(settings.root)
    statuses: dict[str, NodeStatus] = {}
    beats: dict[str, Heartbeat] = {}

    def on_status(msg: Any) -> None:
        try:
            s = NodeStatus.model_validate_json(msg.payload)
        except ValueError:
            return
        prev = statuses.get(s.node)
        if prev is None or s.incarnation >= prev.incarnation:
            statuses[s.node] = s

    def on_beat(msg: Any) -> None:
        try:
            b = Heartbeat.model_validate_json(msg.payload)
        except ValueError:
            return
        beats[b.node] = b

    async with Client(settings, name="edge-status") as c:
        await c.subscribe(topics.node_filter("status"), on_status)
        await c.subscribe(topics.node_filter("heartbeat"), on_beat, qos=0)
        await asyncio.sleep(wait)

    out: dict[str, dict[str, Any]] = {}
    for name in sorted(set(statuses) | set(beats)):
        s, b = statuses.get(name), beats.get(name)
        state = s.state if s else "unknown"
        # the newest incarnation wins: a stale last will is not the node's state
        if b is not None and (s is None or b.incarnation > s.incarnation):
            state = "online"
        out[name] = {
            "state": state,
            "incarnation": max(s.incarnation if s else 0, b.incarnation if b else 0),
            "board": s.board if s else "",
            "host": s.host if s else "",
            "pid": s.pid if s else None,
            "version": s.version if s else "",
            "started": s.started.isoformat() if s and s.started else None,
            "handles": list(s.handles) if s else [],
            "reason": s.reason if s else "",
            "heartbeat": json.loads(b.model_dump_json()) if b else None,
        }
    return out


def _status_table(rows: dict[str, dict[str, Any]]) -> str:
    head = (
        "node",
        "state",
        "inc",
        "board",
        "pid",
        "uptime",
        "rss MB",
        "cpu %",
        "in",
        "out",
        "p50 ms",
        "p99 ms",
        "errors",
        "beat",
    )
    lines = [head]
    for name, r in rows.items():
        b = r["heartbeat"] or {}

        def f(key: str, fmt: str = "{}", b: dict[str, Any] = b) -> str:
            v = b.get(key)
            return "-" if v is None else fmt.format(v)

        lines.append(
            (
                name,
                r["state"],
                str(r["incarnation"]),
                r["board"] or "-",
                str(r["pid"] or "-"),
                f("uptime_s", "{:.0f}s"),
                f("rss_mb", "{:.1f}"),
                f("cpu_percent", "{:.1f}"),
                f("msgs_in"),
                f("msgs_out"),
                f("latency_p50_ms", "{:.2f}"),
                f("latency_p99_ms", "{:.2f}"),
                f("errors"),
                _age(b.get("at")),
            )
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in lines)


def _age(at: str | None) -> str:
    """How long ago the last heartbeat was sent."""
    if not at:
        return "-"
    seconds = (datetime.now(UTC) - datetime.fromisoformat(at)).total_seconds()
    return f"{seconds:.0f}s ago"


def cmd_status(args: argparse.Namespace) -> int:
    settings = resolve_settings(args)
    rows = asyncio.run(collect_status(settings, args.wait))
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("no node has announced itself on this broker yet")
    else:
        print(_status_table(rows))
    return 0


# -- call ---------------------------------------------------------------------------------------------
async def _call(
    settings: BrokerSettings,
    node: str,
    verb: str,
    payload: bytes,
    timeout: float,
    retries: int,
    msg_id: str | None = None,
) -> tuple[str, Any]:
    from .client import Client
    from .errors import CallTimeout

    async with Client(settings, name="edge-call") as c:
        if node not in known_nodes():
            unknown = await _unknown_node(c, node)
            if unknown is not None:
                return "unknown_node", unknown
        try:
            reply = await c.request(
                c.topics.command(node, verb), payload, timeout=timeout, retries=retries, msg_id=msg_id
            )
        except CallTimeout as exc:
            return "timeout", str(exc)
    body: Any
    try:
        body = json.loads(reply.payload)
    except ValueError:
        body = reply.payload.decode(errors="replace")
    return reply.user.get("status", "ok"), body


def known_nodes() -> list[str]:
    """The nodes of the catalog (every one answers at least `ping`)."""
    from .acl import OPERATOR

    return sorted(CATALOG.nodes - {OPERATOR})


async def _unknown_node(client: Any, node: str, wait: float = 0.3) -> str | None:
    """Why `node` cannot answer (None if it may): not in the catalog and never announced on
    this broker (a node of another catalog that did is let through), or an instance of a
    pool, whose commands go to the pool."""
    pool, _, number = node.rpartition("_")
    if number.isdigit() and pool in CATALOG.scalable:
        return f"{node} is one worker of {pool}: commands go to the pool, `edge call {pool} ...`"
    seen = asyncio.Event()
    try:
        await client.subscribe(client.topics.status(node), lambda _msg: seen.set())  # retained: at once if any
    except Exception:  # this user may not read statuses: let the node answer, or the call time out
        return None
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(seen.wait(), wait)
    if seen.is_set():
        return None
    return f"no node {node!r}; the nodes are: {', '.join(known_nodes())}"


def cmd_call(args: argparse.Namespace) -> int:
    settings = resolve_settings(args)
    raw = sys.stdin.read() if args.payload == "-" else args.payload
    status, body = asyncio.run(
        _call(settings, args.node, args.verb, raw.encode(), args.timeout, args.retries, args.msg_id)
    )
    if status == "unknown_node":
        return _fail(EXIT_REJECTED, body)
    if status == "timeout":
        return _fail(EXIT_TIMEOUT, f"{body} (is the {args.node} node running? try `edge status`)")
    text = json.dumps(body, indent=2) if not isinstance(body, str) else body
    if status == "error":
        print(text, file=sys.stderr)
        reason = body.get("error") if isinstance(body, dict) else body
        return _fail(EXIT_REJECTED, f"{args.node} rejected the request: {reason}")
    print(text)
    if isinstance(body, dict) and body.get("last_status") == "failed":  # a job run now (scheduler/run) failed
        why = body.get("last_error") or "no reason given"
        return _fail(EXIT_REJECTED, f"job {body.get('name', '?')} failed: {why}")
    return 0


# -- watch ---------------------------------------------------------------------------------------------
def format_message(topic: str, payload: bytes, retain: bool, user: dict[str, str]) -> str:
    ts = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
    try:
        body = json.dumps(json.loads(payload), separators=(", ", ": "))
    except ValueError:
        body = payload.decode(errors="replace")
    tags = " [retained]" if retain else ""
    if user.get("status") == "error":
        tags += " [error]"
    if user.get("trace-id"):
        tags += f" [trace {user['trace-id']}]"
    return f"{ts} {topic}{tags} {body}"


async def _watch(settings: BrokerSettings, pattern: str, count: int | None, seconds: float | None) -> None:
    from .client import Client

    done = asyncio.Event()
    seen = 0

    def on_msg(msg: Any) -> None:
        nonlocal seen
        print(format_message(msg.topic, msg.payload, msg.retain, msg.user), flush=True)
        seen += 1
        if count is not None and seen >= count:
            done.set()

    async with Client(settings, name="edge-watch") as c:
        await c.subscribe(pattern, on_msg, qos=1)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await done.wait()


def cmd_watch(args: argparse.Namespace) -> int:
    settings = resolve_settings(args)
    topics = Topics(settings.root)
    pattern = args.pattern or topics.all()
    if not pattern.startswith((settings.root + "/", "$", "#", "+")):
        pattern = topics.full(pattern)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_watch(settings, pattern, args.count, args.seconds))
    return 0


# -- env ----------------------------------------------------------------------------------------------
def cmd_env(args: argparse.Namespace) -> int:
    local = LocalBroker.load()
    if local is None:
        return _fail(EXIT_NO_BROKER, "no local broker is running from this checkout: start it with `make up`")
    user = args.as_node or "operator"
    try:
        settings = local.settings(user)
    except KeyError as exc:
        return _fail(EXIT_REJECTED, str(exc.args[0]))
    for key in ("MQTT_HOST", "MQTT_PORT", "MQTT_USER", "MQTT_PASS", "EDGE_ROOT"):
        print(f"{key}={shlex.quote(settings.to_env()[key])}")
    print("export MQTT_HOST MQTT_PORT MQTT_USER MQTT_PASS EDGE_ROOT")
    return 0


# -- schema, acl, users ------------------------------------------------------------------------------
def cmd_schema(args: argparse.Namespace) -> int:
    from schemas import spec

    from . import __version__

    if not args.jsonschema and not args.asyncapi:
        return _fail(EXIT_REJECTED, "say what to write: --jsonschema DIR and/or --asyncapi FILE")
    if args.jsonschema:
        out = Path(args.jsonschema)
        out.mkdir(parents=True, exist_ok=True)
        for name, schema in spec.json_schemas(CATALOG).items():
            (out / f"{name}.json").write_text(json.dumps(schema, indent=2) + "\n")
        print(f"wrote {len(spec.models(CATALOG))} JSON Schemas to {out}")
    if args.asyncapi:
        doc = spec.asyncapi(CATALOG, root=args.root or "trader", version=__version__)
        path = Path(args.asyncapi)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix in (".yml", ".yaml"):
            import yaml

            path.write_text(yaml.safe_dump(doc, sort_keys=False))
        else:
            path.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote AsyncAPI {doc['asyncapi']} ({len(doc['channels'])} channels) to {path}")
    return 0


def cmd_acl(args: argparse.Namespace) -> int:
    from .acl import render_acl

    print(render_acl(CATALOG, Topics(args.root or "trader")))
    return 0


def cmd_users(args: argparse.Namespace) -> int:
    from .acl import users

    print("\n".join(users(CATALOG)))
    return 0


# -- up --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DashboardAccess:
    url: str
    password: str | None  # None: the operator's own, from DASHBOARD_PASSWORD (not printed)
    where: str  # where the password is kept


def dashboard_access(state_dir: Path, env: dict[str, str] | None = None) -> DashboardAccess:
    """The dashboard's address and login password as the dashboard node will take them from
    the same environment; the password is made now and kept if there is none yet
    (`dashboard.settings` imports no web framework)."""
    from dashboard.settings import SECRET_FILE, secrets_of

    env = dict(os.environ if env is None else env)
    host = env.get("DASHBOARD_HOST") or "127.0.0.1"
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    port = env.get("DASHBOARD_PORT") or "8080"
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}/"
    if env.get("DASHBOARD_PASSWORD"):
        return DashboardAccess(url, None, "DASHBOARD_PASSWORD")
    try:
        return DashboardAccess(url, secrets_of(state_dir).password, str(state_dir / SECRET_FILE))
    except (OSError, ValueError, KeyError) as exc:  # a damaged file: the dashboard will say so in its log
        return DashboardAccess(url, None, f"{state_dir / SECRET_FILE}, which cannot be read ({exc!r})")


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM before the launcher's own handler: stop as Ctrl-C does


def cmd_up(args: argparse.Namespace) -> int:
    import logging
    import signal
    import time

    from . import inventory
    from .launcher import Launcher

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    placements = inventory.placements(args.inventory, args.board)
    external, passwords = None, {}
    if args.use_broker:  # another `edge up` of this checkout runs the broker (two boards on one machine)
        local = LocalBroker.load()
        if local is None:
            return _fail(EXIT_NO_BROKER, "--use-broker: no broker from this checkout is running")
        external, passwords = local.settings(), local.passwords
    elif args.host or args.port:
        external = resolve_settings(args)
        if args.credentials:
            passwords = json.loads(Path(args.credentials).read_text())
    catalog = CATALOG
    if args.catalog:
        import importlib

        module, _, attr = args.catalog.partition(":")
        catalog = getattr(importlib.import_module(module), attr)
    launcher = Launcher(placements, external=external, passwords=passwords, mode=args.mode, catalog=catalog)
    # Both stop it as Ctrl-C does until the launcher's own handlers are in place, with no gap
    # between: SIGINT too, which a background job of a non-interactive shell inherits ignored.
    previous = signal.signal(signal.SIGTERM, _terminate)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        settings = launcher.start_broker(args.root or "trader")
        dashboard = None
        if any(p.node == "dashboard" and (p.module or inventory.is_built(p.node)) for p in placements):
            dashboard = dashboard_access(launcher.run_dir / "state")  # before the node makes its own
        began = time.monotonic()
        skipped = launcher.start_nodes()
        op = settings if external else launcher.broker.settings("operator")  # type: ignore[union-attr]
        try:
            late = launcher.wait_online(op, args.wait)
        except Exception as exc:  # the operator may not read statuses on a broker elsewhere
            print(f"edge: cannot watch the nodes come online ({exc}); started them all the same", flush=True)
            late = []
        up = Up(
            mode=args.mode,
            broker=op,
            online=[i for c in launcher.children for i in c.idents if i not in late],
            late=late,
            skipped=skipped,
            seconds=time.monotonic() - began,
            logs=launcher.run_dir / "logs",
            dashboard=dashboard,
        )
        print(up.banner(), flush=True)
        launcher.run_forever()
    except KeyboardInterrupt:
        launcher.stop()
    except BaseException:
        launcher.stop()
        raise
    finally:
        if signal.getsignal(signal.SIGTERM) is _terminate:
            signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
    print("edge: stopped every node and the broker", flush=True)
    return 0


@dataclass
class Up:
    """What `edge up` says once every node is online (or the wait is over)."""

    mode: str
    broker: BrokerSettings
    online: list[str]
    late: list[str]
    skipped: list[str]
    seconds: float
    logs: Path
    dashboard: DashboardAccess | None = None

    def banner(self) -> str:
        s = self.broker
        sub = (
            f"mosquitto_sub -h {s.host} -p {s.port} -u {s.user} -P {shlex.quote(s.password or '')} "
            f"-t '{Topics(s.root).all()}' -v"
        )
        if self.late:
            head = (
                f"edge trader is up ({self.mode} mode) — broker on {s.host}:{s.port}; "
                f"not every node is online after {self.seconds:.0f} s"
            )
        else:
            head = (
                f"edge trader is up ({self.mode} mode) — broker on {s.host}:{s.port}; "
                f"every node online in {self.seconds:.1f} s"
            )
        lines = ["", head, f"  nodes online  : {', '.join(self.online) or 'none'}"]
        if self.late:
            lines.append(f"  not online yet: {', '.join(self.late)} (see their logs below; restarted if they crash)")
        if self.skipped:
            lines.append(f"  placed, not built yet: {', '.join(self.skipped)}")
        if self.dashboard is not None:
            d = self.dashboard
            said = f"password {d.password}  (kept in {d.where})" if d.password else f"password: the one in {d.where}"
            lines.append(f"  dashboard     : {d.url}  {said}")
        lines += [
            '  watch it      : .venv/bin/edge watch        (or: eval "$(.venv/bin/edge env)")',
            f"                  {sub}",
            "  nodes         : .venv/bin/edge status",
            f"  logs          : {self.logs}/",
            "  stop          : Ctrl-C",
            "",
        ]
        return "\n".join(lines)


def cmd_replay(args: argparse.Namespace) -> int:
    from replay.cli import main as replay

    return replay(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edge", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the broker and a board's nodes")
    up.add_argument("--inventory", default=None, help="Ansible inventory (default: single-board.yml)")
    up.add_argument("--board", help="only this board's nodes (group `core`/`execution` or a host)")
    up.add_argument("--mode", default="paper", choices=["research", "paper", "live"])
    up.add_argument(
        "--use-broker",
        action="store_true",
        help="use the broker another `edge up` of this checkout started (e.g. --board execution)",
    )
    up.add_argument("--credentials", help="with --host: a JSON file {user: password} for the nodes' users")
    up.add_argument(
        "--wait",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for every node to come online before saying which are not (default 60)",
    )
    up.add_argument("--catalog", help=argparse.SUPPRESS)  # module:attr of another catalog (tests)
    _connection_args(up)
    up.set_defaults(func=cmd_up)

    st = sub.add_parser("status", help="every node's state and health")
    st.add_argument("--json", action="store_true")
    st.add_argument("--wait", type=float, default=1.0, help="seconds to collect heartbeats")
    _connection_args(st)
    st.set_defaults(func=cmd_status)

    call = sub.add_parser("call", help="send a command and print the reply")
    call.add_argument("node")
    call.add_argument("verb")
    call.add_argument("payload", nargs="?", default="{}", help="JSON, or - for stdin")
    call.add_argument("--timeout", type=float, default=10.0)
    call.add_argument("--retries", type=int, default=0, help="resend (same msg-id) after a timeout")
    call.add_argument(
        "--msg-id",
        help="the request's msg-id (default: a new one): the same msg-id again runs an idempotent command "
        "(deposit, order, approve ...) once and answers as the first time",
    )
    _connection_args(call)
    call.set_defaults(func=cmd_call)

    watch = sub.add_parser("watch", help="print live messages")
    watch.add_argument("pattern", nargs="?", help="topic filter, relative to the root or absolute")
    watch.add_argument("--count", type=int, help="stop after this many messages")
    watch.add_argument("--seconds", type=float, help="stop after this many seconds")
    _connection_args(watch)
    watch.set_defaults(func=cmd_watch)

    env = sub.add_parser("env", help="MQTT_* assignments for the local broker")
    env.add_argument("--as", dest="as_node", metavar="NODE", help="a node's own user instead of operator")
    env.set_defaults(func=cmd_env)

    sc = sub.add_parser("schema", help="write JSON Schemas and the AsyncAPI document")
    sc.add_argument("--jsonschema", metavar="DIR")
    sc.add_argument("--asyncapi", metavar="FILE")
    sc.add_argument("--root")
    sc.set_defaults(func=cmd_schema)

    acl = sub.add_parser("acl", help="print the broker ACL generated from the catalog")
    acl.add_argument("--root")
    acl.set_defaults(func=cmd_acl)
    users = sub.add_parser("users", help="print the broker users (one per node, and operator)")
    users.set_defaults(func=cmd_users)

    rp = sub.add_parser("replay", help="the system's nodes over history, and how its money did")
    from replay.cli import add_arguments

    add_arguments(rp)
    rp.set_defaults(func=cmd_replay)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if getattr(args, "inventory", "unset") is None:
        from .inventory import DEFAULT_INVENTORY

        args.inventory = DEFAULT_INVENTORY
    sys.exit(args.func(args))


if __name__ == "__main__":
    main()
