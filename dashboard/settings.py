"""The dashboard's configuration, read once from its environment, and its secrets.

| variable                 | default        | meaning                                                  |
| ------------------------ | -------------- | -------------------------------------------------------- |
| `DASHBOARD_HOST`         | `127.0.0.1`    | where it listens (a board: its LAN address, behind login) |
| `DASHBOARD_PORT`         | `8080`         |                                                          |
| `DASHBOARD_PASSWORD`     | (generated)    | the login password; unset: one is made once and kept in   |
|                          |                | `<state dir>/dashboard.secret` (mode 600)                  |
| `DASHBOARD_BENCHMARK`    | `SPY.US`       | the security bought with the same deposits, to compare   |

The secret file also holds the key that signs the browser's session cookie, so logins
survive a restart of the dashboard. This module imports no web framework: the launcher
reads the password from here to print it.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from nodes.environment import whole

SECRET_FILE = "dashboard.secret"


@dataclass(frozen=True)
class Secrets:
    password: str
    storage_secret: str


def secrets_of(state_dir: Path) -> Secrets:
    """The dashboard's password and cookie key, made once and kept in the state folder."""
    path = state_dir / SECRET_FILE
    if path.exists():
        doc = json.loads(path.read_text())
        return Secrets(doc["password"], doc["storage_secret"])
    made = Secrets(secrets.token_urlsafe(12), secrets.token_urlsafe(32))
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"password": made.password, "storage_secret": made.storage_secret}, f)
    return made


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    password: str = ""
    storage_secret: str = ""
    benchmark: str = "SPY.US"

    @classmethod
    def from_env(cls, env: Mapping[str, str], state_dir: Path) -> Settings:
        kept = secrets_of(state_dir)
        return cls(
            host=env.get("DASHBOARD_HOST", "127.0.0.1"),
            port=whole(env, "DASHBOARD_PORT", 8080, least=1, most=65535),
            password=env.get("DASHBOARD_PASSWORD") or kept.password,
            storage_secret=kept.storage_secret,
            benchmark=env.get("DASHBOARD_BENCHMARK", "SPY.US"),
        )
