"""The fake Tradernet API (tests/fakes/tradernet.py), driven by the real tradernet-sdk: its order
book answers in the documented shapes, and its faults do what they say."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal as D
from typing import Any

import pytest
import requests

from nodes.brokers import tradernet_api
from tests.fakes import tradernet
from tests.fakes.tradernet_book import Book

PRICES = {"AAPL.US": [(date(2024, 6, 3), D("190.15"))], "MA.US": [(date(2024, 6, 3), D("450.00"))]}
NOW = datetime(2024, 6, 3, 21, 30, tzinfo=UTC)  # 2024-06-04 00:30 in Moscow, the fake's zone
FAR = (datetime(2024, 6, 1), datetime(2024, 6, 30))  # a history window, in Moscow time


@pytest.fixture
def fake() -> Iterator[tradernet.FakeTradernet]:
    with tradernet.serve(PRICES, clock=lambda: NOW) as f:
        f.cash["USD"] = D(100000)
        f.positions["MA.US"] = [D(10), D(400)]
        yield f


@pytest.fixture
def api(fake: tradernet.FakeTradernet) -> Any:
    return tradernet_api.client(tradernet_api.Credentials(tradernet.PUBLIC, tradernet.PRIVATE, fake.url))


def placed(api: Any) -> list[dict[str, Any]]:
    return api.get_placed(active=False)["result"]["orders"]["order"] or []


def history(api: Any, start: datetime = FAR[0], end: datetime = FAR[1]) -> list[dict[str, Any]]:
    return api.get_historical(start=start, end=end)["orders"]["order"] or []


def until(condition: Callable[[], bool], within_s: float = 2.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.02)


# -- the order book ---------------------------------------------------------------------------------
def test_no_deduplication_by_user_order_id(fake, api):
    first, second = api.buy("AAPL.US", 1, custom_order_id=7), api.buy("AAPL.US", 1, custom_order_id=7)
    assert first["order_id"] != second["order_id"]
    assert fake.count(7) == 2 and [o["user_order_id"] for o in placed(api)] == [7, 7]


def test_a_market_order_fills_whole_in_one_execution_with_a_commission_row(fake, api):
    order_id = api.buy("AAPL.US", 100, custom_order_id=1)["order_id"]
    (row,) = placed(api)
    assert (row["id"], row["order_id"], row["stat"], row["q"], row["leaves_qty"]) == (order_id, order_id, 21, 100, 0)
    assert row["oper"] == 2 and row["type"] == 1  # buy on margin, as the SDK sends by default
    assert row["date"] == "2024-06-04T00:30:00.000"  # Moscow time, no zone
    (trade,) = row["trade"]
    assert (trade["p"], trade["q"], trade["v"], trade["date"]) == (190.15, 100, 19015.0, "2024-06-04T00:30:00")
    assert "commission" not in row and "commission" not in trade and "text" not in row
    (flow,) = api.authorized_request("getUserCashFlows", {})["cashflow"]
    assert flow["type_code"] == "commission_for_trades" and flow["sum"] == "-19.02" and flow["date"] == "2024-06-04"
    assert flow["comment"] == f"(Trade {trade['id']} 2024-06-04 00:30:00)"
    assert fake.cash["USD"] == D(100000) - D("19015") - D("19.02") and fake.positions["AAPL.US"] == [100, D("190.15")]


def test_the_minimum_commission(fake, api):
    api.sell("MA.US", 1)
    assert api.authorized_request("getUserCashFlows", {})["cashflow"][0]["sum"] == "-1.00"
    assert fake.cash["USD"] == D(100000) + D(450) - D(1) and fake.positions["MA.US"][0] == 9


def test_partial_fills_half_and_rests(fake, api):
    fake.behaviour["AAPL.US"] = "partial"
    order_id = api.buy("AAPL.US", 5)["order_id"]
    (row,) = api.get_placed(active=True)["result"]["orders"]["order"]
    assert (row["stat"], row["leaves_qty"], [t["q"] for t in row["trade"]]) == (20, 3, [2])
    fake.expire(order_id)
    assert placed(api)[0]["stat"] == 72 and api.get_placed(active=True)["result"]["orders"]["order"] is None


def test_rest_fill_and_the_final_statuses(fake, api):
    fake.behaviour["AAPL.US"] = "rest"
    a, b, c, d = (api.buy("AAPL.US", 4)["order_id"] for _ in range(4))
    assert {o["stat"] for o in placed(api)} == {10}
    fake.fill(a, 1, price=D("190.10"))
    assert fake.order(a).stat == 20
    fake.fill(a, 3)
    fake.expire(b)
    fake.fill(c, 1)
    fake.cancel_at_broker(c)
    fake.reject(d, "The order may not be accepted")
    rows = {o["id"]: o for o in placed(api)}
    assert [rows[i]["stat"] for i in (a, b, c, d)] == [21, 71, 30, 70]
    assert [t["p"] for t in rows[a]["trade"]] == [190.10, 190.15] and rows[d]["text"] == "The order may not be accepted"
    assert rows[c]["stat_prev"] == 20 and rows[c]["stat_d"] == "2024-06-04T00:30:00.000"


def test_a_cancel_is_only_requested_until_a_list_has_shown_it(fake, api):
    fake.behaviour["AAPL.US"] = "rest"
    order_id = api.buy("AAPL.US", 2)["order_id"]
    assert api.cancel(order_id) == {"order_id": order_id}
    assert placed(api)[0]["stat"] == 2
    assert placed(api)[0]["stat"] == 31
    assert api.cancel(order_id)["code"] == 0 and api.cancel(123)["code"] == 0  # finished, unknown


def test_a_closed_market_receives_then_fills_when_it_opens(fake, api):
    fake.behaviour["AAPL.US"] = "closed"
    order_id = api.buy("AAPL.US", 2)["order_id"]
    assert [o["stat"] for o in placed(api)] == [1]
    assert [o["stat"] for o in placed(api)] == [10]
    fake.open_market("AAPL.US")
    assert fake.order(order_id).stat == 21


def test_refusals_book_nothing(fake, api):
    fake.lots["MA.US"], fake.min_step["AAPL.US"], fake.suspended = 5, D("0.05"), {"NVDA.US"}
    fake.prices["NVDA.US"] = PRICES["AAPL.US"]
    answers = [
        api.buy("NOPE.US", 1),
        api.buy("MA.US", 3),
        api.buy("AAPL.US", 1, price=190.12),
        api.buy("NVDA.US", 1),
        api.authorized_request("putTradeOrder", {"instr_name": "AAPL.US", "action_id": 5, "qty": 1}),
    ]
    assert all(set(a) == {"error", "code"} and a["code"] == 0 for a in answers)
    fake.funds_check = "put"
    assert api.buy("AAPL.US", 1000)["error"] == "Insufficient funds" and api.sell("MA.US", 11)["code"] == 0
    assert fake.count() == 0 and placed(api) == []


def test_no_funds_is_booked_then_rejected_by_default(fake, api):
    api.buy("AAPL.US", 1000, custom_order_id=3)
    (row,) = fake.booked(3)
    assert (row["stat"], row["text"], row["trade"]) == (70, "Insufficient funds", [])
    assert fake.cash["USD"] == D(100000)


def test_only_todays_orders_are_current_and_an_empty_list_is_null(fake, api):
    assert api.get_placed(active=False)["result"]["orders"] == {"key": "fake@example.com", "order": None}
    fake.seed_order(9, "AAPL.US", "buy", 3, when=datetime(2024, 6, 3, 20, 59, tzinfo=UTC))  # 23:59 in Moscow
    assert placed(api) == [] and [o["userOrderId"] for o in history(api)] == ["9"]


def test_history_shape_window_and_bad_dates(fake, api):
    api.buy("AAPL.US", 1, custom_order_id=7)
    answer = api.get_historical(start=datetime(2024, 6, 4, 0, 30), end=datetime(2024, 6, 4, 0, 30))
    (row,) = answer["orders"]["order"]
    assert set(answer) == {"orders"} and answer["orders"]["key"] == "fake@example.com"
    assert row["userOrderId"] == "7" and "user_order_id" not in row
    assert history(api, datetime(2024, 6, 3), datetime(2024, 6, 4, 0, 29, 59)) == []
    bad = api.authorized_request("getOrdersHistory", {"from": "2024-06-01", "till": "2024-06-30T00:00:00"})
    assert bad == {"error": "Exec wrong", "code": 18}


@pytest.mark.parametrize(
    ("form", "current", "past"), [("string", "7", "7"), ("apiv2", "apiv2:7", "apiv2:7"), ("absent", None, None)]
)
def test_user_order_id_formats(fake, api, form, current, past):
    fake.user_order_id_format = form
    api.buy("AAPL.US", 1, custom_order_id=7)
    assert placed(api)[0].get("user_order_id") == current and history(api)[0].get("userOrderId") == past


def test_single_as_object(fake, api):
    fake.single_as_object = True
    api.buy("AAPL.US", 1)
    order = api.get_placed(active=False)["result"]["orders"]["order"]
    assert isinstance(order, dict) and isinstance(order["trade"], dict)


def test_list_lag_and_hidden_orders(fake, api):
    fake.list_lag_s = 0.3
    hidden = api.buy("AAPL.US", 1)["order_id"]
    fake.hidden.add(hidden)
    api.buy("AAPL.US", 1, custom_order_id=2)
    assert placed(api) == [] and history(api) == []
    time.sleep(0.35)
    assert [o["user_order_id"] for o in placed(api)] == [2] and len(history(api)) == 1


def test_positions_in_the_documented_shape(fake, api):
    ps = api.account_summary()["result"]["ps"]
    assert ps["acc"] == [{"curr": "USD", "s": 100000.0, "currval": 1, "forecast_in": 0, "forecast_out": 0}]
    (pos,) = ps["pos"]
    assert (pos["i"], pos["q"], pos["bal_price_a"], pos["mkt_price"]) == ("MA.US", 10.0, 400.0, 450.0)


def test_cash_flows_paging_and_date_filters(fake, api):
    moves = [("bank", "5000"), ("dividend", "12.5"), ("tax", "-1.88"), ("cashout", "-100")]
    for day, (kind, amount) in enumerate(moves, start=1):
        fake.cash_flow(kind, amount, "USD", on=date(2024, 6, day))
    flows = api.authorized_request("getUserCashFlows", {"take": 2, "skip": 1})
    assert flows["total"] == 4 and [f["type_code"] for f in flows["cashflow"]] == ["tax", "dividend"]  # newest first
    assert all(isinstance(f["id"], str) for f in flows["cashflow"]) and flows["cashflow"][0]["sum"] == "-1.88"

    def dates(*filters: tuple[str, str]) -> list[str]:
        params = {"filters": [{"field": "date", "operator": o, "value": v} for o, v in filters]}
        return sorted(f["date"][-2:] for f in api.authorized_request("getUserCashFlows", params)["cashflow"])

    assert dates(("eqormore", "2024-06-02")) == ["02", "03", "04"] and dates(("more", "2024-06-02")) == ["03", "04"]
    assert dates(("eqormore", "2024-06-02"), ("eqorless", "2024-06-03")) == ["02", "03"]
    assert fake.cash["USD"] == D(100000) + D("4910.62")
    wrong = {"filters": [{"field": "date", "operator": "after", "value": "2024-06-01"}]}
    assert api.authorized_request("getUserCashFlows", wrong) == {"errMsg": "Bad json", "code": 2}


# -- currency exchanges: an order on a pair moves cash between its currencies ------------------------
PAIR = "EURUSD_T0.ITS"


def exchange_book(**options: Any) -> Book:
    b = Book({PAIR: [(date(2024, 6, 3), D("1.0850"))], **PRICES}, clock=lambda: NOW, **options)
    b.cash.update({"EUR": D(1000), "USD": D(100)})
    return b


def put(b: Book, side: str, qty: int, symbol: str = PAIR, **p: Any) -> dict[str, Any]:
    action = 1 if side == "buy" else 3
    return b.place({"instr_name": symbol, "action_id": action, "order_type_id": 1, "expiration_id": 1, "qty": qty, **p})


def test_a_pair_fills_in_parts_moving_cash_for_each_part_only():
    b = exchange_book(funds_check="put")
    b.behaviour[PAIR] = "partial"
    order_id = put(b, "sell", 600)["order_id"]
    order = b.order(order_id)
    assert order is not None and (order.stat, order.filled, order.leaves) == (20, 300, 300)
    assert b.cash == {"EUR": D(700), "USD": D(100) + D("325.50") - D("1.00")}  # the minimum commission, in USD
    assert put(b, "sell", 401) == {"error": "Insufficient funds", "code": 0}  # 300 of the 700 EUR are held
    b.fill(order_id, 300, D("1.0900"))
    assert (order.stat, order.leaves) == (21, 0) and b.count() == 1
    assert b.cash == {"EUR": D(400), "USD": D("424.50") + D("327.00") - D("1.00")}
    assert b.positions == {}  # an exchange is no position
    row = b.row(order)
    assert (row["cur"], [t["q"] for t in row["trade"]], [t["p"] for t in row["trade"]]) == (
        "USD",
        [300, 300],
        [1.085, 1.09],
    )
    assert [(f["sum"], f["currency"]) for f in b.flows] == [("-1.00", "USD"), ("-1.00", "USD")]
    assert [f["comment"].split()[1] for f in b.flows] == [str(t.id) for t in order.trades]


def test_an_exchange_spends_only_the_cash_the_live_orders_leave_free():
    b = exchange_book()
    b.behaviour["AAPL.US"] = "rest"
    put(b, "buy", 1, "AAPL.US", order_type_id=2, limit_price=50)  # holds USD 50 + the minimum commission
    rejected = b.order(put(b, "buy", 45, custom_order_id=1)["order_id"])  # USD 48.83 + 1.00 > 100 - 51
    assert rejected is not None and (rejected.stat, rejected.text, rejected.trades) == (70, "Insufficient funds", [])
    assert b.cash == {"EUR": D(1000), "USD": D(100)}
    bought = b.order(put(b, "buy", 44)["order_id"])  # USD 47.74 + 1.00: fits
    assert bought is not None and bought.stat == 21
    assert b.cash == {"EUR": D(1044), "USD": D(100) - D("47.74") - D("1.00")} and PAIR not in b.positions


def test_shares_are_bought_in_their_own_currency():
    b = Book({"SAP.EU": [(date(2024, 6, 3), D("200.00"))]}, clock=lambda: NOW, currencies={"SAP.EU": "EUR"})
    b.cash.update({"EUR": D(1000), "USD": D(100000)})
    put(b, "buy", 5, "SAP.EU")  # EUR 1,000 + 1.00: the USD never pays for it
    assert b.orders[0].stat == 70 and b.cash == {"EUR": D(1000), "USD": D(100000)}
    put(b, "buy", 4, "SAP.EU")
    assert b.cash == {"EUR": D(199), "USD": D(100000)} and b.positions["SAP.EU"] == [4, D(200)]
    assert b.row(b.orders[1])["cur"] == "EUR" and b.flows[-1]["currency"] == "EUR"


def test_the_account_rows_after_an_exchange(fake, api):
    fake.prices[PAIR] = [(date(2024, 6, 3), D("1.0850"))]
    fake.cash["EUR"] = D(2000)
    assert "order_id" in api.sell(PAIR, 1000, use_margin=False, custom_order_id=4)
    ps = api.account_summary()["result"]["ps"]
    assert {a["curr"]: a["s"] for a in ps["acc"]} == {"USD": float(D("101083.91")), "EUR": 1000.0}
    assert [p["i"] for p in ps["pos"]] == ["MA.US"]  # no position for the pair
    (row,) = fake.booked(4)
    assert (row["instr"], row["oper"], row["stat"], row["cur"]) == (PAIR, 3, 21, "USD")


# -- faults -----------------------------------------------------------------------------------------
def test_drop_before_books_nothing_and_drop_after_books(fake, api):
    fake.fault("putTradeOrder", "drop_before")
    fake.fault("putTradeOrder", "drop_after")
    with pytest.raises(requests.ConnectionError):
        api.buy("AAPL.US", 1, custom_order_id=1)
    assert fake.count(1) == 0
    with pytest.raises(requests.ConnectionError):
        api.buy("AAPL.US", 1, custom_order_id=2)
    assert fake.count(2) == 1
    api.buy("AAPL.US", 1, custom_order_id=3)  # the queue is spent
    assert [ok for cmd, _, ok in fake.calls if cmd == "putTradeOrder"] == [False, True, True]


def test_late_books_after_the_client_has_given_up(fake, api):
    api.timeout = 0.2
    fake.fault("putTradeOrder", "late", after_s=0.5)
    with pytest.raises(requests.Timeout):
        api.buy("AAPL.US", 1, custom_order_id=5)
    assert fake.count(5) == 0
    until(lambda: fake.count(5) == 1)


def test_hold_books_at_once_and_answers_late(fake, api):
    api.timeout = 0.2
    fake.fault("putTradeOrder", "hold", hold_s=0.4)
    with pytest.raises(requests.Timeout):
        api.buy("AAPL.US", 1, custom_order_id=5)
    assert fake.count(5) == 1


def test_http_errors_and_garbage(fake, api):
    fake.fault("putTradeOrder", "http_error", status=502, booked=False)
    fake.fault("putTradeOrder", "http_error", status=503)
    fake.fault("putTradeOrder", "garbage")
    with pytest.raises(requests.HTTPError):
        api.buy("AAPL.US", 1, custom_order_id=1)
    with pytest.raises(requests.HTTPError):
        api.buy("AAPL.US", 1, custom_order_id=2)
    with pytest.raises(requests.JSONDecodeError):
        api.buy("AAPL.US", 1, custom_order_id=3)
    assert [fake.count(i) for i in (1, 2, 3)] == [0, 1, 1]


def test_refuse_and_faults_on_list_calls(fake, api):
    fake.fault("putTradeOrder", "refuse", text="Something wrong", code=14)
    fake.fault("putTradeOrder", "refuse", text="Bad json", code=2, style="errMsg")
    assert api.buy("AAPL.US", 1) == {"error": "Something wrong", "code": 14}
    assert api.buy("AAPL.US", 1) == {"errMsg": "Bad json", "code": 2}
    assert fake.count() == 0
    fake.fault_always("getNotifyOrderJson", "drop_before")
    for _ in range(2):
        with pytest.raises(requests.ConnectionError):
            api.get_placed()
    fake.clear_faults()
    assert api.get_placed()["result"]["orders"]["order"] is None
    with pytest.raises(ValueError):
        fake.fault("putTradeOrder", "late", hold_s=1)
