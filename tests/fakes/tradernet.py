"""A local fake of the Tradernet HTTP API, for driving the real tradernet-sdk in tests.

It checks every authorised call the way the real API does: `POST /api/{cmd}` with a JSON
body, `X-NtApi-PublicKey` naming a known key, `X-NtApi-Timestamp` within five minutes of
now, and `X-NtApi-Sig` = hex HMAC-SHA256(private key, body + timestamp). A call that fails
any check gets an `errMsg` answer (with HTTP 200, as Tradernet answers its API errors)
and is recorded as refused. Commands so far:

- `getHloc`: daily candles of the configured closes, [high, low, open, close] per candle
  (only closes are real: the other three repeat the close), stamped with the start of
  the day in `stamp_tz`, between `date_from` and `date_to` (`dd.mm.YYYY HH:MM`).

`calls` records (cmd, params, accepted) of every request; `fail` makes every command
answer an `errMsg`.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

PUBLIC, PRIVATE = "fake-public-key", "fake-private-key"
CLOCK_SKEW_S = 300


@dataclass
class FakeTradernet:
    prices: dict[str, list[tuple[date, Decimal]]]
    keys: dict[str, str] = field(default_factory=lambda: {PUBLIC: PRIVATE})
    stamp_tz: str = "UTC"
    url: str = ""
    calls: list[tuple[str, dict[str, Any], bool]] = field(default_factory=list)
    fail: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def env(self, public: str = PUBLIC, private: str = PRIVATE) -> dict[str, str]:
        return {"TRADERNET_URL": self.url, "TRADERNET_PUBLIC_KEY": public, "TRADERNET_PRIVATE_KEY": private}

    def accepted(self, cmd: str) -> list[dict[str, Any]]:
        return [p for c, p, ok in self.calls if c == cmd and ok]

    # -- commands ----------------------------------------------------------------------------------
    def get_hloc(self, p: dict[str, Any]) -> dict[str, Any]:
        symbol = p.get("id")
        if not isinstance(symbol, str) or p.get("timeframe") != 1440:
            return {"errMsg": "Bad parameters", "code": 2}
        try:
            lo = datetime.strptime(p["date_from"], "%d.%m.%Y %H:%M").date()
            hi = datetime.strptime(p["date_to"], "%d.%m.%Y %H:%M").date()
        except (KeyError, TypeError, ValueError):
            return {"errMsg": "Bad date format", "code": 2}
        if symbol not in self.prices:
            return {"errMsg": f"Security {symbol} not found", "code": 12}
        zone = ZoneInfo(self.stamp_tz)
        points = [(d, c) for d, c in self.prices[symbol] if lo <= d <= hi]
        closes = [float(c) for _, c in points]
        return {"hloc": {symbol: [[c, c, c, c] for c in closes]},
                "vl": {symbol: [0] * len(closes)},
                "xSeries": {symbol: [int(datetime(d.year, d.month, d.day, tzinfo=zone).timestamp())
                                     for d, _ in points]},
                "maxSeries": 0, "info": {symbol: {"id": symbol, "currency": "USD", "lot": 1}}, "took": 0.1}

    def handler(self, cmd: str) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
        return {"getHloc": self.get_hloc}.get(cmd)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _json(self, status: int, doc: dict[str, Any]) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self, cmd: str, params: dict[str, Any], message: str, code: int) -> None:
        with self.server.fake.lock:
            self.server.fake.calls.append((cmd, params, False))
        self._json(200, {"errMsg": message, "code": code})

    def do_POST(self) -> None:
        fake = self.server.fake
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        cmd = self.path.split("?")[0].removeprefix("/api/")
        try:
            params = json.loads(body) if body else {}
        except ValueError:
            params = {"_raw": body}
        public, stamp = self.headers.get("X-NtApi-PublicKey", ""), self.headers.get("X-NtApi-Timestamp", "")
        private = fake.keys.get(public)
        if private is None:
            return self._refuse(cmd, params, "Unknown API key", 7)
        if not stamp.isdigit() or abs(int(stamp) - time.time()) > CLOCK_SKEW_S:
            return self._refuse(cmd, params, "Request timestamp is too far from server time", 7)
        expected = hmac.new(private.encode(), (body + stamp).encode(), "sha256").hexdigest()
        if not hmac.compare_digest(expected, self.headers.get("X-NtApi-Sig", "")):
            return self._refuse(cmd, params, "Wrong signature", 7)
        handle = fake.handler(cmd)
        if handle is None:
            return self._refuse(cmd, params, f"Unknown command {cmd}", 1)
        if fake.fail:
            return self._refuse(cmd, params, fake.fail, 99)
        with fake.lock:
            fake.calls.append((cmd, params, True))
            answer = handle(params)
        self._json(200, answer)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeTradernet


@contextmanager
def serve(prices: dict[str, list[tuple[date, Decimal]]], **options: Any) -> Iterator[FakeTradernet]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = FakeTradernet(prices, url=f"http://127.0.0.1:{server.server_address[1]}", **options)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.fake
    finally:
        server.shutdown()
        server.server_close()
