"""A local fake of the Tradernet (Freedom24) HTTP API, for driving the real tradernet-sdk in
tests. It answers in the shapes `docs/tradernet-api.md` records, and where the documentation
is silent it does the unkinder thing: a fake must be stricter than the real API, never kinder.

Authorisation, as the real API checks it: `POST /api/{cmd}` with a JSON body,
`X-NtApi-PublicKey` naming a known key, `X-NtApi-Timestamp` within five minutes of now and
`X-NtApi-Sig` = hex HMAC-SHA256(private key, body + timestamp). A call that fails a check gets
an `errMsg` answer (HTTP 200) and is recorded as refused.

Commands:
- `getHloc`: daily candles of the configured closes, [high, low, open, close] per candle (only
  the close is real), stamped with the start of the day in `stamp_tz`, between `date_from` and
  `date_to` (`dd.mm.YYYY HH:MM`). `getStockQuotesJson`: the latest close as the last price.
- `putTradeOrder` → `{"order_id": n}`; no deduplication by `user_order_id`. A refusal (unknown
  instrument, bad action/type/expiration, qty not a positive multiple of `lots`, a limit off the
  `min_step` grid, a `suspended` symbol, no funds with `funds_check="put"`) is
  `{"error": text, "code": 0}` and books nothing. What happens next is `behaviour[symbol]`
  (see `tradernet_book`): "fill" (default), "rest", "partial" or "closed". An order on a currency
  pair (`EURUSD_T0.ITS`) is an exchange: its executions move cash between the two currencies and
  make no position (`tradernet_book`); it is refused like any order the cash cannot fund.
- `getNotifyOrderJson` → `{"result": {"orders": {"key": login, "order": [...]}}}`: orders
  booked today in `zone` (`active_only: 1`: live ones only). `getOrdersHistory` →
  `{"orders": {"key", "order"}}` booked between `from` and `till` (YYYY-MM-DDTHH:MM:SS in `zone`),
  the client id as the string `userOrderId`. No orders: `"order": null` (`empty_orders`: "null",
  "absent" or "list"); `single_as_object`: one order (or one execution) comes as an object.
  `user_order_id_format`: our id comes back "int" (as sent; None as 0), "string", "apiv2"
  ("apiv2:<n>") or "absent". `list_lag_s` delays an order's appearance, `hidden` order ids
  never appear. A list call shows the orders as they are, then moves them on: a cancelled order
  (2) becomes 31 (30 with executions), a received one (1) becomes 10, so a list shows 2 and 1.
- `delTradeOrder` → `{"order_id": n}` (status 2 until a list call has shown it); `getPositionJson`
  → `{"result": {"ps": {"key", "acc", "pos"}}}` (`acc`: one row per currency held, `pos` in each
  security's currency, never a pair); `getUserCashFlows` → `{"total", "cashflow"}`,
  newest first, `take` (default 20) / `skip`, `filters` on date or type_code, `sort`.

Faults: `fault(cmd, kind, **options)` queues one for the next call of `cmd` (FIFO, one call
each), `fault_always` for every call, `clear_faults` ends both. Kinds: "drop_before" (close the
connection, nothing done), "drop_after" (do the work, then close), "late" (`after_s`: book that
much later on a timer thread, then answer a client that has gone), "hold" (`hold_s`: book, answer
late), "http_error" (`status`, `booked`=True: an HTML error page), "garbage" (`booked`=True: 200
and a body that is not JSON), "refuse" (`text`, `code`, `style`="error"|"errMsg": nothing done).

`calls` records (cmd, params, accepted) of every request (accepted: the fake did the work);
`fail` makes every command answer an `errMsg`.
"""

from __future__ import annotations

import hmac
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

from tests.fakes import running
from tests.fakes.tradernet_book import LIVE, Book, Order

PUBLIC, PRIVATE = "fake-public-key", "fake-private-key"
CLOCK_SKEW_S = 300
FAULTS = {
    "drop_before": set(),
    "drop_after": set(),
    "late": {"after_s"},
    "hold": {"hold_s"},
    "http_error": {"status", "booked"},
    "garbage": {"booked"},
    "refuse": {"text", "code", "style"},
}
ID_FORMATS = ("int", "string", "apiv2", "absent")
STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
    "more": lambda a, b: a > b,
    "less": lambda a, b: a < b,
    "eqormore": lambda a, b: a >= b,
    "eqorless": lambda a, b: a <= b,
}
BAD_JSON = {"errMsg": "Bad json", "code": 2}


@dataclass(frozen=True)
class Fault:
    kind: str
    options: dict[str, Any]


