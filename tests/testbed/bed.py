"""Two boards and a controller on one machine, for `make deploy-test`: the LAN, the
registries' proxy, the boards booted from the cached base, an SSH key and an inventory made
from `deploy/ansible/inventory/dual-board.yml` with the boards' addresses. `Testbed` is a
context manager: everything it made goes away on exit, also after a failure, and a crashed
run's leftovers are swept away on entry.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from . import base, lan
from .board import Board

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = REPO / "deploy/ansible"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
# The dual-board inventory's host names, their place on the LAN and their names on it.
BOARDS = {"trader-core": ("core", 0), "trader-exec": ("exec", 1)}
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


class Testbed:
    __test__ = False  # a fixture's class, not a test class (pytest collects names starting with Test)

    def __init__(self, work: Path = REPO / ".run/testbed", cache: Path = REPO / ".run/cache") -> None:
        self.work = work
        self.cache = cache
        self.key = work / "id_ed25519"
        self.inventory = work / "inventory.yml"
        self.credentials = work / "credentials"
        self.proxy_socket = work / "proxy.sock"
        self.proxy: subprocess.Popen[bytes] | None = None
        self.boards = {
            name: Board(name, lan.Port(short, number), work / short / "root", work / f"{short}.log")
            for name, (short, number) in BOARDS.items()
        }
        self.timings: dict[str, float] = {}

    @property
    def core(self) -> Board:
        return self.boards["trader-core"]

    @property
    def execution(self) -> Board:
        return self.boards["trader-exec"]

    # -- up and down ----------------------------------------------------------------------------

    def __enter__(self) -> Testbed:
        self.sweep()
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.down()

    def timed(self, name: str, started: float) -> None:
        self.timings[name] = round(time.monotonic() - started, 1)

    def up(self) -> None:
        started = time.monotonic()
        tarball = base.tarball(self.cache)
        self.timed("base", started)
        self.work.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)], check=True)
        lan.create([b.port for b in self.boards.values()])
        log = (self.work / "proxy.log").open("ab")
        self.proxy = subprocess.Popen(
            [sys.executable, "-m", "tests.testbed.proxy", "serve", "--unix", str(self.proxy_socket),
             "--log", str(self.work / "proxy-requests.log")],
            cwd=REPO, stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
        names = {f"{name}.local": board.port.address for name, board in self.boards.items()}
        started = time.monotonic()
        for board in self.boards.values():
            board.unpack(tarball, self.key.with_suffix(".pub").read_text(), names, HOST_CA)
        self.timed("unpack", started)
        started = time.monotonic()
        for board in self.boards.values():
            board.boot(self.proxy_socket)
        self.timed("boot", started)
        self.write_inventory()

    def down(self) -> None:
        for board in self.boards.values():
            try:
                board.destroy()
            except Exception as exc:  # go on: every part must go
                print(f"testbed: {board.name}: {exc}", file=sys.stderr)
        if self.proxy is not None and self.proxy.poll() is None:
            os.killpg(self.proxy.pid, signal.SIGKILL)
            self.proxy.wait(10)
        lan.destroy()

    def sweep(self) -> None:
        """A crashed run's leftovers: its nspawn and bridge processes, namespaces and roots."""
        subprocess.run(["pkill", "-9", "-f", f"systemd-nspawn .*-D {self.work}/"], check=False)
        subprocess.run(["pkill", "-9", "-f", "tests.testbed.proxy"], check=False)
        lan.destroy()
        if self.work.exists():
            shutil.rmtree(self.work)

    # -- the controller's side ------------------------------------------------------------------

    def write_inventory(self) -> None:
        inventory: dict[str, Any] = yaml.safe_load((ANSIBLE / "inventory/dual-board.yml").read_text())
        top = inventory["all"]
        top["vars"].update(
            edge_broker_host="trader-core.local",
            edge_credentials_dir=str(self.credentials),
            ansible_user=base.USER,
            ansible_ssh_private_key_file=str(self.key),
            ansible_ssh_common_args="-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
        )
        for group in top["children"].values():
            for name, host in group["hosts"].items():
                host["ansible_host"] = self.boards[name].port.address
                host.pop("ansible_user", None)
        self.inventory.write_text(yaml.safe_dump(inventory, sort_keys=False))

    def playbook(self, *args: str, src: Path = REPO, timeout: float = 900) -> Playbook:
        """`site.yml` of the checkout `src`, run from the controller's namespace."""
        env = dict(os.environ, ANSIBLE_CONFIG=str(src / "deploy/ansible/ansible.cfg"), ANSIBLE_FORCE_COLOR="0",
                   ANSIBLE_NOCOLOR="1", ANSIBLE_HOST_KEY_CHECKING="False")  # fmt: skip
        argv = [str(REPO / ".venv/bin/ansible-playbook"), "-i", str(self.inventory), "site.yml", *args]
        started = time.monotonic()
        done = subprocess.run(
            lan.in_namespace(lan.CONTROLLER_NS, argv), cwd=src / "deploy/ansible", env=env,
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        return Playbook(done.returncode, done.stdout + done.stderr, time.monotonic() - started)

    def sh_local(self, argv: Sequence[str]) -> str:
        """A command on the controller, outside the LAN (git, say)."""
        return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


class Playbook:
    def __init__(self, rc: int, output: str, seconds: float) -> None:
        self.rc = rc
        self.output = output
        self.seconds = seconds
        self.recap = {m[1]: {"ok": int(m[2]), "changed": int(m[3]), "unreachable": int(m[4]), "failed": int(m[5])}
                      for m in RECAP.finditer(output)}  # fmt: skip

    def changed_tasks(self) -> list[str]:
        """The tasks that reported `changed`, with their host (to say what a second run changed)."""
        out, task = [], ""
        for line in self.output.splitlines():
            if line.startswith("TASK ["):
                task = line[6:].split("]")[0]
            elif line.startswith("changed:"):
                out.append(f"{task}: {line}")
        return out

    def recap_text(self) -> str:
        return "\n".join(line for line in self.output.splitlines() if RECAP.match(line))
