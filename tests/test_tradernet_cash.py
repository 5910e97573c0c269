"""Tradernet's money movements (getUserCashFlows): the type-code table, strict parsing, paging
and the date filter with canned answers in the documented shape, and the same through the real
tradernet-sdk against the fake Tradernet."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from nodes.brokers import tradernet_cash as tc
from nodes.brokers.base import CashMove
from nodes.brokers.tradernet_api import Credentials, TradernetError, client
from tests.fakes import tradernet

D = Decimal

# The type codes of TN:type-codes, as documented (84).
DOCUMENTED = """
bank sbp digital_assets rights_distribution rights_distribution_reverted storn_correction recurrent_subscription
blockchain block card_commission card card_cash sbp_withdrawal card_payout digital_assets_withdrawal
initial_margin_afterhours refund intercompany corporate_action_compensation corporate_action_compensation_reverted
stock_dividend_compensation stock_dividend_compensation_reverted dividend_compensation dividend_compensation_reverted
conversion conversion_reverted merger merger_reverted coupon coupon_reverted crypto_withdrawal currency_conversion
dvp dividend dividend_reverted stock_dividend stock_dividend_reverted deposit_compensation card_conversion_settlement
commission commission_reverted block_commission commission_rebates unblock_commission gift_certificate initial_margin
percents internal_holding interbank maturity maturity_reverted icc_commission fund_payment fund_payment_reverted
option_premium partial_maturity partial_maturity_reverted scores_rebate agent_reward_for_commissions
agent_reward_for_net_deposits agent_trade kassa payments_to_customer commission_refund sepa_instant sepa swift
spin_off spin_off_reverted split split_reverted tax tax_reverted tax_vat tax_vat_refund tax_agent tax_profit
agent_fee agent_fee_reverted trade_cancellation otc_trade unblock variation_margin cashout
""".split()  # noqa: SIM905 (one word per code, as the page lists them)


def row(
    type_code: str, amount: Any, *, id: Any = None, on: str = "2024-03-15", currency: Any = "USD", comment: Any = ""
):
    """A cashflow row in the documented shape (TN:get-cashflows)."""
    return {
        "id": id if id is not None else f"{type_code}-{amount}-{on}",
        "type_code": type_code,
        "icon": type_code,
        "date": on,
        "sum": amount,
        "comment": comment,
        "currency": currency,
        "type_code_name": type_code.replace("_", " "),
    }


class Canned:
    """An SDK stand-in that answers getUserCashFlows from a list, paged as asked."""

    def __init__(self, rows: list[dict[str, Any]], total: Any = None, answer: dict[str, Any] | None = None) -> None:
        self.rows, self.total, self.answer = rows, total, answer
        self.asked: list[tuple[str, dict[str, Any]]] = []

    def authorized_request(self, cmd: str, params: dict[str, Any] | None = None, version: int | None = 3) -> Any:
        self.asked.append((cmd, json.loads(json.dumps(params))))
        if self.answer is not None:
            return self.answer
        assert params is not None
        page = self.rows[params["skip"] : params["skip"] + params["take"]]
        return {"total": len(self.rows) if self.total is None else self.total, "cashflow": page, "limits": {}}


@pytest.fixture(autouse=True)
def _fresh_reports(monkeypatch):
    monkeypatch.setattr(tc, "_reported", set())


def test_every_documented_code_is_decided():
    assert len(DOCUMENTED) == 84 and len(set(DOCUMENTED)) == 84
    assert set(DOCUMENTED) == (set(tc.KINDS) | tc.UNCLEAR) - {"commission_for_trades", "trades"}
    assert not set(tc.KINDS) & tc.UNCLEAR


def test_the_documented_example_row():
    example = {
        "id": "9f0a11cc61",
        "type_code": "commission_for_trades",
        "icon": "commission",
        "date": "2021-06-28",
        "sum": "-3.00",
        "comment": "(Trade 1515 2021-06-28 12:21:35)",
        "currency": "USD",
        "type_code_name": " type code name ",
    }
    assert tc.to_move(example) == CashMove(
        kind="fee",
        amount=D("-3.00"),
        currency="USD",
        at=datetime(2021, 6, 28, tzinfo=UTC),
        note="(Trade 1515 2021-06-28 12:21:35)",
        id="9f0a11cc61",
    )


@pytest.mark.parametrize(
    ("code", "amount", "kind"),
    [
        ("bank", "500.00", "deposit"),
        ("card", "100", "deposit"),
        ("sepa", "250.5", "deposit"),
        ("swift", "1000.00", "deposit"),
        ("bank", "-500.00", "deposit"),  # a deposit sent back: its reversal, under deposits
        ("cashout", "-200.00", "withdrawal"),
        ("cashout", "200.00", "withdrawal"),  # a withdrawal that came back
        ("interbank", "50", "deposit"),  # no direction in the code: the sign says
        ("interbank", "-50", "withdrawal"),
        ("internal_holding", "-7", "withdrawal"),
        ("dividend", "12.34", "dividend"),
        ("dividend_reverted", "-12.34", "dividend"),
        ("coupon", "5", "dividend"),
        ("percents", "0.42", "dividend"),
        ("commission", "-1.20", "fee"),
        ("commission_for_trades", "-3.00", "fee"),
        ("commission_refund", "1.20", "fee"),
        ("agent_fee", "-0.30", "fee"),
        ("tax", "-1.85", "tax"),
        ("tax_profit", "-4", "tax"),
        ("tax_vat", "-0.2", "tax"),
        ("tax_reverted", "1.85", "tax"),
        ("currency_conversion", "-1000", None),
        ("conversion", "1000", None),
        ("trades", "-2113.00", None),
        ("otc_trade", "-10", None),
        ("block", "-5", None),
        ("unblock", "5", None),
        ("split", "0", None),
        ("stock_dividend", "0", None),
    ],
)
def test_type_codes_map_to_kinds(code, amount, kind):
    move = tc.to_move(row(code, amount, comment=" note "))
    if kind is None:
        assert move is None
    else:
        assert move is not None and (move.kind, move.amount, move.note) == (kind, D(amount), "note")


def test_an_unknown_code_is_left_out_and_reported_once(caplog):
    rows = [
        row("bank", "100", id=1),
        row("moon_bonus", "5", id=2),
        row("moon_bonus", "6", id=3),
        row("storn_correction", "-1", id=4),
        row("something_else", "not even a number", id=5),
    ]
    with caplog.at_level(logging.WARNING, logger=tc.__name__):
        moves = tc.cash_moves(Canned(rows), None)
        tc.cash_moves(Canned(rows), None)  # read again: not reported again
    assert [m.id for m in moves] == ["1"]
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 3 and all("left out" in w for w in warned)
    assert sum("'moon_bonus'" in w for w in warned) == 1 and any("'storn_correction'" in w for w in warned)


@pytest.mark.parametrize("amount", ["abc", "", None, True, [], "NaN", "Infinity", "1,50", {"v": 1}])
def test_a_sum_that_is_not_a_number_is_refused(amount):
    with pytest.raises(TradernetError, match="is not a number"):
        tc.to_move(row("dividend", amount, id="x1"))


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"id": None}, "without an id"),
        ({"id": ""}, "without an id"),
        ({"id": 1.5}, "without an id"),
        ({"type_code": None}, "no type_code"),
        ({"date": "28.06.2021"}, "not a date"),
        ({"date": None}, "not a date"),
        ({"currency": "US"}, "not a currency"),
        ({"currency": None}, "not a currency"),
    ],
)
def test_a_row_that_cannot_be_read_is_refused(changes, says):
    bad = {**row("coupon", "1.00", id="c1"), **changes}
    with pytest.raises(TradernetError, match=says):
        tc.to_move(bad)


def test_numbers_ids_and_times_as_they_may_come():
    move = tc.to_move(row("dividend", 12.5, id=3301045607, on="2024-03-15 16:00:00", currency="usd", comment=None))
    assert move == CashMove("dividend", D("12.5"), "USD", datetime(2024, 3, 15, tzinfo=UTC), "", None, "3301045607")
    assert tc.to_move(row("dividend", 3, id="a"))
    assert tc.to_move(row("dividend", " -0.10 ", id="b")).amount == D("-0.10")  # type: ignore[union-attr]


def test_pages_until_the_total_oldest_first():
    start = date(2024, 1, 1)
    rows = [row("dividend", f"{i}.00", id=1000 + i, on=(start + timedelta(days=i)).isoformat()) for i in range(250)]
    api = Canned(list(reversed(rows)))  # whatever order the server keeps
    moves = tc.cash_moves(api, None)
    assert [m.id for m in moves] == [str(1000 + i) for i in range(250)]
    assert [p["skip"] for _, p in api.asked] == [0, 100, 200]
    assert all(cmd == "getUserCashFlows" and p["take"] == tc.PAGE and "filters" not in p for cmd, p in api.asked)
    assert api.asked[0][1]["sort"] == [{"field": "date", "dir": "ASC"}]


def test_since_is_a_date_filter_on_its_utc_day():
    rows = [row("dividend", "1", id=i, on=f"2024-03-{d:02d}") for i, d in enumerate((10, 14, 15, 16))]
    api = Canned(rows)  # a server that ignores the filter: the rows before it are dropped here too
    since = datetime(2024, 3, 16, 1, 30, tzinfo=timezone(timedelta(hours=3)))  # 2024-03-15 22:30 UTC
    moves = tc.cash_moves(api, since)
    assert [m.at.date() for m in moves] == [date(2024, 3, 15), date(2024, 3, 16)]
    assert api.asked[0][1]["filters"] == [{"field": "date", "operator": "eqormore", "value": "2024-03-15"}]


def test_one_id_twice_across_pages_is_one_movement():
    rows = [row("dividend", "1", id=i) for i in range(100)] + [row("dividend", "1", id=99)]
    assert len(tc.cash_moves(Canned(rows), None)) == 100


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        ({"errMsg": "Bad json", "code": 2}, "Bad json"),
        ({"error": "User is not found", "code": 7}, "User is not found"),
        ({"cashflow": []}, "total"),
        ({"total": "many", "cashflow": []}, "total"),
        ({"total": 1, "cashflow": "none"}, "cashflow"),
        ({"total": 3, "cashflow": []}, "3 rows announced"),
    ],
)
def test_an_error_or_an_unreadable_answer_raises(answer, says):
    with pytest.raises(TradernetError, match=says):
        tc.cash_moves(Canned([], answer=answer), None)


def test_total_as_a_string_and_rows_as_an_object():
    api = Canned([], answer={"total": "2", "cashflow": {"0": row("coupon", "1", id=1), "5": row("coupon", "2", id=2)}})
    assert [m.amount for m in tc.cash_moves(api, None)] == [D(1), D(2)]


def test_commissions_per_trade():
    rows = [
        row("commission_for_trades", "-3.00", id=1, comment="(Trade 1515 2021-06-28 12:21:35)"),
        row("commission_for_trades", "-0.45", id=2, comment="(Trade 1515 2021-06-28 12:21:35)"),
        row("commission_for_trades", "-1.20", id=3, comment="(Trade 1516 2021-06-28 12:30:00)"),
        row("commission_refund", "0.45", id=4, comment="(Trade 1515 2021-06-28 12:21:35)"),
        row("commission", "-9.00", id=5, comment="monthly fee"),
        row("dividend", "10.00", id=6, comment="(Trade 1517 2021-06-28)"),
    ]
    assert tc.commissions(Canned(rows), None) == {"1515": D("3.00"), "1516": D("1.20")}


# -- through the real SDK, against the fake Tradernet ----------------------------------------------
def test_through_the_sdk_against_the_fake(monkeypatch):
    monkeypatch.setattr(tc, "PAGE", 2)
    with tradernet.serve({}) as fake:
        fake.cash_flow("bank", "10000.00", "USD", "Deposit", on=date(2024, 1, 2))
        fake.cash_flow("commission_for_trades", "-3.00", "USD", "(Trade 77 2024-01-03 15:00:01)", on=date(2024, 1, 3))
        fake.cash_flow("currency_conversion", "-500.00", "USD", on=date(2024, 1, 3))
        fake.cash_flow("dividend", "2.50", "USD", "AAPL.US", on=date(2024, 2, 15))
        fake.cash_flow("tax", "-0.38", "USD", "AAPL.US", on=date(2024, 2, 15))
        fake.cash_flow("cashout", "-500.00", "USD", on=date(2024, 3, 1))
        api = client(Credentials(tradernet.PUBLIC, tradernet.PRIVATE, url=fake.url))
        moves = tc.cash_moves(api, None)
        assert [m.at for m in moves] == sorted(m.at for m in moves)  # oldest first; within a day, as listed
        assert sorted((m.at.date(), m.kind, m.amount) for m in moves) == [
            (date(2024, 1, 2), "deposit", D("10000.00")),
            (date(2024, 1, 3), "fee", D("-3.00")),
            (date(2024, 2, 15), "dividend", D("2.50")),
            (date(2024, 2, 15), "tax", D("-0.38")),
            (date(2024, 3, 1), "withdrawal", D("-500.00")),
        ]
        counted = {f["id"] for f in fake.flows if f["type_code"] != "currency_conversion"}
        assert {m.id for m in moves} == counted and len(moves) == 5
        asked = fake.accepted("getUserCashFlows")
        assert [p["skip"] for p in asked] == [0, 2, 4]  # three pages of two: the fake lists newest first unless asked
        later = tc.cash_moves(api, datetime(2024, 2, 15, 9, tzinfo=UTC))
        assert sorted(m.kind for m in later) == ["dividend", "tax", "withdrawal"]
        assert fake.accepted("getUserCashFlows")[-1]["filters"] == [
            {"field": "date", "operator": "eqormore", "value": "2024-02-15"}
        ]
        assert tc.commissions(api, None) == {"77": D("3.00")}
        fake.fault("getUserCashFlows", "refuse", text="Bad json", code=2, style="errMsg")
        with pytest.raises(TradernetError, match="Bad json"):
            tc.cash_moves(api, None)
        fake.fault("getUserCashFlows", "refuse", text="User is not found", code=7, style="error")
        with pytest.raises(TradernetError, match="User is not found"):
            tc.cash_moves(api, None)
        fake.fault("getUserCashFlows", "http_error", status=503)
        with pytest.raises(TradernetError, match="503"):
            tc.cash_moves(api, None)
