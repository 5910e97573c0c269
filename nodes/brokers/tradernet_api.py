"""The one place that talks to Tradernet through tradernet-sdk 2.2.0 (imported lazily: it
costs ~57 MB of RSS, and only the processes that call Tradernet should pay for it).

The SDK's traps, handled here once (see DESIGN.md): it logs an `errMsg` answer instead of
raising, so every answer goes through `checked`; its date defaults are evaluated at import,
so every call passes both ends; `buy`/`sell` default to margin (the trading adapter passes
`use_margin=False`). `url` is a property of the SDK's class: `client(url=...)` points a
subclass at another server (a regional domain, or the tests' local fake).

Configuration (the environment of the node that calls Tradernet, read by its settings
through `Credentials.from_env`): `TRADERNET_PUBLIC_KEY`, `TRADERNET_PRIVATE_KEY` and
optionally `TRADERNET_URL` (default: the SDK's, https://freedom24.com) and
`TRADERNET_ZONE` (default Europe/Moscow: the zone of the times in its answers, which
carry none) and `TRADERNET_TIMEOUT_S` (default 10: shorter than any caller's timeout, so that a hung call
ends in a definite "no answer" before the caller gives up).

Two kinds of failure, because an order depends on telling them apart: `TradernetRefused`
is Tradernet's own answer refusing the call (`errMsg`, `error`): nothing was done;
`TradernetError` otherwise (a timeout, a dropped connection, an HTTP error, a body that is
not JSON): the call may have been carried out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from nodes.environment import real

DAY_SECONDS = 86400
TIMEOUT_S = 10.0  # per socket operation; the SDK's default is 300 s. Shorter than any caller's timeout


MISSING_KEYS = (
    "TRADERNET_PUBLIC_KEY and TRADERNET_PRIVATE_KEY must both be set (make a key pair in Freedom24: Profile > API keys)"
)


class TradernetError(RuntimeError):
    """Tradernet did not answer, or answered something this code cannot read."""


class TradernetRefused(TradernetError):
    """Tradernet's own answer refused the call (`errMsg` / `error`)."""


@dataclass(frozen=True)
class Credentials:
    public: str
    private: str = ""
    url: str | None = None
    timeout_s: float = TIMEOUT_S
    zone: str = "Europe/Moscow"  # of the times in Tradernet's answers (they carry none)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Credentials | None:
        """The key pair, or None unless both keys are set: only live trading and the tradernet
        provider need one, and `client` refuses None with `MISSING_KEYS`."""
        public, private = env.get("TRADERNET_PUBLIC_KEY", ""), env.get("TRADERNET_PRIVATE_KEY", "")
        if not public or not private:
            return None
        zone = env.get("TRADERNET_ZONE", "Europe/Moscow")
        try:
            ZoneInfo(zone)
        except (ValueError, KeyError):
            raise ValueError(f"TRADERNET_ZONE={zone!r}: not a time zone (e.g. Europe/Moscow)") from None
        timeout = real(env, "TRADERNET_TIMEOUT_S", TIMEOUT_S, least=0.1)
        return cls(public, private, env.get("TRADERNET_URL") or None, timeout, zone)

    def __repr__(self) -> str:  # never print the private key
        return f"Credentials(public={self.public!r}, url={self.url!r})"


def client(creds: Credentials | None) -> Any:
    """A `tradernet.Tradernet` for these credentials, pointed at `creds.url` if given."""
    if creds is None:
        raise TradernetError(MISSING_KEYS)
    from tradernet import Tradernet

    if creds.url is None:
        api = Tradernet(creds.public, creds.private)
    else:
        base = creds.url.rstrip("/")

        class _Pointed(Tradernet):
            @property
            def url(self) -> str:
                return base

        api = _Pointed(creds.public, creds.private)
    api.timeout = creds.timeout_s  # type: ignore[assignment]  # requests takes a float; the SDK annotates int
    return api


