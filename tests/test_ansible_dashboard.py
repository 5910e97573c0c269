"""The dashboard under Ansible: a systemd unit like every node's, on the board whose
inventory places it, listening on that board's LAN address behind its login, with a
password made and kept on the controller and given in its 0600 env file; the board that
runs it installs the project's `dashboard` extra (in its release's venv).

`deploy/ansible/site.yml --tags config` runs for real against both inventories, as in
`tests/test_deploy.py` (whose helpers it uses), on a stand-in checkout where the dashboard
is built (`dashboard/node.py`).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from edge import inventory
from edge.settings import REPO_ROOT
from tests.test_deploy import (
    ANSIBLE_DIR,
    INVENTORIES,
    PLAYBOOK,
    Ansible,
    Deployment,
    _extra_vars,
    _free_port,
    parse_unit,
    prepare_hosts,
    unit_env,
)

BUILT = ("universe", "trading")
DASHBOARD_HOST_DUAL = "192.0.2.77"  # dual-board says where; single-board takes the default route's address


@dataclass
class Rendered:
    deployments: dict[str, Deployment]


@pytest.fixture(scope="module")
def rendered() -> Iterator[Rendered]:
    base = Path(tempfile.mkdtemp(prefix="edge-deploy-dashboard-"))
    base.chmod(0o755)
    src = base / "src"
    for node in BUILT:
        (src / "nodes" / node).mkdir(parents=True)
        (src / "nodes" / node / "node.py").write_text("")
    (src / "dashboard").mkdir()
    (src / "dashboard" / "node.py").write_text("")  # a node with a package of its own
    (src / "mosquitto").symlink_to(REPO_ROOT / "mosquitto")
    ansible = Ansible(base)
    deployments = {}
    for name, path in INVENTORIES.items():
        d = Deployment(name, base / name, _free_port(), _free_port())
        prepare_hosts(d, path)
        d.extra_vars = _extra_vars(d, src)
        if name == "dual-board":
            d.extra_vars["edge_dashboard_host"] = DASHBOARD_HOST_DUAL
        (d.root / "vars.json").write_text(json.dumps(d.extra_vars))
        d.render = ansible.start(PLAYBOOK, "-i", path, "site.yml", "--tags", "config", "-e", f"@{d.root / 'vars.json'}")
        deployments[name] = d
    for d in deployments.values():
        assert d.render is not None
        d.render.wait()
    try:
        yield Rendered(deployments)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _default_route_address() -> str:
    """The address this machine's default route leaves from (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))
        return str(s.getsockname()[0])


def _env_file(path: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in Path(path).read_text().splitlines() if line and not line.startswith("#"))


@pytest.mark.parametrize("name", list(INVENTORIES))
def test_the_dashboard_is_a_unit_on_the_board_that_runs_it(rendered: Rendered, name: str) -> None:
    d = rendered.deployments[name]
    assert d.render is not None
    d.render.check()
    password_file = d.credentials / "dashboard" / "password"
    password = password_file.read_text().strip()
    assert len(password) == 24 and password.isalnum()
    assert stat.S_IMODE(password_file.stat().st_mode) & 0o077 == 0
    for host in inventory.load(INVENTORIES[name]):
        units = d.host(host.name) / "systemd"
        unit_path = units / "edge-dashboard.service"
        if "dashboard" not in host.vars["edge_nodes"]:
            assert not unit_path.exists(), f"{host.name} does not run the dashboard"
            assert not (d.host(host.name) / "etc" / "nodes" / "dashboard.env").exists()
            continue
        text = unit_path.read_text()
        unit = parse_unit(text)
        env = unit_env(unit)
        assert unit["ExecStart"] == [f"{d.host(host.name)}/home/current/venv/bin/python -m edge.run dashboard"]
        assert unit["Restart"] == ["on-failure"] and unit["WantedBy"] == ["edge-trader.target"]
        assert unit["User"] == ["edge"] and unit["ReadWritePaths"] == [env["EDGE_STATE_DIR"]]
        expected_host = DASHBOARD_HOST_DUAL if name == "dual-board" else _default_route_address()
        assert env["DASHBOARD_HOST"] == expected_host and env["DASHBOARD_PORT"] == "8080"
        assert env["MQTT_HOST"] == "127.0.0.1"  # the broker's own board
        assert password not in text, "the unit is world-readable: the password goes in the env file"
        (envfile,) = unit["EnvironmentFile"]
        assert stat.S_IMODE(Path(envfile).stat().st_mode) == 0o600
        assert _env_file(envfile) == {
            "MQTT_USER_DASHBOARD": "dashboard",
            "MQTT_PASS_DASHBOARD": d.password("dashboard"),
            "DASHBOARD_PASSWORD": password,
        }
        assert password != d.password("dashboard")
        # no other node gets the dashboard's settings
        for other in units.glob("edge-*.service"):
            if other.name != "edge-dashboard.service":
                assert "DASHBOARD_" not in other.read_text()
                for envfile in parse_unit(other.read_text())["EnvironmentFile"]:
                    assert "DASHBOARD_" not in Path(envfile).read_text()
    if shutil.which("systemd-analyze"):
        unit_file = d.host("trader-core") / "systemd" / "edge-dashboard.service"
        res = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", str(unit_file)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"},
        )
        assert res.returncode == 0 and not res.stdout.strip() and not res.stderr.strip(), res.stdout + res.stderr


def test_the_board_that_runs_the_dashboard_installs_its_extra() -> None:
    sys.path.insert(0, str(ANSIBLE_DIR / "filter_plugins"))
    try:
        import edge_filters
    finally:
        sys.path.pop(0)
    assert edge_filters.edge_extras([], ["universe", "dashboard"]) == ["dashboard"]
    assert edge_filters.edge_extras(["dashboard"], ["dashboard"]) == ["dashboard"]
    assert edge_filters.edge_extras([], ["optimization", "trading"]) == []
    assert edge_filters.is_built("dashboard", str(REPO_ROOT)) and not edge_filters.is_built("edge", str(REPO_ROOT))
    for name in ("single-board", "dual-board"):
        for host in inventory.load(INVENTORIES[name]):
            needs = edge_filters.edge_extras([], host.vars["edge_nodes"])
            assert needs == (["dashboard"] if "dashboard" in host.vars["edge_nodes"] else [])
    # a release records the extras it was installed with; the pip task installs exactly those
    # the board needs, and again, into the same release, when they change
    tasks = yaml.safe_load((ANSIBLE_DIR / "roles" / "edge_release" / "tasks" / "deploy.yml").read_text())
    wanted = next(t for t in tasks if t["name"] == "Release | what this board needs of it")
    assert wanted["ansible.builtin.set_fact"]["_edge_release_wanted"]["extras"] == (
        "{{ edge_release_pip_extras | edge_extras(edge_nodes) }}"
    )
    state = next(t for t in tasks if t["name"] == "Release | built here already?")
    assert "_edge_release_wanted.extras" in state["ansible.builtin.set_fact"]["_edge_release_state"]
    pip = next(t for t in tasks if t["name"] == "Release | pip install the project with the extras this board needs")
    assert pip["vars"]["_extras"] == "{{ _edge_release_wanted.extras }}"
    assert "_extras" in pip["ansible.builtin.command"]["argv"] and "'extras'" in pip["when"]
    record = next(t for t in tasks if t["name"] == "Release | complete (its record, written last)")
    assert "_edge_release_wanted" in record["ansible.builtin.copy"]["content"]
    extra = (REPO_ROOT / "pyproject.toml").read_text()
    assert "dashboard = [" in extra  # the extra the role installs exists
