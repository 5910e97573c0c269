"""Deployment: the Ansible playbook run for real, and a real Mosquitto from what it rendered.

Both inventories go through `deploy/ansible/site.yml` itself (`--tags config`, every host on a
local connection, every path under a temporary folder, `edge_systemd=false` so that no
service is touched): the controller's credentials (passwords, CA, broker certificate), the
broker's files (mosquitto.conf from mosquitto/core.conf, password file hashed by
mosquitto_passwd, ACL from `edge acl`) and one systemd unit per process of placed and built
nodes (a node's own, or a process group's from `edge_process_groups`, as edge.inventory
plans them), with an env file per node. The checkout they deploy is a stand-in in which only
some nodes are built, so that the rule "placed but not built: no unit" is exercised whatever
the real nodes/ holds (the planner group has no member built: no unit). A board that goes
from a unit per node to a process group loses the per-node units; bad groups are refused as
edge.inventory refuses them.

Then `mosquitto` runs with the rendered configuration: a node logs in with its generated
password, anonymous and wrong passwords are refused, TLS works with the generated CA under
Python 3.13's strict X.509 checks, the ACL is in force, the optional execution broker
(mosquitto/execution.conf) bridges to it both ways, and `edge-node-restart` (what the
deployment restarts a unit with) waits until the retained status of every node of the unit
says it is online from the process systemd runs (systemctl is a stand-in).

Releases: each host's `edge_home` holds stand-in releases (their venv is this interpreter's),
`current` among them; the units run `current/venv/bin/python`. Going to a release already on
the boards (`--tags release -e edge_release_id=...`), pruning the old ones, a second run that
changes nothing, and `edge_rollback=true` (both ways, and refused with nothing to go back to)
run for real on those folders. Slow tests (`make soak`, or `pytest -m slow`): a release built
for real from a stand-in git checkout (shipped, its venv made, a stand-in project pip
installed offline, byte-compiled; built once; a changed tree is the next release), and the
restarts with a stand-in systemctl (one unit at a time, each online before the next, only
what changed, a group's node that never comes online stops the deployment, and the next run
resumes from it; units no longer placed stop before the new ones start). Building the real
project's release needs the boards' network: the two-board testbed does it.

The roles pass ansible-lint's production profile (deploy/ansible/.ansible-lint).

Needs ansible-core and ansible-lint (dev dependencies, installed by `make test`), mosquitto and git.
"""

from __future__ import annotations

import contextlib
import grp
import itertools
import json
import os
import pwd
import re
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
MEMORY_MAX = {  # role defaults
    "scoring": "320M",
    "optimization": "352M",
    "dashboard": "384M",
    "universe": "288M",
    "planner": "96M",
    "evaluators": "224M",
}
BUILT = ("universe", "evaluator", "trading")  # the stand-in checkout's built nodes
EXPECTED_HOSTS = {
    "single-board": {"core": ["trader-core"], "execution": []},
    "dual-board": {"core": ["trader-core"], "execution": ["trader-exec"]},
}
TIMEOUT = 100  # below pytest-timeout (120 s), so that a hung run reports its own output


def _tool(name: str) -> str | None:
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


PLAYBOOK, INVENTORY_CLI, LINT = _tool("ansible-playbook"), _tool("ansible-inventory"), _tool("ansible-lint")
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
        "edge_home": f"{per_host}/home",
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


RELEASE = "r0000000000a1"  # the stand-in release every host runs in the rendering tests


def host_extras(host: inventory.Host) -> list[str]:
    """The project's extras a host's release has (the role's rule, edge_filters.edge_extras)."""
    return ["dashboard"] if "dashboard" in host.vars.get("edge_nodes", []) else []


def fake_release(home: Path, name: str, extras: list[str], *, age_s: float = 0.0) -> Path:
    """A complete release as the edge_release role leaves it, but whose venv is this interpreter's."""
    release = home / "releases" / name
    (release / "src" / "edge").mkdir(parents=True)
    (release / "src" / "edge" / "process.py").write_text("")  # it runs process groups (edge_rollback checks)
    (release / "venv").symlink_to(sys.prefix)
    (release / ".edge-release").write_text(json.dumps({"release": name, "extras": extras}, indent=4) + "\n")
    if age_s:
        then = time.time() - age_s
        os.utime(release, (then, then))
    return release


def link(home: Path, which: str, name: str) -> None:
    """`current` or `previous` -> releases/<name>, as the role makes them (relative)."""
    path = home / which
    if path.is_symlink():
        path.unlink()
    path.symlink_to(f"releases/{name}")


def prepare_hosts(d: Deployment, path: Path) -> None:
    """Each host's folder, with a stand-in release made current."""
    for host in inventory.load(path):
        d.host(host.name).mkdir(parents=True, mode=0o755)
        home = d.host(host.name) / "home"
        fake_release(home, RELEASE, host_extras(host))
        link(home, "current", RELEASE)
    d.root.chmod(0o755)


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
        prepare_hosts(d, path)
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


def unit_processes(path: Path, host: str) -> dict[str, list[inventory.Placement]]:
    """The host's processes (`Placement.process`) and their built members, those with a unit."""
    placed = [p for p in inventory.placements(path) if p.host == host]
    out = {name: [p for p in group if p.node in BUILT] for name, group in inventory.processes(placed).items()}
    return {name: group for name, group in out.items() if group}


def memory_max(name: str, group: list[inventory.Placement]) -> str:
    """The role's rule: the process's name, a node's own unit falls back to its node's, then 128M."""
    alone = [p.ident for p in group] == [name]
    return MEMORY_MAX.get(name) or (MEMORY_MAX.get(group[0].node) if alone else None) or "128M"


def env_file(path: Path | str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in Path(path).read_text().splitlines() if line and not line.startswith("#"))


def node_creds(d: Deployment, node: str) -> dict[str, str]:
    """What a node's env file holds: its user and password under its own names, its settings."""
    return {f"MQTT_USER_{node.upper()}": node, f"MQTT_PASS_{node.upper()}": d.password(node), **NODE_ENV.get(node, {})}