def checked(answer: Any, what: str) -> dict[str, Any]:
    """The answer if it is a successful one; TradernetError with Tradernet's words otherwise."""
    if not isinstance(answer, dict):
        raise TradernetError(f"{what}: unexpected answer {str(answer)[:200]!r}")
    message = answer.get("errMsg") or (answer.get("error") if isinstance(answer.get("error"), str) else None)
    if message:
        code = answer.get("code")
        raise TradernetRefused(f"{what}: Tradernet says {message!r}" + (f" (code {code})" if code is not None else ""))
    return answer


def call(api: Any, what: str, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Call an SDK method; network and HTTP failures become TradernetError too."""
    try:
        answer = getattr(api, method)(*args, **kwargs)
    except ValueError as exc:  # the SDK's own checks, and JSON it cannot decode
        raise TradernetError(f"{what}: {exc}") from exc
    except OSError as exc:  # requests' errors are OSErrors (ConnectionError, HTTPError, ...)
        raise TradernetError(f"{what}: {exc}") from exc
    except (KeyError, TypeError) as exc:  # the SDK indexing an error answer (get_broker_report)
        raise TradernetError(f"{what}: unexpected answer ({exc!r})") from exc
    return checked(answer, what)


# -- daily candles (getHloc) ------------------------------------------------------------------------
def candle_day(timestamp: float) -> date:
    """The trading day of a daily candle stamped `timestamp` (Unix seconds).

    A daily candle is stamped with the start of its day in some time zone; which one
    (UTC, the exchange's, Moscow's) is not documented. The nearest midnight is right for
    any of them (offsets up to ±12 h), where a plain UTC date would be a day early for
    zones east of UTC."""
    return datetime.fromtimestamp(round(timestamp / DAY_SECONDS) * DAY_SECONDS, UTC).date()


def to_price(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TradernetError(f"{where}: {value!r} is not a price")
    try:
        number = float(value)
    except ValueError:
        raise TradernetError(f"{where}: {value!r} is not a price") from None
    if not math.isfinite(number) or number <= 0:
        raise TradernetError(f"{where}: {value!r} is not a price")
    return Decimal(repr(number) if isinstance(value, float) else str(value)).quantize(Decimal("0.000001"))


def parse_candles(answer: dict[str, Any], symbol: str) -> list[tuple[date, Decimal]]:
    """Daily closes from a getHloc answer: `hloc[symbol]` holds [high, low, open, close] per
    candle and `xSeries[symbol]` its timestamps. Anything else is refused, never guessed."""
    hloc, xs = answer.get("hloc"), answer.get("xSeries")
    if not isinstance(hloc, dict) or not isinstance(xs, dict):
        raise TradernetError(f"getHloc {symbol}: the answer has no hloc/xSeries")
    bars, stamps = hloc.get(symbol), xs.get(symbol)
    if bars is None and stamps is None:
        return []
    if not isinstance(bars, list) or not isinstance(stamps, list) or len(bars) != len(stamps):
        raise TradernetError(f"getHloc {symbol}: hloc and xSeries do not match")
    out: dict[date, Decimal] = {}
    for stamp, bar in zip(stamps, bars, strict=True):
        if not isinstance(bar, list) or len(bar) != 4 or not isinstance(stamp, int | float):
            raise TradernetError(f"getHloc {symbol}: malformed candle {bar!r} at {stamp!r}")
        where = f"getHloc {symbol} at {stamp}"
        high, low, _open, close = (to_price(v, where) for v in bar)
        if not low <= close <= high:
            raise TradernetError(f"{where}: close {close} outside its day's range {low}..{high}")
        out[candle_day(stamp)] = close
    return sorted(out.items())


def daily_closes(api: Any, symbol: str, start: date, end: date) -> list[tuple[date, Decimal]]:
    """Daily closes of `symbol` from `start` to `end` inclusive (both passed: see module doc)."""
    answer = call(
        api,
        f"getHloc {symbol}",
        "get_candles",
        symbol,
        start=datetime.combine(start, time.min),
        end=datetime.combine(end + timedelta(days=1), time.min),
        timeframe=DAY_SECONDS,
    )
    return [(d, c) for d, c in parse_candles(answer, symbol) if start <= d <= end]