@dataclass
class FakeTradernet(Book):
    keys: dict[str, str] = field(default_factory=lambda: {PUBLIC: PRIVATE})
    login: str = "fake@example.com"
    stamp_tz: str = "UTC"
    url: str = ""
    calls: list[tuple[str, dict[str, Any], bool]] = field(default_factory=list)
    fail: str | None = None
    user_order_id_format: str = "int"
    single_as_object: bool = False
    empty_orders: str = "null"
    list_lag_s: float = 0.0
    hidden: set[int] = field(default_factory=set)
    cash_flow_page: int = 20
    faults: dict[str, deque[Fault]] = field(default_factory=dict)
    always: dict[str, Fault] = field(default_factory=dict)

    def env(self, public: str = PUBLIC, private: str = PRIVATE) -> dict[str, str]:
        return {"TRADERNET_URL": self.url, "TRADERNET_PUBLIC_KEY": public, "TRADERNET_PRIVATE_KEY": private}

    def accepted(self, cmd: str) -> list[dict[str, Any]]:
        return [p for c, p, ok in self.calls if c == cmd and ok]

    # -- faults ------------------------------------------------------------------------------------
    def fault(self, cmd: str, kind: str, **options: Any) -> None:
        """The next call of `cmd` not yet given a fault meets this one."""
        with self.lock:
            self.faults.setdefault(cmd, deque()).append(self._fault(cmd, kind, options))

    def fault_always(self, cmd: str, kind: str, **options: Any) -> None:
        with self.lock:
            self.always[cmd] = self._fault(cmd, kind, options)

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()
            self.always.clear()

    def next_fault(self, cmd: str) -> Fault | None:
        with self.lock:
            queued = self.faults.get(cmd)
            return queued.popleft() if queued else self.always.get(cmd)

    def _fault(self, cmd: str, kind: str, options: dict[str, Any]) -> Fault:
        if self.handler(cmd) is None:
            raise ValueError(f"unknown command {cmd!r}")
        if kind not in FAULTS or not set(options) <= FAULTS[kind]:
            raise ValueError(f"fault {kind!r} with {sorted(options)}: see FAULTS")
        return Fault(kind, options)

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
            "info": {symbol: {"id": symbol, "currency": self.currency(symbol), "lot": 1}},
            "took": 0.1,
        }

    def get_notify_order_json(self, p: dict[str, Any]) -> dict[str, Any]:
        active = p.get("active_only", 0)
        if active not in (0, 1) or isinstance(active, bool):
            return BAD_JSON
        today = self.local(self.now()).date()
        rows = [
            self._row(o, "user_order_id")
            for o in self._listed()
            if self.local(o.at).date() == today and (not active or o.stat in LIVE)
        ]
        self.settle()
        return {"result": {"orders": self._block(rows)}}

    def get_orders_history(self, p: dict[str, Any]) -> dict[str, Any]:
        start, end = p.get("from"), p.get("till")
        if not isinstance(start, str) or not isinstance(end, str):
            return BAD_JSON
        try:
            if not (STAMP.fullmatch(start) and STAMP.fullmatch(end)):
                raise ValueError
            lo, hi = (datetime.strptime(e, "%Y-%m-%dT%H:%M:%S") for e in (start, end))
        except ValueError:
            return {"error": "Exec wrong", "code": 18}
        rows = [self._row(o, "userOrderId") for o in self._listed() if lo <= self.local(o.at) <= hi]
        self.settle()
        return {"orders": self._block(rows)}

    def del_trade_order(self, p: dict[str, Any]) -> dict[str, Any]:
        return self.cancel(p.get("order_id"))

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
        pos = []
        for symbol, (qty, average) in self.positions.items():
            price = self.quote(symbol) or average
            pos.append(
                {
                    "i": symbol,
                    "q": float(qty),
                    "bal_price_a": float(average),
                    "curr": self.currency(symbol),
                    "currval": 1,
                    "mkt_price": float(price),
                    "market_value": float(price * qty),
                    "open_bal": float(average * qty),
                    "profit_close": float((price - average) * qty),
                    "name": symbol.split(".")[0],
                }
            )
        acc = [
            {"curr": c, "s": float(v), "currval": 1, "forecast_in": 0, "forecast_out": 0} for c, v in self.cash.items()
        ]
        return {"result": {"ps": {"key": self.login, "acc": acc, "pos": pos}}}

    def get_user_cash_flows(self, p: dict[str, Any]) -> dict[str, Any]:
        take, skip = p.get("take", self.cash_flow_page), p.get("skip", 0)
        filters, sort = p.get("filters") or [], p.get("sort") or []
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in (take, skip)):
            return BAD_JSON
        if not isinstance(filters, list) or not isinstance(sort, list):
            return BAD_JSON
        rows = list(reversed(self.flows))  # newest first, unless sorted
        for f in filters:
            if not isinstance(f, dict) or f.get("field") not in ("date", "type_code"):
                return BAD_JSON
            test, value = OPERATORS.get(f.get("operator", "")), f.get("value")
            if test is None or not isinstance(value, str) or (f["field"] == "date" and not DAY.fullmatch(value)):
                return BAD_JSON
            rows = [r for r in rows if test(r[f["field"]], value)]
        for s in reversed(sort):
            if (
                not isinstance(s, dict)
                or s.get("field") not in ("date", "type_code", "sum")
                or s.get("dir")
                not in (
                    "ASC",
                    "DESC",
                )
            ):
                return BAD_JSON
            key = (lambda r: Decimal(r["sum"])) if s["field"] == "sum" else (lambda r, k=s["field"]: r[k])
            rows.sort(key=key, reverse=s["dir"] == "DESC")
        return {"total": len(rows), "cashflow": [dict(r) for r in rows[skip : skip + take]]}

    def handler(self, cmd: str) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
        return {
            "getHloc": self.get_hloc,
            "putTradeOrder": self.place,
            "getNotifyOrderJson": self.get_notify_order_json,
            "getOrdersHistory": self.get_orders_history,
            "delTradeOrder": self.del_trade_order,
            "getPositionJson": self.get_position_json,
            "getStockQuotesJson": self.get_stock_quotes_json,
            "getUserCashFlows": self.get_user_cash_flows,
        }.get(cmd)

    # -- list rendering ----------------------------------------------------------------------------
    def _listed(self) -> list[Order]:
        shown = time.monotonic() - self.list_lag_s
        return [o for o in self.orders if o.id not in self.hidden and o.mono <= shown]

    def _row(self, order: Order, key: str) -> dict[str, Any]:
        row = self.row(order)
        if self.single_as_object and len(row["trade"]) == 1:
            row["trade"] = row["trade"][0]
        if self.user_order_id_format not in ID_FORMATS:
            raise ValueError(f"user_order_id_format {self.user_order_id_format!r}: one of {ID_FORMATS}")
        uid = order.user_order_id if order.user_order_id is not None else 0
        if self.user_order_id_format == "apiv2":
            row[key] = f"apiv2:{uid}"
        elif self.user_order_id_format in ("string", "int"):
            row[key] = str(uid) if self.user_order_id_format == "string" or key == "userOrderId" else uid
        return row

    def _block(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        block: dict[str, Any] = {"key": self.login}
        if len(rows) == 1 and self.single_as_object:
            block["order"] = rows[0]
        elif rows or self.empty_orders == "list":
            block["order"] = rows
        elif self.empty_orders == "null":
            block["order"] = None
        elif self.empty_orders != "absent":
            raise ValueError(f"empty_orders {self.empty_orders!r}: null, absent or list")
        return block


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    disable_nagle_algorithm = True  # headers and body go as two writes: without it each answer waits ~40 ms
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
        """Answer; a client that has gone (timed out) is no error of the fake's."""
        try:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def _json(self, status: int, doc: dict[str, Any]) -> None:
        self._send(status, json.dumps(doc).encode())

    def _drop(self) -> None:
        self.close_connection = True  # the socket closes with nothing written

    def _record(self, cmd: str, params: dict[str, Any], accepted: bool) -> None:
        with self.server.fake.lock:
            self.server.fake.calls.append((cmd, params, accepted))

    def _refuse(self, cmd: str, params: dict[str, Any], message: str, code: int) -> None:
        self._record(cmd, params, False)
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

        def work() -> dict[str, Any]:
            with fake.lock:
                fake.calls.append((cmd, params, True))
                return handle(params)

        fault = fake.next_fault(cmd)
        if fault is None:
            return self._json(200, work())
        self._faulty(fault, cmd, params, work)

    def _faulty(self, fault: Fault, cmd: str, params: dict[str, Any], work: Callable[[], dict[str, Any]]) -> None:
        kind, o = fault.kind, fault.options
        if kind == "drop_before":
            self._record(cmd, params, False)
            self._drop()
        elif kind == "drop_after":
            work()
            self._drop()
        elif kind == "late":
            done: list[dict[str, Any]] = []
            timer = threading.Timer(o.get("after_s", 1.0), lambda: done.append(work()))
            timer.daemon = True
            timer.start()
            timer.join()
            self._json(200, done[0])
        elif kind == "hold":
            answer = work()
            time.sleep(o.get("hold_s", 1.0))
            self._json(200, answer)
        elif kind == "http_error":
            work() if o.get("booked", True) else self._record(cmd, params, False)
            status = o.get("status", 502)
            self._send(status, f"<html><body><h1>{status}</h1>nginx</body></html>".encode(), "text/html")
        elif kind == "garbage":
            if o.get("booked", True):
                text = json.dumps(work())
                self._send(200, text[: len(text) // 2].encode())  # cut short: not JSON
            else:
                self._record(cmd, params, False)
                self._send(200, b"<html><body>Service temporarily unavailable</body></html>")
        else:  # refuse
            self._record(cmd, params, False)
            key = "errMsg" if o.get("style") == "errMsg" else "error"
            self._json(200, {key: o.get("text", "Something wrong, service unavailable"), "code": o.get("code", 14)})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeTradernet


@contextmanager
def serve(prices: dict[str, list[tuple[date, Decimal]]], **options: Any) -> Iterator[FakeTradernet]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = FakeTradernet(prices, url=f"http://127.0.0.1:{server.server_address[1]}", **options)
    with running(server):
        yield server.fake