def test_one_unit_per_process_of_built_nodes(deployment: Deployment) -> None:
    d = deployment
    runs_broker = {h.name: bool(h.vars.get("edge_runs_broker")) for h in inventory.load(INVENTORIES[d.name])}
    seen_boards = set()
    for p_host, is_broker in runs_broker.items():
        placements = [p for p in inventory.placements(INVENTORIES[d.name]) if p.host == p_host]
        processes = unit_processes(INVENTORIES[d.name], p_host)
        expected = {f"edge-{name}.service": (name, group) for name, group in processes.items()}
        units_dir = d.host(p_host) / "systemd"
        found = {f.name for f in units_dir.glob("edge-*.service")}
        assert found == set(expected), f"{p_host}: units {sorted(found)}, expected {sorted(expected)}"
        # a group whose members are all unbuilt has no unit (the planner here), nor has an unbuilt node
        assert not any((units_dir / f"edge-{p.process}.service").exists() for p in placements if p.node not in BUILT)
        assert (units_dir / "edge-trader.target").exists()
        # one env file per node that runs here, whatever process it is in
        nodes = {p.node for group in processes.values() for p in group}
        assert {f.stem for f in (d.host(p_host) / "etc" / "nodes").glob("*.env")} == nodes
        for unit_name, (name, group) in expected.items():
            seen_boards.add(group[0].board)
            idents = [p.ident for p in group]
            unit = parse_unit((units_dir / unit_name).read_text())
            env = unit_env(unit)
            assert unit["Restart"] == ["on-failure"]
            assert unit["MemoryMax"] == [memory_max(name, group)]
            assert unit["StandardOutput"] == ["journal"] and unit["StandardError"] == ["journal"]
            assert unit["SyslogIdentifier"] == [f"edge-{name}"]
            # the current release's venv, whichever release that is; every ident it hosts
            python = f"{d.host(p_host)}/home/current/venv/bin/python"
            assert unit["ExecStart"] == [f"{python} -m edge.run {' '.join(idents)}"]
            assert unit["X-EdgeNodes"] == [" ".join(idents)]
            assert unit["User"] == ["edge"]
            assert unit["WantedBy"] == ["edge-trader.target"]
            after = unit["After"][0].split()
            assert "network-online.target" in after
            assert ("mosquitto.service" in after) == is_broker
            assert env["EDGE_BOARD"] == group[0].board and env["EDGE_ROOT"] == "trader" and env["EDGE_MODE"] == "paper"
            assert "EDGE_INSTANCE" not in env, "instances are named in ExecStart (evaluator_2)"
            if is_broker:  # the broker's own board: loopback, no TLS
                assert (env["MQTT_HOST"], env["MQTT_PORT"]) == ("127.0.0.1", str(d.port))
                assert "MQTT_CAFILE" not in env
            else:  # another board: the core board's name, the TLS port, the project's CA
                assert (env["MQTT_HOST"], env["MQTT_PORT"]) == ("trader-core.local", str(d.tls_port))
                cafile = Path(env["MQTT_CAFILE"])
                assert cafile.read_bytes() == (d.credentials / "tls" / "ca.crt").read_bytes()
            # the credentials: a root-only file per node of the unit, each node's own user and the
            # controller's password under names of its own, so that several load into one process
            unit_nodes = list(dict.fromkeys(p.node for p in group))
            assert unit["EnvironmentFile"] == [f"{d.host(p_host)}/etc/nodes/{n}.env" for n in unit_nodes]
            for node, envfile in zip(unit_nodes, unit["EnvironmentFile"], strict=True):
                assert stat.S_IMODE(Path(envfile).stat().st_mode) == 0o600
                assert env_file(envfile) == node_creds(d, node)
    assert seen_boards == ({"core"} if d.name == "single-board" else {"core", "execution"})


def test_a_process_group_is_one_unit_of_its_built_members(deployment: Deployment) -> None:
    """The evaluator workers of a board (edge_process_groups: evaluators) run in one unit."""
    d = deployment
    for host in inventory.load(INVENTORIES[d.name]):
        groups = host.vars.get("edge_process_groups") or {}
        for group, members in groups.items():
            unit_file = d.host(host.name) / "systemd" / f"edge-{group}.service"
            built = [m for m in members if m.rsplit("_", 1)[0] in BUILT]
            if not built:
                assert not unit_file.exists(), f"{group}: no member built, no unit"
                continue
            unit = parse_unit(unit_file.read_text())
            assert unit["X-EdgeNodes"] == [" ".join(built)] and unit["ExecStart"][0].endswith(" ".join(built))
            for member in built:
                assert not (d.host(host.name) / "systemd" / f"edge-{member}.service").exists()
    evaluators = {
        "single-board": ("trader-core", "evaluator_1 evaluator_2"),
        "dual-board": ("trader-exec", "evaluator_2 evaluator_3"),
    }
    host, idents = evaluators[d.name]
    text = (d.host(host) / "systemd" / "edge-evaluators.service").read_text()
    assert f"\nX-EdgeNodes={idents}\n" in text.split("[Service]")[0], "in the [Unit] section"
    assert "MemoryMax=224M" in text and "Description=edge trader evaluators: " in text


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


