"""Where prices come from. One interface; each provider is real code used for real.

| provider    | source                                      | closes                              |
| ----------- | ------------------------------------------- | ----------------------------------- |
| `bundled`   | `data/prices.csv.gz` in this package        | adjusted (dividends and splits)      |
| `yfinance`  | Yahoo Finance's chart API through yfinance  | adjusted (`auto_adjust=True`)        |
| `tradernet` | Tradernet's `getHloc` through tradernet-sdk | as traded (Tradernet does not adjust) |

Every close is a Decimal rounded to 6 places; a missing, non-finite or non-positive close
is refused, never stored. `bundled` runs in the node's own process (stdlib only); the two
network providers import yfinance (with pandas, ~100 MB) or tradernet-sdk (~57 MB), so the
node runs them in a child process for the length of one sync (`fetch_in_child`) and stays
thin at rest. Their configuration (proxy, CA bundle, keys) comes in the node's `Settings`
(`settings.py`).
"""

from __future__ import annotations

import math
import warnings
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from nodes.brokers.tradernet_api import Credentials
from nodes.money.pairs import parse

from . import bundle
from .settings import PROVIDERS, Settings

PLACES = Decimal("0.000001")


class ProviderError(RuntimeError):
    """The provider could not deliver (network, unknown symbol at the source, bad data)."""


class PriceProvider(Protocol):
    name: str

    def fetch(self, symbol: str, start: date | None, end: date | None) -> list[tuple[date, Decimal]]:
        """Daily closes of `symbol` between `start` and `end` (inclusive), oldest first."""
        ...


def to_close(value: Any, where: str) -> Decimal:
    """A close as a Decimal of 6 places: from the float's shortest repr, so 237.33 stays 237.33."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ProviderError(f"{where}: {value!r} is not a price")
    if isinstance(value, float) and not math.isfinite(value):
        raise ProviderError(f"{where}: {value!r} is not a price")
    close = Decimal(repr(value) if isinstance(value, float) else value).quantize(PLACES)
    if close <= 0:
        raise ProviderError(f"{where}: {value!r} is not a price")
    return close


class BundledProvider:
    name = "bundled"

    def __init__(self, path: Path | None = None) -> None:
        self.path = bundle.PRICES if path is None else path

    def fetch(self, symbol: str, start: date | None, end: date | None) -> list[tuple[date, Decimal]]:
        try:
            points = bundle.history(symbol, self.path)
        except KeyError:
            raise ProviderError(f"the bundled data has no prices for {symbol}") from None
        except (OSError, ValueError) as exc:
            raise ProviderError(f"the bundled data cannot be read: {exc}") from exc
        return [(d, c) for d, c in points if (start is None or d >= start) and (end is None or d <= end)]


def yahoo_ticker(symbol: str) -> str:
    """Tradernet's `AAPL.US` is Yahoo's `AAPL` (`BRK.B.US` is `BRK-B`); a currency pair of
    its money market, `EURUSD_T0.ITS`, is Yahoo's rate `EURUSD=X` (the same quote: USD per
    EUR). Other markets' suffixes do not map one to one: those symbols are refused, not guessed."""
    if (pair := parse(symbol)) is not None:
        return f"{pair.base}{pair.quote}=X"
    base, _, market = symbol.rpartition(".")
    if market != "US" or not base:
        raise ProviderError(
            f"yfinance: no Yahoo ticker is known for {symbol} (only .US symbols and currency pairs map); "
            "use the tradernet provider for it"
        )
    return base.replace(".", "-")


class YFinanceProvider:
    """Daily adjusted closes from Yahoo through yfinance (its own session, cookie and crumb)."""

    name = "yfinance"
    first_day = date(1990, 1, 1)

    def __init__(self, cache_dir: Path, proxy: str | None = None, cafile: str | None = None) -> None:
        import yfinance as yf
        from curl_cffi import requests as curl

        # yfinance 1.x still uses pandas APIs that pandas 3 deprecates: its warnings, not ours
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"yfinance\.")
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"yfinance\.")
        cache_dir.mkdir(parents=True, exist_ok=True)
        yf.set_tz_cache_location(str(cache_dir))  # not ~/.cache: the node's own state folder
        yf.config.debug.hide_exceptions = False  # raise, never return an empty frame silently
        self._yf = yf
        options: dict[str, Any] = {"impersonate": "chrome"}  # what yfinance itself uses
        if proxy:
            options["proxies"] = {"http": proxy, "https": proxy}
        if cafile:
            options["verify"] = cafile
        self._session = curl.Session(**options)

    def fetch(self, symbol: str, start: date | None, end: date | None) -> list[tuple[date, Decimal]]:
        ticker = yahoo_ticker(symbol)
        first, last = start or self.first_day, end or date.today()
        try:
            frame = self._yf.Ticker(ticker, session=self._session).history(
                start=first.isoformat(),
                end=(last + timedelta(days=1)).isoformat(),  # yfinance's end is exclusive
                interval="1d",
                auto_adjust=True,
                actions=False,
            )
        except Exception as exc:  # yfinance raises its own, curl's and pandas' errors alike
            raise ProviderError(f"yfinance {ticker}: {type(exc).__name__}: {exc}") from exc
        if "Close" not in frame:
            raise ProviderError(f"yfinance {ticker}: the answer has no closes")
        out: dict[date, Decimal] = {}
        for stamp, value in frame["Close"].items():
            if value != value:  # NaN: Yahoo had no bar that day
                continue
            out[stamp.date()] = to_close(float(value), f"yfinance {ticker} on {stamp.date()}")
        return [(d, c) for d, c in sorted(out.items()) if first <= d <= last]


class TradernetProvider:
    """Daily closes from Tradernet's candles (`getHloc`) through tradernet-sdk."""

    name = "tradernet"
    first_day = date(2000, 1, 1)

    def __init__(self, credentials: Credentials | None) -> None:
        from nodes.brokers import tradernet_api as api

        self._api = api
        try:
            self._client = api.client(credentials)
        except api.TradernetError as exc:
            raise ProviderError(str(exc)) from None

    def fetch(self, symbol: str, start: date | None, end: date | None) -> list[tuple[date, Decimal]]:
        try:
            return self._api.daily_closes(self._client, symbol, start or self.first_day, end or date.today())
        except self._api.TradernetError as exc:
            raise ProviderError(str(exc)) from exc


def provider(name: str, state_dir: Path, settings: Settings) -> PriceProvider:
    """The provider called `name`, configured from the node's settings."""
    if name == "bundled":
        return BundledProvider(settings.bundle)
    if name == "yfinance":
        return YFinanceProvider(state_dir / "yfinance", settings.yf_proxy, settings.yf_cafile)
    if name == "tradernet":
        return TradernetProvider(settings.tradernet)
    raise ProviderError(f"unknown provider {name!r} (known: {', '.join(PROVIDERS)})")


# -- in a child process ---------------------------------------------------------------------------
_child: dict[str, PriceProvider] = {}


def fetch_in_child(
    name: str, state_dir: Path, settings: Settings, symbol: str, start: date | None, end: date | None
) -> list[tuple[date, Decimal]]:
    """Run in the node's child process (`nodes/child.py`): one provider per process, made on
    the first call and kept for the others of the same sync (yfinance's cookie and crumb,
    one HTTP session)."""
    if name not in _child:
        _child[name] = provider(name, state_dir, settings)
    return _child[name].fetch(symbol, start, end)
