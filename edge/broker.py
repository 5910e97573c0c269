"""A local Mosquitto for development and tests, from the project's own configuration.

It renders `mosquitto/dev.conf`, generates a password per user with `mosquitto_passwd`
and the ACL from the catalog, starts `mosquitto` on a free port and writes
`broker.json` (mode 0600) so that the CLI finds it without flags.

Mosquitto started as root drops to the `mosquitto` user: its data and log folders
are then handed to that user, and if it cannot reach them (a checkout under a
private home, say) the broker's writable folders move to a fresh folder under /tmp.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from schemas.catalog import CATALOG
from schemas.topics import Catalog, Topics

from .acl import render_acl, users
from .settings import BROKER_FILE, REPO_ROOT, BrokerSettings, LocalBroker

CONF_DIR = REPO_ROOT / "mosquitto"
MOSQUITTO_USER = "mosquitto"


class BrokerError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether `port` can be listened on now (a restarted `make up` takes its port again)."""
    if not 0 < port < 65536:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as mosquitto binds: TIME_WAIT is no obstacle
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def mosquitto_binary() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise BrokerError("mosquitto is not installed: apt-get install mosquitto mosquitto-clients")


def new_password() -> str:
    """A random password that no command line takes for an option (never a leading `-`)."""
    while (password := secrets.token_urlsafe(18)).startswith("-"):
        pass
    return password


def hash_passwords(path: Path, passwords: dict[str, str]) -> None:
    """Write `user:password` lines and hash them in place with `mosquitto_passwd -U`."""
    path.write_text("".join(f"{u}:{p}\n" for u, p in sorted(passwords.items())))
    path.chmod(0o600)
    tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    subprocess.run([tool, "-U", str(path)], check=True, capture_output=True)


@dataclass
class TlsFiles:
    cafile: Path
    certfile: Path
    keyfile: Path


@dataclass
class DevBroker:
    """One `mosquitto` process with the dev configuration, its files under `run_dir`."""

    run_dir: Path
    catalog: Catalog = CATALOG
    root: str = "trader"
    host: str = "127.0.0.1"
    port: int = 0
    tls: TlsFiles | None = None
    tls_port: int = 0
    extra_users: tuple[str, ...] = ()
    passwords: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    data_dir: Path | None = None

    @property
    def topics(self) -> Topics:
        return Topics(self.root)

    @property
    def log_file(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir / "mosquitto.log"

    def settings(self, user: str = "operator") -> BrokerSettings:
        return BrokerSettings(host=self.host, port=self.port, user=user, password=self.passwords[user], root=self.root)

    def tls_settings(self, user: str = "operator") -> BrokerSettings:
        assert self.tls is not None
        return BrokerSettings(
            host="localhost",
            port=self.tls_port,
            user=user,
            password=self.passwords[user],
            root=self.root,
            cafile=str(self.tls.cafile),
        )

    # -- files ------------------------------------------------------------------------------
    def prepare(self) -> Path:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port(self.host)
        if self.tls:
            self.tls_port = self.tls_port or free_port(self.host)
        everyone = users(self.catalog) + list(self.extra_users)
        for user in everyone:
            self.passwords.setdefault(user, new_password())
        self.data_dir = self._broker_dir()
        password_file = self.data_dir / "passwd"
        hash_passwords(password_file, {u: self.passwords[u] for u in everyone})
        acl_file = self.data_dir / "acl"
        acl_file.write_text(render_acl(self.catalog, self.topics, extra_users=self.extra_users))
        tls_listener = ""
        if self.tls:
            # copied beside the other broker files, where the broker's own user can read them
            ca, cert, key = (
                shutil.copy(f, self.data_dir / f"tls-{f.name}")
                for f in (self.tls.cafile, self.tls.certfile, self.tls.keyfile)
            )
            tls_listener = Template((CONF_DIR / "tls-listener.conf").read_text()).substitute(
                tls_port=self.tls_port, tls_host=self.host, cafile=ca, certfile=cert, keyfile=key
            )
            if os.geteuid() == 0:
                for f in (ca, cert, key):
                    _give_to_broker(Path(f))
        conf = Template((CONF_DIR / "dev.conf").read_text()).substitute(
            password_file=password_file,
            acl_file=acl_file,
            data_dir=self.data_dir,
            log_file=self.log_file,
            port=self.port,
            host=self.host,
            tls_listener=tls_listener,
        )
        conf_file = self.data_dir / "mosquitto.conf"
        conf_file.write_text(conf)
        if os.geteuid() == 0:
            # mosquitto reads these after dropping to its own user
            for f in (password_file, acl_file, conf_file):
                _give_to_broker(f)
        return conf_file

    def _broker_dir(self) -> Path:
        """The folder of the broker's files; the broker's own user must be able to write it."""
        if self.data_dir is not None:
            return self.data_dir
        folder = self.run_dir / "broker"
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            return folder
        _give_to_broker(folder)
        if _broker_can_write(folder):
            return folder
        # A checkout under a private folder: the same outside folder for the same run
        # folder, so that a restarted broker finds its persisted sessions and messages.
        digest = hashlib.sha256(str(self.run_dir.resolve()).encode()).hexdigest()[:16]
        outside = Path(tempfile.gettempdir()) / f"edge-mosquitto-{digest}"
        outside.mkdir(mode=0o750, exist_ok=True)
        st = outside.lstat()
        ids = _broker_uid()
        if outside.is_symlink() or st.st_uid not in (0, ids[0] if ids else 0):
            raise BrokerError(f"{outside} exists and is not ours: remove it")
        _give_to_broker(outside)
        return outside

    # -- process ---------------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> DevBroker:
        conf = self.prepare()
        self.proc = subprocess.Popen(
            [mosquitto_binary(), "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise BrokerError(f"mosquitto exited ({self.proc.returncode}): {err}{self._log_tail()}")
            if _listening(self.host, self.port) and (not self.tls or _listening(self.host, self.tls_port)):
                return self
            time.sleep(0.02)
        self.stop()
        raise BrokerError(f"mosquitto did not listen on {self.host}:{self.port} within {timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def restart(self) -> None:
        """Stop and start on the same port with the same users (persistence kept)."""
        self.stop()
        self.start()

    def write_discovery(self) -> Path:
        assert self.proc is not None
        info = LocalBroker(
            host=self.host,
            port=self.port,
            tls_port=self.tls_port or None,
            cafile=str(self.tls.cafile) if self.tls else None,
            pid=self.proc.pid,
            root=self.root,
            passwords=dict(self.passwords),
            owner=os.getpid(),
        )
        path = self.run_dir / BROKER_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(info.__dict__, f, indent=2)
        return path

    def _log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(Exception):
            return "\n" + "\n".join(self.log_file.read_text().splitlines()[-lines:])
        return ""

    def __enter__(self) -> DevBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _listening(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


def _broker_uid() -> tuple[int, int] | None:
    try:
        pw = pwd.getpwnam(MOSQUITTO_USER)
    except KeyError:
        return None
    return pw.pw_uid, pw.pw_gid


def _give_to_broker(path: Path) -> None:
    ids = _broker_uid()
    if ids is not None:
        os.chown(path, *ids)


def _broker_can_write(path: Path) -> bool:
    if _broker_uid() is None:
        return True  # no such user: mosquitto stays root
    runuser = shutil.which("runuser")
    if runuser is None:
        return False
    probe = subprocess.run([runuser, "-u", MOSQUITTO_USER, "--", "test", "-w", str(path)], capture_output=True)
    return probe.returncode == 0
