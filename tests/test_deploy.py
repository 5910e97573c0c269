"""Deployment: the Ansible playbook run for real, and a real Mosquitto from what it rendered.

Both inventories go through `deploy/ansible/site.yml` itself (`--tags config`, every host on a
local connection, every path under a temporary folder, `edge_systemd=false` so that no
service is touched): the controller's credentials (passwords, CA, broker certificate), the
broker's files (mosquitto.conf from mosquitto/core.conf, password file hashed by
mosquitto_passwd, ACL from `edge acl`) and one systemd unit per placed and built node. The
checkout they deploy is a stand-in in which only some nodes are built, so that the rule
"placed but not built: no unit" is exercised whatever the real nodes/ holds.

Then `mosquitto` runs with the rendered configuration: a node logs in with its generated
password, anonymous and wrong passwords are refused, TLS works with the generated CA under
Python 3.13's strict X.509 checks, the ACL is in force, and the optional execution broker
(mosquitto/execution.conf) bridges to it both ways.

Needs ansible-core (a dev dependency, installed by `make test`) and mosquitto.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from edge import inventory
from edge.acl import render_acl, users
from edge.settings import REPO_ROOT
from schemas.catalog import CATALOG
from schemas.topics import Topics

ANSIBLE_DIR = REPO_ROOT / "deploy" / "ansible"
INVENTORIES = {name: ANSIBLE_DIR / "inventory" / f"{name}.yml" for name in ("single-board", "dual-board")}
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
BUILT = ("universe", "evaluator", "trading")  # the stand-in checkout's built nodes
EXPECTED_HOSTS = {
    "single-board": {"core": ["trader-core"], "execution": []},
    "dual-board": {"core": ["trader-core"], "execution": ["trader-exec"]},
}
TIMEOUT = 100  # below pytest-timeout (120 s), so that a hung run reports its own output


def _tool(name: str) -> str | None:
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


PLAYBOOK, INVENTORY_CLI = _tool("ansible-playbook"), _tool("ansible-inventory")
EDGE_CLI = Path(sys.prefix) / "bin" / "edge"
# The interpreter Ansible runs its modules with (the boards': the system Python, which is
# also quicker to start than a pyenv build); never discovered, which can pick a pyenv shim.
PYTHON_ON_TARGET = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable

assert PLAYBOOK is not None and INVENTORY_CLI is not None, (
    "ansible-core is not installed (a dev dependency: make test installs it)"
)
assert EDGE_CLI.exists(), f"the project is not installed in {sys.prefix}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _broker_group() -> str:
    """The group that mosquitto reads its files as: `mosquitto` when it drops to that user."""
    if os.geteuid() == 0:
        with contextlib.suppress(KeyError):
            return grp.getgrnam("mosquitto").gr_name
    return grp.getgrgid(os.getegid()).gr_name


@dataclass
class Run:
    """One ansible command started in the background."""

    args: list[str]
    proc: subprocess.Popen[str]
    out: str = ""

    def wait(self) -> Run:
        try:
            self.out, _ = self.proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.out, _ = self.proc.communicate()
        return self

    def check(self) -> str:
        assert self.proc.returncode == 0, f"{' '.join(self.args)} failed ({self.proc.returncode}):\n{self.out[-6000:]}"
        return self.out


@dataclass
class Deployment:
    """What site.yml rendered for one inventory, under `root/<host>/`."""

    name: str
    root: Path
    port: int
    tls_port: int
    extra_vars: dict[str, Any] = field(default_factory=dict)
    render: Run | None = None

    @property
    def credentials(self) -> Path:
        return self.root / "credentials"

    def host(self, host: str) -> Path:
        return self.root / host

    def password(self, user: str) -> str:
        return (self.credentials / "mqtt" / user).read_text().strip()


class Ansible:
    def __init__(self, base: Path) -> None:
        self.env = {
            **os.environ,
            "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_PIPELINING": "1",
            "ANSIBLE_HOME": str(base / ".ansible"),
            "ANSIBLE_LOCAL_TEMP": str(base / ".ansible" / "tmp"),
            "ANSIBLE_REMOTE_TMP": str(base / ".ansible" / "remote"),
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
        }

    def start(self, *args: str) -> Run:
        argv = [str(a) for a in args]
        proc = subprocess.Popen(
            argv,
            cwd=ANSIBLE_DIR,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        return Run(argv, proc)


NODE_ENV = {"universe": {"UNIVERSE_PROVIDER": "yfinance", "UNIVERSE_SYNC_ON_START": "0"}}


def _extra_vars(d: Deployment, src: Path) -> dict[str, Any]:
    per_host = f"{d.root}/{{{{ inventory_hostname }}}}"
    return {
        "ansible_connection": "local",
        "ansible_python_interpreter": PYTHON_ON_TARGET,
        "ansible_become": False,
        "edge_systemd": False,
        "edge_controller_src": str(src),
        "edge_credentials_dir": str(d.credentials),
        "edge_venv": sys.prefix,
        "edge_etc_dir": f"{per_host}/etc",
        "edge_systemd_dir": f"{per_host}/systemd",
        "edge_state_dir": f"{per_host}/state",
        "edge_broker_conf_dir": f"{per_host}/broker/conf",
        "edge_broker_data_dir": f"{per_host}/broker/data",
        "edge_broker_log_dest": f"file {per_host}/broker/data/mosquitto.log",
        "edge_broker_group": _broker_group(),
        "edge_broker_user": pwd.getpwuid(os.geteuid()).pw_name if _broker_group() != "mosquitto" else "mosquitto",
        "edge_broker_port": d.port,
        "edge_broker_tls_port": d.tls_port,
        "edge_broker_tls_bind": "127.0.0.1",
        "edge_node_env": NODE_ENV,
    }


@dataclass
class World:
    base: Path
    ansible: Ansible
    deployments: dict[str, Deployment]
    syntax: dict[str, Run]
    listing: dict[str, Run]


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    # Under /tmp, not pytest's private tmp folder: mosquitto, once it has dropped to its
    # own user, must reach the rendered files.
    base = Path(tempfile.mkdtemp(prefix="edge-deploy-"))
    base.chmod(0o755)
    src = base / "src"
    for node in BUILT:
        (src / "nodes" / node).mkdir(parents=True)
        (src / "nodes" / node / "node.py").write_text("")
    (src / "mosquitto").symlink_to(REPO_ROOT / "mosquitto")
    ansible = Ansible(base)
    deployments: dict[str, Deployment] = {}
    for name, path in INVENTORIES.items():
        d = Deployment(name, base / name, _free_port(), _free_port())
        for host in inventory.load(path):
            d.host(host.name).mkdir(parents=True, mode=0o755)
        d.root.chmod(0o755)
        d.extra_vars = _extra_vars(d, src)
        (d.root / "vars.json").write_text(json.dumps(d.extra_vars))
        d.render = ansible.start(PLAYBOOK, "-i", path, "site.yml", "--tags", "config", "-e", f"@{d.root / 'vars.json'}")
        deployments[name] = d
    syntax = {n: ansible.start(PLAYBOOK, "-i", p, "site.yml", "--syntax-check") for n, p in INVENTORIES.items()}
    listing = {n: ansible.start(INVENTORY_CLI, "-i", p, "--list") for n, p in INVENTORIES.items()}
    for run in [*syntax.values(), *listing.values(), *(d.render for d in deployments.values() if d.render)]:
        run.wait()
    try:
        yield World(base, ansible, deployments, syntax, listing)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=list(INVENTORIES))
def deployment(request: pytest.FixtureRequest, world: World) -> Deployment:
    d = world.deployments[request.param]
    assert d.render is not None
    d.render.check()
    return d


# -- the playbook and the inventories ----------------------------------------------------------------
@pytest.mark.parametrize("name", list(INVENTORIES))
def test_playbook_syntax(world: World, name: str) -> None:
    assert "playbook: site.yml" in world.syntax[name].check()


@pytest.mark.parametrize("name", list(INVENTORIES))
def test_inventory_groups_and_placement(world: World, name: str) -> None:
    data = json.loads(world.listing[name].check())
    for group, hosts in EXPECTED_HOSTS[name].items():
        assert sorted(data.get(group, {}).get("hosts", [])) == hosts, group
    hostvars = data["_meta"]["hostvars"]
    # Ansible and the launcher (edge.inventory) read the same placement from the same file
    for host in inventory.load(INVENTORIES[name]):
        hv = hostvars[host.name]
        assert hv["edge_nodes"] == host.vars["edge_nodes"]
        assert hv.get("edge_instances") == host.vars.get("edge_instances")
        assert hv["edge_board"] == host.board
    brokers = [h for h, hv in hostvars.items() if hv.get("edge_runs_broker")]
    assert brokers == ["trader-core"]


# -- what site.yml rendered -------------------------------------------------------------------------------
def parse_unit(text: str) -> dict[str, list[str]]:
    """`Key=value` lines of a unit file (keys may repeat), comments and sections left out."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key, []).append(value)
    return out


