"""A local fake of the Tradernet HTTP API, for driving the real tradernet-sdk in tests.

It checks every authorised call the way the real API does: `POST /api/{cmd}` with a JSON
body, `X-NtApi-PublicKey` naming a known key, `X-NtApi-Timestamp` within five minutes of
now, and `X-NtApi-Sig` = hex HMAC-SHA256(private key, body + timestamp). A call that fails
any check gets an `errMsg` answer (with HTTP 200, as Tradernet answers its API errors)
and is recorded as refused. Commands so far:

- `getHloc`: daily candles of the configured closes, [high, low, open, close] per candle
  (only closes are real: the other three repeat the close), stamped with the start of
  the day in `stamp_tz`, between `date_from` and `date_to` (`dd.mm.YYYY HH:MM`).
- an order book with an account: `putTradeOrder` (a market order, or a limit order the
  quote reaches, fills at once at the latest close if the cash or shares are there; a
  limit order that does not is left working; margin orders are refused),
  `getNotifyOrderJson`, `getOrdersHistory`, `delTradeOrder`, `getPositionJson` and
  `getStockQuotesJson` (the latest close as the last price).
  `hold_s` holds the answer to `putTradeOrder` after the order is booked (a node can be
  killed while it waits).

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

from tests.fakes import running

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
    cash: dict[str, Decimal] = field(default_factory=dict)
    positions: dict[str, list[Decimal]] = field(default_factory=dict)  # symbol: [quantity, average price]
    orders: list[dict[str, Any]] = field(default_factory=list)
    hold_s: float = 0.0

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
        return {
            "hloc": {symbol: [[c, c, c, c] for c in closes]},
            "vl": {symbol: [0] * len(closes)},
            "xSeries": {symbol: [int(datetime(d.year, d.month, d.day, tzinfo=zone).timestamp()) for d, _ in points]},
            "maxSeries": 0,
            "info": {symbol: {"id": symbol, "currency": "USD", "lot": 1}},
            "took": 0.1,
        }

    def quote(self, symbol: str) -> Decimal | None:
        points = self.prices.get(symbol)
        return points[-1][1] if points else None

    def put_trade_order(self, p: dict[str, Any]) -> dict[str, Any]:
        symbol, action, qty = p.get("instr_name"), p.get("action_id"), p.get("qty")
        if action in (2, 4):
            return {"errMsg": "Margin trading is not enabled for this account", "code": 14}
        if action not in (1, 3) or not isinstance(qty, int) or qty <= 0 or not isinstance(symbol, str):
            return {"errMsg": "Bad order parameters", "code": 2}
        quote = self.quote(symbol)
        if quote is None:
            return {"errMsg": f"Security {symbol} not found", "code": 12}
        order = {
            "id": 1000 + len(self.orders),
            "user_order_id": p.get("user_order_id"),
            "instr": symbol,
            "oper": action,
            "type": p.get("order_type_id"),
            "q": qty,
            "p": p.get("limit_price") or 0,
            "cur": "USD",
            "stat": 10,
            "stat_d": "working",
            "date": datetime.now().isoformat(),
            "trades": [],
        }
        self.orders.append(order)
        limit = Decimal(str(p.get("limit_price") or 0))
        buy = action == 1
        if order["type"] == 1 or (buy and limit >= quote) or (not buy and 0 < limit <= quote):
            self._fill(order, quote)
        return {"order_id": order["id"]}

    def _fill(self, order: dict[str, Any], price: Decimal) -> None:
        qty, symbol = Decimal(order["q"]), order["instr"]
        held = self.positions.get(symbol, [Decimal(0), Decimal(0)])
        value = qty * price
        if order["oper"] == 1:
            if self.cash.get("USD", Decimal(0)) < value:
                order.update(stat=70, stat_d="Insufficient funds")
                return
            self.cash["USD"] = self.cash.get("USD", Decimal(0)) - value
            self.positions[symbol] = [held[0] + qty, (held[0] * held[1] + value) / (held[0] + qty)]
        else:
            if held[0] < qty:
                order.update(stat=70, stat_d="Not enough securities")
                return
            self.cash["USD"] = self.cash.get("USD", Decimal(0)) + value
            self.positions[symbol] = [held[0] - qty, held[1]]
            if held[0] == qty:
                del self.positions[symbol]
        order.update(stat=21, stat_d="filled", trades=[{"id": order["id"] * 10, "q": int(qty), "p": float(price)}])

    def get_notify_order_json(self, p: dict[str, Any]) -> dict[str, Any]:
        listed = [o for o in self.orders if not p.get("active_only") or o["stat"] not in (21, 31, 70)]
        return {"result": {"orders": {"order": listed}}}

    def get_orders_history(self, p: dict[str, Any]) -> dict[str, Any]:
        for key in ("from", "till"):
            try:
                datetime.strptime(p.get(key, ""), "%Y-%m-%dT%H:%M:%S")
            except (TypeError, ValueError):
                return {"errMsg": f"Bad {key} date", "code": 2}
        return {"result": {"orders": {"order": list(self.orders)}}}

    def del_trade_order(self, p: dict[str, Any]) -> dict[str, Any]:
        for o in self.orders:
            if o["id"] == p.get("order_id"):
                if o["stat"] in (21, 31, 70):
                    return {"errMsg": "The order cannot be cancelled", "code": 5}
                o.update(stat=31, stat_d="cancelled by the client")
                return {"result": True}
        return {"errMsg": "Order not found", "code": 5}

    def get_stock_quotes_json(self, p: dict[str, Any]) -> dict[str, Any]:
        tickers = str(p.get("tickers", "")).split(",")
        return {
            "result": {
                "q": [
                    {"c": s, "ltp": float(self.quote(s)), "bbp": float(self.quote(s)), "bap": float(self.quote(s))}
                    for s in tickers
                    if self.quote(s) is not None
                ]
            }
        }

    def get_position_json(self, p: dict[str, Any]) -> dict[str, Any]:
        return {
            "result": {
                "ps": {
                    "pos": [
                        {"i": s, "q": float(q), "bal_price_a": float(a), "curr": "USD"}
                        for s, (q, a) in self.positions.items()
                    ],
                    "acc": [{"curr": c, "s": float(v)} for c, v in self.cash.items()],
                }
            }
        }

    def handler(self, cmd: str) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
        return {
            "getHloc": self.get_hloc,
            "putTradeOrder": self.put_trade_order,
            "getNotifyOrderJson": self.get_notify_order_json,
            "getOrdersHistory": self.get_orders_history,
            "delTradeOrder": self.del_trade_order,
            "getPositionJson": self.get_position_json,
            "getStockQuotesJson": self.get_stock_quotes_json,
        }.get(cmd)

    def placed(self, user_order_id: int) -> list[dict[str, Any]]:
        return [o for o in self.orders if o["user_order_id"] == user_order_id]


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
        if cmd == "putTradeOrder" and fake.hold_s:
            time.sleep(fake.hold_s)  # booked; the answer is late
        self._json(200, answer)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeTradernet


@contextmanager
def serve(prices: dict[str, list[tuple[date, Decimal]]], **options: Any) -> Iterator[FakeTradernet]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = FakeTradernet(prices, url=f"http://127.0.0.1:{server.server_address[1]}", **options)
    with running(server):
        yield server.fake
