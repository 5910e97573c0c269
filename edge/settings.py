"""Where the broker is and who we are to it.

Settings come from the environment (`MQTT_HOST`, `MQTT_PORT`, `MQTT_USER`, `MQTT_PASS`,
`MQTT_CAFILE`, `EDGE_ROOT`, `MQTT_KEEPALIVE`, `MQTT_NODELAY`; a node hosted with others
in one process has its own `MQTT_USER_<NODE>` and `MQTT_PASS_<NODE>`, `edge/process.py`),
as the launcher and systemd units set them, or from the file the local broker writes
(`.run/broker.json`) so that the CLI finds a broker that `make up` started from the same
checkout without any flag.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from schemas.topics import DEFAULT_ROOT

REPO_ROOT = Path(__file__).resolve().parents[1]
RUN_DIR = Path(os.environ.get("EDGE_RUN_DIR", REPO_ROOT / ".run"))
BROKER_FILE = "broker.json"


@dataclass(frozen=True)
class BrokerSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    user: str | None = None
    password: str | None = None
    cafile: str | None = None
    root: str = DEFAULT_ROOT
    keepalive: int = 15
    session_expiry: int = 7 * 24 * 3600
    nodelay: bool = True

    @property
    def tls(self) -> bool:
        return self.cafile is not None

    def as_user(self, user: str, password: str | None) -> BrokerSettings:
        return replace(self, user=user, password=password)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, *, node: str | None = None) -> BrokerSettings:
        """`node`: whose user and password, when one process hosts several nodes:
        `MQTT_USER_<NODE>` and `MQTT_PASS_<NODE>` (its name in capitals) before `MQTT_USER`
        and `MQTT_PASS`."""
        env = dict(os.environ if env is None else env)
        own = f"_{node.upper()}" if node else ""
        return cls(
            host=env.get("MQTT_HOST", cls.host),
            port=int(env.get("MQTT_PORT", cls.port)),
            user=env.get(f"MQTT_USER{own}") or env.get("MQTT_USER") or None,
            password=env.get(f"MQTT_PASS{own}") or env.get("MQTT_PASS") or None,
            cafile=env.get("MQTT_CAFILE") or None,
            root=env.get("EDGE_ROOT", DEFAULT_ROOT),
            keepalive=int(env.get("MQTT_KEEPALIVE", cls.keepalive)),
            nodelay=env.get("MQTT_NODELAY", "1") not in ("0", "false", "no"),
        )

    def to_env(self, *, node: str | None = None) -> dict[str, str]:
        """The variables `from_env` reads; with `node`, the user's as that node's own."""
        own = f"_{node.upper()}" if node else ""
        env = {"MQTT_HOST": self.host, "MQTT_PORT": str(self.port), "EDGE_ROOT": self.root}
        if self.user:
            env[f"MQTT_USER{own}"] = self.user
        if self.password:
            env[f"MQTT_PASS{own}"] = self.password
        if self.cafile:
            env["MQTT_CAFILE"] = self.cafile
        return env


@dataclass(frozen=True)
class LocalBroker:
    """What a running local broker wrote about itself in `.run/broker.json`."""

    host: str
    port: int
    tls_port: int | None
    cafile: str | None
    pid: int
    root: str
    passwords: dict[str, str]
    owner: int = 0  # the pid of the `edge up` that started it

    @property
    def orphaned(self) -> bool:
        """Its `edge up` is gone (killed with SIGKILL, say): nobody will stop it."""
        return self.owner > 0 and not _alive(self.owner)

    def settings(self, user: str = "operator") -> BrokerSettings:
        if user not in self.passwords:
            raise KeyError(f"the local broker has no user {user!r}; users: {', '.join(sorted(self.passwords))}")
        return BrokerSettings(host=self.host, port=self.port, user=user, password=self.passwords[user], root=self.root)

    @classmethod
    def load(cls, run_dir: Path = RUN_DIR) -> LocalBroker | None:
        path = run_dir / BROKER_FILE
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if not _alive(int(data.get("pid", 0))):
            return None
        return cls(**data)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