def unit_env(unit: dict[str, list[str]]) -> dict[str, str]:
    return dict(v.split("=", 1) for v in unit.get("Environment", []))


def test_units_per_placed_and_built_node(deployment: Deployment) -> None:
    d = deployment
    runs_broker = {h.name: bool(h.vars.get("edge_runs_broker")) for h in inventory.load(INVENTORIES[d.name])}
    seen_boards = set()
    for p_host, is_broker in runs_broker.items():
        placements = [p for p in inventory.placements(INVENTORIES[d.name]) if p.host == p_host]
        expected = {f"edge-{p.ident}.service": p for p in placements if p.node in BUILT}
        units_dir = d.host(p_host) / "systemd"
        found = {f.name for f in units_dir.glob("edge-*.service")}
        assert found == set(expected), f"{p_host}: units {sorted(found)}, expected {sorted(expected)}"
        assert not any(p.node not in BUILT and (units_dir / f"edge-{p.ident}.service").exists() for p in placements)
        assert (units_dir / "edge-trader.target").exists()
        for name, p in expected.items():
            seen_boards.add(p.board)
            unit = parse_unit((units_dir / name).read_text())
            env = unit_env(unit)
            assert unit["Restart"] == ["on-failure"]
            assert unit["MemoryMax"] == ["600M" if p.node == "evaluator" else "300M"]
            assert unit["StandardOutput"] == ["journal"] and unit["StandardError"] == ["journal"]
            assert unit["ExecStart"] == [f"{sys.prefix}/bin/python -m edge.run {p.node}"]
            assert unit["User"] == ["edge"]
            assert unit["WantedBy"] == ["edge-trader.target"]
            after = unit["After"][0].split()
            assert "network-online.target" in after
            assert ("mosquitto.service" in after) == is_broker
            assert env["EDGE_BOARD"] == p.board and env["EDGE_ROOT"] == "trader" and env["EDGE_MODE"] == "paper"
            assert env.get("EDGE_INSTANCE") == (None if p.instance is None else str(p.instance))
            if is_broker:  # the broker's own board: loopback, no TLS
                assert (env["MQTT_HOST"], env["MQTT_PORT"]) == ("127.0.0.1", str(d.port))
                assert "MQTT_CAFILE" not in env
            else:  # another board: the core board's name, the TLS port, the project's CA
                assert (env["MQTT_HOST"], env["MQTT_PORT"]) == ("trader-core.local", str(d.tls_port))
                cafile = Path(env["MQTT_CAFILE"])
                assert cafile.read_bytes() == (d.credentials / "tls" / "ca.crt").read_bytes()
            # the credentials: root-only file, the node's own user and the controller's password
            (envfile,) = unit["EnvironmentFile"]
            assert stat.S_IMODE(Path(envfile).stat().st_mode) == 0o600
            creds = dict(
                line.split("=", 1)
                for line in Path(envfile).read_text().splitlines()
                if line and not line.startswith("#")
            )
            assert creds == {"MQTT_USER": p.node, "MQTT_PASS": d.password(p.node), **NODE_ENV.get(p.node, {})}
    assert seen_boards == ({"core"} if d.name == "single-board" else {"core", "execution"})


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_units_pass_systemd_analyze_verify(deployment: Deployment) -> None:
    for host in inventory.load(INVENTORIES[deployment.name]):
        units_dir = deployment.host(host.name) / "systemd"
        files = sorted(str(f) for f in units_dir.glob("edge-*"))
        assert files
        res = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", *files],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"},
        )
        assert res.returncode == 0 and not res.stdout.strip() and not res.stderr.strip(), res.stdout + res.stderr