# -- the roles pass ansible-lint's production profile ------------------------------------------------
def test_ansible_lint_production_profile(tmp_path: Path) -> None:
    assert LINT is not None, "ansible-lint is not installed (a dev dependency: make test installs it)"
    assert "profile: production" in (ANSIBLE_DIR / ".ansible-lint").read_text()
    res = subprocess.run(
        [LINT, "--profile", "production", "--offline", "--nocolor", "-f", "pep8"],
        cwd=ANSIBLE_DIR,
        env={**os.environ, "ANSIBLE_HOME": str(tmp_path / ".ansible"), "NO_COLOR": "1"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "Profile 'production' was required, and it passed" in out, out[-6000:]


# -- releases -----------------------------------------------------------------------------------------
RELEASE_NAME = ANSIBLE_DIR / "roles" / "edge_release" / "files" / "release_name.py"


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_release_name_is_the_commit_and_a_hash_of_changes(tmp_path: Path) -> None:
    repo = tmp_path / "checkout"
    repo.mkdir()

    def name() -> subprocess.CompletedProcess[str]:
        return name_of(repo)

    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "a.py").write_text("a = 1\n")
    (repo / ".gitignore").write_text("ignored/\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    head = subprocess.run([*git, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert name().stdout.strip() == head and len(head) == 12
    (repo / "ignored").mkdir()
    (repo / "ignored" / "x").write_text("not part of it")
    assert name().stdout.strip() == head, "ignored files do not make a tree dirty"
    (repo / "a.py").write_text("a = 2\n")
    first = name().stdout.strip()
    assert first.startswith(f"{head}-dirty-") and len(first) == len(head) + 15
    assert name().stdout.strip() == first, "the same changes, the same name"
    (repo / "b.py").write_text("b = 1\n")  # an untracked file is shipped, so it counts
    second = name().stdout.strip()
    assert second.startswith(f"{head}-dirty-") and second != first
    (repo / "b.py").write_text("b = 2\n")
    assert name().stdout.strip() not in (first, second)
    not_git = name_of(tmp_path / "plain")
    assert not_git.returncode == 3 and "edge_release_id" in not_git.stderr


def name_of(path: Path) -> subprocess.CompletedProcess[str]:
    path.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, str(RELEASE_NAME), str(path)], capture_output=True, text=True, timeout=30)


def links(home: Path) -> tuple[str, str]:
    """The releases `current` and `previous` point to ('' when missing)."""

    def target(which: str) -> str:
        path = home / which
        return os.readlink(path).removeprefix("releases/") if path.is_symlink() else ""

    return target("current"), target("previous")


def recap(out: str) -> dict[str, str]:
    return {ln.split()[0]: ln for ln in out.splitlines() if "changed=" in ln and "unreachable=" in ln}


# About a minute: in `make deploy-test` (the two real boards upgrade and go back there too).
@pytest.mark.deploy
@pytest.mark.timeout(300)
def test_releases_upgrade_prune_and_rollback(world: World) -> None:
    """Going to a release already on the boards, pruning, and edge_rollback, on both boards."""
    path = INVENTORIES["dual-board"]
    hosts = inventory.load(path)
    d = Deployment("releases", world.base / "releases", 0, 0)
    for host in hosts:
        home = d.host(host.name) / "home"
        for k, name in enumerate(("r1", "r2", "r3", "r4", "r5")):  # r1 the oldest
            fake_release(home, name, host_extras(host), age_s=3600 * (5 - k))
        link(home, "current", "r2")
        link(home, "previous", "r1")
    d.extra_vars = _extra_vars(d, world.base / "src")
    (d.root / "vars.json").write_text(json.dumps(d.extra_vars))
    homes = {h.name: d.host(h.name) / "home" for h in hosts}

    def start(*extra: str) -> Run:
        return world.ansible.start(
            PLAYBOOK, "-i", path, "site.yml", "--tags", "release", "-e", f"@{d.root / 'vars.json'}", *extra
        )

    def run(*extra: str) -> Run:
        return start(*extra).wait()

    def releases(home: Path) -> list[str]:
        return sorted(p.name for p in (home / "releases").iterdir())

    # to r4, already on the boards (nothing shipped): r2 becomes previous; of the others only
    # the newest, r5, stays (3 kept: current, previous, and one more)
    run("-e", "edge_release_id=r4", "-e", "edge_release_keep=3").check()
    for host, home in homes.items():
        assert links(home) == ("r4", "r2"), host
        assert releases(home) == ["r2", "r4", "r5"], host
        assert (home / "current" / "venv" / "bin" / "python").exists()
    # the same again: nothing changes, on either board
    again = recap(run("-e", "edge_release_id=r4", "-e", "edge_release_keep=3").check())
    assert set(again) == set(homes) and all(" changed=0 " in ln for ln in again.values()), "\n".join(again.values())

    # back: previous and current swap on every board (the two links, nothing else)
    rolled = recap(run("-e", "edge_rollback=true").check())
    for host, home in homes.items():
        assert links(home) == ("r2", "r4"), host
        assert " changed=2 " in rolled[host], rolled[host]
        assert releases(home) == ["r2", "r4", "r5"], "a rollback removes no release"

    # a rollback with nothing to go back to on one board changes no board, and says why; nor
    # does one given a release name (going back ships nothing). Both refused, side by side.
    (homes["trader-exec"] / "previous").unlink()
    refused = start("-e", "edge_rollback=true")
    named = start("-e", "edge_rollback=true", "-e", "edge_release_id=r5")
    refused.wait()
    named.wait()
    assert refused.proc.returncode != 0
    assert "trader-exec: nothing to go back to" in refused.out, refused.out[-3000:]
    assert named.proc.returncode != 0 and "do not set edge_release_id" in named.out, named.out[-3000:]
    assert links(homes["trader-core"]) == ("r2", "r4") and links(homes["trader-exec"]) == ("r2", "")

    # nor a rollback to a release from before process groups (it reads neither several nodes per
    # unit nor MQTT_USER_<NODE>): the way back to it is its commit, deployed
    link(homes["trader-exec"], "previous", "r4")
    (homes["trader-core"] / "releases" / "r4" / "src" / "edge" / "process.py").unlink()
    old = start("-e", "edge_rollback=true").wait()
    assert old.proc.returncode != 0
    assert "trader-core: the previous release r4 predates process groups" in old.out, old.out[-3000:]
    assert all(links(home) == ("r2", "r4") for home in homes.values())


# -- edge-node-restart: a unit is waited for until its nodes are online, from the process systemd runs ---
FAKE_SYSTEMCTL = """#!/bin/sh
# stands in for systemctl: the unit is active, its main process $FAKE_PID
echo "$*" >> "$FAKE_LOG"
case "$*" in
  *--property=ActiveState*) echo active ;;
  *--property=MainPID*) echo "$FAKE_PID" ;;
esac
"""


