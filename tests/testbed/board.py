"""One test board: a Debian root booted with real systemd by `systemd-nspawn -b` inside its
own network namespace.

nspawn runs with `--register=no --keep-unit` (systemd is not PID 1 on the host, so there is no
machined to register with) and with a unified cgroup hierarchy (systemd 257 wants cgroup v2).
The test reaches into a board with `nsenter` on its PID 1 (`run`); Ansible reaches it over SSH
as a real controller does. What a board cannot show here: the host's cgroup v1 leaves the
container no memory controller, so `MemoryMax` is set and read, never enforced.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import base
from .lan import Port

PROXY_PORT = 3128
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # a board's, never the host's environment


CGROUP_MOUNTS = (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup/systemd"))


def own_cgroups(name: str) -> list[Path]:
    """A cgroup of the board's own in each systemd hierarchy of the host. With `--keep-unit`
    nspawn makes its own cgroup the container's root: two boards started from one cgroup would
    share one tree, and one board's `ssh.service` or `systemd-journald.service` would be the
    other's (stopping one board killed the other's sshd)."""
    out = []
    for mount in CGROUP_MOUNTS:
        if (mount / "cgroup.procs").exists():
            group = mount / name
            group.mkdir(exist_ok=True)
            out.append(group)
    return out


def enter(cgroups: list[Path]) -> None:
    for group in cgroups:
        (group / "cgroup.procs").write_text(str(os.getpid()))


def release_cgroups(name: str) -> None:
    """The board's cgroups, once it is off (only empty ones can go; children first)."""
    for mount in CGROUP_MOUNTS:
        group = mount / name
        if group.exists():
            for sub in sorted((p for p in group.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                with contextlib.suppress(OSError):
                    sub.rmdir()
            with contextlib.suppress(OSError):
                group.rmdir()


@dataclass
class Board:
    name: str  # the inventory's host name and the board's hostname
    port: Port
    root: Path
    log: Path
    nspawn: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    bridge: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    # -- its disk -------------------------------------------------------------------------------

    def unpack(self, tarball: Path, authorized_key: str, hosts: dict[str, str], ca_bundle: Path) -> None:
        """A freshly flashed board: the base, its own SSH host keys, the LAN's names, and the
        way to the registries (this testbed's proxy; a real board has the internet)."""
        base.unpack(tarball, self.root)
        (self.root / "etc/hostname").write_text(self.name + "\n")
        with (self.root / "etc/hosts").open("a") as f:
            f.write(f"127.0.1.1 {self.name}\n")  # as Debian's installer writes it (sudo looks it up)
            f.writelines(f"{address} {name}\n" for name, address in hosts.items())
        # the LAN's gateway answers no DNS: a lookup fails at once instead of timing out
        (self.root / "etc/resolv.conf").write_text(f"nameserver {self.port.gateway}\n")
        ssh = self.root / f"home/{base.USER}/.ssh"
        ssh.mkdir(mode=0o700)
        (ssh / "authorized_keys").write_text(authorized_key)
        subprocess.run(
            ["chroot", str(self.root), "sh", "-c", f"chown -R {base.USER}: /home/{base.USER}/.ssh && ssh-keygen -A"],
            check=True,
            capture_output=True,
        )
        proxy = f"http://127.0.0.1:{PROXY_PORT}"
        (self.root / "etc/apt/apt.conf.d/80testbed-proxy").write_text(f'Acquire::http::Proxy "{proxy}";\n')
        # The registries are reached through the host's TLS-inspecting gateway: trust its CAs.
        (self.root / "etc/ssl/certs/testbed-host-ca.pem").write_bytes(ca_bundle.read_bytes())
        (self.root / "etc/pip.conf").write_text(
            f"[global]\nproxy = {proxy}\ncert = /etc/ssl/certs/testbed-host-ca.pem\n"
        )
        self.install_sampler()

    def install_sampler(self) -> None:
        """The test's memory sampler (`sampler.py`), started at every boot."""
        lib = self.root / "usr/local/lib/testbed"
        lib.mkdir(parents=True, exist_ok=True)
        (lib / "sampler.py").write_text((Path(__file__).parent / "sampler.py").read_text())
        units = self.root / "etc/systemd/system"
        (units / "testbed-sampler.service").write_text(
            "[Unit]\nDescription=testbed: the edge units' memory, sampled\n\n"
            "[Service]\nExecStart=/usr/bin/python3 /usr/local/lib/testbed/sampler.py\nRestart=always\n\n"
            "[Install]\nWantedBy=multi-user.target\n"
        )
        wants = units / "multi-user.target.wants"
        wants.mkdir(exist_ok=True)
        (wants / "testbed-sampler.service").symlink_to("/etc/systemd/system/testbed-sampler.service")

    # -- power ----------------------------------------------------------------------------------

    def boot(self, proxy_socket: Path) -> None:
        env = dict(os.environ, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY="1")
        cgroups = own_cgroups(self.port.ns)
        with self.log.open("ab") as out:
            self.nspawn = subprocess.Popen(
                [
                    "systemd-nspawn", "-b", "-q", "-D", str(self.root), f"--machine={self.name}",
                    f"--network-namespace-path=/run/netns/{self.port.ns}", "--register=no", "--keep-unit",
                ],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env, start_new_session=True,
                preexec_fn=lambda: enter(cgroups),
            )  # fmt: skip
        if self.bridge is None or self.bridge.poll() is not None:
            self.bridge = subprocess.Popen(
                ["ip", "netns", "exec", self.port.ns, "python3", "-m", "tests.testbed.proxy", "bridge",
                 "--unix", str(proxy_socket), "--port", str(PROXY_PORT)],
                cwd=Path(__file__).parents[2], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        self.wait_running()

    def init_pid(self) -> int:
        assert self.nspawn is not None, f"{self.name} is not booted"
        out = subprocess.run(["pgrep", "-P", str(self.nspawn.pid)], capture_output=True, text=True).stdout.split()
        if not out:
            raise RuntimeError(f"{self.name}: no init process under nspawn {self.nspawn.pid}")
        return int(out[0])

    def wait_running(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            if self.nspawn is not None and self.nspawn.poll() is not None:
                raise RuntimeError(f"{self.name}: nspawn exited ({self.nspawn.returncode}); see {self.log}")
            try:
                state = self.run(["systemctl", "is-system-running"], check=False).stdout.strip()
            except RuntimeError:
                state = "no init yet"
            if state in ("running", "degraded"):
                return
            time.sleep(0.5)
        raise TimeoutError(f"{self.name} did not boot in {timeout:.0f} s (systemd says {state!r}); see {self.log}")

    def shutdown(self, timeout: float = 60) -> None:
        """An orderly power-off (SIGTERM to nspawn: the container's systemd stops everything)."""
        if self.nspawn is None or self.nspawn.poll() is not None:
            return
        self.nspawn.send_signal(signal.SIGTERM)
        try:
            self.nspawn.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.nspawn.pid, signal.SIGKILL)
            self.nspawn.wait(10)

    def destroy(self) -> None:
        self.shutdown(timeout=30)
        if self.bridge is not None and self.bridge.poll() is None:
            os.killpg(self.bridge.pid, signal.SIGKILL)
            self.bridge.wait(10)
        release_cgroups(self.port.ns)

    # -- inside ---------------------------------------------------------------------------------

    def run(self, argv: Sequence[str], check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """A command on the board, as root, in all of its namespaces."""
        prefix = [
            "nsenter",
            "-t",
            str(self.init_pid()),
            "-a",
            "env",
            "-i",
            f"PATH={PATH}",
            "LANG=C.UTF-8",
            "HOME=/root",
        ]
        done = subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"{self.name}: {' '.join(argv)} -> {done.returncode}\n{done.stdout}\n{done.stderr}")
        return done

    def sh(self, script: str, check: bool = True, timeout: float = 120) -> str:
        return self.run(["sh", "-c", script], check=check, timeout=timeout).stdout