def test_broker_files(deployment: Deployment) -> None:
    d = deployment
    conf_dir = d.host("trader-core") / "broker" / "conf"
    conf = (conf_dir / "mosquitto.conf").read_text()
    assert "${" not in conf
    lines = [ln.strip() for ln in conf.splitlines() if ln.strip() and not ln.startswith("#")]
    for expected in (
        f"listener {d.port} 127.0.0.1",
        f"listener {d.tls_port} 127.0.0.1",
        "allow_anonymous false",
        "per_listener_settings false",
        "set_tcp_nodelay true",
        "max_inflight_messages 20",
        "max_queued_messages 10000",
        "persistent_client_expiration 14d",
        "persistence true",
        f"password_file {conf_dir}/passwd",
        f"acl_file {conf_dir}/acl",
        f"keyfile {conf_dir}/tls/server.key",
    ):
        assert expected in lines, expected
    # every user of the catalog, hashed; the ACL exactly as `edge acl` makes it
    passwd = dict(ln.split(":", 1) for ln in (conf_dir / "passwd").read_text().splitlines() if ln)
    assert sorted(passwd) == users(CATALOG)
    assert all(h.startswith("$7$") for h in passwd.values())
    assert (conf_dir / "acl").read_text() == render_acl(CATALOG, Topics("trader")) + "\n"
    for name in ("passwd", "acl", "mosquitto.conf", "tls/server.key"):
        st = (conf_dir / name).stat()
        assert grp.getgrgid(st.st_gid).gr_name == d.extra_vars["edge_broker_group"]
        assert stat.S_IMODE(st.st_mode) & 0o007 == 0, f"{name} is readable by others"
    dropin = parse_unit((d.host("trader-core") / "systemd" / "mosquitto.service.d" / "edge.conf").read_text())
    assert dropin["ExecStart"] == ["", f"/usr/sbin/mosquitto -c {conf_dir}/mosquitto.conf"]
    if d.name == "dual-board":
        assert not (d.host("trader-exec") / "broker").exists()