def test_edge_node_restart_waits_for_the_node_online(core_broker: Deployment, tmp_path: Path) -> None:
    d = core_broker
    script = d.host("trader-core") / "home" / "bin" / "edge-node-restart"
    assert stat.S_IMODE(script.stat().st_mode) == 0o755
    assert subprocess.run(["sh", "-n", str(script)], capture_output=True, timeout=10).returncode == 0
    fake = tmp_path / "bin"
    fake.mkdir()
    for tool, text in (("systemctl", FAKE_SYSTEMCTL), ("journalctl", "#!/bin/sh\necho 'the journal'\n")):
        (fake / tool).write_text(text)
        (fake / tool).chmod(0o755)
    log = tmp_path / "systemctl.log"

    def restart(action: str, name: str, pid: int, timeout: int) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "FAKE_PID": str(pid), "FAKE_LOG": str(log)}
        return subprocess.run(
            [str(script), action, name, str(timeout)], env=env, capture_output=True, text=True, timeout=timeout + 30
        )

    pub = _publisher(d.port, "universe", d.password("universe"))
    try:
        status = {"node": "universe", "state": "online", "incarnation": 7, "pid": 4242}
        pub.publish("trader/node/universe/status", json.dumps(status).encode(), qos=1, retain=True).wait_for_publish(5)
        ok = restart("restart", "universe", 4242, 20)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "edge-universe.service: active and online (pid 4242: universe)" in ok.stdout
        calls = log.read_text()
        assert "reset-failed edge-universe.service" in calls and "restart edge-universe.service" in calls
        assert d.password("operator") not in calls
        # an online status from another process (the one before the restart) does not count
        started = time.monotonic()
        late = restart("wait", "universe", 4243, 2)
        assert late.returncode == 1 and time.monotonic() - started >= 2
        assert "edge-universe.service: not online after 2s: universe (systemd: active, main pid 4243)" in late.stderr, (
            late.stderr
        )
        assert '"pid": 4242' in late.stderr and "the journal" in late.stderr
        # nor an offline one from this process
        gone = {**status, "state": "offline", "pid": 4244}
        pub.publish("trader/node/universe/status", json.dumps(gone).encode(), qos=1, retain=True).wait_for_publish(5)
        assert restart("wait", "universe", 4244, 2).returncode == 1
        assert restart("frobnicate", "universe", 1, 1).returncode == 2
        assert restart("wait", "../x", 1, 1).returncode == 2
        nothing = restart("wait", "nothing", 1, 1)
        assert nothing.returncode == 1 and "no unit" in nothing.stderr and "edge-nothing.service" in nothing.stderr
    finally:
        pub.publish("trader/node/universe/status", b"", qos=1, retain=True).wait_for_publish(5)
        pub.disconnect()
        pub.loop_stop()


def test_edge_node_restart_waits_for_every_node_of_a_group(core_broker: Deployment, tmp_path: Path) -> None:
    """A process group's unit (edge-evaluators.service: evaluator_1 evaluator_2, from its X-EdgeNodes
    line) is online once each of its nodes is, from the unit's main process."""
    d = core_broker
    script = d.host("trader-core") / "home" / "bin" / "edge-node-restart"
    unit = parse_unit((d.host("trader-core") / "systemd" / "edge-evaluators.service").read_text())
    assert unit["X-EdgeNodes"] == ["evaluator_1 evaluator_2"]
    fake = tmp_path / "bin"
    fake.mkdir()
    for tool, text in (("systemctl", FAKE_SYSTEMCTL), ("journalctl", "#!/bin/sh\necho 'the journal'\n")):
        (fake / tool).write_text(text)
        (fake / tool).chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "FAKE_PID": "5151", "FAKE_LOG": str(tmp_path / "log")}

    def wait(timeout: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), "wait", "evaluators", str(timeout)], env=env, capture_output=True, text=True, timeout=60
        )

    def status(ident: str, pid: int) -> None:
        body = {"node": ident, "state": "online", "incarnation": 1, "pid": pid}
        pub.publish(f"trader/node/{ident}/status", json.dumps(body).encode(), qos=1, retain=True).wait_for_publish(5)

    pub = _publisher(d.port, "evaluator", d.password("evaluator"))
    try:
        # one of the two online: not yet, and the report names the one that is not
        status("evaluator_1", 5151)
        one = wait(2)
        assert one.returncode == 1
        assert "edge-evaluators.service: not online after 2s: evaluator_2 (systemd: active" in one.stderr, one.stderr
        assert "no status seen on trader/node/evaluator_2/status" in one.stderr
        assert "trader/node/evaluator_1/status" not in one.stderr, "the one online is not reported"
        # the other one online, but from another process: still not
        status("evaluator_2", 4000)
        assert wait(2).returncode == 1
        # both from the unit's main process: online
        status("evaluator_2", 5151)
        both = wait(10)
        assert both.returncode == 0, both.stdout + both.stderr
        assert "edge-evaluators.service: active and online (pid 5151: evaluator_1 evaluator_2)" in both.stdout
    finally:
        for ident in ("evaluator_1", "evaluator_2"):
            pub.publish(f"trader/node/{ident}/status", b"", qos=1, retain=True).wait_for_publish(5)
        pub.disconnect()
        pub.loop_stop()


