"""A local fake of the Yahoo Finance endpoints yfinance calls, reached the way a real
deployment behind a TLS-inspecting proxy reaches Yahoo: yfinance is given this server as
its HTTPS proxy and this CA as its trust anchor, so the real yfinance, curl_cffi and TLS
run unchanged. The fake answers `CONNECT`, then terminates TLS itself with a certificate
for Yahoo's host names and serves, inside the tunnel:

- `fc.yahoo.com/`: a 404 that sets the `A3` cookie (as Yahoo does);
- `query1|query2.finance.yahoo.com/v1/test/getcrumb`: a crumb, only with that cookie;
- `query2.finance.yahoo.com/v8/finance/chart/{ticker}`: daily bars of the configured
  prices in Yahoo's chart JSON, only with the cookie and the crumb; an unknown ticker gets
  Yahoo's 404 "No data found" answer.

`requests` records every request's host, path and query, for the tests to check.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from tests.certs import make_tls
from tests.fakes import running

HOSTS = ("fc.yahoo.com", "query1.finance.yahoo.com", "query2.finance.yahoo.com", "guce.yahoo.com", "consent.yahoo.com")
NEW_YORK = ZoneInfo("America/New_York")
COOKIE = "A3=d=AQABBfake&S=AQAAAfake"
CRUMB = "fakeCrumb123"


@dataclass
class FakeYahoo:
    """Prices by Yahoo ticker (`AAPL`), oldest first."""

    prices: dict[str, list[tuple[date, Decimal]]]
    proxy: str = ""
    cafile: Path | None = None
    requests: list[tuple[str, str, dict[str, list[str]]]] = field(default_factory=list)
    fail: int | None = None  # answer every chart request with this HTTP status


def _bar_time(day: date) -> int:
    """Yahoo stamps a daily bar with the exchange's opening time (09:30 New York)."""
    return int(datetime.combine(day, time(9, 30), NEW_YORK).timestamp())


def _chart(ticker: str, points: list[tuple[date, Decimal]]) -> dict:
    closes = [float(c) for _, c in points]
    now = int(datetime.now(UTC).timestamp())
    meta = {
        "currency": "USD",
        "symbol": ticker,
        "exchangeName": "NMS",
        "fullExchangeName": "NasdaqGS",
        "instrumentType": "EQUITY",
        "firstTradeDate": _bar_time(points[0][0]) if points else None,
        "regularMarketTime": now,
        "hasPrePostMarketData": True,
        "gmtoffset": -18000,
        "timezone": "EST",
        "exchangeTimezoneName": "America/New_York",
        "regularMarketPrice": closes[-1] if closes else None,
        "chartPreviousClose": closes[0] if closes else None,
        "priceHint": 2,
        "dataGranularity": "1d",
        "range": "",
        "validRanges": ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"],
    }
    result: dict = {"meta": meta}
    if points:
        result["timestamp"] = [_bar_time(d) for d, _ in points]
        # Only closes are real here: the other fields repeat the close and volume is 0.
        result["indicators"] = {
            "quote": [{"open": closes, "high": closes, "low": closes, "close": closes, "volume": [0] * len(closes)}],
            "adjclose": [{"adjclose": closes}],
        }
    else:
        result["indicators"] = {"quote": [{}], "adjclose": [{}]}
    return {"chart": {"result": [result], "error": None}}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_CONNECT(self) -> None:  # the proxy: open a tunnel, then be the TLS server inside it
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        tls = self.server.tls.wrap_socket(self.connection, server_side=True)
        self.connection = tls
        self.rfile = tls.makefile("rb")
        self.wfile = tls.makefile("wb")
        self.close_connection = False

    def _send(self, status: int, body: bytes, ctype: str = "application/json", headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _json(self, status: int, doc: dict) -> None:
        self._send(status, json.dumps(doc).encode())

    def do_GET(self) -> None:
        fake = self.server.fake
        host = (self.headers.get("Host") or "").split(":")[0]
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        fake.requests.append((host, url.path, query))
        has_cookie = "A3=" in (self.headers.get("Cookie") or "")
        if host == "fc.yahoo.com":
            self._send(
                404,
                b"<html>not found</html>",
                "text/html",
                {"Set-Cookie": f"{COOKIE}; Max-Age=31557600; Domain=.yahoo.com; Path=/; Secure; HttpOnly"},
            )
        elif url.path == "/v1/test/getcrumb":
            if has_cookie:
                self._send(200, CRUMB.encode(), "text/plain")
            else:
                self._send(403, b"<html>no cookie</html>", "text/html")
        elif url.path.startswith("/v8/finance/chart/"):
            ticker = url.path.rsplit("/", 1)[1]
            if not has_cookie or query.get("crumb") != [CRUMB]:
                self._json(
                    401, {"chart": {"result": None, "error": {"code": "Unauthorized", "description": "Invalid Crumb"}}}
                )
            elif fake.fail:
                self._json(
                    fake.fail,
                    {
                        "chart": {
                            "result": None,
                            "error": {"code": "Internal Server Error", "description": "fake failure"},
                        }
                    },
                )
            elif ticker not in fake.prices:
                self._json(
                    404,
                    {
                        "chart": {
                            "result": None,
                            "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"},
                        }
                    },
                )
            else:
                self._json(200, _chart(ticker, self._window(fake.prices[ticker], query)))
        else:
            self._json(404, {"error": f"the fake does not serve {host}{url.path}"})

    @staticmethod
    def _window(points: list[tuple[date, Decimal]], query: dict[str, list[str]]) -> list[tuple[date, Decimal]]:
        if "period1" in query:
            lo, hi = int(query["period1"][0]), int(query.get("period2", [str(2**40)])[0])
            return [(d, c) for d, c in points if lo <= _bar_time(d) < hi]
        if query.get("range") == ["1d"]:  # the time-zone probe
            return points[-1:]
        return points


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeYahoo
    tls: ssl.SSLContext


@contextmanager
def serve(prices: dict[str, list[tuple[date, Decimal]]], folder: Path) -> Iterator[FakeYahoo]:
    files = make_tls(folder, names=HOSTS)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(files.certfile, files.keyfile)
    tls.set_alpn_protocols(["http/1.1"])
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = FakeYahoo(prices, proxy=f"http://127.0.0.1:{server.server_address[1]}", cafile=files.cafile)
    server.tls = tls
    with running(server):
        yield server.fake