def test_broker_certificate_names(deployment: Deployment) -> None:
    from cryptography import x509

    tls = deployment.credentials / "tls"
    cert = x509.load_pem_x509_certificate((tls / "server.crt").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = set(names.get_values_for_type(x509.DNSName))
    ips = {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    assert {"trader-core", "localhost"} <= dns and "127.0.0.1" in ips
    if deployment.name == "dual-board":
        assert "trader-core.local" in dns  # what the execution board's nodes connect to
    assert stat.S_IMODE((tls / "ca.key").stat().st_mode) == 0o600


def test_templates_have_only_known_placeholders() -> None:
    core = Template((REPO_ROOT / "mosquitto" / "core.conf").read_text())
    assert set(core.get_identifiers()) == {
        "password_file",
        "acl_file",
        "data_dir",
        "log_dest",
        "port",
        "tls_port",
        "tls_bind",
        "cafile",
        "certfile",
        "keyfile",
    }
    assert core.is_valid()
    execution = Template((REPO_ROOT / "mosquitto" / "execution.conf").read_text())
    assert execution.is_valid()
    for name in ("core.conf", "execution.conf"):
        for line in (REPO_ROOT / "mosquitto" / name).read_text().splitlines():
            assert not (line.lstrip().startswith("#") and "${" in line), f"{name}: placeholder in a comment: {line}"


# -- a real mosquitto from the rendered configuration -------------------------------------------------------
@dataclass
class Mosquitto:
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False


def start_mosquitto(conf: Path, log: Path, ports: list[int]) -> Mosquitto:
    proc = subprocess.Popen(
        [MOSQUITTO, "-c", str(conf)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    m = Mosquitto(proc, log)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise AssertionError(f"mosquitto exited ({proc.returncode}): {err}\n{tail}")
        if all(_listening(p) for p in ports):
            return m
        time.sleep(0.02)
    m.stop()
    raise AssertionError(f"mosquitto did not listen on {ports}")


@pytest.fixture(scope="module")
def core_broker(world: World) -> Iterator[Deployment]:
    assert os.access(MOSQUITTO, os.X_OK), "mosquitto is not installed (make test installs it)"
    d = world.deployments["single-board"]
    assert d.render is not None
    d.render.check()
    host = d.host("trader-core")
    m = start_mosquitto(
        host / "broker" / "conf" / "mosquitto.conf", host / "broker" / "data" / "mosquitto.log", [d.port, d.tls_port]
    )
    try:
        yield d
    finally:
        m.stop()


def tls_context(cafile: Path | None) -> ssl.SSLContext:
    """Certificates checked as Python 3.13 does by default (strict X.509), on every Python."""
    ctx = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    return ctx


def _client(user: str | None, password: str | None, *, tls: ssl.SSLContext | None = None) -> mqtt.Client:
    c = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-deploy-{secrets.token_hex(4)}", protocol=mqtt.MQTTv5
    )
    if user is not None:
        c.username_pw_set(user, password)
    if tls is not None:
        c.tls_set_context(tls)
    return c


def connack(
    port: int, user: str | None = None, password: str | None = None, *, tls: ssl.SSLContext | None = None
) -> mqtt.ReasonCode | str:
    """The CONNACK's reason code, or the error that prevented one."""
    c = _client(user, password, tls=tls)
    done = threading.Event()
    result: list[Any] = []

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, rc: mqtt.ReasonCode, props: Any) -> None:
        result.append(rc)
        done.set()

    c.on_connect = on_connect
    try:
        c.connect("127.0.0.1", port, keepalive=10)
    except (OSError, ssl.SSLError) as exc:
        return f"{type(exc).__name__}: {exc}"
    c.loop_start()
    try:
        done.wait(5)
    finally:
        c.disconnect()
        c.loop_stop()
    return result[0] if result else "no CONNACK"


def test_node_logs_in_with_its_generated_password(core_broker: Deployment) -> None:
    rc = connack(core_broker.port, "universe", core_broker.password("universe"))
    assert isinstance(rc, mqtt.ReasonCode) and not rc.is_failure, rc


def test_anonymous_and_wrong_password_are_refused(core_broker: Deployment) -> None:
    for user, password in (
        (None, None),
        ("universe", "not-the-password"),
        ("nobody", "x"),
        ("universe", core_broker.password("trading")),
    ):
        rc = connack(core_broker.port, user, password)
        assert isinstance(rc, mqtt.ReasonCode) and rc.is_failure, (user, rc)


def test_tls_listener_with_the_generated_ca(core_broker: Deployment) -> None:
    ours = tls_context(core_broker.credentials / "tls" / "ca.crt")
    rc = connack(core_broker.tls_port, "trading", core_broker.password("trading"), tls=ours)
    assert isinstance(rc, mqtt.ReasonCode) and not rc.is_failure, rc
    anonymous = connack(core_broker.tls_port, tls=tls_context(core_broker.credentials / "tls" / "ca.crt"))
    assert isinstance(anonymous, mqtt.ReasonCode) and anonymous.is_failure
    # a client that trusts only the usual public CAs does not get in
    public = connack(core_broker.tls_port, "trading", core_broker.password("trading"), tls=tls_context(None))
    assert isinstance(public, str) and "CERTIFICATE_VERIFY_FAILED" in public, public


class Listener:
    """A subscriber that records messages and can wait for one."""

    def __init__(self, port: int, user: str, password: str, pattern: str) -> None:
        self.got: list[tuple[str, bytes]] = []
        self.cond = threading.Condition()
        self.client = _client(user, password)
        subscribed = threading.Event()
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_connect = lambda c, *a: c.subscribe(pattern, qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert subscribed.wait(5), "no SUBACK"

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.cond:
            self.got.append((msg.topic, msg.payload))
            self.cond.notify_all()

    def wait_for(self, topic: str, timeout: float = 5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: any(t == topic for t, _ in self.got), timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _publisher(port: int, user: str, password: str) -> mqtt.Client:
    c = _client(user, password)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def test_acl_from_the_catalog_is_in_force(core_broker: Deployment) -> None:
    d = core_broker
    watch = Listener(d.port, "operator", d.password("operator"), "trader/#")
    pub = _publisher(d.port, "universe", d.password("universe"))
    try:
        # universe may not speak for trading; its own status goes through (same connection: in order)
        pub.publish("trader/node/trading/status", b"forged", qos=1).wait_for_publish(5)
        pub.publish("trader/node/universe/status", b"mine", qos=1).wait_for_publish(5)
        assert watch.wait_for("trader/node/universe/status")
        assert ("trader/node/trading/status", b"forged") not in watch.got
    finally:
        pub.disconnect()
        pub.loop_stop()
        watch.close()


def test_optional_execution_broker_bridges_to_core(core_broker: Deployment, world: World) -> None:
    """mosquitto/execution.conf as its header says to use it: same users and ACL, a bridge over TLS."""
    d = core_broker
    conf_dir = d.host("trader-core") / "broker" / "conf"
    data = world.base / "execution-broker"
    data.mkdir(mode=0o750)
    if d.extra_vars["edge_broker_user"] == "mosquitto":
        shutil.chown(data, "mosquitto", "mosquitto")
    port = _free_port()
    conf = Template((REPO_ROOT / "mosquitto" / "execution.conf").read_text()).substitute(
        password_file=conf_dir / "passwd",
        acl_file=conf_dir / "acl",
        data_dir=data,
        log_dest=f"file {data}/mosquitto.log",
        port=port,
        bridge_name="bridge-execution",
        core_host="localhost",
        core_tls_port=d.tls_port,
        core_cafile=conf_dir / "tls" / "ca.crt",
        bridge_user="operator",
        bridge_password=d.password("operator"),
        root="trader",
    )
    conf_file = world.base / "execution.conf"
    conf_file.write_text(conf)
    m = start_mosquitto(conf_file, data / "mosquitto.log", [port])
    on_exec = Listener(port, "operator", d.password("operator"), "trader/#")
    on_core = Listener(d.port, "operator", d.password("operator"), "trader/#")
    core_pub = _publisher(d.port, "universe", d.password("universe"))
    exec_pub = _publisher(port, "operator", d.password("operator"))
    try:
        # core -> execution (retried until the bridge is up)
        deadline = time.monotonic() + 15
        while not on_exec.wait_for("trader/node/universe/heartbeat", 0.3):
            assert time.monotonic() < deadline, f"nothing crossed the bridge:\n{m.log.read_text()[-3000:]}"
            core_pub.publish("trader/node/universe/heartbeat", b"{}", qos=1)
        # execution -> core, exactly once (no loop back through the bridge)
        exec_pub.publish("trader/cmd/planning/approve", b"{}", qos=1).wait_for_publish(5)
        assert on_core.wait_for("trader/cmd/planning/approve")
        time.sleep(0.3)
        assert [t for t, _ in on_core.got].count("trader/cmd/planning/approve") == 1
        assert [t for t, _ in on_exec.got].count("trader/cmd/planning/approve") == 1
    finally:
        for c in (core_pub, exec_pub):
            c.disconnect()
            c.loop_stop()
        on_exec.close()
        on_core.close()
        m.stop()


# -- slow: a second run changes nothing -----------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_second_run_changes_nothing(world: World) -> None:
    d = world.deployments["dual-board"]
    assert d.render is not None
    d.render.check()
    out = (
        world.ansible.start(
            PLAYBOOK, "-i", INVENTORIES[d.name], "site.yml", "--tags", "config", "-e", f"@{d.root / 'vars.json'}"
        )
        .wait()
        .check()
    )
    recap = [ln for ln in out.splitlines() if "changed=" in ln and "unreachable=" in ln]
    assert recap and all(" changed=0 " in ln for ln in recap), "\n".join(recap)
