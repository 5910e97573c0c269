"""The universe node's configuration, read once from its environment.

| variable                   | default   | meaning                                                   |
| -------------------------- | --------- | --------------------------------------------------------- |
| `UNIVERSE_PROVIDER`        | `bundled` | where `sync` fetches unless a request says: `bundled`,    |
|                            |           | `yfinance` or `tradernet` (`providers.py`)                |
| `UNIVERSE_SEED`            | `bundled` | a new, empty store starts with the bundled securities     |
|                            |           | (`none`: empty)                                           |
| `UNIVERSE_SYNC_ON_START`   | `1`       | sync once at start when the store has no prices yet (`0`: |
|                            |           | do not)                                                   |
| `UNIVERSE_YF_PROXY`        | none      | yfinance: HTTPS proxy for Yahoo (`http://host:port`)      |
| `UNIVERSE_YF_CAFILE`       | none      | yfinance: CA bundle to trust instead of the system's (a   |
|                            |           | TLS-inspecting proxy)                                     |
| `UNIVERSE_BUNDLE`          | the package's | the bundled provider's prices file (`bundle.py`'s   |
|                            |           | format): a replay's test of look-ahead shuffles a copy    |
| `EDGE_CLOCK`               | `auto`    | the market clock (`nodes/clock.py`): `auto` is `data`    |
|                            |           | with the bundled provider, `wall` with a network one      |
| `TRADERNET_PUBLIC_KEY`,    | none      | tradernet: the key pair, and the server if not the SDK's  |
| `TRADERNET_PRIVATE_KEY`,   |           | (`nodes.brokers.tradernet_api`)                           |
| `TRADERNET_URL`            |           |                                                           |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

from nodes import clock
from nodes.brokers.tradernet_api import Credentials
from schemas.universe import ClockSource, Provider

PROVIDERS: tuple[Provider, ...] = get_args(Provider)


@dataclass(frozen=True)
class Settings:
    provider: Provider = "bundled"
    seed: bool = True  # a new, empty store starts with the bundled securities
    sync_on_start: bool = True
    yf_proxy: str | None = None
    yf_cafile: str | None = None
    tradernet: Credentials | None = None  # None unless both keys are set: that provider refuses then
    clock: ClockSource = "data"
    bundle: Path | None = None  # the bundled provider's file; None: the package's own

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        name = env.get("UNIVERSE_PROVIDER", "bundled")
        provider = next((p for p in PROVIDERS if p == name), None)
        if provider is None:
            raise ValueError(f"UNIVERSE_PROVIDER={name!r}: use {', '.join(PROVIDERS)}")
        seed = env.get("UNIVERSE_SEED", "bundled")
        if seed not in ("bundled", "none"):
            raise ValueError(f"UNIVERSE_SEED={seed!r}: use bundled or none")
        sync = env.get("UNIVERSE_SYNC_ON_START", "1")
        if sync not in ("0", "1"):
            raise ValueError(f"UNIVERSE_SYNC_ON_START={sync!r}: use 1 (sync a new store) or 0")
        mode = clock.mode(env)
        source: ClockSource = ("data" if provider == "bundled" else "wall") if mode == "auto" else mode
        return cls(
            provider,
            seed == "bundled",
            sync == "1",
            env.get("UNIVERSE_YF_PROXY") or None,
            env.get("UNIVERSE_YF_CAFILE") or None,
            Credentials.from_env(env),
            source,
            Path(env["UNIVERSE_BUNDLE"]) if env.get("UNIVERSE_BUNDLE") else None,
        )
