"""The live account's money movements from Tradernet's getUserCashFlows, as `CashMove`s with
the broker's own ids, and the commission charged per trade. Pure parsing and one reader; the
SDK is reached only through `tradernet_api.call` (docs/tradernet-api.md, getUserCashFlows).

getUserCashFlows is the only source read. Each of its rows is one posting to the account's
cash with an `id`, a `type_code`, a `date`, a signed `sum`, a `currency` and a `comment`
(which names the trade a commission was charged for); it pages (`take`/`skip`/`total`) and
filters by date. The broker report (SDK `get_broker_report`) is not needed: it documents no
row ids (nothing to count a movement once by), leaves its fields undocumented, costs nine
calls per read (the SDK asks for every part) and raises KeyError on an error answer; the
movements it lists (`in_outs`, `cash_flows`, `commissions`) are these same postings again.
getClientCpsHistory lists transfer *requests* (drafts and rejected ones too), not money moved.

`type_code` -> kind: one table, `KINDS`. Deposits and withdrawals are the codes of money
moved in or out by the owner (a row of the opposite sign is its reversal, kept under the same
kind, signed as it moved the cash); transfers between accounts, whose code does not say the
direction, are a deposit when positive and a withdrawal when negative. Income from holdings
(dividends, coupons, fund payouts, interest on the cash) is `dividend`. Codes that move no
money in or out of the account (trades, conversions, blocks, corporate actions on securities)
are skipped. A code missing from the table, or in `UNCLEAR` (documented, but its meaning for
this account cannot be told from the documentation), is skipped too and reported once per
code (`logging.warning`): never guessed.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal

from .base import CashKind, CashMove
from .tradernet_api import TradernetError, call

log = logging.getLogger(__name__)

PAGE = 100  # rows per getUserCashFlows call
TRANSFER: Final = "transfer"  # a direction-less transfer: its sign says deposit or withdrawal

Kind = CashKind | Literal["transfer"] | None  # None: not money in or out of the account: skipped

# The documented type codes (TN:type-codes, 84 of them) and the page's own example
# `commission_for_trades`; `*_reverted` is a reversal, kept under its code's kind.
KINDS: dict[str, Kind] = {
    # money in, by the owner
    "bank": "deposit",  # bank transfer
    "card": "deposit",  # card payment
    "sepa": "deposit",
    "sepa_instant": "deposit",
    "swift": "deposit",
    "sbp": "deposit",  # top-up through FPS
    "digital_assets": "deposit",  # top-up through Wallet
    "gift_certificate": "deposit",  # gift voucher activation
    # money out, to the owner
    "cashout": "withdrawal",
    "card_payout": "withdrawal",
    "sbp_withdrawal": "withdrawal",
    "digital_assets_withdrawal": "withdrawal",
    "crypto_withdrawal": "withdrawal",
    # in or out: the sign says which
    "interbank": TRANSFER,  # intrabank transfer
    "intercompany": TRANSFER,  # company internal transfer
    "internal_holding": TRANSFER,  # intra-holding transfer
    "kassa": TRANSFER,  # payment via the cash desk
    "blockchain": TRANSFER,
    "refund": TRANSFER,  # client refund
    "recurrent_subscription": TRANSFER,  # automatic card debits
    "card_cash": TRANSFER,  # card transactions
    # income from holdings
    "dividend": "dividend",
    "dividend_reverted": "dividend",
    "dividend_compensation": "dividend",
    "dividend_compensation_reverted": "dividend",
    "stock_dividend_compensation": "dividend",  # cash for a dividend paid in securities
    "stock_dividend_compensation_reverted": "dividend",
    "coupon": "dividend",
    "coupon_reverted": "dividend",
    "fund_payment": "dividend",  # mutual fund profit
    "fund_payment_reverted": "dividend",
    "percents": "dividend",  # interest on the balance
    # fees
    "commission": "fee",
    "commission_for_trades": "fee",
    "commission_reverted": "fee",
    "commission_refund": "fee",
    "commission_rebates": "fee",
    "scores_rebate": "fee",  # commission fees paid with points
    "agent_fee": "fee",  # the agent's fee on a dividend payment
    "agent_fee_reverted": "fee",
    "card_commission": "fee",
    # taxes
    "tax": "tax",
    "tax_reverted": "tax",
    "tax_profit": "tax",
    "tax_vat": "tax",
    "tax_vat_refund": "tax",
    "tax_agent": "tax",
    # not money in or out of the account
    "trades": None,
    "otc_trade": None,  # trade payment
    "dvp": None,  # DVP trade payment
    "agent_trade": None,
    "trade_cancellation": None,
    "option_premium": None,
    "currency_conversion": None,
    "conversion": None,
    "conversion_reverted": None,
    "block": None,
    "unblock": None,
    "block_commission": None,
    "unblock_commission": None,
    "initial_margin": None,
    "initial_margin_afterhours": None,
    "variation_margin": None,
    "split": None,
    "split_reverted": None,
    "merger": None,
    "merger_reverted": None,
    "spin_off": None,
    "spin_off_reverted": None,
    "stock_dividend": None,  # paid in securities
    "stock_dividend_reverted": None,
    "rights_distribution": None,
    "rights_distribution_reverted": None,
    "maturity": None,  # a bond repaid: a sale, not income
    "maturity_reverted": None,
    "partial_maturity": None,
    "partial_maturity_reverted": None,
    "corporate_action_compensation": None,
    "corporate_action_compensation_reverted": None,
    "deposit_compensation": None,  # early end of a long-term placement: the placement comes back
}

# Documented, but what they are for this account cannot be told: skipped and reported.
UNCLEAR = frozenset(
    {
        "storn_correction",  # "adjustment transaction": of what, it does not say
        "payments_to_customer",
        "icc_commission",  # "monetary transaction"
        "card_conversion_settlement",  # exchange rate differences for card transactions
        "agent_reward_for_commissions",  # payments to a partner
        "agent_reward_for_net_deposits",
    }
)

TRADE_IN_COMMENT = re.compile(r"\(Trade (\d+)\b")  # "(Trade 1515 2021-06-28 12:21:35)"

_reported: set[str] = set()


def _report(type_code: str, why: str) -> None:
    if type_code not in _reported:
        _reported.add(type_code)
        log.warning("getUserCashFlows: type code %r %s; its rows are left out", type_code, why)


def known(type_code: str) -> bool:
    """Whether the table says what rows of this code are; a code it does not (missing, or
    `UNCLEAR`) is reported once."""
    if type_code in UNCLEAR:
        _report(type_code, "is documented without saying what it is for this account")
        return False
    if type_code not in KINDS:
        _report(type_code, "is not a known one")
        return False
    return True


def kind_of(type_code: str, amount: Decimal) -> CashKind | None:
    """The kind of a row of a known code and this sign; None: not money in or out."""
    kind = KINDS.get(type_code)
    if kind is None or kind != TRANSFER:
        return kind
    return "deposit" if amount >= 0 else "withdrawal"


def _amount(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TradernetError(f"{where}: sum {value!r} is not a number")
    try:
        number = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except InvalidOperation:
        raise TradernetError(f"{where}: sum {value!r} is not a number") from None
    if not number.is_finite():
        raise TradernetError(f"{where}: sum {value!r} is not a number")
    return number


def _day(value: Any, where: str) -> date:
    """`2021-06-28` (or a date and time: its date)."""
    if not isinstance(value, str) or len(value) < 10:
        raise TradernetError(f"{where}: date {value!r} is not a date")
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise TradernetError(f"{where}: date {value!r} is not a date") from None


def _id(row: dict[str, Any]) -> str:
    value = row.get("id")
    if isinstance(value, bool) or not isinstance(value, int | str) or str(value).strip() == "":
        raise TradernetError(f"getUserCashFlows: a row without an id: {row!r:.200}")
    return str(value).strip()


def to_move(row: dict[str, Any]) -> CashMove | None:
    """One getUserCashFlows row as a movement; None for a row that is not money in or out."""
    move_id = _id(row)
    where = f"getUserCashFlows row {move_id}"
    code = row.get("type_code")
    if not isinstance(code, str) or not code:
        raise TradernetError(f"{where}: no type_code")
    if not known(code) or KINDS[code] is None:
        return None  # not counted: its other fields are not read
    amount = _amount(row.get("sum"), where)
    kind = kind_of(code, amount)
    if kind is None:
        return None
    currency = row.get("currency")
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z]{3}", currency):
        raise TradernetError(f"{where}: currency {currency!r} is not a currency code")
    comment = row.get("comment")
    return CashMove(
        kind=kind,
        amount=amount,
        currency=currency.upper(),
        at=datetime.combine(_day(row.get("date"), where), time.min, UTC),
        note=comment.strip() if isinstance(comment, str) else "",
        id=move_id,
    )


def _rows(answer: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """The rows of one page and the `total` the answer says there are."""
    total = answer.get("total")
    if isinstance(total, str) and total.isdigit():
        total = int(total)
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise TradernetError(f"getUserCashFlows: total {answer.get('total')!r} is not a count")
    listed = answer.get("cashflow")
    if listed is None:
        listed = []
    if isinstance(listed, dict):  # a PHP array with gaps in its keys comes as an object
        listed = list(listed.values())
    if not isinstance(listed, list) or not all(isinstance(r, dict) for r in listed):
        raise TradernetError("getUserCashFlows: cannot read the cashflow list")
    return listed, total


def _utc_day(since: datetime) -> date:
    return (since.astimezone(UTC) if since.tzinfo else since).date()


def read_rows(api: Any, since: datetime | None) -> list[dict[str, Any]]:
    """Every getUserCashFlows row dated on or after `since`'s UTC day (all of them for None),
    page by page, oldest first (new rows come last, so paging never skips one), each id once."""
    params: dict[str, Any] = {"take": PAGE, "skip": 0, "sort": [{"field": "date", "dir": "ASC"}]}
    if since is not None:
        params["filters"] = [{"field": "date", "operator": "eqormore", "value": _utc_day(since).isoformat()}]
    rows: dict[str, dict[str, Any]] = {}
    skip = 0
    while True:
        params["skip"] = skip
        page, total = _rows(
            call(api, f"getUserCashFlows skip {skip}", "authorized_request", "getUserCashFlows", params)
        )
        for row in page:
            rows.setdefault(_id(row), row)
        skip += len(page)
        if skip >= total:
            return list(rows.values())
        if not page:
            raise TradernetError(f"getUserCashFlows: {total} rows announced, the pages ended after {skip}")


def cash_moves(api: Any, since: datetime | None) -> list[CashMove]:
    """The account's deposits, withdrawals, dividends, fees and taxes dated on or after
    `since`'s UTC day (a date filter: day-granular), oldest first, with the broker's ids."""
    first = _utc_day(since) if since is not None else None
    moves = [m for m in (to_move(r) for r in read_rows(api, since)) if m is not None]
    if first is not None:  # the server filters too; a row before it is not ours to count
        moves = [m for m in moves if m.at.date() >= first]
    return sorted(moves, key=lambda m: m.at)  # stable: within a day, as the broker listed them


def commissions(api: Any, since: datetime | None) -> dict[str, Decimal]:
    """{trade id: commission} for the fee rows (`commission_for_trades`, and a commission,
    its reversal or refund) whose comment names the trade, "(Trade 1515 2021-06-28 ...)";
    positive as charged; the rows of one trade add up."""
    fees: dict[str, Decimal] = {}
    for move in cash_moves(api, since):
        found = TRADE_IN_COMMENT.search(move.note) if move.kind == "fee" else None
        if found:
            fees[found[1]] = fees.get(found[1], Decimal(0)) - move.amount
    return fees