# -- a release built for real: shipped, its venv made, the project pip installed (offline) ---------------
# A stand-in project whose build backend is in its tree and needs nothing (`requires = []`),
# so that `pip install --no-index --editable` works without a network, on any Python.
STANDIN_BACKEND = """
import base64, hashlib, os, zipfile

NAME, VERSION = "standin", "0.1.0"


def get_requires_for_build_editable(config_settings=None):
    return []


def get_requires_for_build_wheel(config_settings=None):
    return []


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    here = os.path.dirname(os.path.abspath(__file__))
    return _wheel(wheel_directory, {"standin.pth": (here + "\\n").encode()})


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, {})


def _wheel(directory, files):
    info = f"{NAME}-{VERSION}.dist-info"
    files = {
        **files,
        f"{info}/METADATA": (
            f"Metadata-Version: 2.1\\nName: {NAME}\\nVersion: {VERSION}\\nProvides-Extra: dashboard\\n"
        ).encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\\nGenerator: standin\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
    }
    name = f"{NAME}-{VERSION}-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(os.path.join(directory, name), "w") as z:
        for path, data in files.items():
            z.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{path},sha256={digest},{len(data)}")
        record.append(f"{info}/RECORD,,")
        z.writestr(f"{info}/RECORD", "\\n".join(record) + "\\n")
    return name
"""
STANDIN_PYPROJECT = """[build-system]
requires = []
build-backend = "backend"
backend-path = ["."]
"""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
@pytest.mark.timeout(400)
def test_a_release_is_built_once_and_a_new_commit_is_the_next_one(world: World) -> None:
    path = INVENTORIES["single-board"]
    src = world.base / "standin"
    (src / "nodes" / "universe").mkdir(parents=True)
    (src / "nodes" / "universe" / "node.py").write_text("")
    (src / "hello.py").write_text("WHO = 'first'\n")
    (src / "backend.py").write_text(STANDIN_BACKEND)
    (src / "pyproject.toml").write_text(STANDIN_PYPROJECT)
    (src / ".gitignore").write_text(".run/\n")
    (src / ".run").mkdir()
    (src / ".run" / "big").write_text("never shipped")
    git = ["git", "-C", str(src), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    commit = subprocess.run([*git, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True).stdout.strip()

    d = Deployment("built", world.base / "built", 0, 0)
    d.host("trader-core").mkdir(parents=True)
    d.extra_vars = {**_extra_vars(d, src), "edge_release_pip_args": ["--no-index"]}
    (d.root / "vars.json").write_text(json.dumps(d.extra_vars))
    home = d.host("trader-core") / "home"

    def run() -> str:
        return (
            world.ansible.start(PLAYBOOK, "-i", path, "site.yml", "--tags", "release", "-e", f"@{d.root / 'vars.json'}")
            .wait()
            .check()
        )

    def hello() -> str:
        python = home / "current" / "venv" / "bin" / "python"
        res = subprocess.run([str(python), "-c", "import hello; print(hello.WHO)"], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        return res.stdout.strip()

    run()
    release = home / "releases" / commit
    assert links(home) == (commit, "")
    assert json.loads((release / ".edge-release").read_text()) == {"release": commit, "extras": ["dashboard"]}
    assert (release / "src" / "hello.py").exists() and not (release / "src" / ".git").exists()
    assert not (release / "src" / ".run").exists(), "excluded paths are not shipped"
    assert list((release / "src" / "__pycache__").glob("hello.*.pyc")), "byte-compiled"
    assert stat.S_IMODE((release / "src" / "hello.py").stat().st_mode) == 0o644
    assert hello() == "first"
    # nothing changed: nothing shipped, nothing reported changed
    (again,) = recap(run()).values()
    assert " changed=0 " in again, again

    # a change not committed yet is another release; the one before becomes previous
    (src / "hello.py").write_text("WHO = 'second'\n")
    run()
    current, previous = links(home)
    assert current.startswith(f"{commit}-dirty-") and previous == commit
    assert hello() == "second"
    assert (home / "releases" / commit / "src" / "hello.py").read_text() == "WHO = 'first'\n", "a release never changes"


# -- restarts: one unit at a time, each online before the next, and only what changed -------------------
# systemctl stands in for systemd (units, their state, a main pid per start); each node of a
# started unit (its X-EdgeNodes line) "comes online" by publishing its retained status with
# that pid, as a node does, unless it is listed in $FAKE_STATE/broken.
FAKE_SYSTEMD = r"""
import json, os, subprocess, sys
from pathlib import Path

state = Path(os.environ["FAKE_STATE"])
args = [a for a in sys.argv[1:] if not a.startswith("--no-") and a != "-l"]
with open(state / "log", "a") as log:
    log.write(" ".join(args) + "\n")
props = {a.split("=", 1)[1] for a in args if a.startswith("--property=")}
words = [a for a in args if not a.startswith("--")]
verb, unit = (words + ["", ""])[:2]


def get(name, default=""):
    path = state / f"{unit}.{name}"
    return path.read_text() if path.exists() else default


def put(name, value):
    (state / f"{unit}.{name}").write_text(value)


def online(ident):
    node = ident.rsplit("_", 1)[0] if ident.rsplit("_", 1)[-1].isdigit() else ident
    env = dict(
        line.split("=", 1)
        for line in (Path(os.environ["FAKE_ETC"]) / "nodes" / f"{node}.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    user, password = env[f"MQTT_USER_{node.upper()}"], env[f"MQTT_PASS_{node.upper()}"]
    status = {"node": ident, "state": "online", "pid": int(get("pid", "0"))}
    subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", os.environ["FAKE_PORT"], "-u", user,
         "-P", password, "-t", f"trader/node/{ident}/status", "-r", "-q", "1", "-m", json.dumps(status)],
        check=True,
    )


known = unit.startswith("edge-") or unit == "mosquitto.service"
if verb == "show":
    values = {
        "LoadState": "loaded" if known else "not-found",
        "ActiveState": get("active", "inactive"),
        "MainPID": get("pid", "0") if get("active") == "active" else "0",
        "UnitFileState": "enabled" if get("enabled") else "disabled",
    }
    for key, value in values.items():
        if props:
            if key in props:
                print(value)
        else:
            print(f"{key}={value}")
elif verb == "is-enabled":
    print("enabled" if get("enabled") else "disabled")
    sys.exit(0 if get("enabled") else 1)
elif verb in ("enable", "disable"):
    put("enabled", "1" if verb == "enable" else "")
elif verb in ("start", "restart"):
    if verb == "restart" or get("active") != "active":
        counter = state / "pids"
        pid = int(counter.read_text()) + 1 if counter.exists() else 1000
        counter.write_text(str(pid))
        put("pid", str(pid))
        put("active", "active")
        broken = (state / "broken").read_text().split() if (state / "broken").exists() else []
        if unit.endswith(".service") and unit.startswith("edge-"):
            text = (Path(os.environ["FAKE_UNITS"]) / unit).read_text()
            hosted = next(ln.split("=", 1)[1] for ln in text.splitlines() if ln.startswith("X-EdgeNodes="))
            for ident in hosted.split():
                if ident not in broken:
                    online(ident)
elif verb == "stop":
    put("active", "inactive")
"""


NODE_START = re.compile(r"^(re)?start edge-\S+[.]service$")


@pytest.mark.slow
@pytest.mark.timeout(500)
def test_restarts_go_one_unit_at_a_time_and_only_for_what_changed(core_broker: Deployment, tmp_path: Path) -> None:
    d = core_broker
    host = d.host("trader-core")
    home = host / "home"
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "systemctl").write_text(f"#!{sys.executable}\n{FAKE_SYSTEMD}")
    (fake / "journalctl").write_text("#!/bin/sh\necho 'the journal'\n")
    for tool in ("systemctl", "journalctl"):
        (fake / tool).chmod(0o755)
    state = tmp_path / "systemd"
    state.mkdir()
    log = state / "log"
    env = {
        "PATH": f"{fake}:{os.environ['PATH']}",
        "FAKE_STATE": str(state),
        "FAKE_ETC": str(host / "etc"),
        "FAKE_UNITS": str(host / "systemd"),
        "FAKE_PORT": str(d.port),
    }
    ansible = Ansible(tmp_path)
    ansible.env.update(env)
    # one per process, in the inventory's order, the order they are restarted in
    processes = unit_processes(INVENTORIES[d.name], "trader-core")
    idents = [p.ident for group in processes.values() for p in group]
    units = [f"edge-{name}.service" for name in processes]
    assert len(units) >= 3 and set(units) == {f.name for f in (host / "systemd").glob("edge-*.service")}
    # the evaluators' group fails below: one of its two nodes never comes online
    group = units.index("edge-evaluators.service")
    assert group >= 1 and len(processes["evaluators"]) == 2

    def run(*extra: str) -> Run:
        log.write_text("")
        return ansible.start(
            PLAYBOOK, "-i", INVENTORIES[d.name], "site.yml", "--tags", "config",
            "-e", f"@{d.root / 'vars.json'}", "-e", "edge_systemd=true", "-e", "edge_nodes_online_timeout=4", *extra,
        ).wait()  # fmt: skip

    def restarted() -> list[str]:
        lines = log.read_text().splitlines()
        return [ln.split()[1] for ln in lines if NODE_START.match(ln)]

    def started() -> dict[str, Any]:
        out: dict[str, Any] = json.loads((home / "started.json").read_text())
        return out

    def online_order() -> list[str]:
        """Each (re)started unit, and whether the previous one was waited for (asked for its pid) first."""
        lines = log.read_text().splitlines()
        marks = [i for i, ln in enumerate(lines) if NODE_START.match(ln)]
        for before, after in itertools.pairwise(marks):
            unit = lines[before].split()[1]
            between = lines[before + 1 : after]
            assert f"show --property=MainPID --value {unit}" in between, f"{unit} was not waited for"
        return [lines[i].split()[1] for i in marks]

    pub = _publisher(d.port, "operator", d.password("operator"))
    try:
        # a first deployment: every unit started, one after the other, each online before the next
        run().check()
        assert online_order() == units
        assert set(started()) == set(units) and {v["release"] for v in started().values()} == {RELEASE}
        # nothing changed: nothing restarted, nothing reported changed
        (again,) = recap(run().check()).values()
        assert " changed=0 " in again and restarted() == [], again + log.read_text()

        # another release: every unit restarted, one at a time; one node of the evaluators' group
        # never comes online, so the deployment stops at that unit, saying why, and the ones after
        # it are left alone
        fake_release(home, "r0000000000b2", host_extras(inventory.load(INVENTORIES[d.name])[0]))
        link(home, "previous", RELEASE)
        link(home, "current", "r0000000000b2")
        broken = processes["evaluators"][1].ident
        (state / "broken").write_text(broken)
        failed = run()
        assert failed.proc.returncode != 0
        assert f"{units[group]}: not online after 4s: {broken}" in failed.out, failed.out[-4000:]
        assert restarted() == units[: group + 1]
        assert all(started()[u]["release"] == "r0000000000b2" for u in units[:group])
        assert all(started()[u]["release"] == RELEASE for u in units[group:])
        # mended: the next run restarts the unit that failed and those after it, not the ones before
        (state / "broken").write_text("")
        run().check()
        assert online_order() == units[group:]
        assert {v["release"] for v in started().values()} == {"r0000000000b2"}

        # a change to the env file of one node of a group restarts that group's unit, and only it
        env = dict(json.loads((d.root / "vars.json").read_text())["edge_node_env"])
        run("-e", json.dumps({"edge_node_env": {**env, "evaluator": {"EVALUATOR_PROCESSES": "1"}}})).check()
        assert restarted() == [units[group]]

        # the evaluators go back to a unit each: the group's unit is stopped, disabled and removed
        # before the first of theirs starts; then grouped again, the other way round
        singles = [f"edge-{p.ident}.service" for p in processes["evaluators"]]
        for extra, gone, new in (
            ('{"edge_process_groups": {}}', [units[group]], singles),
            ("{}", singles, [units[group]]),
        ):
            run("-e", extra).check()
            lines = log.read_text().splitlines()
            first_start = min(i for i, ln in enumerate(lines) if NODE_START.match(ln) and ln.split()[1] in new)
            for unit in gone:
                assert f"stop {unit}" in lines[:first_start] and f"disable {unit}" in lines[:first_start], unit
                assert not (host / "systemd" / unit).exists()
            assert all(f"start {unit}" in lines or f"restart {unit}" in lines for unit in new)
            on_board = {f.name for f in (host / "systemd").glob("edge-*.service")}
            assert on_board == set(started()) and set(new) <= on_board and not set(gone) & on_board

    finally:
        link(home, "current", RELEASE)
        (home / "previous").unlink(missing_ok=True)
        (home / "started.json").unlink(missing_ok=True)
        for ident in idents:
            pub.publish(f"trader/node/{ident}/status", b"", qos=1, retain=True)
        pub.disconnect()
        pub.loop_stop()


def edge_filters_module() -> Any:
    """deploy/ansible/filter_plugins/edge_filters.py, as Ansible loads it (on its own)."""
    sys.path.insert(0, str(ANSIBLE_DIR / "filter_plugins"))
    try:
        import edge_filters
    finally:
        sys.path.pop(0)
    return edge_filters


def test_what_a_unit_runs_is_its_release_unit_env_files_and_ca() -> None:
    edge_filters = edge_filters_module()
    unit = {"name": "evaluator_2", "nodes": ["evaluator"], "unit": "edge-evaluator_2.service"}
    units = {"edge-evaluator_2.service": "u1", "edge-trading.service": "u2", "edge-planner.service": "u3"}
    inputs = {"evaluator.env": "e1", "trading.env": "e2", "planning.env": "e3", "scheduler.env": "e4", "ca.crt": "c1"}
    line = edge_filters.edge_unit_inputs(unit, "r1", units, inputs, "c1")
    assert line == "release=r1 unit=u1 env=e1 ca=c1"
    # any of them changing changes the line (a restart); nothing else does
    assert edge_filters.edge_unit_inputs(unit, "r2", units, inputs, "c1") != line
    assert edge_filters.edge_unit_inputs(unit, "r1", {**units, "edge-evaluator_2.service": "u9"}, inputs, "c1") != line
    assert edge_filters.edge_unit_inputs(unit, "r1", units, {**inputs, "evaluator.env": "e9"}, "c1") != line
    assert edge_filters.edge_unit_inputs(unit, "r1", units, inputs, "c9") != line
    assert edge_filters.edge_unit_inputs(unit, "r1", {**units, "edge-trading.service": "u9"}, inputs, "c1") == line
    assert edge_filters.edge_unit_inputs(unit, "", {}, {}, "") == "release=- unit=- env=- ca=-"
    # a process group's: the env file of each of its nodes, any of them changing restarts it
    planner = {"name": "planner", "nodes": ["planning", "scheduler"], "unit": "edge-planner.service"}
    group = edge_filters.edge_unit_inputs(planner, "r1", units, inputs, "c1")
    assert group == "release=r1 unit=u3 env=e3,e4 ca=c1"
    assert edge_filters.edge_unit_inputs(planner, "r1", units, {**inputs, "scheduler.env": "e9"}, "c1") != group
    assert edge_filters.edge_unit_inputs(planner, "r1", units, {**inputs, "trading.env": "e9"}, "c1") == group
    assert edge_filters.edge_unit_inputs(planner, "r1", units, {}, "c1") == "release=r1 unit=u3 env=-,- ca=c1"


def test_units_are_the_processes_of_edge_inventory(tmp_path: Path) -> None:
    """edge_units plans the processes edge.inventory (and so `edge up`) runs, of built nodes only."""
    edge_filters = edge_filters_module()
    every = tmp_path / "every"
    for name in ("single-board", "dual-board"):
        for host in inventory.load(INVENTORIES[name]):
            for node in host.vars.get("edge_nodes", []):
                (every / "nodes" / node).mkdir(parents=True, exist_ok=True)
                (every / "nodes" / node / "node.py").write_text("")
    for name, path in INVENTORIES.items():
        for host in inventory.load(path):
            v = host.vars
            units = edge_filters.edge_units(
                v.get("edge_nodes"), v.get("edge_instances"), v.get("edge_process_groups"), str(every), MEMORY_MAX
            )
            processes = inventory.processes(host.placements())
            assert [(u["name"], u["idents"]) for u in units] == [
                (process, [p.ident for p in group]) for process, group in processes.items()
            ], (name, host.name)
            for u in units:
                assert u["unit"] == f"edge-{u['name']}.service"
                assert u["nodes"] == list(dict.fromkeys(p.node for p in processes[u["name"]]))
                assert u["memory_max"] == memory_max(u["name"], processes[u["name"]])
                assert u["instance"] == (processes[u["name"]][0].instance if len(u["idents"]) == 1 else None)
    # only built nodes: a group's unbuilt members are left out, a group with none built goes
    some = tmp_path / "some"
    for node in ("planning", "universe", "evaluator"):
        (some / "nodes" / node).mkdir(parents=True)
        (some / "nodes" / node / "node.py").write_text("")
    units = edge_filters.edge_units(
        ["universe", "generator", "planning", "scheduler", "coordinator", "evaluator"],
        {"evaluator": [4, 5, 6]},
        {
            "planner": ["generator", "planning", "scheduler"],
            "pool": ["evaluator_5", "evaluator_6"],
            "idle": ["coordinator", "evaluator_4"],
        },
        str(some),
        {"evaluator": "200M", "pool": "300M"},
    )
    assert [(u["unit"], u["idents"], u["memory_max"], u["instance"]) for u in units] == [
        ("edge-universe.service", ["universe"], "128M", None),
        ("edge-planner.service", ["planning"], "128M", None),
        ("edge-idle.service", ["evaluator_4"], "128M", 4),  # coordinator is not built
        ("edge-pool.service", ["evaluator_5", "evaluator_6"], "300M", None),
    ]
    alone = edge_filters.edge_units(["evaluator"], {"evaluator": [7]}, {}, str(some), {"evaluator": "200M"})
    assert [(u["unit"], u["memory_max"], u["instance"]) for u in alone] == [("edge-evaluator_7.service", "200M", 7)]
    assert (
        edge_filters.edge_units(["generator", "scheduler"], None, {"planner": ["generator", "scheduler"]}, str(some))
        == []
    )


@pytest.mark.parametrize(
    ("groups", "says"),
    [
        ({"universe": ["planning", "trading"]}, "edge_process_groups.universe: a group needs a name of its own"),
        ({"evaluator_1": ["planning", "trading"]}, "edge_process_groups.evaluator_1: a group needs a name of its own"),
        ({"Big": ["planning", "trading"]}, "edge_process_groups.Big: a group needs a name of its own"),
        ({"one": ["planning"]}, "edge_process_groups.one: list two or more of the nodes placed here"),
        ({"one": "planning"}, "edge_process_groups.one: list two or more of the nodes placed here"),
        ({"far": ["planning", "optimization"]}, "edge_process_groups.far: optimization is not placed on this host"),
        ({"pool": ["evaluator", "planning"]}, "edge_process_groups.pool: evaluator is not placed on this host"),
        (
            {"a": ["planning", "trading"], "b": ["trading", "universe"]},
            "edge_process_groups.b: trading is in a already",
        ),
        ({"web": ["planning", "dashboard"]}, "edge_process_groups.web: dashboard runs a main of its own"),
    ],
)
def test_bad_process_groups_are_refused_as_edge_inventory_refuses_them(groups: dict[str, Any], says: str) -> None:
    edge_filters = edge_filters_module()
    nodes, instances = ["universe", "planning", "trading", "evaluator", "dashboard"], {"evaluator": [1, 2]}
    with pytest.raises(ValueError, match=re.escape(f"h: {says}")) as ours:
        edge_filters.edge_units(nodes, instances, groups, str(REPO_ROOT), host="h")
    host = inventory.Host(
        "h", ("core",), {"edge_nodes": nodes, "edge_instances": instances, "edge_process_groups": groups}
    )
    with pytest.raises(ValueError) as theirs:
        host.placements()
    assert str(ours.value) == str(theirs.value), "the same words as edge up"


def test_the_dashboard_is_in_no_process_group() -> None:
    """`python -m edge.run` hosts a node with a main of its own (the dashboard's web app) alone:
    the play says so rather than start a unit that cannot come online."""
    edge_filters = edge_filters_module()
    with pytest.raises(ValueError, match=r"h: edge_process_groups.web: dashboard runs a main of its own"):
        edge_filters.edge_units(
            ["universe", "dashboard"], {}, {"web": ["universe", "dashboard"]}, str(REPO_ROOT), host="h"
        )


def test_nodes_of_one_process_may_not_disagree_on_a_setting() -> None:
    edge_filters = edge_filters_module()
    units = [
        {"unit": "edge-planner.service", "nodes": ["planning", "scheduler"]},
        {"unit": "edge-trading.service", "nodes": ["trading"]},
    ]
    env = {
        "planning": {"EDGE_LOG": "DEBUG", "PLANNING_X": "1"},
        "scheduler": {"EDGE_LOG": "DEBUG"},
        "trading": {"EDGE_LOG": "INFO"},
    }
    assert edge_filters.edge_env_clashes(units, env) == []
    env["scheduler"]["EDGE_LOG"] = "WARNING"
    assert edge_filters.edge_env_clashes(units, env) == ["edge-planner.service: EDGE_LOG (planning, scheduler)"]


@pytest.mark.deploy  # three playbook runs (40 s): beside the real boards in make deploy-test
def test_a_board_that_groups_its_nodes_loses_their_units_and_keeps_their_credentials(world: World) -> None:
    """From a unit per node to a process group (edge_process_groups set in a later run): the
    per-node units go, the group's unit loads the env file of each of its nodes, and the env
    files of nodes no longer placed go. Bad groups, and nodes of one process that disagree on a
    setting, stop the play and say why."""
    path = INVENTORIES["single-board"]
    d = Deployment("regroup", world.base / "regroup", _free_port(), _free_port())
    prepare_hosts(d, path)
    d.extra_vars = _extra_vars(d, world.base / "src")
    (d.root / "vars.json").write_text(json.dumps(d.extra_vars))
    host = d.host("trader-core")

    def start(placement: dict[str, Any], *extra: str) -> Run:
        return world.ansible.start(
            PLAYBOOK, "-i", path, "site.yml", "--tags", "config", "-e", f"@{d.root / 'vars.json'}",
            "-e", json.dumps(placement), *extra,
        )  # fmt: skip

    def units() -> dict[str, dict[str, list[str]]]:
        return {f.name: parse_unit(f.read_text()) for f in (host / "systemd").glob("edge-*.service")}

    def env_files() -> set[str]:
        return {f.name for f in (host / "etc" / "nodes").glob("*.env")}

    # a unit per node, as before process groups
    start({"edge_process_groups": {}}).wait().check()
    assert set(units()) == {f"edge-{i}.service" for i in ("universe", "trading", "evaluator_1", "evaluator_2")}
    assert env_files() == {"universe.env", "trading.env", "evaluator.env"}

    # grouped: universe and trading share a process; the evaluator is placed here no more
    grouped = {
        "edge_nodes": ["universe", "planning", "trading"],
        "edge_process_groups": {"mixed": ["universe", "trading"]},
    }
    start(grouped).wait().check()
    assert set(units()) == {"edge-mixed.service"}, "the per-node units are gone"
    unit = units()["edge-mixed.service"]
    assert unit["X-EdgeNodes"] == ["universe trading"]
    assert unit["ExecStart"] == [f"{host}/home/current/venv/bin/python -m edge.run universe trading"]
    assert unit["EnvironmentFile"] == [f"{host}/etc/nodes/universe.env", f"{host}/etc/nodes/trading.env"]
    assert unit["MemoryMax"] == ["128M"] and unit["SyslogIdentifier"] == ["edge-mixed"]
    assert env_files() == {"universe.env", "trading.env"}, "the evaluator's credentials went with it"
    # the files of one unit do not clash: each node's user and password under its own names
    merged: dict[str, str] = {}
    for envfile in unit["EnvironmentFile"]:
        merged |= env_file(envfile)
    assert merged == {**node_creds(d, "universe"), **node_creds(d, "trading")}
    assert not any(k in merged for k in ("MQTT_USER", "MQTT_PASS"))

    # refused, before anything is written on the board: a bad group, and settings that clash
    at = ("--start-at-task", "Nodes | plan the units of this board")
    bad = start({"edge_process_groups": {"mixed": ["universe", "nowhere"]}}, *at)
    clash = start(
        {**grouped, "edge_node_env": {"universe": {"EDGE_LOG": "DEBUG"}, "trading": {"EDGE_LOG": "INFO"}}}, *at
    )
    for run in (bad, clash):
        run.wait()
        assert run.proc.returncode != 0, run.out[-3000:]
    assert "trader-core: edge_process_groups.mixed: nowhere is not placed on this host" in bad.out, bad.out[-3000:]
    assert "edge-mixed.service: EDGE_LOG (universe, trading)" in clash.out, clash.out[-3000:]
    assert set(units()) == {"edge-mixed.service"}
